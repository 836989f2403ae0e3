"""The local benchmark's report: the breakdown of ours' step (differences of times
measured in the same rounds, shown with their sign, beside the empty autograd step), and
the ceilings line naming every measurement the floors took the best of."""

from benchmarks.common import fmt_time
from benchmarks.local import _ceilings_text, _passes_section


def _row(step_s: float, sequence_s: float, empty_s: float | None) -> dict:
    passes = {"forward": 1e-4, "weight_grad": 1e-4, "input_grad": 1e-4, "pack": 1e-5,
              "unpack": 1e-5, "bias_grad": 0.0, "sequence": sequence_s}
    row = {"label": "16² C16 k3 B16", "shape": {"batch": 16}, "passes": passes,
           "floor": {"floor_s": 2e-4, "flops": 3e7},
           "contenders": {"ours": {"status": "ok", "timing": {"median_s": step_s}}}}
    if empty_s is not None:
        row["empty_step_s"] = empty_s
    return row


def test_negative_differences_keep_their_sign_and_unit() -> None:
    assert fmt_time(-80.4e-6) == "-80.4 µs"
    assert fmt_time(-0.0227) == "-22.7 ms"
    assert fmt_time(None) == "-"


def test_python_and_autograd_is_the_step_minus_the_sequence_beside_the_empty_step() -> None:
    lines = _passes_section([_row(1.2e-3, 9e-4, 1.04e-4)], peak=6e10)
    cells = [c.strip() for c in lines[-1].splitlines()[-1].strip("|").split("|")]
    assert cells[0] == "16² C16 k3 B16"
    # between passes: 900 us - (3 x 100 + 20 us) = 580 us; the rest: 300 us of 1.2 ms
    assert cells[-3] == "580 µs (48%)"
    assert cells[-2] == "300 µs (25%)"
    assert cells[-1] == "104 µs"


def test_rows_from_before_the_empty_step_was_timed_show_a_dash() -> None:
    lines = _passes_section([_row(1.2e-3, 9e-4, None)], peak=6e10)
    assert lines[-1].splitlines()[-1].strip().endswith("| - |")


def _ceilings(gflops: list[float]) -> dict:
    peaks = [{"peak_flops_per_s": g * 1e9} for g in gflops]
    return {"ceilings": {"peak_flops_per_s": max(gflops) * 1e9}, "ceilings_start": peaks[0],
            "ceilings_end": peaks[-1], "ceilings_between": peaks[1:-1],
            "flops_ceiling_source": "measure.roofline"}


def test_the_ceilings_line_names_how_many_measurements_and_their_spread() -> None:
    text = _ceilings_text(_ceilings([76.4, 91.0, 88.5, 69.6]), "16 MiB: 50")
    assert "the best of 4 measurements" in text and "91 GFLOP/s" in text
    assert "ranged from 69.6 to 91 GFLOP/s" in text and text.endswith("16 MiB: 50")
    # results from before the ceilings were measured between shapes: start and end only
    old = _ceilings([76.4, 69.6])
    del old["ceilings_between"]
    assert "the 76.4 and 69.6 GFLOP/s measured by `measure.roofline` at start and end" \
        in _ceilings_text(old, "16 MiB: 50")
