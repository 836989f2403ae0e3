"""Chapter 4 (parallelism): the partitioned model, the verdict, the real runs, torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import smoke_results

from gardenpath.chapters import parallelism as ch
from gardenpath.measure import distributed
from gardenpath.measure.comm import Link, halo_exchange_bytes, ring_allreduce_bytes_per_worker
from gardenpath.models import partitioned as part
from gardenpath.models.nets import digits_net, resnet18
from gardenpath.verdict import Interval, exact

REPO = Path(__file__).resolve().parents[1]
TINY = {"seed": 0, "canvas": 8, "channels": [4, 8], "batch_size": 4, "steps": 1, "lr": 0.05,
        "threads": 1, "sweep_max_kib": 4, "sweep_repeats": 2, "timeout_s": 120}
BYTES_ONLY = Link.single(0.0, 1.0)


@pytest.fixture(scope="module")
def layout():
    return part.resnet_layout(16, 64)


# ---------------------------------------------------------------------------- the model


def test_grid_and_spatial_limit():
    assert part.grid_for(2) == (2, 1)
    assert part.grid_for(8) == (4, 2)
    assert part.grid_for(12) == (4, 3)
    full = part.resnet_layout(8, 224)
    assert full["min_side"] == 7  # ResNet-18's last stage at 224
    assert part.spatial_max(full) == 16  # 4x4 fits 7x7, 8x4 does not
    assert part.power_of_two_workers(16) == [2, 4, 8, 16]


def test_layout_counts_every_parameter(layout):
    for sharing in part.SHARINGS:
        total = sum(p.numel() for p in resnet18(sharing, width=16, in_size=64,
                                                device="meta").parameters())
        assert part.parameters(layout, sharing) == total
    assert layout["layers"][0] == {"name": "conv1", "channels": 3, "side": 64, "kernel": 7,
                                   "first": True}
    assert sum(lay["first"] for lay in layout["layers"]) == 1


def test_data_parallel_model_is_one_ring_allreduce_of_all_parameters(layout):
    for sharing in part.SHARINGS:
        for p in (2, 8, 64):
            r = part.regime_comm(layout, "data parallel", sharing, p, 256, BYTES_ONLY)
            assert r["halo_bytes"] == 0
            assert r["sent_bytes"] == pytest.approx(
                ring_allreduce_bytes_per_worker(4 * part.parameters(layout, sharing), p))


def test_server_model_pushes_and_pulls_every_parameter(layout):
    link = Link.single(1e-5, 1e-9)
    for sharing in part.SHARINGS:
        n = 4 * part.parameters(layout, sharing)
        for p in (2, 1024):  # asynchronous: a worker's bytes do not depend on the others
            r = part.regime_comm(layout, "parameter server", sharing, p, 256, link)
            assert r["sent_bytes"] == 2 * n
            assert r["time_s"] == pytest.approx(2 * (1e-5 + n * 1e-9))


def test_spatial_model_by_hand(layout):
    p, batch = 4, 32
    halo = sum(halo_exchange_bytes(batch, lay["channels"], lay["side"], lay["kernel"], (2, 2),
                                   backward=not lay["first"])
               for lay in layout["layers"] if lay["kernel"] > 1) / p
    group = (ring_allreduce_bytes_per_worker(4 * batch * layout["last_channels"], p)
             + ring_allreduce_bytes_per_worker(4 * 4 * layout["bn_channels"], p))
    local = part.step_comm(layout, "local", p, p, batch, BYTES_ONLY)
    conv = part.step_comm(layout, "conv", p, p, batch, BYTES_ONLY)
    bn = ring_allreduce_bytes_per_worker(4 * layout["bn_params"], p)
    assert local["halo_bytes"] == pytest.approx(halo)
    # a locally connected worker owns its positions: no gradient leaves it (one data group)
    assert local["sent_bytes"] == pytest.approx(halo + group + bn)
    assert local["held_params"] == pytest.approx(layout["local_spatial"] / p)
    shared = ring_allreduce_bytes_per_worker(4 * (layout["bn_params"] + layout["conv_spatial"]),
                                             p)
    assert conv["sent_bytes"] == pytest.approx(halo + group + shared)


def test_latency_bound_link_brings_the_spatial_ratio_towards_one(layout):
    """Both nets send the same number of messages: only bandwidth tells them apart."""
    fast_wire = ch.spatial_ratio(layout, 2, 64, Link.single(1.0, 1e-12))
    slow_wire = ch.spatial_ratio(layout, 2, 64, Link.single(0.0, 1e-9))
    assert fast_wire == pytest.approx(1.0, abs=1e-3)
    assert slow_wire > 1.05


def test_beyond_the_grid_replicated_unshared_filters_outweigh_shared_ones(layout):
    """Past spatial_max, groups all-reduce their copies of the unshared filters: on a
    bandwidth-bound link the shared net becomes the lighter; a bigger batch, whose
    halos grow while gradients do not, brings the partitioned ratio towards one."""
    wire = Link.single(0.0, 1e-9)
    smax = part.spatial_max(layout)
    model = part.model_regimes(layout, [2, smax, 4 * smax], 64, {"wire": wire})
    ratios = ch.spatial_ratios(model, "wire")
    assert ratios[smax] == pytest.approx(ch.spatial_ratio(layout, smax, 64, wire))
    r = ch.scale_reading(ratios, layout, wire, 2, 64)
    assert ratios[smax] > 1.0
    assert r["crossover"] == 4 * smax and r["ratio_at_max"] < 1.0
    assert r["quarter"] > ratios[2] > r["fourfold"] > 1.0
    within = {w: v for w, v in ratios.items() if w <= smax}
    assert ch.scale_reading(within, layout, wire, 2, 64)["crossover"] is None


def test_check_config_and_halo_formula():
    part.check_config(2, 16, [4, 8])
    with pytest.raises(ValueError, match="multiple"):
        part.check_config(3, 16, [4, 8])
    with pytest.raises(ValueError, match="at least 2"):
        part.check_config(1, 16, [4, 8])
    # one cut; layer 1 (1 channel, 8 wide) forward only, layer 2 (4 channels, 4 wide) both
    assert part.expected_halo_bytes(8, [4, 8], 2, 10) == 2 * 8 * 10 * 4 + 2 * (2 * 4 * 4 * 10 * 4)


# ---------------------------------------------------------------------------- the verdict


def _result(measured: Interval, modelled: Interval) -> dict:
    return {"params": {"ratio_threshold": 1.1, "decide_workers": 8, "world_size": 2},
            "intervals": {"measured": measured, "modelled": modelled},
            "facts": {"server_lc_over_conv": 155.0, "dp_lc_over_conv": 155.0,
                      "cheapest_conv_over_lc": 0.16, "digits_spatial_conv_over_lc": 1.5}}


def _iv(lo: float, hi: float) -> Interval:
    return Interval((lo + hi) / 2, lo, hi, 10, "t")


def test_parallelism_verdict_reaches_supported():
    d = ch.decide(_result(_iv(1.3, 1.6), _iv(1.12, 1.2)))
    assert d.verdict == "supported"
    assert {f.name for f in d.facts} >= {"parameter server", "data parallel"}


def test_parallelism_verdict_reaches_not_supported():
    assert ch.decide(_result(_iv(0.9, 1.05), exact(1.02))).verdict == "not supported"


def test_parallelism_verdict_reaches_mixed():
    assert ch.decide(_result(_iv(1.3, 1.6), _iv(1.0, 1.05))).verdict == "mixed"


def test_parallelism_verdict_reaches_inconclusive():
    assert ch.decide(_result(_iv(0.9, 1.4), _iv(1.12, 1.2))).verdict == "inconclusive"


def test_calibrated_interval_comes_from_the_sweep_rounds(layout):
    """Rounds that disagree widen the model's interval; identical rounds give a point."""
    sizes = [2 ** k for k in range(2, 21)]
    alpha, beta = 50e-6, 1e-9
    clean = np.array([[2 * (alpha + n / 2 * beta) for n in sizes]] * 6)
    iv = ch.calibrated_interval(clean, sizes, 2, [32],
                                lambda lk: ch.spatial_ratio(layout, 8, 64, lk))
    assert iv.lo == pytest.approx(iv.hi) and iv.n == 6
    noisy = clean * np.linspace(0.5, 1.5, 6)[:, None] ** np.linspace(0, 1, len(sizes))
    wide = ch.calibrated_interval(noisy, sizes, 2, [32],
                                  lambda lk: ch.spatial_ratio(layout, 8, 64, lk))
    assert wide.hi - wide.lo > 1e-3


