"""The local benchmark's report: ratios of medians timed side by side, goals judged only
where the baseline ran, one table and sentences whose numbers come from the rows."""

from benchmarks.local import goals, ratios, render, sentences


def _row(label: str, times: dict[str, float | None], floor_s: float = 1e-3) -> dict:
    contenders = {k: ({"status": "ok", "median_s": t} if t is not None
                      else {"status": "skipped", "reason": "est. 9.0 GiB > 3.0 GiB"})
                  for k, t in times.items()}
    row = {"label": label, "shape": {}, "contenders": contenders,
           "floor": {"floor_s": floor_s, "bound": "memory"}}
    row["ratios"] = ratios(row)
    row["goals"] = goals(row)
    return row


FAST = {"ours": 2e-3, "bmm": 6e-3, "broadcast": 4e-2, "keras1": 8e-3, "keras2": 5e-2,
        "conv": 1e-3}


def test_ratios_are_each_contender_over_ours_and_ours_over_the_floor() -> None:
    r = _row("a", FAST)["ratios"]
    assert r["broadcast"] == 20.0 and r["keras1"] == 4.0 and r["conv"] == 0.5
    assert r["floor"] == 2.0


def test_goals_are_judged_only_where_the_baseline_ran() -> None:
    assert _row("a", FAST)["goals"] == {"vs_broadcast": True, "vs_keras": True}
    slow = _row("b", {**FAST, "broadcast": 1e-2, "keras1": 1e-3})
    assert slow["goals"] == {"vs_broadcast": False, "vs_keras": False}
    skipped = _row("c", {**FAST, "broadcast": None, "keras1": None, "keras2": None})
    assert skipped["goals"] == {"vs_broadcast": None, "vs_keras": None}


def _data(rows: list[dict]) -> dict:
    env = {"device": {"name": "test machine", "device": "cpu"}}
    return {"quick": True, "environment": env, "lc_path": "fused CPU kernel", "rounds": 3,
            "ceilings": {"peak_flops_per_s": 5e10, "peak_bytes_per_s": 1e10}, "rows": rows}


def test_one_table_one_row_per_shape_skips_named_in_their_cell() -> None:
    rows = [_row("a", FAST), _row("b", {**FAST, "broadcast": None})]
    md = render(_data(rows))
    table = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(table) == 2 + len(rows) and md.count("| shape |") == 1
    assert table[2].split("|")[3].strip() == "20x"
    assert table[3].split("|")[3].strip() == "skipped"


def test_sentences_count_the_goals_from_the_rows() -> None:
    rows = [_row("a", FAST), _row("b", {**FAST, "broadcast": 1e-2}),
            _row("c", {**FAST, "broadcast": None})]
    text = " ".join(sentences(_data(rows)))
    assert "at 1 of the 2 shapes where unfold-broadcast fitted" in text
    assert "(the smallest ratio 5x)" in text
    assert "faster than both Keras formulations at 3 of 3 shapes" in text
    assert "below the floor" not in text


def test_a_time_below_the_floor_is_said_to_be_no_bound() -> None:
    rows = [_row("a", FAST, floor_s=4e-3)]
    assert "At 1 shape(s) ours ran below the floor" in " ".join(sentences(_data(rows)))


def test_the_learner_and_pipeline_reports_are_one_table_each() -> None:
    """The Performance page shows each benchmark as one table (from the committed runs)."""
    import json
    from pathlib import Path

    from benchmarks import pipeline, sdr

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    for name, mod in (("sdr", sdr), ("pipeline", pipeline)):
        md = mod.render(json.loads((results / f"{name}.json").read_text()))
        assert sum(ln.startswith("|---") for ln in md.splitlines()) == 1, name
        assert md == (results / f"{name}.md").read_text(), f"{name}.md is not its render"
