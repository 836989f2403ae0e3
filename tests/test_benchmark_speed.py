"""The local benchmark's measurements: the floor from the better of two ceiling
measurements at the working set's bandwidth, and a run that times every contender at a
shape in the same rounds, checks them against ours and writes a small record."""

import json

import pytest
import torch

from benchmarks import local
from benchmarks.local import Shape, bandwidth_for, best_of, floor_for
from gardenpath.measure.roofline import BandwidthPoint, Roofline

KIB, MIB = 1 << 10, 1 << 20


def _roof(flops: float, points: list[tuple[int, float]]) -> Roofline:
    bw = [BandwidthPoint(ws, bps, 1.0, int(bps), "copy", 0.0) for ws, bps in points]
    return Roofline(peak_flops_per_s=flops, peak_bytes_per_s=bw[-1].bytes_per_s,
                    device="cpu", dtype="float32", bandwidth=bw)


def test_best_of_takes_the_higher_of_each_ceiling() -> None:
    a = _roof(50e9, [(64 * KIB, 200e9), (256 * MIB, 10e9)])
    b = _roof(70e9, [(64 * KIB, 150e9), (256 * MIB, 12e9)])
    best = best_of(a, b)
    assert best.peak_flops_per_s == 70e9 and best.peak_bytes_per_s == 12e9
    assert [p.bytes_per_s for p in best.bandwidth] == [200e9, 12e9]


def test_the_floor_uses_the_bandwidth_of_the_working_set_it_fits() -> None:
    points = [BandwidthPoint(ws, bps, 1.0, 1, "copy", 0.0)
              for ws, bps in ((64 * KIB, 200e9), (16 * MIB, 50e9), (256 * MIB, 10e9))]
    assert bandwidth_for(points, 10 * KIB).bytes_per_s == 200e9
    assert bandwidth_for(points, 1 * MIB).bytes_per_s == 50e9
    assert bandwidth_for(points, 1 << 40).working_set_bytes == 256 * MIB
    small = floor_for(Shape(8, 16, 3, 1), _roof(1e15, [(256 * MIB, 10e9)]))
    assert small["bound"] == "memory" and small["floor_s"] > 0
    assert floor_for(Shape(8, 16, 3, 1), _roof(1e3, [(256 * MIB, 10e9)]))["bound"] \
        == "compute"


@pytest.fixture
def tiny_run(monkeypatch):
    """The benchmark at one tiny shape, ceilings fixed (measuring them takes seconds)."""
    monkeypatch.setattr(local.Roofline, "measure",
                        classmethod(lambda cls, *a, **k: _roof(5e10, [(256 * MIB, 1e10)])))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        data = local.run(shapes=[Shape(6, 3, 3, 2)], device="cpu", rounds=2, repeats=1,
                         min_run_time_s=0.005)
        assert torch.get_num_threads() == 2  # the run's one thread was put back
    finally:
        torch.set_num_threads(before)
    return data


def test_a_run_times_every_contender_in_the_same_rounds_and_keeps_a_small_record(
        tiny_run, tmp_path) -> None:
    row = tiny_run["rows"][0]
    assert {k for k, c in row["contenders"].items() if c["status"] == "ok"} \
        == {c.key for c in local.CONTENDERS}
    assert all(v is not None for v in row["ratios"].values())
    assert row["goals"]["vs_keras"] is not None
    record = json.dumps({k: v for k, v in tiny_run.items() if k != "markdown"})
    assert len(record) < 8000  # medians and ratios, not every repeat
    assert tiny_run["markdown"].count("| shape |") == 1
    assert tiny_run["environment"]["torch_threads"] == local.THREADS == 1
    svg = local.chart(tiny_run, tmp_path / "local.svg").read_text()
    assert svg.startswith("<svg") and "ours (models.local)" in svg


def test_a_contender_over_the_memory_limit_is_skipped_saying_why(monkeypatch) -> None:
    monkeypatch.setattr(local.Roofline, "measure",
                        classmethod(lambda cls, *a, **k: _roof(5e10, [(256 * MIB, 1e10)])))
    data = local.run(shapes=[Shape(6, 3, 3, 2)], device="cpu", rounds=1, repeats=1,
                     min_run_time_s=0.005, mem_limit_gib=50_000 / 2**30)
    recs = data["rows"][0]["contenders"]
    assert recs["keras2"]["status"] == "skipped" and "GiB" in recs["keras2"]["reason"]
    assert recs["ours"]["status"] == "ok"
    assert data["rows"][0]["ratios"]["keras2"] is None
