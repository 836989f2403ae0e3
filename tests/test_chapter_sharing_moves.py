"""Chapter 2, "What sharing moves": its smoke run's results and the module's pieces."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from gardenpath.chapters import sharing_moves as ch
from gardenpath.measure.roofline import Roofline
from gardenpath.params import notebook_parameters
from gardenpath.results import VERDICTS

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


# ----------------------------------------------------------------------------- the smoke run


def test_smoke_results_record_counts_and_a_verdict(smoke_tree):
    from conftest import smoke_results

    data = smoke_results(smoke_tree, "sharing_moves")
    assert data["verdict"] in VERDICTS
    nums, meas = data["numbers"], data["measurements"]
    points = nums["points"]
    assert len(points) == 2 * nums["n_points"]
    by_shape: dict[tuple, dict[str, dict]] = {}
    for p in points:
        key = (p["in_size"], p["channels"], p["kernel_size"], p["batch_size"])
        by_shape.setdefault(key, {})[p["sharing"]] = p
    for (size, c, k, b), pair in by_shape.items():
        conv, local = pair["conv"], pair["local"]
        positions = (size + 2 * (k // 2) - k + 1) ** 2
        assert conv["params"] == c * c * k * k
        assert local["params"] == positions * conv["params"]
        assert conv["flops"] == local["flops"] > 0  # counted by PyTorch, equal
        assert conv["partial_products"] == b * positions
        assert local["partial_products"] == b
        assert local["min_bytes"] >= conv["min_bytes"]
    assert nums["conv_moves_more_share"] == 0.0
    # the verdict follows from the recorded shares by the chapter's rule
    shares = meas["shares_conv_costs_more"]
    sides = [s >= ch.MAJORITY for s in shares.values()]
    expected = ("supported" if all(sides) else "not supported" if not any(sides)
                else "mixed")
    assert data["verdict"] == expected
    assert data["why"].endswith(f"Verdict: {data['verdict']}.")
    assert all(m["step_time_s"] > 0 for m in meas["points"])
    assert "step_time_s" not in points[0]


def test_smoke_page_has_no_profiler_noise(smoke_tree):
    nb = (smoke_tree / ".gardenpath" / "out" / "smoke" / "sharing_moves.ipynb").read_text()
    assert "USDT" not in nb
    figs = smoke_tree / ".gardenpath" / "out" / "smoke" / "sharing_moves_files"
    assert {"sharing-ratios.svg", "sharing-tradeoff.svg", "sharing-roofline.svg",
            "sharing-comm.svg"} <= {p.name for p in figs.glob("*.svg")}


# ----------------------------------------------------------------------------- units


def test_sweep_is_one_factor_at_a_time():
    base = ch.Point(16, 32, 3, 16)
    sweeps = {"in_size": [8, 16, 32], "channels": [8, 16, 32, 64],
              "kernel_size": [1, 3, 5], "batch_size": [1, 4, 16, 64]}
    points, members = ch.sweep_points(base, sweeps)
    assert points[0] == base
    assert len(points) == len(set(points)) == 1 + 2 + 3 + 2 + 3
    assert len(members) == 3 + 4 + 3 + 4
    for knob, p in members:  # every other knob stays at base
        for other in ch.KNOBS:
            if other != knob:
                assert getattr(p, other) == getattr(base, other)
    # the base value is included even when a sweep leaves it out
    _, members = ch.sweep_points(base, {"in_size": [8]})
    assert [p.in_size for k, p in members if k == "in_size"] == [8, 16]


def test_weight_grad_alone_matches_the_full_step():
    p = ch.Point(6, 3, 3, 2)
    x, dy = ch._inputs(p, torch.device("cpu"), 0)
    for sharing in ch.SHARINGS:
        layer = ch.build_layer(sharing, p, torch.device("cpu"), 0)
        step, weight_grad = ch.steps(layer, x, dy)
        dx, dw = step()
        (dw_only,) = weight_grad()
        assert dx.shape == x.shape
        assert torch.allclose(dw, dw_only, atol=1e-6)
        (dw_again,) = weight_grad()  # the recorded graph can be reused
        assert torch.allclose(dw_only, dw_again)


def test_measure_counts_agree_with_the_formulas():
    roof = Roofline(peak_flops_per_s=1e10, peak_bytes_per_s=1e9, device="cpu")

    class NoCounter:
        method = "modelled: Horowitz 45nm"

    p = ch.Point(5, 2, 3, 2)
    conv = ch.measure("conv", p, torch.device("cpu"), roof, 0.01, 0, NoCounter(), 0.01)
    local = ch.measure("local", p, torch.device("cpu"), roof, 0.01, 0, NoCounter(), 0.01)
    assert conv.flops == conv.flops_formula == local.flops == 3 * 2 * 2 * 25 * 18 * 2
    assert local.params == 25 * conv.params
    assert local.min_bytes - conv.min_bytes == 3 * 4 * (local.params - conv.params)
    assert conv.energy_method.startswith("modelled")
    assert local.energy_j > conv.energy_j  # more bytes, same FLOPs
    assert local.peak_bytes > 0 and conv.step_time_s > 0


def test_communication_by_hand():
    p = ch.Point(8, 4, 3, 2)
    rows = ch.communication(p, 4)
    nums = ch.comm_numbers(rows)
    conv_w = 4 * 4 * 9 * 4  # bytes of the shared weights
    local_w = 64 * conv_w
    # ring all-reduce, summed over 4 workers: 4 * 2 * 3/4 * n
    assert nums["dp_conv_kb"] == pytest.approx(6 * conv_w / 1e3)
    assert nums["dp_local_kb"] == pytest.approx(6 * local_w / 1e3)
    # 2x2 tiles of an 8x8 map, 3x3 kernel: 16 + 16 + 4 elements per channel and sample,
    # times batch 2, channels 4, 4 bytes, forward and backward
    halo = 36 * 2 * 4 * 4 * 2
    assert nums["spatial_local_kb"] == pytest.approx(halo / 1e3)
    assert nums["spatial_conv_kb"] == pytest.approx((halo + 6 * conv_w) / 1e3)


@pytest.mark.parametrize("workers,grid", [(4, (2, 2)), (6, (2, 3)), (7, (1, 7)), (9, (3, 3))])
def test_workers_grid(workers, grid):
    assert ch.workers_grid(workers) == grid


def _pairs(conv_bytes_more: bool, conv_slower: bool) -> pd.DataFrame:
    rows = []
    for i in range(4):
        rows.append({"in_size": 8 + i, "channels": 4, "kernel_size": 3, "batch_size": 2,
                     "min_bytes_conv": 200 if conv_bytes_more else 100, "min_bytes_local": 150,
                     "step_time_s_conv": 2.0 if conv_slower else 1.0, "step_time_s_local": 1.5,
                     "energy_j_conv": 1.0, "energy_j_local": 2.0})
    return pd.DataFrame(rows)


def test_verdict_rule():
    assert ch.verdict(_pairs(True, True), False)[0] == "supported"
    assert ch.verdict(_pairs(False, False), False)[0] == "not supported"
    assert ch.verdict(_pairs(False, True), False)[0] == "mixed"
    # measured energy joins the metrics: conv cheaper in energy makes it mixed
    verdict, shares = ch.verdict(_pairs(True, True), True)
    assert verdict == "mixed" and shares["energy_j"] == 0.0


def test_memory_estimate_by_hand():
    params = {"in_size": 4, "channels": 2, "kernel_size": 3, "batch_size": 1,
              "roofline_ws_mib": 0, "matmul_n": 0}
    # positions 16, receptive field 18: weights 576, x 32, y 32, unfolded input 288
    assert ch.memory_estimate(params) == 4 * (2 * 576 + 2 * 32 + 2 * 32 + 3 * 288)
    gpu = yaml.safe_load((REPO / "params" / "gpu.yaml").read_text())["sharing_moves"]
    assert ch.memory_estimate(gpu) < 40e9  # the paper-scale sweep fits an 80 GB GPU


def test_notebook_defaults_equal_the_cpu_profile():
    declared = notebook_parameters(REPO / "notebooks" / "sharing_moves.py")
    cpu = yaml.safe_load((REPO / "params" / "cpu.yaml").read_text())["sharing_moves"]
    for name, value in cpu.items():
        assert declared[name].default == value, name


def test_conclusion_follows_the_points():
    rows = pd.DataFrame({
        "min_bytes_conv": [1, 1], "min_bytes_local": [2, 2],
        "step_time_s_conv": [1.0, 1.0], "step_time_s_local": [2.0, 0.5],
        "footprint_bytes_conv": [1, 1], "footprint_bytes_local": [2, 2]})
    assert "more time at 1, more memory at 2 of the 2" in ch.conclusion(rows)
    rows["step_time_s_local"] = [2.0, 2.0]
    assert "at every one of the 2 sweep points" in ch.conclusion(rows)