# ---------------------------------------------------------------------------- real runs


def _summary(real: dict) -> dict:
    return {f"{j['net']}_{j['regime']}": j for j in real["ranks"][0]["jobs"]}


@pytest.mark.slow
def test_real_run_three_processes_counts_exactly():
    """Three processes (an interior band too; two asynchronous workers): bytes exact."""
    cfg = {**TINY, "world_size": 3, "canvas": 24}
    real = distributed.gather(distributed.launch(cfg, torch.device("cpu"), ch.JOBS))
    s = ch.summarise_real(real)
    params = {k: s[f"{k}_data"]["parameters"] for k in part.SHARINGS}
    assert params == {k: sum(p.numel() for p in digits_net(k, 24, [4, 8]).parameters())
                      for k in part.SHARINGS}
    for sharing, n in params.items():
        assert s[f"{sharing}_data"]["sent_bytes"] == pytest.approx(
            3 * ring_allreduce_bytes_per_worker(4 * n, 3))
        # two workers push 4n each, the server answers each with 4n
        assert s[f"{sharing}_server"]["sent_bytes"] == 2 * 2 * 4 * n
        assert s[f"{sharing}_server"]["workers"] == 2
        sp = s[f"{sharing}_spatial"]
        halo = sum(b for op, b in sp["ops"].items() if op.startswith("halo"))
        assert halo == s["halo_formula"]["bytes"] == part.expected_halo_bytes(24, [4, 8], 3, 12)
        assert sp["grad_error"] < 1e-5
    assert "shared_grad_all_reduce" not in s["local_spatial"]["ops"]
    assert s["conv_spatial"]["shared_params"] == (9 * 4 + 4) + (4 * 9 * 8 + 8)


