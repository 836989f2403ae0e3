"""measure.roofline: measured ceilings on this CPU are plausible; placement arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gardenpath.measure.roofline import (
    Roofline,
    measure_bandwidth,
    measure_matmul_flops,
)
from gardenpath.measure.traffic import layer_traffic

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

KIB, MIB = 1 << 10, 1 << 20


def test_cpu_bandwidth_across_working_sets_is_plausible():
    sizes = [64 * KIB, 1 * MIB, 128 * MIB]
    points = measure_bandwidth(sizes, "cpu", min_run_time_s=0.05)
    assert [p.working_set_bytes for p in points] == sizes
    for p in points:
        assert p.bytes_moved == 2 * (p.working_set_bytes // 8) * 4  # copy: read + write
        assert p.bytes_per_s == pytest.approx(p.bytes_moved / p.time_s)
        # any CPU of the last 15 years: more than 10 MB/s (even starved by other
        # processes on a shared machine), less than 5 TB/s
        assert 1e7 < p.bytes_per_s < 5e12
    # a 128 MiB working set lives in DRAM: slower than the best cache level
    assert points[-1].bytes_per_s < max(p.bytes_per_s for p in points[:-1])


@pytest.mark.parametrize("kernel, factor", [("triad", 3), ("read", None)])
def test_other_bandwidth_kernels(kernel, factor):
    (p,) = measure_bandwidth([3 * MIB], "cpu", kernel=kernel, min_run_time_s=0.03)
    assert p.kernel == kernel
    if factor:
        assert p.bytes_moved == factor * MIB
    else:
        assert p.bytes_moved >= 64 * MIB  # read kernel re-reads the array
    assert 1e8 < p.bytes_per_s < 5e12
    with pytest.raises(ValueError):
        measure_bandwidth([KIB], "cpu", kernel="scale")  # type: ignore[arg-type]


def test_cpu_matmul_throughput_is_plausible():
    flops = measure_matmul_flops(256, device="cpu", min_run_time_s=0.05)
    # above 100 MFLOP/s, below 10 TFLOP/s for any CPU this project will meet
    assert 1e8 < flops < 1e13


def test_roofline_arithmetic():
    roof = Roofline(peak_flops_per_s=100.0, peak_bytes_per_s=10.0)
    assert roof.ridge_intensity == 10.0
    assert roof.attainable(1.0) == 10.0
    assert roof.attainable(100.0) == 100.0
    assert roof.attainable(2.0, bytes_per_s=40.0) == 80.0
    np.testing.assert_allclose(roof.attainable(np.array([0.5, 10, 20])), [5, 100, 100])
    mem = roof.place(flops=50, bytes_moved=10, time_s=1)
    assert (mem.intensity, mem.bound, mem.attainable_flops_per_s) == (5.0, "memory", 50.0)
    assert mem.fraction_of_roof == 1.0 and mem.achieved_bytes_per_s == 10.0
    comp = roof.place(1000, 10, 20)
    assert (comp.bound, comp.achieved_flops_per_s, comp.fraction_of_roof) == ("compute", 50, 0.5)
    with pytest.raises(ValueError):
        roof.place(0, 10, 1)


def test_measured_roofline_places_a_measured_layer():
    roof = Roofline.measure("cpu", sizes_bytes=[256 * KIB, 64 * MIB], matmul_n=256,
                            min_run_time_s=0.05)
    assert roof.peak_bytes_per_s == roof.bandwidth[-1].bytes_per_s
    assert roof.ridge_intensity > 0 and roof.device == "cpu"
    from gardenpath.measure.timing import time_fn

    conv = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False)
    x = torch.randn(4, 8, 32, 32)
    t = time_fn(lambda: conv(x), device="cpu", min_run_time_s=0.05)
    traffic = layer_traffic("conv", 8, 8, 3, 32, batch_size=4, padding=1)
    pt = roof.place(traffic.forward_flops, traffic.forward_bytes, t.median_s)
    assert pt.intensity == pytest.approx(traffic.forward_intensity)
    assert pt.achieved_flops_per_s == pytest.approx(traffic.forward_flops / t.median_s)
    assert pt.fraction_of_roof > 0
    assert roof.as_dict()["ridge_intensity"] == roof.ridge_intensity


@pytest.mark.gpu
@requires_cuda
def test_gpu_ceilings_are_plausible():
    points = measure_bandwidth([1 * MIB, 1 << 30], "cuda", min_run_time_s=0.1)
    assert 1e10 < points[-1].bytes_per_s < 2e13
    flops = measure_matmul_flops(4096, device="cuda", min_run_time_s=0.1)
    assert 1e12 < flops < 3e15
