"""Chapter 5, sharing_buys: the smoke run's results, and the chapter module's logic."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from conftest import smoke_results

from gardenpath.chapters import sharing_buys as sb
from gardenpath.models.local import LocallyConnected2d
from gardenpath.results import VERDICTS

CHAPTER = "sharing_buys"


# ---------------------------------------------------------------------------- smoke run


@pytest.mark.slow
def test_smoke_results_have_numbers_and_a_valid_verdict(smoke_tree):
    res = smoke_results(smoke_tree, CHAPTER)
    assert res["chapter"] == CHAPTER
    assert res["verdict"] in VERDICTS
    nums = res["numbers"]
    for net in sb.NETS:
        assert 0.0 <= nums[f"acc_{net}_largest"] <= 100.0
        assert f"steps_{net}" in nums
        for readout in sb.READOUTS:
            assert 0.0 <= nums[f"shifted_{readout}_{net}"] <= 100.0
    assert nums["n_digits"] == 1797
    assert nums["n_train"] + nums["n_test"] == nums["n_digits"]
    assert nums["gap_full_pp"] == pytest.approx(nums["acc_conv_largest"]
                                                - nums["acc_local_largest"])
    ro = nums["shift_readout"]
    assert nums["gap_shift_pp"] == pytest.approx(nums[f"shifted_{ro}_conv"]
                                                 - nums[f"shifted_{ro}_local"])
    # the verdict recorded is the rule applied to the recorded gaps
    verdict, why = sb.decide(nums["gap_full_pp"], nums["gap_few_pp"], nums["gap_shift_pp"],
                             nums["tolerance_pp"])
    assert (res["verdict"], res["why"]) == (verdict, why)
    # every sharing period asked for was run
    periods = res["provenance"]["params"]["share_sweep"]
    assert sorted(r["share_every"] for r in nums["sweep"]) == sorted(periods)


@pytest.mark.slow
def test_smoke_times_are_measurements_not_numbers(smoke_tree):
    res = smoke_results(smoke_tree, CHAPTER)
    times = res["measurements"]["step_time"]
    assert set(times) == {f"{n}_{where}" for n in sb.NETS for where in ("8px", "canvas")}
    assert all(t["median_s"] > 0 for t in times.values())
    assert not any("time" in k for k in res["numbers"])


# ---------------------------------------------------------------------------- verdict rule


def test_decide_each_branch():
    assert sb.decide(5.0, 0.0, 0.0, 2.0)[0] == "not supported"
    assert sb.decide(0.5, 1.0, -3.0, 2.0)[0] == "supported"
    assert sb.decide(-4.0, None, None, 2.0)[0] == "supported"  # LC ahead counts as close
    verdict, why = sb.decide(0.5, 0.0, 40.0, 2.0)
    assert verdict == "mixed" and "translation generalisation" in why
    assert "sample efficiency" not in why
    verdict, why = sb.decide(1.0, 6.0, 1.0, 2.0)
    assert verdict == "mixed" and "sample efficiency" in why
    # exactly at the tolerance is still "close"
    assert sb.decide(2.0, 2.0, 2.0, 2.0)[0] == "supported"


def test_recovery_fraction():
    assert sb.recovery(90.0, 30.0, 60.0) == pytest.approx(0.5)
    assert sb.recovery(90.0, 30.0, 90.0) == pytest.approx(1.0)
    assert sb.recovery(90.0, 30.0, 20.0) == pytest.approx(-1 / 6)
    assert sb.recovery(50.0, 60.0, 55.0) is None


def test_steps_to_target():
    curve = [(0, 10.0), (10, 85.0), (20, 90.0), (30, 95.0)]
    assert sb.steps_to_target(curve, 90.0) == 20
    assert sb.steps_to_target(curve, 5.0) == 0
    assert sb.steps_to_target(curve, 99.0) is None


def test_share_steps_schedule():
    cfg = sb.TrainConfig(num_steps=25, share_every=10, share_at_end=True)
    assert sb.share_steps(cfg) == [10, 20, 25]
    cfg = sb.TrainConfig(num_steps=20, share_every=10, share_at_end=True)
    assert sb.share_steps(cfg) == [10, 20]
    cfg = sb.TrainConfig(num_steps=20, share_every=10, share_at_end=False)
    assert sb.share_steps(cfg) == [10]
    with pytest.raises(ValueError):
        sb.TrainConfig(optimizer="rmsprop")


# ---------------------------------------------------------------------------- nets


def test_parameter_counts_by_hand():
    # conv: 1*16*9+16 + 16*32*9+32 + (32*2*2)*10+10
    assert sb.count_params("conv") == 160 + 4640 + 1290
    # local: 64 positions * 9 * 16 + 16*64 biases; 16 positions * 144 * 32 + 32*16; readout
    assert sb.count_params("local") == 9216 + 1024 + 73728 + 512 + 1290
    assert sb.count_params("local_shared") == sb.count_params("local")
    # global max readout: 32 channels -> 10 classes
    assert sb.count_params("conv", 12, readout="global_max") == 160 + 4640 + 330
    assert sb.positions(8, (16, 32)) == [64, 16]


def test_local_shared_starts_as_the_conv_net():
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    conv = sb.build_net("conv", seed=3)
    shared = sb.build_net("local_shared", seed=3)
    assert sb.has_local(shared) and not sb.has_local(conv)
    with torch.no_grad():
        torch.testing.assert_close(shared(x), conv(x), rtol=1e-5, atol=1e-5)


def test_training_with_share_at_end_leaves_one_filter_per_layer():
    d = sb.load(0.3, 0)
    xs, ys = sb.sample(d, 2, 0)
    x, y = sb.images(xs, 8, "cpu"), sb.labels(ys, "cpu")
    cfg = sb.TrainConfig(num_steps=7, batch_size=8, share_every=3, share_at_end=True)
    net = sb.build_net("local_shared", channels=(2, 4), seed=0)
    sb.train(net, x, y, cfg, share=True)
    layers = [m for m in net.modules() if isinstance(m, LocallyConnected2d)]
    assert len(layers) == 2
    for m in layers:
        assert float(m.weight.detach().std(0).max()) == 0.0
    # without the final phase the last steps leave the positions apart again
    net = sb.build_net("local_shared", channels=(2, 4), seed=0)
    sb.train(net, x, y, sb.TrainConfig(num_steps=7, batch_size=8, share_every=3,
                                       share_at_end=False), share=True)
    assert any(float(m.weight.detach().std(0).max()) > 0.0 for m in net.modules()
               if isinstance(m, LocallyConnected2d))


def test_learning_curve_is_deterministic_given_the_seed():
    d = sb.load(0.3, 0)
    cfg = sb.TrainConfig(num_steps=6, batch_size=16, share_every=2)
    kw = dict(channels=(2, 4), nets=("conv", "local_shared"), eval_every=3)
    a, ta = sb.learning_curve(d, [1], False, cfg, [4], **kw)
    b, tb = sb.learning_curve(d, [1], False, cfg, [4], **kw)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(ta, tb)
    assert list(ta["step"].unique()) == [0, 3, 6]
    c, _ = sb.learning_curve(d, [1], False, cfg, [5], **kw)
    assert not a["accuracy_pct"].equals(c["accuracy_pct"])


def test_sample_refuses_more_shots_than_the_smallest_class():
    d = sb.load(0.3, 0)
    with pytest.raises(ValueError, match="smallest class"):
        sb.sample(d, d.min_per_class + 1, 0)
    x, y = sb.sample(d, 3, 0)
    assert len(y) == 30 and set(pd.Series(y).value_counts()) == {3}


def test_canvas_offsets_centre_and_columns():
    assert sb.canvas_offsets(12) == (2, [0, 1, 2, 3, 4])
    assert sb.canvas_offsets(8) == (0, [0])
    with pytest.raises(ValueError):
        sb.canvas_offsets(6)


# ---------------------------------------------------------------------------- summaries


def _frames():
    """Hand-made runs: conv 90/70, local 88/60, shared 80/65, dense 85/50 (largest/k=1)."""
    acc = {"conv": (90.0, 70.0), "local": (88.0, 60.0), "local_shared": (80.0, 65.0),
           "dense": (85.0, 50.0)}
    runs = pd.DataFrame([{"net": n, "shots": s, "n_train": 1000 if s is None else 10 * s,
                          "seed": seed, "accuracy_pct": acc[n][0 if s is None else 1] + dv}
                         for n in sb.NETS for s in (1, None) for seed, dv in ((0, -1), (1, 1))])
    traj = pd.DataFrame([{"net": n, "seed": seed, "step": st,
                          "accuracy_pct": min(100.0, st * (2.0 if n == "conv" else 1.0))}
                         for n in sb.NETS for seed in (0, 1) for st in (0, 50, 100)])
    shifted = {"conv": 80.0, "local": 20.0, "local_shared": 50.0, "dense": 15.0}
    trans = pd.DataFrame([{"readout": r, "net": n, "seed": 0, "shift_px": sh,
                           "accuracy_pct": 95.0 if sh == 0 else
                           (shifted[n] if r == "global_max" else shifted[n] / 2)}
                          for r in sb.READOUTS for n in sb.NETS for sh in (-1, 0, 1)])
    sweep = pd.DataFrame([{"share_every": p, "readout": "global_max", "net": "local_shared",
                           "seed": 0, "shift_px": sh, "accuracy_pct": 100.0 / p}
                          for p in (1, 10) for sh in (-1, 0, 1)])
    return runs, traj, trans, sweep


def test_key_numbers_from_hand_made_runs():
    runs, traj, trans, sweep = _frames()
    d = sb.load(0.3, 0)
    n = sb.key_numbers(d, runs, traj, trans, sweep, target_pct=90.0, tolerance_pp=2.0)
    assert n["acc_conv_largest"] == pytest.approx(90.0)
    assert n["acc_local_k1"] == pytest.approx(60.0)
    assert n["gap_full_pp"] == pytest.approx(2.0)
    assert n["gap_few_pp"] == pytest.approx(10.0)
    assert n["largest_n_train"] == 1000
    assert n["shift_readout"] == "global_max"  # conv generalises best with it
    assert n["gap_shift_pp"] == pytest.approx(60.0)
    assert n["recovery_shift"] == pytest.approx(0.5)
    assert n["steps_conv"] == 50.0 and n["steps_local"] == 100.0
    assert n["sweep_best_period"] == 1 and n["sweep_best_pct"] == pytest.approx(100.0)
    assert sb.decide(n["gap_full_pp"], n["gap_few_pp"], n["gap_shift_pp"], 2.0)[0] == "mixed"
    texts = sb.prose_texts(n, num_steps=100)
    assert texts["conv_vs_local_full"] == "ahead of"
    assert texts["recovery_text"].startswith("it closes 50%")
    assert texts["steps_dense_text"] == "100"


def test_prose_texts_fill_missing_numbers():
    runs, traj, trans, sweep = _frames()
    d = sb.load(0.3, 0)
    trans = trans[trans["readout"] == "flatten"]
    n = sb.key_numbers(d, runs, traj, trans, sweep.iloc[0:0], 101.0, 2.0)
    texts = sb.prose_texts(n, num_steps=100)
    assert texts["shifted_global_max_conv_text"] == "not measured"
    assert texts["sweep_best_pct_text"] == "not measured"
    assert texts["steps_local_text"] == "not reached within 100"


def test_anchor_gaps_and_table():
    gaps = {(a.cite, a.data_set.split()[0]): a.gap_pp for a in sb.ANCHORS}
    assert gaps[("ott_2020", "MNIST")] == pytest.approx(0.12)
    assert gaps[("ott_2020", "CIFAR-10")] == pytest.approx(4.2)
    assert gaps[("bartunov_2018", "CIFAR-10")] == pytest.approx(32.41 - 31.87)
    ours = {"conv": 98.0, "local": 97.0, "local_shared": 95.0, "dense": 96.0}
    table = sb.anchors_table(ours, "digits", "cpu")
    assert len(table) == len(sb.ANCHORS) + 1
    assert table.iloc[-1]["conv - LC (pp)"] == pytest.approx(1.0)


def test_memory_estimate_grows_with_the_canvas():
    small = sb.memory_estimate({"canvas": 12, "channels": [16, 32], "batch_size": 64})
    big = sb.memory_estimate({"canvas": 32, "channels": [16, 32], "batch_size": 64})
    assert big > small
    # at least weights, gradients and two Adam moments of the biggest (dense) net
    assert big >= 16 * sb.count_params("dense", 32, (16, 32))
    assert not math.isnan(small)
