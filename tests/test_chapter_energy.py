"""Chapter 1, "Where the energy goes": its smoke run's results, the verdict's reachable
outcomes, and the module's arithmetic."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from gardenpath.chapters import energy as ch
from gardenpath.measure.energy import MODEL_METHOD, Energy
from gardenpath.params import notebook_parameters
from gardenpath.results import VERDICTS

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = {name: p.default for name, p in
            notebook_parameters(REPO / "notebooks" / "energy.py").items()}


# ----------------------------------------------------------------------------- the smoke run


@pytest.mark.slow
def test_smoke_results_record_tests_facts_and_key_numbers(smoke_tree):
    from conftest import smoke_results

    data = smoke_results(smoke_tree, "energy")
    assert data["verdict"] in VERDICTS
    nums = data["numbers"]
    for key in ("movement_share_low", "movement_share_high", "brain_j_per_synaptic_event",
                "machine_j_per_flop"):
        assert isinstance(nums[key], float), key
    assert 0 < nums["movement_share_low"] < nums["movement_share_high"] < 1
    assert nums["layers_total"] == 40  # 20 convolutions, each followed by a batch norm
    # the tests are the two cost tables' share ranges; time votes in none of them
    assert [t["method"] for t in data["tests"]] == ["range", "range"]
    horowitz = data["tests"][0]
    assert horowitz["interval"] == pytest.approx([nums["movement_share_low"],
                                                  nums["movement_share_high"]])
    assert not any("time" in t["quantity"] for t in data["tests"])
    assert {f["name"] for f in data["facts"]} >= {"brain per synaptic event",
                                                  "machine per FLOP"}
    assert data["verdict_basis"] == "numbers"
    meas = data["measurements"]
    assert meas["peak_gflops_per_s"] > 0 and meas["main_memory_gb_per_s"] > 0


@pytest.mark.slow
def test_smoke_page_has_its_figures(smoke_tree):
    figs = smoke_tree / ".gardenpath" / "out" / "smoke" / "energy_files"
    names = {p.name for p in figs.glob("*.svg")}
    assert {"energy-bandwidth.svg", "energy-roofline.svg", "energy-shares.svg",
            "energy-step.svg", "energy-brain.svg"} <= names


# ----------------------------------------------------------------------------- the verdict


def _result(horowitz: tuple[float, float], sze: tuple[float, float],
            threshold: float = 0.5) -> ch.Result:
    """A constructed result: the chosen dataflow's share ranges under both tables."""
    rows = [{"cost_table": key, "table_name": key, "dataflow": DEFAULTS["dataflow"],
             "low": lo, "high": hi} for key, (lo, hi) in (("horowitz", horowitz),
                                                          ("sze", sze))]
    numbers = {"brain_j_per_synaptic_event": 1e-14, "machine_j_per_flop": 1e-11,
               "machine_flop_over_brain_event": 1e3}
    params = dict(DEFAULTS, movement_share_threshold=threshold)
    return ch.Result(params=params, shares=pd.DataFrame(rows), numbers=numbers)


def test_energy_verdict_reaches_supported():
    assert ch.decide(_result((0.6, 0.8), (0.7, 0.9))).verdict == "supported"


def test_energy_verdict_reaches_not_supported():
    assert ch.decide(_result((0.2, 0.4), (0.3, 0.45))).verdict == "not supported"


def test_energy_verdict_reaches_mixed():
    assert ch.decide(_result((0.2, 0.4), (0.6, 0.9))).verdict == "mixed"


def test_energy_verdict_reaches_inconclusive():
    d = ch.decide(_result((0.4, 0.7), (0.6, 0.9)))
    assert d.verdict == "inconclusive"
    assert "turns on the model's assumptions" in d.reason()


def test_the_test_reads_the_dataflow_of_the_parameters():
    r = _result((0.6, 0.8), (0.7, 0.9))
    other = "weight_stationary" if DEFAULTS["dataflow"] != "weight_stationary" \
        else "row_stationary"
    extra = [{"cost_table": key, "table_name": key, "dataflow": other, "low": 0.1,
              "high": 0.2} for key in ("horowitz", "sze")]
    r.shares = pd.concat([r.shares, pd.DataFrame(extra)], ignore_index=True)
    assert ch.decide(r).verdict == "supported"
    r.params = dict(r.params, dataflow=other)
    assert ch.decide(r).verdict == "not supported"


def test_threshold_comes_from_the_parameters():
    assert ch.decide(_result((0.6, 0.8), (0.7, 0.9), threshold=0.95)).verdict == "not supported"


def test_comparisons_are_facts_not_tests():
    d = ch.decide(_result((0.6, 0.8), (0.7, 0.9)))
    assert len(d.tests) == 2
    facts = {f.name: f for f in d.facts}
    assert (facts["brain per synaptic event"].value, facts["brain per synaptic event"].unit) \
        == (pytest.approx(10.0), "fJ")
    assert (facts["machine per FLOP"].value, facts["machine per FLOP"].unit) \
        == (pytest.approx(10.0), "pJ")
    assert {f.name for f in d.facts} == {"DRAM access against a FLOP",
                                         "brain per synaptic event", "machine per FLOP",
                                         "machine FLOP over brain event"}


# ----------------------------------------------------------------------------- the model


def test_published_ratios_come_from_the_tables():
    pub = ch.published_numbers()
    assert pub["horowitz_dram_over_fp_mult"] == pytest.approx(640 / 3.7)
    assert pub["horowitz_dram_over_flop"] == pytest.approx(640 / 2.3)
    assert pub["horowitz_pj_per_flop"] == pytest.approx(2.3)
    assert pub["sze_dram"] == 200
    assert pub["brain_communication_over_computation"] == pytest.approx(35.0)
    # ATP count x free energy per molecule (50 kJ/mol / Avogadro)
    assert pub["brain_j_attwell_laughlin_2001"] == pytest.approx(8.2e4 * 8.3027e-20,
                                                                 rel=1e-4)


