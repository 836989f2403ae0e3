"""measure.timing: statistics of a known sleep, fixed repeats, warnings, threads."""

from __future__ import annotations

import itertools
import statistics
import time

import pytest
import torch

from gardenpath.measure.timing import time_fn

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_known_sleep_gives_its_duration():
    t = time_fn(lambda: time.sleep(0.01), device="cpu", min_run_time_s=0.1)
    # sleep never returns early; a loaded 2-core machine may add a few ms
    assert 0.0099 <= t.median_s < 0.03
    assert len(t.raw_s) == t.repeats >= 5
    assert min(t.raw_s) >= 0.0099
    assert t.number_per_run == 1
    assert 0 <= t.iqr_s < t.median_s
    assert t.device == "cpu"
    assert "blocked_autorange" in t.method


def test_fixed_repeats_keep_every_raw_time_and_order_durations():
    short = time_fn(lambda: time.sleep(0.002), device="cpu", repeats=4, warmup=0)
    long = time_fn(lambda: time.sleep(0.008), device="cpu", repeats=4, warmup=0)
    assert short.repeats == len(short.raw_s) == 4
    assert short.median_s == pytest.approx(statistics.median(short.raw_s))
    assert long.median_s > short.median_s + 0.005
    assert "timeit(number=1) x 4" in long.method


def test_number_per_run_divides_block_time():
    t = time_fn(lambda: time.sleep(0.002), device="cpu", repeats=3, number=5, warmup=0)
    assert t.number_per_run == 5
    assert all(0.0019 <= s < 0.01 for s in t.raw_s)


def test_large_spread_and_few_repeats_are_flagged():
    durations = itertools.cycle([0.001, 0.012])
    t = time_fn(lambda: time.sleep(next(durations)), device="cpu", repeats=8, warmup=0)
    assert t.warning is not None and "IQR" in t.warning
    few = time_fn(lambda: time.sleep(0.001), device="cpu", repeats=2, warmup=0)
    assert few.warning is not None and "2 repeat" in few.warning


def test_thread_count_is_set_during_timing_and_restored():
    seen = []
    before = torch.get_num_threads()
    t = time_fn(lambda: seen.append(torch.get_num_threads()), device="cpu", repeats=2,
                num_threads=1, warmup=0)
    assert t.num_threads == 1
    assert set(seen[-2:]) == {1}
    assert torch.get_num_threads() == before
    default = time_fn(lambda: None, device="cpu", repeats=2, warmup=0)
    assert default.num_threads == before


def test_warmup_calls_happen_before_timing():
    calls = []
    time_fn(lambda: calls.append(1), device="cpu", repeats=1, warmup=3)
    # 3 warm-up calls + Timer.timeit's own 2 warm-up calls + 1 timed call
    assert len(calls) == 6


def test_bad_arguments():
    with pytest.raises(ValueError):
        time_fn(lambda: None, device="cpu", repeats=0)
    with pytest.raises(ValueError):
        time_fn(lambda: None, device="cpu", repeats=1, number=0)


@pytest.mark.gpu
@requires_cuda
def test_cuda_events_time_gpu_work_not_launch():
    a = torch.randn(4096, 4096, device="cuda")
    small = time_fn(lambda: a @ a, device="cuda", min_run_time_s=0.2)
    b = torch.randn(8192, 8192, device="cuda")
    big = time_fn(lambda: b @ b, device="cuda", min_run_time_s=0.2)
    assert "CUDA events" in small.method
    # 8x the FLOPs: an unsynchronised timer would see only the launch cost
    assert 4 < big.median_s / small.median_s < 16