def _torchrun(*args: str, timeout: float = 120) -> dict:
    """The torchrun command, 2 processes, in its own process group (killed on timeout)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node=2", "-m", "gardenpath.measure.distributed", *args, "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, start_new_session=True,
                            env={**os.environ, "GARDENPATH_ROOT": str(REPO)})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("torchrun did not finish in time")
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_torchrun_counts_equal_the_chapters():
    """``torchrun ... -m gardenpath.measure.distributed``: the chapter's bytes, rank by rank.

    The spawned run is the chapter's code path (:func:`distributed.launch`); the other
    regimes' counts are checked on it by the three-process test above.
    """
    net, regime = "lc", "spatial"
    opts = ["--net", net, "--regime", regime, "--steps", "2", "--canvas", "8",
            "--channels", "4", "8", "--batch-size", "4"]
    got = _torchrun(*opts)
    cfg = {**TINY, "world_size": 2, "steps": 2}
    chapter = distributed.job_report(distributed.gather(distributed.launch(
        cfg, torch.device("cpu"), [(net, regime)]))["ranks"])
    assert got["world_size"] == 2 and got["backend"] == "gloo"
    assert [r["bytes_sent_per_step"] for r in got["ranks"]] == \
        [r["bytes_sent_per_step"] for r in chapter["ranks"]]
    assert got["ranks"][1]["bytes_sent_by_op"] == chapter["ranks"][1]["bytes_sent_by_op"]
    assert all(len(r["step_s"]) == 2 and min(r["step_s"]) > 0 for r in got["ranks"])
    assert got["bytes_sent_per_step_all_ranks"] == part.expected_halo_bytes(8, [4, 8], 2, 8) \
        + 2 * 8 * 10 * 4  # halos, and each rank's partial logits (8 images x 10 classes)


@pytest.mark.slow
def test_smoke_results(smoke_tree):
    res = smoke_results(smoke_tree, "parallelism")
    n = res["numbers"]
    for sharing in part.SHARINGS:
        assert n[f"{sharing}_halo_matches_formula"] is True
        assert n[f"{sharing}_spatial_matches_single_process"] is True
        assert n[f"{sharing}_data_sent_bytes"] == 2 * 4 * n[f"{sharing}_parameters"]
        assert n[f"{sharing}_server_sent_bytes"] == 2 * 4 * n[f"{sharing}_parameters"]
    assert n["server_lc_over_conv"] > 1  # facts: unshared weights move more when replicated
    assert [t["name"] for t in res["tests"]] == ["measured on digits",
                                                  "ResNet-18 at paper scale"]
    assert any(f["value"] == n["server_lc_over_conv"] for f in res["facts"])
    assert res["measurements"]["link_fit_rms_over_latency"] > 0


def test_only_a_spatial_run_needs_bands_that_pool_evenly():
    cfg = {**TINY, "canvas": 16}  # 16 rows do not split into 3 bands that pool twice
    distributed._check(cfg, 3, [("conv", "data"), ("lc", "server")])
    with pytest.raises(ValueError, match="multiple"):
        distributed._check(cfg, 3, [("conv", "spatial")])
    with pytest.raises(ValueError, match="at least 2"):
        distributed._check(cfg, 1, [("conv", "data")])


def _job(net, regime, role, sent, step_s, ops, **extra):
    return {"net": net, "regime": regime, "role": role, "sent_bytes": [sent] * len(step_s or [0]),
            "step_s": step_s, "comm_s": [t / 2 for t in step_s], "ops": ops, **extra}


def test_summarise_real_adds_ranks_and_leaves_the_server_out_of_step_times():
    jobs = []
    for rank in range(2):
        row = []
        for net, regime in ch.JOBS:
            if regime == "server" and rank == 0:
                row.append(_job(net, regime, "server", 80.0, [], {"server_pull_send": 80.0},
                                parameters=10))
            elif regime == "spatial":
                row.append(_job(net, regime, "band", 30.0, [0.1 * (rank + 1), 0.3],
                                {"halo_forward": 20.0, "logits_all_reduce": 10.0},
                                grad_error=1e-7 * (rank + 1), grad_scale=1.0,
                                shared_params=0, params_held=5 + rank))
            else:
                row.append(_job(net, regime, "worker", 80.0 if regime == "server" else 40.0,
                                [0.2, 0.1 * (rank + 1)], {"worker_push": 80.0}, parameters=10))
        jobs.append({"rank": rank, "jobs": row})
    real = {"cfg": {**TINY, "world_size": 2}, "ranks": jobs}
    s = ch.summarise_real(real)
    assert s["conv_server"]["sent_bytes"] == 160.0  # the worker's push and the server's reply
    assert s["conv_server"]["workers"] == 1 and s["conv_server"]["step_s"] == [0.2, 0.2]
    assert s["local_data"]["step_s"] == [0.2, 0.2]  # per step, the slowest rank
    assert s["local_spatial"]["ops"] == {"halo_forward": 40.0, "logits_all_reduce": 20.0}
    assert s["local_spatial"]["grad_error"] == 2e-7
    assert s["local_spatial"]["params_held_max"] == 6
    assert s["halo_formula"]["bytes"] == part.expected_halo_bytes(8, [4, 8], 2, 8)
