"""Chapter 4 (parallelism): the real multi-process runs, the byte model, the smoke run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import smoke_results

from gardenpath.chapters import parallelism as ch
from gardenpath.measure.comm import halo_exchange_bytes, ring_allreduce_bytes_per_worker
from gardenpath.models.nets import resnet18
from gardenpath.results import VERDICTS

pytestmark = pytest.mark.slow


def test_grid_and_spatial_limit():
    assert ch.grid_for(2) == (2, 1)
    assert ch.grid_for(8) == (4, 2)
    assert ch.grid_for(16) == (4, 4)
    assert ch.grid_for(12) == (4, 3)
    layout = ch.resnet_layout(8, 224)
    assert layout["min_side"] == 7  # ResNet-18's last stage at 224
    assert ch.spatial_max(layout) == 16  # 4x4 fits 7x7, 8x4 does not
    assert ch.power_of_two_workers(16) == [2, 4, 8, 16]
    assert ch.sweep_sizes(16, 3) == [1024, 4096, 16384]


def test_check_config():
    ch.check_config({"world_size": 2, "canvas": 16, "channels": [4, 8]})
    with pytest.raises(ValueError, match="multiple"):
        ch.check_config({"world_size": 3, "canvas": 16, "channels": [4, 8]})
    with pytest.raises(ValueError, match="at least 2"):
        ch.check_config({"world_size": 1, "canvas": 16, "channels": [4, 8]})


def test_data_parallel_model_is_one_ring_allreduce_of_all_parameters():
    layout = ch.resnet_layout(16, 64)
    for sharing in ch.SHARINGS:
        total = sum(p.numel() for p in resnet18(sharing, width=16, in_size=64,
                                                device="meta").parameters())
        assert layout[f"{sharing}_spatial"] + layout["bn_params"] + layout["fc_params"] == total
        for p in (2, 8, 64):
            r = ch.step_comm(layout, sharing, p, 1, 256, 1e-5, 1e-9)
            assert r["halo_bytes"] == 0
            assert r["sent_bytes"] == pytest.approx(ring_allreduce_bytes_per_worker(4 * total, p))


def test_spatial_model_by_hand():
    layout = ch.resnet_layout(16, 64)
    p, batch = 4, 32
    halo = sum(halo_exchange_bytes(batch, lay["channels"], lay["side"], lay["kernel"], (2, 2),
                                   backward=not lay["first"])
               for lay in layout["layers"] if lay["kernel"] > 1) / p
    group = (ring_allreduce_bytes_per_worker(4 * batch * layout["last_channels"], p)
             + ring_allreduce_bytes_per_worker(4 * 4 * layout["bn_channels"], p))
    local = ch.step_comm(layout, "local", p, p, batch, 1e-5, 1e-9)
    conv = ch.step_comm(layout, "conv", p, p, batch, 1e-5, 1e-9)
    bn = ring_allreduce_bytes_per_worker(4 * layout["bn_params"], p)
    assert local["halo_bytes"] == pytest.approx(halo)
    # a locally connected worker owns its positions: no gradient leaves it (one data group)
    assert local["sent_bytes"] == pytest.approx(halo + group + bn)
    assert local["held_params"] == pytest.approx(layout["local_spatial"] / p)
    shared = ring_allreduce_bytes_per_worker(4 * (layout["bn_params"] + layout["conv_spatial"]),
                                             p)
    assert conv["sent_bytes"] == pytest.approx(halo + group + shared)


def test_regime_direction_and_verdict():
    assert ch.regime_direction(120, 100) == "for"
    assert ch.regime_direction(100, 120) == "against"
    assert ch.regime_direction(105, 100) == "even"
    assert ch.verdict({"a": "for", "b": "for"}) == "supported"
    assert ch.verdict({"a": "against", "b": "even"}) == "not supported"
    assert ch.verdict({"a": "for", "b": "against"}) == "mixed"


def test_expected_halo_bytes_by_hand():
    cfg = {"canvas": 8, "channels": [4, 8], "world_size": 2}
    # one cut; layer 1 (1 channel, 8 wide) forward only, layer 2 (4 channels, 4 wide) both
    assert ch.expected_halo_bytes(cfg, 10) == (2 * 8 * 1 * 10 * 4) + 2 * (2 * 4 * 4 * 10 * 4)


def test_real_run_three_processes_counts_exactly():
    """Three processes (an interior band too): bytes on the wire and gradients exact."""
    cfg = {"seed": 0, "world_size": 3, "canvas": 24, "channels": [4, 8], "batch_size": 4,
           "steps": 1, "lr": 0.05, "sweep_max_kib": 16, "sweep_points": 2,
           "sweep_repeats": 1, "threads": 1, "timeout_s": 240}
    real = ch.run_distributed(cfg, torch.device("cpu"))
    s = ch.summarise_real(real)
    assert s["backend"] == "gloo" and s["world_size"] == 3 and s["global_batch"] == 12
    for sharing in ch.SHARINGS:
        # data parallel: every parameter's gradient, once per step
        assert s[f"{sharing}_dp_payload_bytes"] == 4 * s[f"{sharing}_parameters"]
        assert s[f"{sharing}_dp_sent_bytes"] == pytest.approx(
            3 * ring_allreduce_bytes_per_worker(4 * s[f"{sharing}_parameters"], 3))
        # spatial: halos exactly as the formula says, gradients as on one process
        assert s[f"{sharing}_sp_halo_bytes"] == s["halo_bytes_formula"]
        assert s[f"{sharing}_sp_grad_error"] < 1e-5
    assert s["local_sp_shared_sent_bytes"] == 0  # nothing shared, nothing all-reduced
    assert s["conv_sp_shared_params"] == (1 * 9 * 4 + 4) + (4 * 9 * 8 + 8)
    assert s["conv_sp_shared_sent_bytes"] == pytest.approx(
        3 * ring_allreduce_bytes_per_worker(4 * s["conv_sp_shared_params"], 3))
    # spatially partitioned ranks see the same images: they compute the same loss
    for i in range(2):
        assert len({r["sp"][i]["loss_last"] for r in real["ranks"]}) == 1
    assert math.isfinite(s["alpha_s"]) and math.isfinite(s["beta_s_per_byte"])


def test_memory_estimate_grows_with_the_canvas():
    small = ch.memory_estimate({"canvas": 16})
    assert small > 2 * 400 * 2 ** 20  # at least the two interpreters
    assert ch.memory_estimate({"canvas": 64}) > small


def test_defaults_match_the_notebook():
    from gardenpath.params import notebook_parameters

    nb = Path(__file__).resolve().parents[1] / "notebooks" / "parallelism.py"
    declared = {n: p.default for n, p in notebook_parameters(nb).items()}
    assert declared == ch.DEFAULTS


def test_smoke_results(smoke_tree):
    res = smoke_results(smoke_tree, "parallelism")
    assert res["verdict"] in VERDICTS
    n = res["numbers"]
    for sharing in ch.SHARINGS:
        assert n[f"{sharing}_halo_matches_formula"] is True
        assert n[f"{sharing}_sp_matches_single_process"] is True
        assert n[f"{sharing}_dp_payload_bytes"] == 4 * n[f"{sharing}_parameters"]
    assert n["local_parameters"] > n["conv_parameters"]
    assert n["dp_local_over_conv"] > 1  # data parallel: unshared moves more
    assert n["sp_conv_over_local"] > 1  # partitioned: shared moves more
    directions = {"dp": n["dp_direction"], "sp": n["sp_direction"],
                  "best": n["best_direction"]}
    assert res["verdict"] == ch.verdict(directions)
    assert res["measurements"]["conv_dp_step_s"] > 0
