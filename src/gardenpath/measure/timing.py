"""Timing: the one place in the project where wall-clock time of a function is measured.

Built on :class:`torch.utils.benchmark.Timer`, which warms up, picks a block size large
enough to hide the timer's own overhead, fixes the thread count and keeps every raw
repeat. On a GPU the clock is made of CUDA events recorded on the current stream (and
the stream is synchronised before each reading), so host-side launch overhead does not
leak into the number and asynchronous kernels are not missed. No other module should
write its own ``perf_counter`` loop: call :func:`time_fn`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils import benchmark

from gardenpath.measure.device import DeviceLike, resolve_device

#: Relative spread (IQR / median) above which a result carries a warning. Same
#: thresholds as ``torch.utils.benchmark.Measurement`` (10% noisy, 50% gross).
IQR_WARN = 0.10
IQR_GROSS_WARN = 0.50


@dataclass
class Timing:
    """The time one call of a function takes, with its spread and every raw repeat.

    Attributes:
        median_s: median over repeats of the per-call time, seconds.
        iqr_s: interquartile range (75th - 25th percentile) of the per-call times, s.
        raw_s: every repeat's per-call time (block time / ``number_per_run``), s.
        repeats: how many repeats (blocks) were timed.
        number_per_run: calls per repeat (the block size the timer chose or was given).
        warning: why the number may be untrustworthy (large spread, few repeats), or
            ``None``.
        device: the device string the function ran on.
        num_threads: torch intra-op threads during the measurement.
        method: how it was timed (timer and clock).
    """

    median_s: float
    iqr_s: float
    raw_s: list[float] = field(repr=False)
    repeats: int
    number_per_run: int
    warning: str | None
    device: str
    num_threads: int
    method: str

    @property
    def mean_s(self) -> float:
        """Mean per-call time over repeats, seconds."""
        return statistics.fmean(self.raw_s)

    @property
    def relative_iqr(self) -> float:
        """IQR divided by the median (dimensionless)."""
        return self.iqr_s / self.median_s if self.median_s > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field plus the mean."""
        return {
            "median_s": self.median_s,
            "iqr_s": self.iqr_s,
            "mean_s": self.mean_s,
            "raw_s": list(self.raw_s),
            "repeats": self.repeats,
            "number_per_run": self.number_per_run,
            "warning": self.warning,
            "device": self.device,
            "num_threads": self.num_threads,
            "method": self.method,
        }


def cuda_event_clock(device: torch.device) -> Callable[[], float]:
    """A clock, in seconds, read from CUDA events on ``device``'s current stream.

    Each reading records an event, waits for it (so every kernel queued before it has
    finished) and returns its elapsed time since a reference event recorded when the
    clock was made. ``torch.utils.benchmark.Timer`` subtracts two readings, so a block's
    time is the GPU time between the two events. The reference is fresh per call of
    :func:`time_fn`, keeping elapsed values small (CUDA reports them as float32 ms).
    """
    with torch.cuda.device(device):
        origin = torch.cuda.Event(enable_timing=True)
        origin.record()

    def clock() -> float:
        with torch.cuda.device(device):
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            event.synchronize()
            return origin.elapsed_time(event) / 1e3

    return clock


def _warning(times: list[float], median: float, iqr: float) -> str | None:
    notes = []
    if len(times) < 4:
        notes.append(f"only {len(times)} repeat(s): the spread is not reliable")
    rel = iqr / median if median > 0 else float("inf")
    if rel > IQR_GROSS_WARN:
        notes.append(f"IQR is {100 * rel:.0f}% of the median: strong outside interference")
    elif rel > IQR_WARN:
        notes.append(f"IQR is {100 * rel:.0f}% of the median: noisy machine")
    return "; ".join(notes) or None


def time_fn(
    fn: Callable[[], Any],
    *,
    device: DeviceLike = None,
    warmup: int = 2,
    min_run_time_s: float = 0.2,
    repeats: int | None = None,
    number: int = 1,
    num_threads: int | None = None,
    label: str | None = None,
) -> Timing:
    """Time one call of ``fn()`` after warm-up, on CPU or GPU.

    Two modes:

    * adaptive (default): ``Timer.blocked_autorange(min_run_time=min_run_time_s)``
      chooses calls per block so the clock's overhead is negligible and keeps timing
      blocks until ``min_run_time_s`` seconds have been spent;
    * fixed: with ``repeats=N``, ``N`` blocks of ``number`` calls each via
      ``Timer.timeit(number)`` (each block is preceded by Timer's own short warm-up of
      ``max(number // 100, 2)`` calls, so this mode costs about 3x for ``number=1``;
      prefer the adaptive mode for functions that take seconds).

    Args:
        fn: a zero-argument callable; its result is discarded.
        device: where ``fn``'s work runs (``None``: ``"auto"``). On CUDA the clock is
            CUDA events (see :func:`cuda_event_clock`); on CPU ``timeit.default_timer``
            behind Timer's accelerator synchronisation.
        warmup: calls made and discarded before timing (caches, allocator, autotuning).
        min_run_time_s: adaptive mode's total measured time, seconds.
        repeats: fixed mode's number of blocks.
        number: fixed mode's calls per block.
        num_threads: torch intra-op threads while timing (``None``: the current
            ``torch.get_num_threads()``; Timer would otherwise force 1).
        label: a name stored in Timer's task spec (shown in its repr).

    Returns:
        A :class:`Timing` with per-call median, IQR and every raw repeat.
    """
    dev = resolve_device("auto" if device is None else device)
    threads = torch.get_num_threads() if num_threads is None else int(num_threads)
    if repeats is not None and repeats < 1:
        raise ValueError("repeats must be >= 1")
    if number < 1:
        raise ValueError("number must be >= 1")
    for _ in range(max(0, warmup)):
        fn()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        clock = cuda_event_clock(dev)
        clock_name = "CUDA events"
    else:
        clock = benchmark.utils.timer.timer
        clock_name = "timeit.default_timer"
    timer = benchmark.Timer(
        stmt="fn()",
        globals={"fn": fn},
        timer=clock,
        num_threads=threads,
        label=label,
    )
    if repeats is None:
        measurement = timer.blocked_autorange(min_run_time=min_run_time_s)
        how = f"torch.utils.benchmark.Timer.blocked_autorange(min_run_time={min_run_time_s})"
    else:
        blocks = [timer.timeit(number) for _ in range(repeats)]
        measurement = benchmark.Measurement(
            number_per_run=number,
            raw_times=[b.raw_times[0] for b in blocks],
            task_spec=blocks[0].task_spec,
        )
        how = f"torch.utils.benchmark.Timer.timeit(number={number}) x {repeats}"
    times = list(measurement.times)
    median, iqr = float(measurement.median), float(measurement.iqr)
    return Timing(
        median_s=median,
        iqr_s=iqr,
        raw_s=times,
        repeats=len(times),
        number_per_run=measurement.number_per_run,
        warning=_warning(times, median, iqr),
        device=str(dev),
        num_threads=threads,
        method=f"{how}, clock {clock_name}, warmup {warmup}",
    )
