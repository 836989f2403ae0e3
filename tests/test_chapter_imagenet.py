"""Chapter 3 (imagenet): counts, strip timing, projection model, memory estimate, smoke run."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import smoke_results

from gardenpath.chapters import imagenet as ch
from gardenpath.results import VERDICTS

pytestmark = pytest.mark.slow


def test_resnet18_counts_at_224():
    conv, rows_c = ch.count("resnet18", "conv", 64, 224)
    local, rows_l = ch.count("resnet18", "local", 64, 224)
    assert conv.spatial_weights == 11_166_912
    assert local.spatial_weights == 1_813_561_344
    assert conv.macs_per_image == local.macs_per_image  # sharing changes no arithmetic
    assert [r.name for r in rows_c] == [r.name for r in rows_l]
    assert rows_c[0].first and not any(r.first for r in rows_c[1:])
    # fp32 weights + grads + momentum = 12 bytes per parameter; Adam 16
    assert local.total_sgd_bytes == 12 * local.parameters
    assert local.total_adam_bytes == 16 * local.parameters


def test_walk_sees_every_weight_layer():
    net = ch.build("alexnet_like", "local", 16, 96)
    rows = ch.walk(net, 96)
    weight_params = sum(r.params for r in rows)
    assert weight_params == sum(p.numel() for p in net.parameters())  # AlexNet has no BN
    assert [r.kind for r in rows] == ["local"] * 5 + ["linear"] * 3
    # train FLOPs are 3 passes of 2 FLOPs per MAC
    assert all(r.train_flops == 6 * r.macs for r in rows)


@pytest.mark.parametrize("name", ["conv1", "layer1.0.conv1", "layer2.0.conv1",
                                  "layer2.0.downsample.0", "layer4.0.conv2"])
@pytest.mark.parametrize("sharing", ["conv", "local"])
def test_strip_is_a_faithful_fraction(name, sharing):
    _, rows = ch.count("resnet18", sharing, 8, 64)
    row = next(r for r in rows if r.name == name)
    s = ch.strip(row, 0.25)
    r, h_out = s.out_shape[1], row.out_shape[1]
    assert s.out_shape[0] == row.out_shape[0] and s.out_shape[2] == row.out_shape[2]
    assert s.macs * h_out == row.macs * r  # every output row does the same work
    if sharing == "local":
        assert s.weights * h_out == row.weights * r
    else:
        assert s.weights == row.weights
    # the real layer built from the strip maps its input to its output shape
    layer = ch._make_layer(s, torch.device("cpu"), 0)
    y = layer(torch.zeros(2, *s.in_shape))
    assert tuple(y.shape[1:]) == s.out_shape
    assert ch.strip(row, 1.0) is row


def test_fit_line_by_hand():
    fixed, slope, fb = ch.fit_line([4, 32], [1.0, 2.4])
    assert slope == pytest.approx(0.05) and fixed == pytest.approx(0.8) and not fb
    # time falling with batch is noise: everything per image, through the origin
    fixed, slope, fb = ch.fit_line([4, 32], [1.0, 0.8])
    assert fixed == 0.0 and slope == pytest.approx(0.8 / 32) and fb
    fixed, slope, fb = ch.fit_line([4, 32], [0.01, 1.0])  # negative intercept
    assert fixed == 0.0 and slope == pytest.approx(1.0 / 32) and fb


def _timing(names, macs, params, fixed, per_image, opt):
    return ch.LayerTiming(names[0], names, "local", params, macs, [1], [1, 2], [0, 0],
                          [0, 0], opt, fixed, per_image)


def test_step_time_and_projection_by_hand():
    rows = [ch.LayerRow("a", "local", None, (1,), (1,), 100, 100, 1000, 6000, True),
            ch.LayerRow("b", "local", None, (1,), (1,), 100, 100, 1000, 6000),
            ch.LayerRow("c", "linear", None, (1,), (1,), 50, 60, 50, 300)]
    # a and b share a timing made on a quarter strip: 250 MACs, 25 params
    timings = [_timing(["a", "b"], 250, 25, fixed=0.1, per_image=0.01, opt=0.02),
               _timing(["c"], 50, 60, fixed=0.0, per_image=0.001, opt=0.005)]
    compute, optim = ch.step_time(timings, rows, batch=10)
    assert compute == pytest.approx(2 * 4 * (0.1 + 0.1) + 1 * 0.01)
    assert optim == pytest.approx(2 * 4 * 0.02 + 0.005)
    alpha, beta = 1e-5, 1e-9
    q = ch.project("x", "local", timings, rows, parameters=1000, batch=10, epochs=3,
                   workers=4, alpha_s=alpha, beta_s_per_byte=beta, images=1001)
    step = compute + optim
    ar = 2 * 3 * alpha + 2 * 3 / 4 * 4000 * beta
    assert q.step_s == pytest.approx(step) and q.allreduce_s == pytest.approx(ar)
    assert q.epoch_one_s == pytest.approx(101 * step)  # ceil(1001 / 10)
    assert q.epoch_workers_s == pytest.approx(26 * (step + ar))  # ceil(1001 / 40)
    assert q.total_workers_s == pytest.approx(3 * 26 * (step + ar))


def test_verdict_rule():
    assert ch.verdict({"a": 3.0, "b": 2.0}) == "supported"
    assert ch.verdict({"a": 1.1, "b": 0.9}) == "not supported"
    assert ch.verdict({"a": 3.0, "b": 1.5}) == "mixed"
    assert ch.verdict({"a": 1.3, "b": 1.0}) == "mixed"


def test_memory_estimate_bounds_a_measured_layer_step():
    from gardenpath.measure.memory import peak_memory

    _, rows = ch.count("resnet18", "local", 16, 112)
    row = ch.strip(next(r for r in rows if r.name == "layer1.0.conv1"), 0.5)
    batch = 4
    layer = ch._make_layer(row, torch.device("cpu"), 0)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(batch, *row.in_shape, requires_grad=True)
    gy = torch.randn(batch, *row.out_shape)

    def step():
        layer(x).backward(gy)
        opt.step()

    measured = peak_memory(step, "cpu").peak_bytes
    held = 4 * (row.params + batch * math.prod(row.in_shape) + batch * math.prod(row.out_shape))
    estimate = ch.layer_step_bytes(row, batch)
    assert measured + held <= estimate <= 4 * (measured + held)
    assert ch.memory_estimate({"width": 8, "time_width": 8, "time_batches": [1, 2]}) > 0
    small = ch.memory_estimate({"time_batches": [1, 2]})
    assert ch.memory_estimate({"time_batches": [1, 64]}) > small


def test_defaults_match_the_notebook():
    from pathlib import Path

    from gardenpath.params import notebook_parameters

    nb = Path(__file__).resolve().parents[1] / "notebooks" / "imagenet.py"
    declared = {n: p.default for n, p in notebook_parameters(nb).items()}
    assert declared == ch.DEFAULTS


# ---------------------------------------------------------------------------- smoke run


def test_smoke_results(smoke_tree):
    res = smoke_results(smoke_tree, "imagenet")
    assert res["verdict"] in VERDICTS
    n, m = res["numbers"], res["measurements"]
    for net in ("resnet18", "alexnet_like"):
        assert n[f"{net}_macs_equal"] is True
        assert n[f"{net}_weight_ratio"] > 10
        assert n[f"{net}_local_parameters"] > n[f"{net}_conv_parameters"]
        for sharing in ("conv", "local"):
            assert m[f"{net}_{sharing}_step_s"] > 0
            assert m[f"{net}_{sharing}_total_workers_days"] > 0
            assert m[f"{net}_{sharing}_layer_timings"]
        ratio = m[f"{net}_time_ratio_workers"]
        assert ratio > 0
    ratios = {net: m[f"{net}_time_ratio_workers"] for net in ("resnet18", "alexnet_like")}
    assert res["verdict"] == ch.verdict(ratios)  # the verdict follows from the data
    # the smoke run timed the conv ResNet whole as well as by layers
    assert m["resnet18_conv_whole_measured_s"] > 0