def test_share_range_widens_from_dram_only_to_the_hierarchy():
    ops = ch.resnet18_ops(64, 2)
    shares = ch.share_table(ops)
    assert len(shares) == 6
    assert (shares["low"] < shares["high"]).all()
    # DRAM-only counting does not depend on the dataflow
    for _, rows in shares.groupby("cost_table"):
        assert rows["low"].nunique() == 1


def test_a_larger_batch_lowers_the_dram_only_share():
    # weights are read once per step whatever the batch: more images, more reuse
    low = [ch.comparison_numbers(ch.resnet18_ops(64, b), "row_stationary")
           ["movement_share_low"] for b in (1, 16)]
    assert low[1] < low[0]


def test_machine_energy_per_flop_by_parts():
    n = ch.comparison_numbers(ch.resnet18_ops(64, 1), "row_stationary")
    total = sum(n[f"step_{p}_j"] for p in ("arithmetic", "rf", "buffer", "dram"))
    assert n["step_energy_j"] == pytest.approx(total)
    assert n["machine_j_per_flop"] == pytest.approx(total / n["step_flops"])
    assert n["machine_j_per_flop_dram_only"] < n["machine_j_per_flop"]


def test_modelled_energy_per_byte_and_flop():
    e = ch.modelled_op_energy()
    assert not e.measured
    assert e.pj_per_byte == pytest.approx(160.0)
    assert e.pj_per_flop == pytest.approx(2.3)


def test_gpu_figure_is_published_without_a_measurement():
    j, source = ch.gpu_j_per_flop(ch.modelled_op_energy(), torch.device("cpu"))
    assert j == pytest.approx(400 / 19.5e12) and source.startswith("published")
    nvml = ch.OpEnergy("measured: NVML", 1.0, 2.0, total_pj_per_byte=3.0,
                       total_pj_per_flop=5.0)
    j, source = ch.gpu_j_per_flop(nvml, torch.device("cuda"))
    assert j == pytest.approx(5e-12) and source.startswith("measured on this GPU")


class FakeMonitor:
    """A 'measured' counter whose power is fixed per window name (W)."""

    method = "measured: NVML"
    counter = "fake counter"

    def __init__(self, watts: dict[str, float]):
        self.watts, self.open = watts, {}

    def begin_window(self, name: str) -> None:
        self.open[name] = time.perf_counter()

    def end_window(self, name: str, **_) -> Energy:
        t = time.perf_counter() - self.open.pop(name)
        return Energy(energy_j=self.watts[name] * t, time_s=t, method=self.method)


def test_measured_energy_subtracts_idle_power():
    mon = FakeMonitor({"idle": 50.0, "copy": 150.0, "matmul": 250.0})
    e = ch.measure_op_energy(torch.device("cpu"), 1 << 20, 64, 0.05, monitor=mon)
    assert e.measured and e.counter == "fake counter"
    assert e.idle_w == pytest.approx(50.0)
    assert e.copy_w == pytest.approx(150.0)
    assert e.matmul_w == pytest.approx(250.0)
    # total / above-idle = P / (P - P_idle), whatever the window lengths were
    assert e.total_pj_per_byte / e.pj_per_byte == pytest.approx(150 / 100)
    assert e.total_pj_per_flop / e.pj_per_flop == pytest.approx(250 / 200)
    assert "50 W idle" in ch.energy_note(e)


def test_without_a_counter_the_energy_is_modelled():
    class NoCounter:
        method = MODEL_METHOD

    e = ch.measure_op_energy(torch.device("cpu"), 1 << 20, 64, 0.05, monitor=NoCounter())
    assert e.method == MODEL_METHOD
    assert "no energy counter" in ch.energy_note(e)


def test_resnet18_ops_match_the_published_macs():
    ops = ch.resnet18_ops(224, 1)
    convs = [op for op in ops if op.kind == "conv"]
    assert sum(op.count for op in convs) == 20
    assert sum(op.count for op in ops if op.kind == "bn_relu") == 20
    # forward MACs: the first layer's step is forward + weight gradient (2 passes), the
    # others add the input gradient (3 passes); ANCHORS: 1.81 G MACs per image
    fwd_macs = sum(op.count * op.flops / (2 if op.first else 3) / 2 for op in convs)
    assert fwd_macs == pytest.approx(1.814e9, rel=2e-3)
    bn = next(op for op in ops if op.kind == "bn_relu")
    assert bn.intensity == pytest.approx(ch.BN_RELU_FLOPS_PER_ELEMENT / 20)
    conv = convs[1]
    assert conv.weight_elems == conv.out_channels * conv.in_shape[1] * conv.kernel_size ** 2


def test_largest_set_level():
    caches = [{"level": "L1", "size_bytes": 32 << 10}, {"level": "L3", "size_bytes": 32 << 20}]
    assert ch.largest_set_level([16, 262144], caches) == "main memory"
    assert ch.largest_set_level([16, 16384], caches) == "L3 cache"
    assert ch.largest_set_level([16], []) == "main memory"


def test_parse_cache_size():
    assert ch._parse_size("32K") == 32768
    assert ch._parse_size("32M") == 32 << 20
    assert ch._parse_size("512") == 512


def test_above_roof_note_counts_layers_past_the_roof():
    import pandas as pd

    assert ch.above_roof_note(pd.DataFrame({"fraction_of_roof": [0.5, 0.9]})) == ""
    note = ch.above_roof_note(pd.DataFrame({"fraction_of_roof": [0.5, 1.2, 1.1]}))
    assert note.startswith("2 of the distinct layers")
