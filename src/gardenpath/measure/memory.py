"""Memory: the peak memory a step allocates, measured from the allocator's own events.

"Locally connected layers need more memory" is one of the claims the book tests, so the
number must be a measurement, not a shape calculation:

* CUDA: ``torch.cuda.reset_peak_memory_stats`` then ``torch.cuda.max_memory_allocated``,
  the caching allocator's exact high-water mark of bytes held by live tensors;
* CPU: ``torch.profiler`` with ``profile_memory=True`` records every allocation and
  free made through PyTorch's CPU allocator (size and time). Summing them in order
  gives the live bytes at each moment, and its maximum is the step's peak. Memory the
  step's own libraries take outside PyTorch's allocator (oneDNN scratch buffers,
  Python objects) is not seen; process RSS would see it but is too coarse (pages, the
  allocator keeps freed pages) to resolve one layer.

Both report the peak *above what was live when the step started* (``peak_bytes``), so
the CPU and GPU numbers mean the same thing; the CUDA path also gives the baseline.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from gardenpath.measure.device import DeviceLike, resolve_device

CPU_METHOD = "torch.profiler profile_memory: running sum of CPU allocator events"
CUDA_METHOD = "torch.cuda.max_memory_allocated after reset_peak_memory_stats"


@dataclass(frozen=True)
class MemoryPeak:
    """Peak memory a call allocated.

    Attributes:
        peak_bytes: highest bytes live at once during the call, above those live when
            it began (tensors made and freed inside count; tensors already there do
            not).
        method: which allocator statistic or event stream gave the number.
        baseline_bytes: bytes already allocated when the call began (CUDA only;
            ``None`` on CPU, whose allocator keeps no running total).
        end_bytes: bytes still held from the call's allocations when it returned
            (e.g. gradients, a returned output), above the baseline.
        device: the device string.
    """

    peak_bytes: int
    method: str
    baseline_bytes: int | None
    end_bytes: int
    device: str


def running_peak(deltas: Iterable[int]) -> tuple[int, int]:
    """``(peak, end)`` of the running sum of allocation deltas (bytes, frees negative).

    ``peak`` is never below 0: a call that only frees has a peak of 0 above its start.
    """
    live = peak = 0
    for d in deltas:
        live += int(d)
        peak = max(peak, live)
    return peak, live


def _cpu_alloc_deltas(trace: dict[str, Any] | list[Any]) -> list[int]:
    """CPU allocator deltas, in time order, from a Chrome trace exported by the profiler.

    Events named ``[memory]`` carry ``args.Bytes`` (positive for an allocation,
    negative for a free) and ``args["Device Type"]`` (0 for CPU).
    """
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    mem = [
        e
        for e in events
        if e.get("name") == "[memory]" and int(e.get("args", {}).get("Device Type", 0)) == 0
    ]
    mem.sort(key=lambda e: (float(e.get("ts", 0.0)), int(e["args"].get("Ev Idx", 0))))
    return [int(e["args"]["Bytes"]) for e in mem]


@contextlib.contextmanager
def quiet_fd2() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block.

    PyTorch 2.13's profiler writes ``USDT ... profiler_start/stop`` lines to the process's
    stderr from C++ when it starts and stops; in a notebook they would show under the cell.
    Only the profiler's start and stop are wrapped, so the measured code's warnings remain.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _cpu_peak(fn: Callable[[], Any]) -> MemoryPeak:
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with quiet_fd2():
        prof.__enter__()
    try:
        fn()
    finally:
        with quiet_fd2():
            prof.__exit__(None, None, None)
    fd, path = tempfile.mkstemp(suffix=".json", prefix="gardenpath-mem-")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as fh:
            trace = json.load(fh)
    finally:
        os.unlink(path)
    peak, end = running_peak(_cpu_alloc_deltas(trace))
    return MemoryPeak(
        peak_bytes=peak, method=CPU_METHOD, baseline_bytes=None, end_bytes=end, device="cpu"
    )


def _cuda_peak(fn: Callable[[], Any], device: torch.device) -> MemoryPeak:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    end = torch.cuda.memory_allocated(device)
    return MemoryPeak(
        peak_bytes=int(peak - base),
        method=CUDA_METHOD,
        baseline_bytes=int(base),
        end_bytes=int(end - base),
        device=str(device),
    )


def peak_memory(fn: Callable[[], Any], device: DeviceLike = None) -> MemoryPeak:
    """Measure the peak bytes ``fn()`` allocates on ``device``, above its starting point.

    Args:
        fn: a zero-argument callable, e.g. one training step.
        device: ``None``/``"auto"``, ``"cpu"`` or ``"cuda[:N]"``; memory is read from that
            device's allocator.

    Returns:
        A :class:`MemoryPeak` whose ``method`` names the statistic used.
    """
    dev = resolve_device("auto" if device is None else device)
    if dev.type == "cuda":
        return _cuda_peak(fn, dev)
    return _cpu_peak(fn)
