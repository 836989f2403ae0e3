"""Communication: bytes and time of torch.distributed collectives, and their cost model.

Data-parallel training all-reduces every parameter's gradient each step; spatially
partitioned training exchanges only halos for unshared weights. This module counts what
a real run sends and models what a larger one would:

* :class:`CommCounter` records each collective's payload (bytes of the tensors handed
  to it) and time, for explicit calls (:meth:`CommCounter.all_reduce`,
  :meth:`CommCounter.call`) and for DistributedDataParallel through a communication
  hook (:meth:`CommCounter.attach`), which sees every gradient bucket;
* :func:`ring_allreduce_time` and :func:`ring_allreduce_bytes_per_worker` give the
  alpha-beta cost of ring all-reduce (Patarasuk & Yuan 2009; Thakur, Rabenseifner,
  Gropp 2005), :func:`fit_alpha_beta` fits alpha and beta to measurements, and
  :func:`halo_exchange_bytes` counts a spatially partitioned layer's halo traffic.

The payload is what the caller asks to reduce; the bytes each worker actually sends
depend on the algorithm (ring: ``2 (p-1)/p`` times the payload).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from gardenpath.measure.flops import IntPair, pair


@dataclass(frozen=True)
class CommRecord:
    """One collective call.

    Attributes:
        op: the collective's name (``"all_reduce"``, ``"ddp_bucket_all_reduce"``, ...).
        payload_bytes: bytes of the tensors handed to the collective.
        time_s: seconds from launch to completion as seen by the caller (blocking
            calls: after a device synchronise; DDP buckets: launch to the future's
            completion, which includes waiting behind earlier buckets).
        world_size: processes in the group.
    """

    op: str
    payload_bytes: int
    time_s: float
    world_size: int


def tensor_bytes(obj: Any) -> int:
    """Bytes of every tensor in ``obj`` (a tensor, or nested lists/tuples/dicts)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def _sync_for(obj: Any) -> None:
    tensors = [obj] if isinstance(obj, torch.Tensor) else list(obj or ())
    if any(isinstance(t, torch.Tensor) and t.is_cuda for t in tensors):
        torch.cuda.synchronize()


