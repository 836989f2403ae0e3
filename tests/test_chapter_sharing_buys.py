"""Chapter 5, sharing_buys: its verdict rule on constructed results, its helpers, and the
smoke run's results file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import smoke_results

from gardenpath.chapters import sharing_buys as ch
from gardenpath.results import VERDICTS

CHAPTER = "sharing_buys"
SEEDS = [0, 1, 2, 3, 4]
THRESHOLDS = {"max_gap_few_pp": 2.0, "max_gap_mnist1d_pp": 2.0, "max_gap_shift_pp": 2.0}


def _acc(kind: str, gap: float, seed: int, spread: float) -> float:
    """conv at 90; local ``gap`` below; the others between; seed noise of +-``spread``,
    opposite for conv and the rest, so the paired gaps vary over seeds."""
    base = {"conv": 90.0, "local": 90.0 - gap, "local_dws": 90.0 - gap / 2, "dense": 80.0}
    return base[kind] + spread * (seed - 2) / 2 * (1 if kind == "conv" else -1)


def _result(few: float, mnist1d: float, shift: float, spread: float = 0.5) -> dict:
    """A constructed run whose three gaps are ``few``, ``mnist1d`` and ``shift`` points."""
    curve = pd.DataFrame([{"dataset": "mnist", "kind": k, "per_class": pc, "n_train": 10 * pc,
                           "n_test": 3000, "seed": s, "spread": 0.0 if k == "local_dws" else 1.0,
                           "accuracy_pct": _acc(k, few if pc == 10 else 0.5, s, spread)}
                          for k in ch.KINDS for pc in (10, 200) for s in SEEDS])
    m1d = pd.DataFrame([{"dataset": "mnist1d", "kind": k, "per_class": 400, "n_train": 4000,
                         "seed": s, "spread": 1.0, "full": True,
                         "accuracy_pct": _acc(k, mnist1d, s, spread)}
                        for k in ("conv", "local", "dense") for s in SEEDS])
    rows = []
    for regime, gap in (("one_place", 60.0), ("translated", shift)):
        for k in ch.KINDS:
            for s in SEEDS:
                for d in (-3, 0, 3):
                    acc = 95.0 if d == 0 else _acc(k, gap, s, spread)
                    rows.append({"regime": regime, "kind": k, "seed": s, "shift_px": d,
                                 "accuracy_pct": acc})
    return {"curve": curve, "mnist1d": m1d, "shift": pd.DataFrame(rows),
            "counts": {"params_image_conv": 1}, "times": {}, "thresholds": THRESHOLDS,
            "image_data": "mnist", "seeds": SEEDS, "smallest_per_class": 10}


# ---------------------------------------------------------------------------- verdict


def test_sharing_buys_verdict_reaches_supported():
    d = ch.decide(_result(0.5, -1.0, 1.0))
    assert d.verdict == "supported"
    assert [t.outcome for t in d.tests] == ["supported"] * 3


def test_sharing_buys_verdict_reaches_not_supported():
    assert ch.decide(_result(8.0, 10.0, 20.0)).verdict == "not supported"


def test_sharing_buys_verdict_reaches_mixed():
    d = ch.decide(_result(0.0, 10.0, 0.0))
    assert d.verdict == "mixed"
    assert {t.name: t.outcome for t in d.tests}["MNIST-1D"] == "not supported"


def test_sharing_buys_verdict_reaches_inconclusive():
    # a gap at the threshold with seed noise: the interval straddles it
    d = ch.decide(_result(2.0, 0.0, 0.0, spread=4.0))
    assert d.verdict == "inconclusive"
    few = d.tests[0]
    assert few.interval.lo < 2.0 < few.interval.hi and few.interval.n == 5


def test_decide_reads_the_gaps_paired_by_seed_and_keeps_facts_apart():
    r = _result(3.0, 4.0, 5.0)
    d = ch.decide(r)
    values = {t.name: t.interval.value for t in d.tests}
    assert values == pytest.approx({"few examples": 3.0, "MNIST-1D": 4.0, "translation": 5.0})
    facts = {f.name: f.value for f in d.facts}
    assert facts["one place"] == pytest.approx(60.0)
    assert facts["mnist1d_cnn_acc"] == pytest.approx(90.0)
    assert facts["mnist1d_lc_acc"] == pytest.approx(86.0)
    # the thresholds come from the parameters, not the module
    r["thresholds"] = {**THRESHOLDS, "max_gap_few_pp": 5.0}
    assert ch.decide(r).tests[0].outcome == "supported"


# ---------------------------------------------------------------------------- numbers, prose


def test_key_numbers_name_the_mnist1d_accuracies_with_intervals():
    n = ch.key_numbers(_result(1.0, 4.0, 2.0))
    for tag in ("mlp", "cnn", "lc"):
        lo, hi = n[f"mnist1d_{tag}_interval"]
        assert lo < n[f"mnist1d_{tag}_acc"] < hi
    assert n["mnist1d_mlp_acc"] == pytest.approx(80.0)
    assert n["gap_full_pp"] == pytest.approx(0.5)
    assert n["dws_minus_local_few_pp"] == pytest.approx(0.5)
    assert n["shifted_one_place_conv_acc"] == pytest.approx(90.0)
    assert n["centre_translated_local_acc"] == pytest.approx(95.0)
    assert "mnist1d_lc_dws_acc" not in n


def test_prose_says_when_dynamic_sharing_falls_below_plain_local():
    r = _result(1.0, 1.0, 1.0)
    params = {"shots": [10], "train_per_class": 200, "max_shift_px": 3, "test_shifts": [-3, 0, 3],
              **{k: 1 for k in ("kernel_size", "sleep_every", "sleep_iterations", "hidden",
                                "steps", "lr", "batch_size", "mnist1d_lr", "mnist1d_batch_size",
                                "mnist1d_steps", "shift_test_size")}}
    worse = r["curve"]["kind"] == "local_dws"
    r["curve"].loc[worse, "accuracy_pct"] -= 10.0
    text = ch.prose_numbers(r, params)
    assert "below" in text["dws_verdict_text"] and "Pogodin" in text["dws_verdict_text"]
    assert text["test_shifts_text"] == "-3, 0 or 3"
    r["curve"].loc[worse, "accuracy_pct"] += 20.0
    assert "lifts" in ch.prose_numbers(r, params)["dws_verdict_text"]


def test_on_canvas_moves_the_digit_and_refuses_to_crop():
    x = np.arange(4, dtype=np.float32).reshape(1, 4) + 1  # one 2x2 digit
    out = ch.on_canvas(x, 2, 2, shift=-2)
    assert out.shape == (1, 1, 2, 6)
    assert out[0, 0, :, :2].tolist() == [[1, 2], [3, 4]] and out[0, 0, :, 2:].sum() == 0
    with pytest.raises(ValueError):
        ch.on_canvas(x, 2, 2, shift=3)


def test_translation_test_digits_are_drawn_from_every_class():
    y = np.repeat(np.arange(10), 300)  # sorted by class, as the MNIST test split is
    keep = ch.subset(len(y), 1000, 0)
    assert len(keep) == len(set(keep)) == 1000
    assert np.bincount(y[keep], minlength=10).min() > 50
    assert len(ch.subset(20, 1000, 0)) == 20


def test_run_refuses_mnist1d_kinds_without_the_pair_it_compares():
    with pytest.raises(ValueError, match="mnist1d_kinds"):
        ch.run({"mnist1d_kinds": ["conv", "dense"]}, "cpu")


# ---------------------------------------------------------------------------- smoke run


@pytest.mark.slow
def test_smoke_results_have_tests_facts_and_key_numbers(smoke_tree):
    res = smoke_results(smoke_tree, CHAPTER)
    assert res["chapter"] == CHAPTER and res["verdict"] in VERDICTS
    assert [t["name"] for t in res["tests"]] == ["few examples", "MNIST-1D", "translation"]
    for t in res["tests"]:
        assert t["n"] == res["provenance"]["params"]["num_seeds"]
        assert t["interval"][0] <= t["value"] <= t["interval"][1]
    nums = res["numbers"]
    for key in ("mnist1d_mlp_acc", "mnist1d_cnn_acc", "mnist1d_lc_acc"):
        assert 0.0 <= nums[key] <= 100.0
        assert len(nums[key.replace("_acc", "_interval")]) == 2
    assert {f["name"] for f in res["facts"]} >= {"one place", "mnist1d_cnn_acc"}
    assert all(v > 0 for v in res["measurements"].values())
