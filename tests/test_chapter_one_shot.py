"""Chapter 7 (one_shot): the smoke run's results, and the chapter module's pieces.

Unit tests check the synthetic item stream, the exact memory's best match, backprop's
stopping rule, that timing the macrocolumn's store leaves no trace in what it recalls
afterwards, and the verdict's branches.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gardenpath.chapters import one_shot as osh
from gardenpath.results import VERDICTS

pytestmark = pytest.mark.slow

LEARNERS = ["sparsey", "nn_pixels", "nn_code", "backprop"]


# ------------------------------------------------------------------ the real smoke run


def test_smoke_run_records_numbers_and_a_verdict(smoke_tree):
    from conftest import smoke_results

    data = smoke_results(smoke_tree, "one_shot")
    assert data["verdict"] in VERDICTS
    n, m = data["numbers"], data["measurements"]
    assert n["verdict"] == data["verdict"]
    k = n["k_min"]
    for learner in LEARNERS:
        assert 0.0 <= n[f"acc_{learner}_k{k}"] <= 1.0
    # one presentation and one update per example for the single-shot learner
    assert n[f"presentations_sparsey_k{k}"] == n[f"updates_sparsey_k{k}"] == 10 * k
    assert n[f"updates_backprop_k{k}"] > n[f"updates_sparsey_k{k}"]
    assert n["nn_exact_recall_largest"] == 1.0
    for op in osh.OPERATIONS:
        assert m[f"{op}_ratio"] > 0 and f"{op}_ratio" not in n
    # the verdict follows its three recorded parts
    held = [n["one_shot_holds"], n["fixed_time_holds"], n["capacity_holds"]]
    expected = "supported" if all(held) else "not supported" if not any(held) else "mixed"
    assert data["verdict"] == expected
    assert n["fixed_time_holds"] == (m["sdr_store_ratio"] <= n["fixed_time_tolerance"]
                                     and m["sdr_retrieve_ratio"] <= n["fixed_time_tolerance"])
    assert data["provenance"]["params"]["draws"] == 1  # the smoke profile applied


# ------------------------------------------------------------------ items and memories


def test_synthetic_items_have_exactly_the_active_bits_and_any_range_matches():
    whole = osh.synthetic_items(0, 50, 64, 5, seed=3, chunk=16)
    assert whole.shape == (50, 64) and whole.dtype == torch.uint8
    assert (whole.sum(1) == 5).all()
    # a range that starts inside one chunk and ends in another equals the same rows
    torch.testing.assert_close(osh.synthetic_items(13, 20, 64, 5, seed=3, chunk=16),
                               whole[13:33])
    assert not torch.equal(osh.synthetic_items(0, 50, 64, 5, seed=4, chunk=16), whole)


def test_exact_memory_returns_the_best_overlap():
    items = osh.synthetic_items(0, 40, 128, 10, seed=0)
    mem = osh.ExactMemory(48, 128)
    mem.store(items)
    assert mem.n == 40 and mem.state_bytes == 40 * 128
    for i in (0, 17, 39):
        assert int(mem.retrieve(items[i])) == i
    # move 3 of item 5's 10 bits: it is still the nearest stored item
    probe = items[5].clone()
    on, off = probe.nonzero().squeeze(1), (probe == 0).nonzero().squeeze(1)
    probe[on[:3]], probe[off[:3]] = 0, 1
    overlaps = (items.int() * probe.int()).sum(1)
    assert int(mem.retrieve(probe)) == int(overlaps.argmax()) == 5
    mem.store_at(45, items[0])  # a timing write past the end does not store an item
    assert mem.n == 40


def test_converged_backprop_stops_at_the_loss_tolerance():
    rng = np.random.default_rng(0)
    x = rng.random((20, 16)).astype(np.float32)
    y = np.arange(20) % 10
    bp = osh.ConvergedBackprop(hidden=(32,), lr=1e-2, loss_tol=0.05, max_epochs=2000)
    rep = bp.fit(x, y, seed=0)
    assert rep.extra["converged"] and rep.extra["final_loss"] < 0.05
    assert 1 < rep.passes < 2000 and rep.weight_updates == rep.passes  # 20 < batch of 32
    assert rep.presentations == rep.passes * 20
    assert (bp.predict(x) == y).all()
    capped = osh.ConvergedBackprop(hidden=(32,), loss_tol=1e-9, max_epochs=3).fit(x, y)
    assert not capped.extra["converged"] and capped.passes == 3


def test_timing_the_store_leaves_no_trace_in_recall():
    base = dict(store_sizes=[20, 60], item_bits=128, item_active=8, sdr_Q=4, sdr_K=8,
                recall_sample=60, timing_rounds=1)
    a = osh.storage_scaling(osh.Settings.from_params({**base, "timing_min_s": 0.001}))
    b = osh.storage_scaling(osh.Settings.from_params({**base, "timing_min_s": 0.05}))
    for ra, rb in zip(a, b, strict=True):
        assert ra["sdr_exact_recall"] == rb["sdr_exact_recall"]
        assert ra["sdr_module_recall"] == rb["sdr_module_recall"]
        assert ra["sdr_weight_density"] == rb["sdr_weight_density"]
        assert set(ra["timings"]) == set(osh.OPERATIONS)
    assert a[0]["sdr_state_bytes"] == a[1]["sdr_state_bytes"] == 128 * 4 * 8 // 8
    assert a[1]["nn_exact_recall"] == 1.0


# ------------------------------------------------------------------ ratios and verdict


def _timing(median_s):
    return SimpleNamespace(median_s=median_s, iqr_s=0.0, raw_s=[median_s])


def _storage(recalls, sdr_times, nn_times):
    return [{"items": n, "sdr_exact_recall": r, "sdr_module_recall": r,
             "sdr_weight_density": 0.5, "nn_exact_recall": 1.0,
             "timings": {"sdr_store": _timing(s), "sdr_retrieve": _timing(s),
                         "nn_store": _timing(1e-6), "nn_retrieve": _timing(t)}}
            for n, r, s, t in zip((100, 1000, 10000), recalls, sdr_times, nn_times,
                                  strict=True)]


def test_best_of_keeps_each_lowest_median():
    seq = iter([3.0, 5.0, 1.0, 6.0, 2.0, 4.0])
    timers = {"a": lambda: _timing(next(seq)), "b": lambda: _timing(next(seq))}
    best = osh.best_of(timers, rounds=3)  # a: 3, 1, 2; b: 5, 6, 4
    assert best["a"].median_s == 1.0 and best["b"].median_s == 4.0


def test_time_ratios_and_capacity():
    st = _storage([1.0, 0.95, 0.2], [1e-4, 1.1e-4, 1.2e-4], [1e-5, 1e-4, 1e-3])
    ratios = osh.time_ratios(st)
    assert ratios["sdr_store"] == pytest.approx(1.2)
    assert ratios["nn_retrieve"] == pytest.approx(100)
    assert osh.capacity(st, 0.9) == 1000
    assert osh.capacity(st, 0.99) == 100
    assert osh.capacity(_storage([0.5, 1.0, 1.0], [1, 1, 1], [1, 1, 1]), 0.9) is None


def _kshot_summary(sp_acc, bp_acc):
    return [{"k": 1, "learner": name, "accuracy": acc, "weight_updates": upd,
             "presentations": upd, "per_class": 1.0, "all_converged": True}
            for name, acc, upd in (("sparsey", sp_acc, 10), ("backprop", bp_acc, 300),
                                   ("nn_pixels", 0.7, 10))]


@pytest.mark.parametrize("sp_acc,recalls,sdr_times,expected", [
    (0.70, [1.0, 1.0, 0.95], [1e-4, 1e-4, 1e-4], "supported"),
    (0.40, [1.0, 0.5, 0.1], [1e-4, 1e-3, 1e-2], "not supported"),
    (0.70, [1.0, 0.5, 0.1], [1e-4, 1e-4, 1e-4], "mixed"),
    (0.40, [1.0, 1.0, 1.0], [1e-4, 1e-4, 1e-4], "mixed"),
])
def test_decide_covers_each_branch(sp_acc, recalls, sdr_times, expected):
    s = osh.Settings()
    verdict, why, numbers = osh.decide(_kshot_summary(sp_acc, 0.71),
                                       _storage(recalls, sdr_times, [1e-5, 1e-4, 1e-3]), s)
    assert verdict == expected
    assert numbers["k_min"] == 1 and "nn_retrieve_grows" not in numbers
    assert "10,000" in why


def test_settings_and_kshot_refuse_what_cannot_run():
    with pytest.raises(ValueError, match="two sizes"):
        osh.Settings.from_params({"store_sizes": [100]})
    with pytest.raises(ValueError, match="item_active"):
        osh.Settings.from_params({"item_bits": 32, "item_active": 32})
    with pytest.raises(ValueError, match="smallest class"):
        osh.kshot(osh.Settings.from_params({"k_values": [500], "draws": 1}),
                  learners=("nn_pixels",))


def test_kshot_nearest_neighbour_counts_one_update_per_example():
    rows = osh.kshot(osh.Settings.from_params({"k_values": [2], "include_all": False,
                                               "draws": 2}), learners=("nn_pixels",))
    assert [r["n_train"] for r in rows] == [20, 20]
    assert all(r["presentations"] == r["weight_updates"] == 20 for r in rows)
    assert [r["draw"] for r in rows] == [0, 1]
    assert all(r["accuracy"] > 0.5 for r in rows)  # 1-NN from 2 digits a class: about 0.75


def test_memory_estimate_grows_with_the_largest_store():
    small = osh.memory_estimate({"store_sizes": [100, 1000], "item_bits": 1024})
    big = osh.memory_estimate({"store_sizes": [100, 1000000], "item_bits": 1024})
    assert big - small == (1000000 - 1000) * (1024 + 24 * 8)
