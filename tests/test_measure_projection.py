"""The time model: strips, robust line fits, step time, training time and the sweep."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gardenpath.measure import projection as pj
from gardenpath.models.nets import LayerSpec, layer_specs, resnet18


@pytest.mark.parametrize("name", ["conv1", "layer1.0.conv1", "layer2.0.conv1",
                                  "layer2.0.downsample.0", "layer4.0.conv2"])
@pytest.mark.parametrize("sharing", ["conv", "local"])
def test_strip_is_a_faithful_fraction(name, sharing):
    spec = next(s for s in layer_specs(resnet18(sharing, width=8, in_size=64, device="meta"),
                                       64) if s.name == name)
    s = pj.strip(spec, 0.25)
    r, h_out = s.out_shape[2], spec.out_shape[2]
    assert s.out_shape[1] == spec.out_shape[1] and s.out_shape[3] == spec.out_shape[3]
    assert s.macs * h_out == spec.macs * r  # every output row does the same work
    if sharing == "local":
        assert s.weight_count * h_out == spec.weight_count * r
    else:
        assert s.weight_count == spec.weight_count
    layer = s.build(device="cpu")  # the real layer maps its input to its output shape
    assert tuple(layer(torch.zeros(2, *s.in_shape[1:])).shape[1:]) == s.out_shape[1:]
    assert pj.strip(spec, 1.0) is spec


def test_theil_sen_ignores_an_outlier_least_squares_does_not():
    b = [8, 16, 32, 64, 8, 16, 32, 64]
    t = [0.1 + 0.01 * x for x in b]
    t[3] = 5.0  # one timing hit by another process
    fixed, slope = pj.theil_sen(b, t)
    assert slope == pytest.approx(0.01) and fixed == pytest.approx(0.1)
    ls_slope = np.polyfit(b, t, 1)[0]
    assert abs(ls_slope - 0.01) > 0.01


def test_fit_line_falls_back_only_without_a_positive_slope():
    line = pj.fit_line([8, 16, 32, 64], [1.0, 1.08, 1.24, 1.56])
    assert not line.fallback and line.per_image_s == pytest.approx(0.01)
    # a negative intercept is kept: time may grow faster than the batch
    line = pj.fit_line([8, 16, 32, 64], [0.02, 0.1, 0.26, 0.58])
    assert not line.fallback and line.fixed_s < 0
    line = pj.fit_line([8, 16, 32, 64], [1.0, 0.9, 0.8, 0.7])  # time falling: noise
    assert line.fallback and line.fixed_s == 0
    assert line.per_image_s == pytest.approx(np.median([1 / 8, 0.9 / 16, 0.8 / 32, 0.7 / 64]))


def _times(names, macs, params, fixed, per_image, opt, rounds=2):
    batches = [1, 2, 3, 4]
    return pj.LayerTimes(names[0], names, "local", params, macs, [1], batches,
                         [[fixed + per_image * b for b in batches]] * rounds, [opt] * rounds)


def _spec(name, macs, params):
    return LayerSpec(name, "local", None, (1, 1), (1, 1), params, macs, params)


def test_step_time_by_hand():
    specs = [_spec("a", 1000, 100), _spec("b", 1000, 100), _spec("c", 50, 60)]
    # a and b share a timing made on a quarter strip: 250 MACs, 25 params
    timings = [_times(["a", "b"], 250, 25, fixed=0.1, per_image=0.01, opt=0.02),
               _times(["c"], 50, 60, fixed=0.0, per_image=0.001, opt=0.005)]
    got = pj.step_time(timings, specs, batch=10)
    assert got == pytest.approx(2 * 4 * (0.1 + 0.1) + 0.01 + 2 * 4 * 0.02 + 0.005)


def test_resample_draws_from_the_rounds():
    same = pj.LayerTimes("a", ["a"], "local", 1, 1, [1], [1, 2, 3, 4],
                         [[1.0, 2.0, 3.0, 4.0]] * 2, [0.5, 0.5])
    rng = np.random.default_rng(0)
    assert all(same.resample(rng) == same.measured() for _ in range(5))
    lt = pj.LayerTimes("a", ["a"], "local", 1, 1, [1], [1, 2, 3, 4],
                       [[1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0]], [0.5, 1.5])
    slopes = [lt.resample(rng)[0].per_image_s for _ in range(200)]
    # each point comes from one of the rounds: slopes stay near the rounds' 1 and 2
    assert 0.5 <= min(slopes) and max(slopes) <= 3.0
    assert len({round(v, 6) for v in slopes}) > 2


def test_train_time_and_sweep_by_hand():
    alpha, gbs = 1e-5, 1.0
    t = pj.train_time_s(2.0, 1000, batch=10, workers=4, speedup=2.0, link_gbs=gbs,
                        latency_s=alpha, epochs=3, images=1001)
    ar = 2 * 3 * alpha + 2 * 3 / 4 * 4000 / 1e9
    assert t == pytest.approx(3 * math.ceil(1001 / 40) * (1.0 + ar))
    axes = pj.SweepAxes(fast_macs_per_s=400.0, speed_points=3, workers=(8,),
                        links_gbs=(1e9,), epoch_factors=(1.0, 2.0))
    # conv: 1 s per step at 100 MACs/s; local: 3 s; an infinitely fast link
    pts = pj.sweep_ratios((1.0, 10, 100.0), (3.0, 1000), axes, 10, 90, 0.0)
    assert [p["speed"] for p in pts[::2]] == pytest.approx([100.0, 200.0, 400.0])
    assert [p["ratio"] for p in pts] == pytest.approx([3.0, 6.0] * 3)
    assert pj.share_passing(pts, 4.0) == pytest.approx(0.5)


def test_slow_links_raise_the_ratio():
    axes = pj.SweepAxes(1e12, 1, (8, 1024), (1.25, 200.0), (1.0,))
    pts = pj.sweep_ratios((1.0, 11_000_000, 1e12), (1.5, 1_800_000_000), axes, 256, 90, 1e-5)
    by = {(p["workers"], p["link_gbs"]): p["ratio"] for p in pts}
    assert by[(8, 1.25)] > by[(8, 200.0)] > 1.5 * 0.99


def test_time_rounds_times_shared_configurations_once_per_round(monkeypatch):
    net = resnet18("local", width=4, in_size=32, device="meta")
    specs = layer_specs(net, 32, linear=True)
    conv = layer_specs(resnet18("conv", width=4, in_size=32, device="meta"), 32, linear=True)
    events = []
    real = pj.time_layer_once
    monkeypatch.setattr(pj, "time_layer_once",
                        lambda *a, **k: events.append("layer") or real(*a, **k))
    out = pj.time_rounds({"local": specs, "conv": conv}, [1, 2, 3, 4], 0.5, 2,
                         torch.device("cpu"), 0, 1, after_round=lambda: events.append("after"))
    assert sum(len(t.names) for t in out["local"]) == len(specs)
    assert all(len(t.fwd_bwd_s) == 2 and len(t.fwd_bwd_s[0]) == 4 for t in out["local"])
    fc_local = next(t for t in out["local"] if t.kind == "linear")
    fc_conv = next(t for t in out["conv"] if t.kind == "linear")
    assert fc_local.fwd_bwd_s is fc_conv.fwd_bwd_s  # the readout is timed once for both
    configs = len({s.key() for s in specs + conv})  # 12 + 11 (the readout shared)
    assert events == (["layer"] * configs + ["after"]) * 2  # interleaved with the rounds
    assert pj.step_time(out["local"], specs, 8) > 0


def test_layer_step_bytes_bounds_a_measured_step():
    from gardenpath.measure.memory import peak_memory

    spec = next(s for s in layer_specs(resnet18("local", width=16, in_size=112,
                                                device="meta"), 112)
                if s.name == "layer1.0.conv1")
    s, batch = pj.strip(spec, 0.5), 4
    layer = s.build(device="cpu")
    opt = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(batch, *s.in_shape[1:], requires_grad=True)
    gy = torch.randn(batch, *s.out_shape[1:])

    def step():
        layer(x).backward(gy)
        opt.step()

    measured = peak_memory(step, "cpu").peak_bytes
    held = 4 * (s.params + batch * math.prod(s.in_shape[1:]) + batch * math.prod(s.out_shape[1:]))
    assert measured + held <= pj.layer_step_bytes(s, batch) <= 4 * (measured + held)


def test_one_thread_cpu_timing_does_not_count_time_off_the_core():
    import time

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert pj.time_calls(lambda: time.sleep(0.02), torch.device("cpu"), 2) < 0.005
        torch.set_num_threads(2)
        assert pj.time_calls(lambda: time.sleep(0.02), torch.device("cpu"), 2) >= 0.02
    finally:
        torch.set_num_threads(before)


def test_each_round_starts_at_another_batch_and_times_come_back_in_batch_order(monkeypatch):
    spec = next(s for s in layer_specs(resnet18("local", width=4, in_size=32, device="meta"),
                                       32) if s.kind == "local")
    timed: list[int] = []

    def fake(fn, device, repeats, warmup=1):
        before = len(calls)
        fn()
        if len(calls) > before:  # a forward+backward: report its batch as its time
            timed.append(calls[-1])
            return float(calls[-1])
        return 0.5  # the optimizer step

    calls: list[int] = []
    real_build = spec.build

    def build(**kw):
        layer = real_build(**kw)
        layer.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
        return layer

    monkeypatch.setattr(pj, "time_calls", fake)
    monkeypatch.setattr(type(spec), "build", lambda self, **kw: build(**kw))
    out = pj.time_rounds({"n": [spec]}, [1, 2, 3], 1.0, 3, torch.device("cpu"), 0, 1)
    assert timed == [1, 2, 3, 2, 3, 1, 3, 1, 2]  # round r starts at the r-th batch
    assert out["n"][0].fwd_bwd_s == [[1.0, 2.0, 3.0]] * 3  # stored in batch order
    assert out["n"][0].optimizer_s == [0.5] * 3
