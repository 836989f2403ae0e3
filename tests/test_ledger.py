"""The claims ledger and the synthesis page, built from constructed results files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gardenpath import claims
from gardenpath import verdict as V
from gardenpath.chapters import ledger


def _decision(outcome: str) -> V.Decision:
    """Two tests whose outcomes give ``outcome`` (the verdict) when combined."""
    iv = {"supported": (2.0, 3.0), "not supported": (0.1, 0.5), "inconclusive": (0.6, 1.6)}
    pair = {"supported": ("supported", "supported"),
            "not supported": ("not supported", "not supported"),
            "mixed": ("supported", "not supported"),
            "inconclusive": ("supported", "inconclusive")}[outcome]
    tests = []
    for i, o in enumerate(pair):
        lo, hi = iv[o]
        tests.append(V.Test(f"t{i}", f"quantity {i}", V.Interval((lo + hi) / 2, lo, hi, 5),
                            V.Rule(">=", 1.0)))
    return V.Decision(tests, [V.Fact("f", "a count", 3)])


def write_results(folder: Path, verdicts: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for chapter, outcome in verdicts.items():
        d = _decision(outcome).as_dict()
        data = {"schema": 2, "chapter": chapter, "claim": claims.claim(chapter),
                "verdict": d["verdict"], "why": d["why"], "reason": d["reason"],
                "tests": d["tests"], "facts": d["facts"], "numbers": {},
                "provenance": {"profile": "smoke", "device": {"name": "test cpu"}}}
        (folder / f"{chapter}.json").write_text(json.dumps(data))


def rows_for(tmp_path: Path, verdicts: dict[str, str]) -> list[ledger.Entry]:
    write_results(tmp_path / "results" / "smoke", verdicts)
    return ledger.collect(tmp_path, "smoke")


ALL = list(claims.CLAIMS)


@pytest.mark.parametrize("verdicts,overall,sentence", [
    ({c: "not supported" for c in ALL}, "not supported",
     "Of the 7 claims, 7 have a result: 0 are supported, 7 are not supported, 0 are mixed "
     "and 0 are inconclusive."),
    ({c: "supported" for c in ALL}, "supported",
     "Of the 7 claims, 7 have a result: 7 are supported, 0 are not supported, 0 are mixed "
     "and 0 are inconclusive."),
    ({"energy": "supported", "imagenet": "not supported", "one_shot": "inconclusive"},
     "mixed", "Of the 7 claims, 3 have a result: 1 is supported, 1 is not supported, 0 are "
     "mixed and 1 is inconclusive; 4 have none."),
    ({"energy": "mixed"}, "mixed", None),
    ({"energy": "supported", "one_shot": "inconclusive"}, "inconclusive", None),
])
def test_overall_verdict_and_its_sentence(tmp_path, verdicts, overall, sentence):
    rows = ledger.with_overall(rows_for(tmp_path, verdicts), "smoke")
    assert rows[-1].verdict == overall
    if sentence:
        assert rows[-1].reason == sentence


def test_no_results_gives_no_overall_verdict(tmp_path):
    rows = ledger.with_overall(ledger.collect(tmp_path, "smoke"), "smoke")
    assert rows[-1].verdict is None and rows[-1].status == "missing"
    assert all(r.status == "missing" for r in rows[:-1])


def test_the_stated_rule_matches_the_code():
    # every clause of OVERALL_RULE is exercised above; this checks the words stay in step
    for word in ("every claim with a result is supported", "every one is not supported",
                 "some are supported and others are not", "inconclusive otherwise"):
        assert word in ledger.OVERALL_RULE


def test_forest_table_puts_each_test_on_the_essays_side_of_zero(tmp_path):
    rows = rows_for(tmp_path, {"energy": "mixed", "one_shot": "inconclusive"})
    df = ledger.forest_table(rows)
    assert len(df) == 4
    for _, r in df.iterrows():
        assert r.x_lo <= r.x <= r.x_hi
        if r.outcome == "supported":
            assert r.x_lo >= 0
        elif r.outcome == "not supported":
            assert r.x_hi < 0
        else:
            assert r.x_lo < 0 < r.x_hi
    spec = ledger.forest_chart(rows).to_dict()
    assert spec["layer"] and "outcome" in json.dumps(spec)


def test_table_is_short_and_folds_the_details(tmp_path):
    rows = ledger.with_overall(rows_for(tmp_path, {"energy": "supported"}), "smoke")
    page = ledger.table_html(rows, {"energy"})
    assert page.count("<tr>") == len(rows) + 1
    assert "<details>" in page and "all 2 tests support the claim" in page
    assert "<a href='energy.html'>" in page


def test_results_dir_parameter_reads_another_folder(tmp_path):
    write_results(tmp_path / "elsewhere", {"energy": "not supported"})
    rows = ledger.collect(tmp_path, "smoke", tmp_path / "elsewhere")
    assert rows[0].verdict == "not supported"


def test_synthesis_follows_the_results_files(tmp_path):
    rows = rows_for(tmp_path, {"energy": "supported", "one_shot": "inconclusive"})
    text = ledger.synthesis_markdown(rows, "smoke")
    holds, fails, undecided = (text.split("## ")[i] for i in (1, 2, 3))
    assert "Where the energy goes" in holds and "Learning in one shot" in holds
    assert "No test contradicts it" in fails
    assert "Learning in one shot" in undecided and "samples (now 5)" in undecided
    assert "What sharing moves**: no result" in undecided
    write_results(tmp_path / "results" / "smoke", {"energy": "not supported"})
    changed = ledger.synthesis_markdown(ledger.collect(tmp_path, "smoke"), "smoke")
    assert changed != text and "Where the energy goes" in changed.split("## ")[2]


def test_samples_to_decide_scales_as_one_over_root_n():
    t = {"interval": [0.5, 1.5], "value": 1.0 + 0.25, "threshold": 1.0, "n": 5,
         "method": "t"}
    assert ledger.samples_to_decide(t) == 20  # half-width 0.5 over a gap of 0.25: 4x n
    assert ledger.samples_to_decide({**t, "method": "range"}) is None


def test_a_failed_latest_run_is_said_and_a_damaged_manifest_ignored(tmp_path):
    write_results(tmp_path / "results" / "smoke", {"energy": "supported", "imagenet": "mixed"})
    manifests = tmp_path / ".gardenpath" / "manifests" / "smoke"
    manifests.mkdir(parents=True)
    (manifests / "energy.json").write_text(json.dumps(
        {"latest": {"status": "failed", "when": "today", "error": {"ename": "X"}}}))
    (manifests / "imagenet.json").write_text(json.dumps({"latest": ["not", "a", "dict"]}))
    rows = {r.chapter: r for r in ledger.collect(tmp_path, "smoke")}
    assert rows["energy"].status == "failed" and "previous good run" in rows["energy"].note
    assert rows["imagenet"].status == "ok" and rows["imagenet"].verdict == "mixed"
