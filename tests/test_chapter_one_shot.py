"""Chapter one_shot: the smoke run's results, the verdict's four outcomes from constructed
results, and the rule that fixed time is judged only within capacity."""

import math

import numpy as np
import pytest

from gardenpath.chapters import one_shot as osh
from gardenpath.results import VERDICTS

TESTS = ["one_shot", "fixed_store", "fixed_retrieve", "sdr_vs_search"]


@pytest.mark.slow
def test_smoke_run_records_four_tests_and_the_published_protocol(smoke_tree):
    from conftest import smoke_results

    data = smoke_results(smoke_tree, "one_shot")
    assert data["verdict"] in VERDICTS
    assert [t["name"] for t in data["tests"]] == TESTS
    n, m = data["numbers"], data["measurements"]
    for learner in osh.LEARNERS:
        assert 0.0 <= n[f"acc_{learner}_k1"] <= 1.0
    assert n["updates_sparsey_k1"] == n["ways"]  # one update per digit
    assert 0.0 <= n["published_sparsey"] <= 1.0
    assert n["capacity_items"] >= n["smallest_items"]  # smoke sizes hold a comparison
    assert m["sdr_retrieve_us_cap"] > 0 and "sdr_retrieve_us_cap" not in n
    assert data["verdict_basis"] == "measurements"


PARAMS = {"k_values": [1, 5], "tolerance": 0.02, "fixed_time_tolerance": 1.5,
          "speed_ratio_max": 1.0, "recall_floor": 0.9}


def _result(sp_minus_emb, recalls, sdr_ret, exact_ret, sdr_store=(100.0, 100.0)):
    """Constructed results: per-draw accuracy gaps and per-round times at each size."""
    rows = []
    for d, gap in enumerate(sp_minus_emb):
        for name, acc in (("sparsey", 0.5 + gap), ("embedding_nn", 0.5),
                          ("backprop", 0.4), ("nn_pixels", 0.45)):
            rows.append({"k": 1, "draw": d, "learner": name, "accuracy": acc,
                         "weight_updates": 5, "converged": True})
    g = np.random.default_rng(0)
    storage = []
    for i, (items, rec) in enumerate(recalls):
        jit = lambda v: list(v * (1 + 0.01 * g.standard_normal(5)))  # noqa: E731
        times = {(mem, op): jit(100.0) for mem in osh.MEMORIES for op in osh.OPERATIONS}
        times[("sdr", "retrieve")] = jit(sdr_ret[i])
        times[("sdr", "store")] = jit(sdr_store[min(i, len(sdr_store) - 1)])
        times[("exact", "retrieve")] = jit(exact_ret[i])
        storage.append({"items": items, "sdr_recall": rec, "ann_recall": 1.0,
                        "times": times})
    return {"params": PARAMS, "few_shot": {"rows": rows}, "storage": storage}


WITHIN = [(100, 1.0), (1000, 0.95), (10000, 0.0)]
GOOD = [0.01, 0.02, 0.0, 0.015, 0.01]
BAD = [-0.2, -0.21, -0.19, -0.2, -0.22]


def test_one_shot_verdict_reaches_supported():
    r = _result(GOOD, WITHIN, sdr_ret=[50, 51, 50], exact_ret=[60, 200, 2000])
    assert osh.decide(r).verdict == "supported"


def test_one_shot_verdict_reaches_not_supported():
    r = _result(BAD, WITHIN, sdr_ret=[50, 200, 200], exact_ret=[20, 40, 400],
                sdr_store=(100.0, 400.0))
    assert osh.decide(r).verdict == "not supported"


def test_one_shot_verdict_reaches_mixed():
    r = _result(GOOD, WITHIN, sdr_ret=[50, 51, 50], exact_ret=[20, 40, 400])
    assert osh.decide(r).verdict == "mixed"


def test_one_shot_verdict_reaches_inconclusive():
    noisy = [0.1, -0.15, 0.05, -0.12, 0.0]
    r = _result(noisy, WITHIN, sdr_ret=[50, 51, 50], exact_ret=[60, 200, 2000])
    assert osh.decide(r).verdict == "inconclusive"


def test_fixed_time_is_judged_only_within_capacity():
    # past capacity the SDR's time jumps; only 100 and 1000 items count, where it is flat
    r = _result(GOOD, WITHIN, sdr_ret=[50, 51, 500], exact_ret=[60, 200, 2000])
    tests = {t.name: t for t in osh.decide(r).tests}
    assert tests["fixed_retrieve"].interval.value == pytest.approx(51 / 50, rel=0.05)
    assert tests["fixed_retrieve"].outcome == "supported"
    # with one size within capacity nothing can be compared: the time tests cannot decide
    r = _result(GOOD, [(100, 1.0), (1000, 0.5)], sdr_ret=[50, 51], exact_ret=[60, 200])
    tests = {t.name: t for t in osh.decide(r).tests}
    for name in ("fixed_store", "fixed_retrieve", "sdr_vs_search"):
        assert math.isnan(tests[name].interval.value) and tests[name].outcome == "inconclusive"
    assert {f.name: f.value for f in osh.decide(r).facts}["capacity"] == 100


def test_within_capacity_stops_at_the_first_size_below_the_floor():
    rows = [{"items": 1, "sdr_recall": 1.0}, {"items": 2, "sdr_recall": 0.5},
            {"items": 3, "sdr_recall": 0.95}]
    assert [r["items"] for r in osh.within_capacity(rows, 0.9)] == [1]


def test_storage_measures_recall_and_times_every_memory_each_round():
    p = {"store_sizes": [20, 40], "item_bits": 128, "item_active": 8, "sdr_Q": 4,
         "sdr_K": 16, "seed": 0, "recall_sample": 20, "ann_links": 8, "ann_ef_search": 16,
         "timing_rounds": 2, "min_run_time_s": 0.001}
    rows = osh.storage(p)
    assert [r["items"] for r in rows] == [20, 40]
    for r in rows:
        assert set(r["times"]) == {(m, op) for m in osh.MEMORIES for op in osh.OPERATIONS}
        assert all(len(ts) == 2 and min(ts) > 0 for ts in r["times"].values())
        assert 0.0 <= r["sdr_recall"] <= 1.0 and r["ann_recall"] > 0.5