class CommCounter:
    """Counts payload bytes and time of collectives on one rank.

    Example::

        counter = CommCounter()
        counter.attach(ddp_model)          # every gradient bucket of every step
        ...
        counter.all_reduce(t)              # an explicit collective
        counter.total_bytes, counter.total_time_s
    """

    def __init__(self, group: Any = None) -> None:
        """Count collectives on ``group`` (``None``: the default process group)."""
        self.group = group
        self.records: list[CommRecord] = []
        self._lock = threading.Lock()

    def _world(self, group: Any = None) -> int:
        return dist.get_world_size(group if group is not None else self.group)

    def _add(self, record: CommRecord) -> None:
        with self._lock:
            self.records.append(record)

    def call(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run the blocking collective ``fn(*args, **kwargs)``, recording its tensor bytes.

        The payload is the bytes of the positional tensor arguments (lists included).
        The device is synchronised before and after so the time covers the transfer.
        """
        payload = tensor_bytes(list(args))
        _sync_for(list(args))
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        _sync_for(list(args))
        elapsed = time.perf_counter() - t0
        self._add(CommRecord(op, payload, elapsed, self._world(kwargs.get("group"))))
        return out

    def all_reduce(self, tensor: torch.Tensor, op: Any = None, group: Any = None) -> None:
        """``dist.all_reduce(tensor)`` in place, recorded (payload: the tensor's bytes)."""
        group = group if group is not None else self.group
        kwargs: dict[str, Any] = {"group": group}
        if op is not None:
            kwargs["op"] = op
        self.call("all_reduce", dist.all_reduce, tensor, **kwargs)

    def ddp_hook(self) -> Callable[[Any, dist.GradBucket], torch.futures.Future[torch.Tensor]]:
        """A DDP communication hook: averaging all-reduce of each bucket, recorded.

        Same arithmetic as PyTorch's default ``allreduce_hook`` (divide by world size,
        sum across ranks), so training is unchanged; each bucket's flat buffer bytes
        and launch-to-completion time become one :class:`CommRecord`.
        """

        # No annotations on purpose: DDP compares them with the real classes, and under
        # ``from __future__ import annotations`` they would be strings and rejected.
        def hook(state, bucket):  # (Any, dist.GradBucket) -> Future[torch.Tensor]
            group = self.group if self.group is not None else dist.group.WORLD
            world = dist.get_world_size(group)
            buffer = bucket.buffer()
            payload = buffer.numel() * buffer.element_size()
            t0 = time.perf_counter()
            buffer.div_(world)
            fut = dist.all_reduce(buffer, group=group, async_op=True).get_future()

            def done(f: torch.futures.Future[Any]) -> torch.Tensor:
                self._add(
                    CommRecord("ddp_bucket_all_reduce", payload, time.perf_counter() - t0, world)
                )
                return f.value()[0]

            return fut.then(done)

        return hook

    def attach(self, ddp_model: torch.nn.parallel.DistributedDataParallel) -> None:
        """Register :meth:`ddp_hook` on a DDP model (once, before its first backward)."""
        ddp_model.register_comm_hook(state=None, hook=self.ddp_hook())

    @property
    def total_bytes(self) -> int:
        """Sum of payload bytes recorded."""
        return sum(r.payload_bytes for r in self.records)

    @property
    def total_time_s(self) -> float:
        """Sum of recorded times, seconds (DDP buckets may overlap each other)."""
        return sum(r.time_s for r in self.records)

    def ring_bytes_per_worker(self) -> float:
        """Bytes each worker sends for the recorded all-reduces under the ring algorithm."""
        return sum(
            ring_allreduce_bytes_per_worker(r.payload_bytes, r.world_size)
            for r in self.records
            if "all_reduce" in r.op
        )

    def reset(self) -> list[CommRecord]:
        """Clear and return the records (e.g. between steps)."""
        with self._lock:
            out, self.records = self.records, []
        return out


def ring_allreduce_bytes_per_worker(n_bytes: float, workers: int) -> float:
    """Bytes each worker sends (and receives) in a ring all-reduce of ``n_bytes``.

    ``2 (p - 1) / p * n``: a reduce-scatter then an all-gather, each ``p - 1`` steps of
    ``n / p`` bytes. Zero for one worker.
    """
    if workers < 1:
        raise ValueError("workers must be >= 1")
    return 2.0 * (workers - 1) / workers * n_bytes


def ring_allreduce_time(
    n_bytes: float, workers: int, alpha_s: float, beta_s_per_byte: float
) -> float:
    """Alpha-beta time of a ring all-reduce, seconds.

    ``2 (p - 1) alpha + 2 (p - 1) / p * n * beta``: ``2 (p - 1)`` sequential messages,
    each paying latency ``alpha`` (s), and ``2 (p-1)/p n`` bytes per worker at
    ``beta`` seconds per byte (1 / bandwidth).
    """
    if workers < 1:
        raise ValueError("workers must be >= 1")
    return (
        2.0 * (workers - 1) * alpha_s
        + ring_allreduce_bytes_per_worker(n_bytes, workers) * beta_s_per_byte
    )


@dataclass(frozen=True)
class AlphaBeta:
    """Fitted latency-bandwidth model.

    Attributes:
        alpha_s: per-message latency, seconds.
        beta_s_per_byte: time per byte, seconds/byte (1 / bandwidth).
        workers: the ring size the fit assumed (``None``: point-to-point ``alpha + n beta``).
        rms_residual_s: root-mean-square misfit, seconds.
    """

    alpha_s: float
    beta_s_per_byte: float
    workers: int | None
    rms_residual_s: float

    @property
    def bandwidth_bytes_per_s(self) -> float:
        """``1 / beta``, bytes/s."""
        return 1.0 / self.beta_s_per_byte if self.beta_s_per_byte > 0 else float("inf")


def fit_alpha_beta(
    measurements: Iterable[tuple[float, float] | CommRecord], workers: int | None = None
) -> AlphaBeta:
    """Least-squares fit of alpha and beta to ``(n_bytes, time_s)`` pairs or records.

    With ``workers=p`` (or :class:`CommRecord` all-reduces, whose world size is used)
    the model is :func:`ring_allreduce_time`; with ``workers=None`` and plain pairs it is
    point-to-point ``t = alpha + n beta``. Needs at least two distinct sizes.
    """
    sizes, times, rows = [], [], []
    for m in measurements:
        if isinstance(m, CommRecord):
            n, t, p = float(m.payload_bytes), m.time_s, workers or m.world_size
        else:
            (n, t), p = (float(m[0]), float(m[1])), workers
        sizes.append(n)
        times.append(t)
        rows.append([1.0, n] if p is None else [2.0 * (p - 1), 2.0 * (p - 1) / p * n])
        workers = p
    if len(set(sizes)) < 2:
        raise ValueError("fit_alpha_beta needs measurements at two or more sizes")
    a, y = np.asarray(rows), np.asarray(times)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = float(np.sqrt(np.mean((a @ coef - y) ** 2)))
    return AlphaBeta(float(coef[0]), float(coef[1]), workers, resid)


def halo_exchange_bytes(
    batch_size: int,
    channels: int,
    in_size: IntPair,
    kernel_size: IntPair,
    grid: tuple[int, int],
    dtype_bytes: int = 4,
    backward: bool = True,
) -> int:
    """Bytes all workers send to exchange halos of one stride-1 layer split over a grid.

    The ``H x W`` feature map is cut into ``grid = (rows, cols)`` tiles, one per worker.
    A ``k_h x k_w`` kernel needs ``k_h - 1`` rows (split between the two sides) and
    ``k_w - 1`` columns of its neighbours' input, and the four tiles around an
    interior corner need ``(k_h-1)(k_w-1)`` corner elements in all. Summed over all
    workers and both directions, elements per channel and sample:

    ``(rows - 1) (k_h - 1) W + (cols - 1) (k_w - 1) H + (rows - 1)(cols - 1)(k_h - 1)(k_w - 1)``

    times ``batch_size * channels * dtype_bytes``. The backward pass sends the same
    amount back (input-gradient contributions to the neighbours' halo cells), so
    ``backward=True`` doubles it. A convolution adds an all-reduce of its weight
    gradients; a locally connected layer does not (each worker owns its positions).
    """
    (h, w), (kh, kw) = pair(in_size), pair(kernel_size)
    rows, cols = grid
    if rows < 1 or cols < 1 or rows > h or cols > w:
        raise ValueError(f"grid {grid} does not fit a {h}x{w} map")
    elems = (
        (rows - 1) * (kh - 1) * w
        + (cols - 1) * (kw - 1) * h
        + (rows - 1) * (cols - 1) * (kh - 1) * (kw - 1)
    )
    total = elems * batch_size * channels * dtype_bytes
    return 2 * total if backward else total


def sweep_sizes(max_bytes: int, min_bytes: int = 4) -> list[int]:
    """All-reduce sizes for a link sweep: every power of two from ``min_bytes`` to ``max_bytes``.

    A factor of two apart, so that each size range of a :class:`Link` holds several points.
    """
    if min_bytes < 1 or max_bytes < min_bytes:
        raise ValueError(f"need 1 <= min_bytes <= max_bytes, got {min_bytes}, {max_bytes}")
    out, n = [], 1
    while n <= max_bytes:
        if n >= min_bytes:
            out.append(n)
        n *= 2
    return out


def allreduce_sweep(
    sizes_bytes: Sequence[int],
    device: torch.device | str = "cpu",
    repeats: int = 5,
    group: Any = None,
) -> list[CommRecord]:
    """All-reduce float32 tensors of each size, in ``repeats`` interleaved rounds.

    Each round times every size once (after a barrier, so both ends start together), so a
    slow spell of a shared machine hits one round rather than one size. Every rank must
    call it with the same arguments; records come in round order. Feed them to
    :func:`fit_link` (or :func:`fit_alpha_beta`).
    """
    counter = CommCounter(group)
    tensors = [torch.zeros(max(1, int(size) // 4), dtype=torch.float32, device=device)
               for size in sizes_bytes]
    for t in tensors:
        counter.all_reduce(t)  # warm-up: connection set-up, allocation
    counter.reset()
    for _ in range(repeats):
        for t in tensors:
            dist.barrier(group=group)
            counter.all_reduce(t)
    return counter.reset()


@dataclass(frozen=True)
class Link:
    """A link's cost per message, ``alpha + m beta``, with one pair per message-size range.

    ``ranges`` holds ``(upper_bytes, AlphaBeta)`` in increasing order (the last range's
    upper bound is infinite): a message of ``m`` bytes costs the pair of the first range
    whose upper bound is at least ``m``. One range is the plain alpha-beta model. A ring
    all-reduce of ``n`` bytes over ``p`` workers is ``2 (p - 1)`` messages of ``n / p``.
    """

    ranges: tuple[tuple[float, AlphaBeta], ...]
    #: per range, the RMS misfit over the mean measured time (empty for an assumed link)
    relative_rms: tuple[float, ...] = ()

    @classmethod
    def single(cls, alpha_s: float, beta_s_per_byte: float) -> Link:
        """One alpha and beta for every message size (a stated, assumed link)."""
        return cls(((math.inf, AlphaBeta(alpha_s, beta_s_per_byte, None, 0.0)),))

    def pair(self, message_bytes: float) -> AlphaBeta:
        """The alpha-beta pair of the range ``message_bytes`` falls in."""
        for upper, ab in self.ranges:
            if message_bytes <= upper:
                return ab
        return self.ranges[-1][1]

    def message_s(self, message_bytes: float) -> float:
        """Seconds to send one message of ``message_bytes`` (negative fits clamp to 0)."""
        ab = self.pair(message_bytes)
        return max(0.0, ab.alpha_s + message_bytes * ab.beta_s_per_byte)

    def allreduce_s(self, n_bytes: float, workers: int) -> float:
        """Ring all-reduce of ``n_bytes`` over ``workers``: ``2 (p-1)`` messages of ``n/p``."""
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if workers == 1 or n_bytes <= 0:
            return 0.0
        return 2.0 * (workers - 1) * self.message_s(n_bytes / workers)

    @property
    def latency_s(self) -> float:
        """Alpha of the smallest messages: the link's latency."""
        return self.ranges[0][1].alpha_s

    @property
    def rms_over_latency(self) -> float:
        """The latency range's RMS misfit over its alpha: below 1, the fit resolves the
        latency it reports (the larger ranges' misfit is judged by :attr:`relative_rms`)."""
        rms = self.ranges[0][1].rms_residual_s
        return rms / self.latency_s if self.latency_s > 0 else math.inf


def fit_link(records: Iterable[CommRecord], split_bytes: Sequence[float] = (),
             stat: Callable[[np.ndarray], float] = np.min) -> Link:
    """Fit a :class:`Link` per message-size range to an all-reduce sweep's records.

    Per all-reduce size, ``stat`` of its repeats (default: the minimum, the reading least
    disturbed by other work on a shared machine); then, per range of message sizes
    (``n / p``, cut at ``split_bytes``), a least-squares fit of ``2 (p-1) (alpha + m beta)``.
    A range with fewer than two sizes is merged with its neighbour.
    """
    by: dict[int, list[float]] = {}
    workers = None
    for r in records:
        by.setdefault(r.payload_bytes, []).append(r.time_s)
        workers = r.world_size
    if workers is None or workers < 2:
        raise ValueError("fit_link needs all-reduce records over two or more workers")
    sizes = sorted(by)
    points = [(n, float(stat(np.asarray(by[n])))) for n in sizes]
    edges = [*sorted(split_bytes), math.inf]

    def count(i: int) -> int:
        lower = edges[i - 1] if i else -math.inf
        return sum(lower < n / workers <= edges[i] for n, _ in points)

    # a range holding fewer than two sizes joins its neighbour (the one below, if any)
    while len(edges) > 1 and (thin := [i for i in range(len(edges)) if count(i) < 2]):
        edges.pop(thin[0] - 1 if thin[0] else 0)
    ranges, rel, lower = [], [], -math.inf
    for upper in edges:
        inside = [(n, t) for n, t in points if lower < n / workers <= upper]
        fit = fit_alpha_beta(inside, workers=workers)
        ranges.append((upper, fit))
        rel.append(fit.rms_residual_s / float(np.mean([t for _, t in inside])))
        lower = upper
    return Link(tuple(ranges), tuple(rel))
