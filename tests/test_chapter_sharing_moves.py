"""Chapter 2, "What sharing moves": its smoke run's results, the verdict's reachable
outcomes, both machines' counts and the module's pieces."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from gardenpath.chapters import sharing_moves as ch
from gardenpath.measure.roofline import Roofline
from gardenpath.params import notebook_parameters
from gardenpath.results import VERDICTS

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = {name: p.default for name, p in
            notebook_parameters(REPO / "notebooks" / "sharing_moves.py").items()}


# ----------------------------------------------------------------------------- the smoke run


@pytest.mark.slow
def test_smoke_results_record_counts_tests_and_key_numbers(smoke_tree):
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
    # both machines, the key numbers under their names
    assert 1 <= nums["mesh_conv_over_lc_min"] <= nums["mesh_conv_over_lc_max"]
    assert nums["vn_conv_over_lc_bytes_max"] < 1
    names = [t["name"] for t in data["tests"]]
    assert names == ["von Neumann step time", "mesh traffic"]
    time_test, mesh_test = data["tests"]
    assert time_test["n"] == len(meas["base_times_s"]["conv"]) >= 2
    assert mesh_test["interval"] == pytest.approx([nums["mesh_conv_over_lc_min"],
                                                   nums["mesh_conv_over_lc_max"]])
    assert "von Neumann fewest bytes" in {f["name"] for f in data["facts"]}
    assert all(m["step_time_s"] > 0 for m in meas["points"])
    assert "step_time_s" not in points[0]


@pytest.mark.slow
def test_smoke_page_has_its_figures_and_no_profiler_noise(smoke_tree):
    nb = (smoke_tree / ".gardenpath" / "out" / "smoke" / "sharing_moves.ipynb").read_text()
    assert "USDT" not in nb
    figs = smoke_tree / ".gardenpath" / "out" / "smoke" / "sharing_moves_files"
    assert {"sharing-ratios.svg", "sharing-tradeoff.svg", "sharing-roofline.svg",
            "sharing-machines.svg"} <= {p.name for p in figs.glob("*.svg")}


# ----------------------------------------------------------------------------- the verdict


def _result(conv_times: list[float], local_times: list[float],
            mesh_ratios: list[float]) -> ch.Result:
    """A constructed result: the base layer's timing rounds and the mesh ratio per point
    (the first point is the base layer)."""
    base = ch.base_point(DEFAULTS)
    rows = [{"in_size": base.in_size + i, "channels": base.channels,
             "kernel_size": base.kernel_size, "batch_size": base.batch_size,
             "vn_bytes_ratio": 0.1, "mesh_ratio": r} for i, r in enumerate(mesh_ratios)]
    return ch.Result(params=dict(DEFAULTS), machines=pd.DataFrame(rows),
                     base_times_s={"conv": conv_times, "local": local_times})


SLOW_CONV = ([2.0, 2.1, 1.9, 2.0, 2.05], [1.0, 1.02, 0.98, 1.0, 1.01])
FAST_CONV = ([1.0, 1.02, 0.98, 1.0, 1.01], [2.0, 2.1, 1.9, 2.0, 2.05])


def test_sharing_moves_verdict_reaches_supported():
    assert ch.decide(_result(*SLOW_CONV, [3.0, 5.0, 9.0])).verdict == "supported"


def test_sharing_moves_verdict_reaches_not_supported():
    assert ch.decide(_result(*FAST_CONV, [1.1, 1.5, 1.9])).verdict == "not supported"


def test_sharing_moves_verdict_reaches_mixed():
    d = ch.decide(_result(*FAST_CONV, [3.0, 5.0, 9.0]))
    assert d.verdict == "mixed"
    assert d.tests[0].outcome == "not supported" and d.tests[1].outcome == "supported"


def test_sharing_moves_verdict_reaches_inconclusive():
    # the mesh range straddles the factor: the answer turns on the layer's shape
    assert ch.decide(_result(*SLOW_CONV, [1.5, 2.5, 9.0])).verdict == "inconclusive"
    # timing rounds too noisy to tell the layers apart
    noisy = ([1.0, 3.0, 0.5, 2.5, 1.0], [1.5, 1.0, 2.0, 1.2, 1.6])
    assert ch.decide(_result(*noisy, [3.0, 5.0])).verdict == "inconclusive"


def test_mesh_range_leaves_out_points_where_nothing_moves_without_sharing():
    r = _result(*SLOW_CONV, [3.0, math.inf, 5.0])
    assert ch.mesh_range(r.machines) == (3.0, 5.0)
    mesh = ch.decide(r).tests[1]
    assert mesh.interval.value == 3.0  # shown around the base layer's ratio


# ----------------------------------------------------------------------------- both machines


def test_machine_rows_by_hand():
    # 2x2 input, one channel, 3x3 kernel, batch 1: the 2x2 mesh of tests/test_measure_mesh
    rows = ch.machine_rows([ch.Point(2, 1, 3, 1)], tile=1, reduction="tree")
    r = rows.iloc[0]
    assert r["mesh_hops_local"] == 128 and r["mesh_hops_conv"] == 344
    assert r["mesh_ratio"] == pytest.approx(344 / 128)
    # von Neumann fewest bytes: |X| + |Y| + |W| per pass, 3 passes, fp32 (4 + 4 + 9 conv,
    # 4 + 4 + 4 x 9 local)
    assert r["vn_bytes_conv"] == 3 * 4 * 17 and r["vn_bytes_local"] == 3 * 4 * 44
    assert r["mesh_pes"] == 4


def test_machine_numbers_name_the_key_numbers():
    params = dict(DEFAULTS, in_size=4, channels=2, batch_size=1, kernel_size=3)
    points = [ch.Point(4, 2, 3, 1), ch.Point(4, 2, 1, 1), ch.Point(4, 2, 3, 8)]
    result = ch.Result(params=params, machines=ch.machine_rows(points, 1, "tree"),
                       base_times_s={"conv": [1.0, 1.0], "local": [1.0, 1.0]})
    n = ch.machine_numbers(result)
    assert n["mesh_silent_points"] == 1  # the 1x1 kernel
    assert n["mesh_conv_over_lc_min"] < n["mesh_conv_over_lc_base"] == n["mesh_conv_over_lc_max"]
    assert n["mesh_other_reduction"] == "ring"
    assert n["n_points"] == 3


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


def test_time_rounds_are_interleaved_and_counted():
    rounds = ch.time_rounds(ch.Point(4, 2, 3, 1), torch.device("cpu"), 3, 0.001, 0)
    assert len(rounds["conv"]) == len(rounds["local"]) == 3
    assert all(t > 0 for t in rounds["conv"] + rounds["local"])
