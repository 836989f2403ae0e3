"""The locally connected layer, forward + backward, against baselines and the hardware floor.

Contenders, all computing the same layer (in = out channels, stride 1, no padding) from
the same weights, checked against ours with ``allclose`` before they are timed:

* ``ours``: :class:`gardenpath.models.local.LocallyConnected2d`, which on a CPU with a C
  compiler runs the fused kernel of :mod:`gardenpath.models.lc_native` (the report says
  which path ran);
* ``bmm``: the same layer's fallback path, ``LocallyConnected2d.forward_bmm`` (unfold + one
  ``torch.bmm``; what runs on CUDA, in float64 and without a compiler);
* ``broadcast``: the formulation common in public PyTorch snippets,
  ``(x_unf[:, None] * w[None]).sum(2)`` with ``w`` of shape (O, C*kh*kw, L), which
  materialises a (B, O, C*kh*kw, L) product;
* ``keras1``: Keras's ``implementation=1`` (``local_conv``): a Python loop over output
  positions slices each patch, the patches are concatenated to (L, B, K) and one batched
  matmul follows;
* ``keras2``: Keras's ``implementation=2`` (``local_conv_matmul``): one dense
  (C*H*W) x (O*Ho*Wo) kernel times a 0/1 mask, then one matmul;
* ``conv``: ``nn.Conv2d`` of the same shape (the same FLOPs per image, shared weights).

A step is ``y = layer(x); y.backward(dy)`` with ``x`` requiring grad and every ``.grad``
cleared first. Time: :func:`gardenpath.measure.timing.time_fn` (median and IQR). Peak
memory: :func:`gardenpath.measure.memory.peak_memory` (allocator events) plus the bytes
the contender held before the step (its parameters and buffers, ``x``, ``dy``).

Floor: ``max(bytes / bandwidth, FLOPs / FLOP rate)`` with the bytes and FLOPs of the
three passes from :func:`gardenpath.measure.traffic.layer_traffic` and the ceilings
measured on this device by :mod:`gardenpath.measure.roofline` (copy bandwidth, matmul
FLOP/s), each the best of a measurement at the start and at the end of the run. The
bandwidth used for a shape is the best measured at any working set at least as large as
the bytes the step touches (its six tensors), so a layer that fits in cache is held to
the cache's bandwidth, not to DRAM's.

Contenders whose estimated memory exceeds the limit (``--mem-limit-gib``) are not run
and are reported as ``skipped: est. N GiB``; ``keras1`` is also skipped when its
backward (one full-size input gradient per position) is estimated to exceed
``--time-limit-s`` per step.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import (
    env_markdown,
    environment,
    finish_environment,
    fmt_bytes,
    fmt_ratio,
    fmt_time,
    fmt_timing,
    interleaved_timings,
    log,
    md_table,
    verdict,
)
from gardenpath.measure.device import resolve_device
from gardenpath.measure.memory import peak_memory
from gardenpath.measure.roofline import (
    BandwidthPoint,
    Roofline,
    bandwidth_kernel,
    matmul_kernel,
)
from gardenpath.measure.timing import time_fn
from gardenpath.measure.traffic import layer_traffic
from gardenpath.models import lc_native
from gardenpath.models.local import LocallyConnected2d

F32 = 4  # bytes per float32 element

#: Goals of issue 7.
GOAL_VS_BROADCAST = 10.0  # ours at least this many times faster than broadcast
GOAL_VS_FLOOR = 2.0  # ours within this factor of the floor ...
GOAL_FLOOR_MAX_BATCH = 16  # ... at batch sizes up to this
GOAL_MEMORY = 1.5  # peak within this factor of what must exist
#: Keras impl. 1's step has ~8 autograd nodes per position; above this many positions
#: its CPU peak memory (a profiler trace of every allocation) is not measured.
KERAS1_MEMORY_MAX_L = 256


@dataclass(frozen=True)
class Shape:
    """One layer shape: input side, channels (in = out), square kernel, batch."""

    in_size: int
    channels: int
    kernel: int
    batch: int

    @property
    def out_size(self) -> int:
        return self.in_size - self.kernel + 1

    @property
    def positions(self) -> int:
        """L = H_out * W_out."""
        return self.out_size**2

    @property
    def fan_in(self) -> int:
        """K = C * k * k."""
        return self.channels * self.kernel**2

    @property
    def label(self) -> str:
        return f"{self.in_size}² C{self.channels} k{self.kernel} B{self.batch}"

    # element counts (float32 bytes = 4x)
    @property
    def x_elems(self) -> int:
        return self.batch * self.channels * self.in_size**2

    @property
    def y_elems(self) -> int:
        return self.batch * self.channels * self.positions

    @property
    def w_elems(self) -> int:
        """Unshared weights L * K * O."""
        return self.positions * self.fan_in * self.channels

    @property
    def cols_elems(self) -> int:
        """The unfolded input B * K * L."""
        return self.batch * self.fan_in * self.positions

    def required_bytes(self) -> int:
        """What a training step of the locally connected layer must hold at once.

        Weights and bias, their gradients, the input and its gradient, the output and
        its gradient: ``2 (L K O + O L + B C H W + B O L)`` float32 elements.
        """
        bias = self.channels * self.positions
        return 2 * F32 * (self.w_elems + bias + self.x_elems + self.y_elems)


#: A grid that sweeps one factor at a time around (16², C32, k3, B16), plus corners.
FULL_GRID = [
    *[Shape(s, 32, 3, 16) for s in (8, 16, 32, 64)],
    *[Shape(16, c, 3, 16) for c in (16, 64, 128)],
    Shape(16, 32, 5, 16),
    *[Shape(16, 32, 3, b) for b in (1, 4, 64)],
    Shape(64, 32, 5, 1),
    Shape(8, 128, 5, 64),
]
QUICK_GRID = [Shape(8, 16, 3, 1), Shape(16, 32, 3, 16), Shape(16, 16, 5, 4)]


# --------------------------------------------------------------------------- contenders


@dataclass
class Built:
    """A contender ready to run: a forward function and the leaves whose grads it fills.

    Attributes:
        forward: ``x -> y`` of shape (B, O, H_out, W_out).
        params: leaf tensors whose ``.grad`` a step fills (cleared before each step).
        held: tensors alive before a step (parameters, masks), for the memory total.
        weight_grad: the weight gradient in ours' (L, K, O) layout, for the check
            (``None`` for the convolution, whose weights differ).
    """

    forward: Callable[[torch.Tensor], torch.Tensor]
    params: list[torch.Tensor]
    held: list[torch.Tensor]
    weight_grad: Callable[[], torch.Tensor] | None


def _build_ours(ref: LocallyConnected2d, shape: Shape) -> Built:
    return Built(ref, [ref.weight, ref.bias], [ref.weight, ref.bias], lambda: ref.weight.grad)


def _build_bmm(ref: LocallyConnected2d, shape: Shape) -> Built:
    return Built(ref.forward_bmm, [ref.weight, ref.bias], [ref.weight, ref.bias],
                 lambda: ref.weight.grad)


def _build_broadcast(ref: LocallyConnected2d, shape: Shape) -> Built:
    w = ref.weight.detach().permute(2, 1, 0).contiguous().requires_grad_()  # (O, K, L)
    bias = ref.bias.detach().clone().requires_grad_()
    k = shape.kernel

    def forward(x: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(x, k)  # (B, K, L)
        y = (cols[:, None] * w[None]).sum(2)  # (B, 1, K, L) * (1, O, K, L) -> (B, O, L)
        return y.view(x.shape[0], shape.channels, shape.out_size, shape.out_size) + bias

    return Built(forward, [w, bias], [w, bias], lambda: w.grad.permute(2, 1, 0))


def _build_keras1(ref: LocallyConnected2d, shape: Shape) -> Built:
    w = ref.weight.detach().clone().requires_grad_()  # (L, K, O), as Keras's kernel
    bias = ref.bias.detach().clone().requires_grad_()
    k, n = shape.kernel, shape.out_size

    def forward(x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        patches = [x[:, :, i:i + k, j:j + k].reshape(b, -1)  # (B, K) per position
                   for i in range(n) for j in range(n)]
        out = torch.bmm(torch.stack(patches), w)  # (L, B, K) @ (L, K, O) -> (L, B, O)
        return out.permute(1, 2, 0).reshape(b, shape.channels, n, n) + bias

    return Built(forward, [w, bias], [w, bias], lambda: w.grad)


def _dense_index(shape: Shape) -> torch.Tensor:
    """(L, K) flat input index ``c*H*W + h*W + w`` feeding each position's K weights."""
    s, k, n = shape.in_size, shape.kernel, shape.out_size
    c = torch.arange(shape.channels).view(-1, 1, 1)
    i = torch.arange(k).view(1, -1, 1)
    j = torch.arange(k).view(1, 1, -1)  # index arithmetic on the CPU; moved by the caller
    rows = []
    for lh in range(n):
        for lw in range(n):
            rows.append((c * s * s + (lh + i) * s + (lw + j)).reshape(-1))  # (K,)
    return torch.stack(rows)  # (L, K)


def _build_keras2(ref: LocallyConnected2d, shape: Shape) -> Built:
    n_in, L, o = shape.channels * shape.in_size**2, shape.positions, shape.channels
    dev = ref.weight.device
    idx = _dense_index(shape).to(dev)  # (L, K)
    pos = torch.arange(L, device=dev).view(-1, 1)  # (L, 1)
    kernel = torch.zeros(n_in, o, L, device=dev)  # (C*H*W, O, L); (C*H*W, O*L) as Keras
    mask = torch.zeros(n_in, o, L, device=dev)
    with torch.no_grad():
        kernel[idx, :, pos] = ref.weight.detach()  # (L, K, O) into the dense kernel
        mask[idx, :, pos] = 1.0
    kernel.requires_grad_()
    bias = ref.bias.detach().clone().requires_grad_()

    def forward(x: torch.Tensor) -> torch.Tensor:
        flat = (kernel * mask).view(n_in, o * L)  # (C*H*W, O*L), mostly zeros
        y = x.reshape(x.shape[0], -1) @ flat  # (B, O*L)
        return y.view(x.shape[0], o, shape.out_size, shape.out_size) + bias

    return Built(forward, [kernel, bias], [kernel, mask, bias],
                 lambda: kernel.grad[idx, :, pos])


def _build_conv(ref: LocallyConnected2d | None, shape: Shape,
                device: torch.device | None = None) -> Built:
    conv = nn.Conv2d(shape.channels, shape.channels, shape.kernel, device=device)
    return Built(conv, [conv.weight, conv.bias], [conv.weight, conv.bias], None)


def _est_ours(s: Shape) -> int:
    # W, dW; x, its packed copy, dx and its packed form; y, dy; small per-position buffers
    return F32 * (2 * s.w_elems + 4 * s.x_elems + 3 * s.y_elems)


def _est_bmm(s: Shape) -> int:
    # W, dW; cols saved, its permuted copy and its gradient; x, dx, y, dy, bias
    return F32 * (2 * s.w_elems + 3 * s.cols_elems + 3 * s.x_elems + 3 * s.y_elems)


def _est_broadcast(s: Shape) -> int:
    # the (B, O, K, L) product, twice at once in backward (grad wrt both factors)
    product = s.batch * s.channels * s.fan_in * s.positions
    return _est_bmm(s) + F32 * 2 * product


def _est_keras1(s: Shape) -> int:
    return _est_bmm(s) + F32 * 2 * s.cols_elems


def _est_keras2(s: Shape) -> int:
    dense = s.channels * s.in_size**2 * s.channels * s.positions
    # kernel and mask held; masked kernel, its gradient, the kernel's gradient
    return F32 * (5 * dense + 3 * s.x_elems + 3 * s.y_elems)


def _est_conv(s: Shape) -> int:
    return F32 * (2 * s.cols_elems + 3 * s.x_elems + 3 * s.y_elems)


def _sec_keras1(s: Shape, bytes_per_s: float) -> float:
    """Keras-1's backward writes and adds one full-size dX per position: ~3 L |X| bytes."""
    return 3 * F32 * s.positions * s.x_elems / bytes_per_s


@dataclass(frozen=True)
class Contender:
    """A named implementation: how to build it and how much memory it will need."""

    key: str
    label: str
    build: Callable[[LocallyConnected2d, Shape], Built]
    estimate_bytes: Callable[[Shape], int]
    same_weights: bool  # computes exactly our layer (checked against it)


CONTENDERS = [
    Contender("ours", "ours (models.local)", _build_ours, _est_ours, True),
    Contender("bmm", "ours, bmm fallback", _build_bmm, _est_bmm, True),
    Contender("conv", "Conv2d (shared)", _build_conv, _est_conv, False),
    Contender("keras1", "Keras impl. 1 (loop)", _build_keras1, _est_keras1, True),
    Contender("broadcast", "unfold-broadcast", _build_broadcast, _est_broadcast, True),
    Contender("keras2", "Keras impl. 2 (dense mask)", _build_keras2, _est_keras2, True),
]


# --------------------------------------------------------------------------- ceilings


def measure_ceilings(device: torch.device, min_run_time_s: float = 0.1) -> Roofline:
    """This device's copy bandwidth across working sets and its matmul FLOP/s."""
    return Roofline.measure(device, min_run_time_s=min_run_time_s)


def best_of(a: Roofline, b: Roofline) -> Roofline:
    """The higher of two measurements of each ceiling (the floor should be the lowest)."""
    points = []
    for pa, pb in zip(a.bandwidth, b.bandwidth, strict=True):
        points.append(pa if pa.bytes_per_s >= pb.bytes_per_s else pb)
    main = max(points, key=lambda p: p.working_set_bytes)
    return Roofline(peak_flops_per_s=max(a.peak_flops_per_s, b.peak_flops_per_s),
                    peak_bytes_per_s=main.bytes_per_s, device=a.device, dtype=a.dtype,
                    bandwidth=points)


def bandwidth_for(points: list[BandwidthPoint], working_set_bytes: int) -> BandwidthPoint:
    """The fastest measured point whose working set is at least ``working_set_bytes``.

    Data that fit in a cache level can stream at that level's speed, but no faster than
    the best speed measured at any working set that large; past the largest measured
    set, the largest (main memory) applies.
    """
    fits = [p for p in points if p.working_set_bytes >= working_set_bytes]
    if not fits:
        return max(points, key=lambda p: p.working_set_bytes)
    return max(fits, key=lambda p: p.bytes_per_s)


def floor_for(shape: Shape, roof: Roofline, sharing: str = "local") -> dict[str, Any]:
    """The floor of one training step: ``max(bytes / bandwidth, FLOPs / FLOP rate)``.

    ``sharing="conv"`` gives the floor of the convolution of the same shape (same FLOPs,
    ``L`` times fewer weight bytes).
    """
    t = layer_traffic(sharing, shape.channels, shape.channels, shape.kernel, shape.in_size,
                      shape.batch)
    touched = 2 * (t.weight_bytes + t.input_bytes + t.output_bytes)  # W, dW, X, dX, Y, dY
    bw = bandwidth_for(roof.bandwidth, touched)
    memory_s = t.total_bytes / bw.bytes_per_s
    compute_s = t.total_flops / roof.peak_flops_per_s
    return {
        "bytes": t.total_bytes,
        "flops": t.total_flops,
        "touched_bytes": touched,
        "bandwidth_bytes_per_s": bw.bytes_per_s,
        "bandwidth_working_set_bytes": bw.working_set_bytes,
        "flops_per_s": roof.peak_flops_per_s,
        "memory_s": memory_s,
        "compute_s": compute_s,
        "floor_s": max(memory_s, compute_s),
        "bound": "memory" if memory_s >= compute_s else "compute",
    }


def _probe_rate(row: dict[str, Any], kind: str) -> float | None:
    """A row's matmul (FLOP/s) or copy (bytes/s) probe rate; None where it has none."""
    probe = row.get("probes", {}).get(kind)
    return probe and probe["amount"] / probe["timing"]["median_s"]


#: The probes that copy, each over its own working set (rows from before the cache probe
#: have only the first).
COPY_PROBES = ("copy", "cache")


def _probe_set(row: dict[str, Any], kind: str = "copy") -> int:
    """The working set a row's copy probe (``kind`` in COPY_PROBES) ran over (rows from
    before it was recorded: the floor's, which it then always was)."""
    probe = row.get("probes", {}).get(kind) or {}
    return probe.get("working_set_bytes", row["floor"]["bandwidth_working_set_bytes"])


def raise_to_probes(roof: Roofline, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Raise each copy-bandwidth point to the fastest copy a shape's probe measured at the
    same working set (the probes run the ceilings' copy kernel, :func:`speed_probes`).

    On a VM whose neighbours take the memory's speed for minutes, the start and end
    ceilings can both come out low (35.6 GB/s at 16 MiB in one run against 47.7 by a
    probe between them); a floor built on the lower number would not be a floor. Returns
    the points raised: working set, the ceilings' rate, the probe's, and whose probe.
    """
    raised = []
    for i, point in enumerate(roof.bandwidth):
        best = None
        for row in rows:
            for kind in COPY_PROBES:
                rate = _probe_rate(row, kind)
                if rate and _probe_set(row, kind) == point.working_set_bytes \
                        and rate > point.bytes_per_s and (best is None or rate > best[0]):
                    best = (rate, row["label"])
        if best is not None:
            raised.append({"working_set_bytes": point.working_set_bytes,
                           "ceilings_bytes_per_s": point.bytes_per_s,
                           "bytes_per_s": best[0], "shape": best[1]})
            roof.bandwidth[i] = replace(point, bytes_per_s=best[0])
    roof.peak_bytes_per_s = max(roof.bandwidth, key=lambda p: p.working_set_bytes).bytes_per_s
    return raised


def best_achieved_flops(rows: list[dict[str, Any]]) -> tuple[float, str] | None:
    """The highest FLOP/s any contender reached on any shape, and who and where.

    On a loaded machine the matmul measurement can come out below what a contender
    (usually oneDNN's convolution) then achieves; a floor built on the lower number
    would not be a floor.
    """
    best = None
    for row in rows:
        flops = row["floor"]["flops"]
        for rec in row["contenders"].values():
            if rec.get("status") == "ok":
                rate = flops / rec["timing"]["median_s"]
                if best is None or rate > best[0]:
                    best = (rate, f"{rec['label']} at {row['label']}")
    return best


#: Prefix of the timed functions that are parts of ours' step (kernel_passes).
PART = "part:"


def bmm_only(shape: Shape, device: torch.device) -> Callable[[], None]:
    """The three batched matmuls of a step alone, every operand laid out for BLAS.

    ``Y = X_unf W`` (L, B, K) x (L, K, O); ``dW = X_unf^T G`` ; ``dX_unf = G W^T``: the
    arithmetic of the layer without the gather (unfold), the scatter (fold), the bias or
    autograd. No implementation built on ``bmm`` can be faster on this device, so it
    separates the cost of the layout from the efficiency of small matrix products.
    """
    L, b, k, o = shape.positions, shape.batch, shape.fan_in, shape.channels
    cols = torch.randn(L, b, k, device=device)
    w = torch.randn(L, k, o, device=device)
    g = torch.randn(L, b, o, device=device)

    def three() -> None:
        torch.bmm(cols, w)  # (L, B, O)
        torch.bmm(cols.transpose(1, 2), g)  # (L, K, O)
        torch.bmm(g, w.transpose(1, 2))  # (L, B, K)

    return three


#: Side of the square matmul that probes the machine's arithmetic speed in every round: its
#: operands fit in a core's L2 cache, so the contenders timed before it do not slow it
#: (after a 512 MiB copy, a 1024 x 1024 matmul ran at 54-63 GFLOP/s against 78 warm on the
#: AVX2 EPYC; 256 x 256 at 64-66 against 67).
PROBE_MATMUL_N = 256

#: Working set of the third probe, a copy that stays in the last-level cache (32 MiB on the
#: AVX2 EPYC). A neighbour that takes the cache slows a layer whose weights stay there
#: between its passes, which a copy over the floor's (larger) working set does not see:
#: measured, 16x16 C32 k5 B16 (weights 20 MB) 6.1 ms a step alone, 7.4 beside a 12 MiB
#: copy loop on the other core, 6.3 beside a 256 MiB one, 6.2 beside a matmul loop.
PROBE_CACHE_BYTES = 16 << 20


def speed_probes(copy_working_set_bytes: int, device: torch.device
                 ) -> dict[str, tuple[Callable[[], Any], int, int | None]]:
    """Small kernels timed in a shape's rounds beside the contenders: a matmul, the copy
    over the working set whose bandwidth the shape's floor uses, and a copy that stays in
    the last-level cache. Their rates against the best seen in the run say how fast the
    machine was while that shape was timed (a VM's neighbours take cores', memory's and
    the cache's speed for minutes at a time). Returns, by probe (``matmul``, ``copy``,
    ``cache``): the function, its FLOPs or bytes per call, and a copy's working set."""
    matmul, flops = matmul_kernel(PROBE_MATMUL_N, torch.float32, device)
    probes: dict[str, tuple[Callable[[], Any], int, int | None]] = {
        "matmul": (matmul, flops, None)}
    for kind, ws in (("copy", copy_working_set_bytes), ("cache", PROBE_CACHE_BYTES)):
        copy, moved = bandwidth_kernel("copy", ws, torch.float32, device)
        probes[kind] = (copy, moved, ws)
    return probes


def best_rates(rows: list[dict[str, Any]], roof: Roofline
               ) -> tuple[float | None, dict[int, float]]:
    """The fastest probe rates among ``rows``: the matmul's (FLOP/s, None if no row has
    one) and the copy's by working set (bytes/s), the latter starting from ``roof``'s
    ceilings."""
    best_mm = max((r for r in (_probe_rate(row, "matmul") for row in rows) if r), default=None)
    best_copy: dict[int, float] = {p.working_set_bytes: p.bytes_per_s for p in roof.bandwidth}
    for row in rows:
        for kind in COPY_PROBES:
            r, ws = _probe_rate(row, kind), _probe_set(row, kind)
            if r:
                best_copy[ws] = max(best_copy.get(ws, 0.0), r)
    return best_mm, best_copy


def row_speed(row: dict[str, Any], best_mm: float | None, best_copy: dict[int, float]
              ) -> dict[str, float] | None:
    """A row's probe rates over the best ones (:func:`best_rates`): 1 is as fast as the
    machine was at its best; ``cache`` only where the row has that probe. None where the
    row has no probes."""
    mm, cp = _probe_rate(row, "matmul"), _probe_rate(row, "copy")
    if not (mm and cp and best_mm):
        return None
    speed = {"matmul": mm / best_mm}
    for kind in COPY_PROBES:
        rate = _probe_rate(row, kind)
        if rate:
            speed[kind] = rate / best_copy[_probe_set(row, kind)]
    return speed


def machine_speed(rows: list[dict[str, Any]], roof: Roofline) -> None:
    """Each row's probe rates over the best of the run: ``speed`` (1: as fast as the
    machine was at its best; matmul against every shape's probe, copy against every probe
    and the start and end ceilings at that working set), and ``floor_then_s``, the floor
    with its compute term divided by the matmul speed and its memory term by the copy
    speed: the floor as the machine stood while the shape was timed."""
    best_mm, best_copy = best_rates(rows, roof)
    for row in rows:
        speed = row_speed(row, best_mm, best_copy)
        if speed is None:
            continue
        fl = row["floor"]
        row["speed"] = speed
        row["floor_then_s"] = max(fl["compute_s"] / speed["matmul"],
                                  fl["memory_s"] / speed["copy"])


def _speeds_text(speed: dict[str, float]) -> str:
    """A row's probe speeds as the log and the report name them: "matmul 0.97, copy 0.50"."""
    return ", ".join(f"{k} {v:.2f}" for k, v in speed.items())


#: A shape whose rounds ran with any probe below this fraction of the best the whole run saw
#: is timed again at the end of the run (:func:`retime_slow`), at most RETIME_MAX more times.
RETIME_BELOW = 0.8
RETIME_MAX = 2


def _kept_attempt(attempts: list[dict[str, Any]], best_mm: float | None,
                  best_copy: dict[int, float]) -> tuple[int, list[dict[str, float] | None]]:
    """Which of a shape's attempts is kept: the one whose slowest probe ran fastest against
    the given best rates (chosen by the probes alone); with every attempt's speeds."""
    speeds = [row_speed(a, best_mm, best_copy) for a in attempts]
    keep = max(range(len(attempts)),
               key=lambda i: min(speeds[i].values()) if speeds[i] else -1.0)
    return keep, speeds


#: Before each pass of :func:`retime_slow` the machine is probed again, every QUIET_POLL_S,
#: until every probe runs at RETIME_BELOW of the run's best or QUIET_WAIT_S have passed (then
#: the pass runs anyway): on this VM a neighbour's load comes and goes within minutes (the
#: 1024 x 1024 matmul, sampled every two minutes for half an hour, ran at 53-81 GFLOP/s
#: against 88 at best), so a pass started in a quiet minute should meet fewer slow rounds.
#: Not borne out yet: in the first run with it, on a machine contended throughout, pass 1
#: found every probe quiet after 22 s, yet all 9 of its attempts ran with a probe below 0.8
#: (a pass lasts minutes, longer than that quiet spell), and pass 2 gave up after 300 s.
QUIET_WAIT_S = 300.0
QUIET_POLL_S = 20.0


def probe_speeds(rows: list[dict[str, Any]], best_mm: float | None,
                 best_copy: dict[int, float], device: torch.device) -> dict[str, float]:
    """How fast the machine is now: the matmul probe and a copy over each working set the
    copy probes of ``rows`` ran over, each timed once (0.1 s) on its own, over the best rate
    the run has seen (``best_rates``). Keys: ``matmul`` and ``copy <working set>``."""
    speeds: dict[str, float] = {}
    if best_mm:
        matmul, flops = matmul_kernel(PROBE_MATMUL_N, torch.float32, device)
        t = time_fn(matmul, device=device, min_run_time_s=0.1).median_s
        speeds["matmul"] = flops / t / best_mm
    for ws in sorted({_probe_set(r, k) for r in rows for k in COPY_PROBES
                      if _probe_rate(r, k) and _probe_set(r, k) in best_copy}):
        copy, moved = bandwidth_kernel("copy", ws, torch.float32, device)
        t = time_fn(copy, device=device, min_run_time_s=0.1).median_s
        speeds[f"copy {fmt_bytes(ws)}"] = moved / t / best_copy[ws]
        del copy  # up to 256 MiB of buffers
    return speeds


def wait_for_quiet(measure: Callable[[], dict[str, float]], *, max_s: float = QUIET_WAIT_S,
                   poll_s: float = QUIET_POLL_S, sleep: Callable[[float], Any] = time.sleep,
                   clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Call ``measure()`` (speeds, 1 = the run's best) until every speed is at least
    RETIME_BELOW, sleeping ``poll_s`` between calls, but no longer than ``max_s`` in all.
    Returns ``waited_s``, ``checks``, the last ``speeds`` and whether the machine was
    ``quiet`` then."""
    start, checks = clock(), 0
    while True:
        speeds = measure()
        checks += 1
        quiet = min(speeds.values(), default=1.0) >= RETIME_BELOW
        waited = clock() - start
        if quiet or waited + poll_s > max_s:
            return {"waited_s": waited, "checks": checks, "speeds": speeds, "quiet": quiet}
        sleep(poll_s)


def retime_slow(first: list[dict[str, Any]], run_again: Callable[[int], dict[str, Any]],
                roof: Roofline | Callable[[], Roofline],
                settle: Callable[[list[dict[str, Any]], float | None,
                                  dict[int, float]], Any] | None = None
                ) -> list[dict[str, Any]]:
    """The rows of ``first`` (one per shape, timed once each), where a shape's probes say
    the machine was slow during its rounds replaced by the best of further attempts made at
    the end of the run: ``run_again(i)`` times shape ``i`` again while its kept attempt has
    a probe below RETIME_BELOW of the best rates the run has seen (every attempt of every
    shape, and ``roof``'s copy ceilings), in at most RETIME_MAX passes over the shapes still
    slow. ``roof`` may be a function giving the ceilings measured so far: each pass, and the
    choice of the attempt kept, then judge against those measured during the passes too.

    Why at the end: on a shared VM a neighbour can take half the memory bandwidth or the
    cache for minutes, so an attempt right after a slow one often meets the same neighbour;
    and a shape timed early is judged against the best of the whole run, not only of the
    shapes before it. The attempt kept is the one whose slowest probe ran fastest, never
    chosen by the contenders' times; every attempt's speeds and ours' time are kept in the
    row's ``attempts`` for the report. ``settle(rows, best_mm, best_copy)``, if given, is
    called before each pass with the kept attempts of the shapes that pass times again
    (:func:`run` waits there for a quiet machine)."""
    attempts = [[row] for row in first]

    def best() -> tuple[float | None, dict[int, float]]:
        return best_rates([a for tries in attempts for a in tries],
                          roof() if callable(roof) else roof)

    for _ in range(RETIME_MAX):
        best_mm, best_copy = best()
        slow = []
        for i, tries in enumerate(attempts):
            keep, speeds = _kept_attempt(tries, best_mm, best_copy)
            if speeds[keep] and min(speeds[keep].values()) < RETIME_BELOW:
                slow.append((i, speeds[keep], tries[keep]))
        if slow and settle is not None:
            settle([kept for *_, kept in slow], best_mm, best_copy)
        for i, speed, _ in slow:
            log(f"  {first[i]['label']}: machine at {_speeds_text(speed)} of the run's best "
                f"during its rounds: timing it again (attempt {len(attempts[i]) + 1} of at "
                f"most {RETIME_MAX + 1})")
            attempts[i].append(run_again(i))
    best_mm, best_copy = best()
    rows = []
    for tries in attempts:
        if len(tries) == 1:
            rows.append(tries[0])
            continue
        keep, speeds = _kept_attempt(tries, best_mm, best_copy)
        row = tries[keep]
        row["attempts"] = [
            {"speed": sp, "kept": i == keep,
             "ours_s": (a["contenders"]["ours"].get("timing") or {}).get("median_s")}
            for i, (a, sp) in enumerate(zip(tries, speeds, strict=True))]
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- one shape


def _clear(tensors: list[torch.Tensor]) -> None:
    for t in tensors:
        t.grad = None


def _check(ref: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference, relative to the reference's largest magnitude."""
    worst = 0.0
    for name, r in ref.items():
        g = got[name]
        scale = float(r.abs().max()) or 1.0
        worst = max(worst, float((g - r).abs().max()) / scale)
    return worst


def run_shape(shape: Shape, roof: Roofline, device: torch.device, *, mem_limit_bytes: int,
              time_limit_s: float, repeats: int, rounds: int, min_run_time_s: float,
              contenders: list[Contender]) -> dict[str, Any]:
    """Measure every contender on one shape; returns the shape's JSON-ready record.

    Each contender that fits is built, run once and checked against ours (which also
    warms it up); then all are timed in interleaved rounds; then each one's peak memory
    is measured in a step of its own.
    """
    torch.manual_seed(0)
    lc_native.release()  # kept gradients and scratch of earlier shapes do not count here
    row: dict[str, Any] = {"shape": asdict(shape), "label": shape.label,
                           "floor": floor_for(shape, roof),
                           "conv_floor": floor_for(shape, roof, sharing="conv"),
                           "required_bytes": shape.required_bytes(), "contenders": {}}
    ours_fits = _est_ours(shape) <= mem_limit_bytes
    ref_layer = (LocallyConnected2d(shape.channels, shape.channels, shape.kernel,
                                    shape.in_size, device=device) if ours_fits else None)
    x = torch.randn(shape.batch, shape.channels, shape.in_size, shape.in_size,
                    device=device, requires_grad=True)
    dy = torch.randn(shape.batch, shape.channels, shape.out_size, shape.out_size,
                     device=device)
    reference: dict[str, torch.Tensor] | None = None
    ready: dict[str, tuple[Built, list[torch.Tensor]]] = {}
    for c in contenders:
        rec: dict[str, Any] = {"label": c.label, "estimate_bytes": c.estimate_bytes(shape)}
        row["contenders"][c.key] = rec
        if rec["estimate_bytes"] > mem_limit_bytes:
            rec.update(status="skipped", reason=f"est. {rec['estimate_bytes'] / 2**30:.1f} "
                       f"GiB > limit {mem_limit_bytes / 2**30:.1f} GiB")
            continue
        if c.same_weights and ref_layer is None:
            rec.update(status="skipped", reason="needs ours' weights, which do not fit")
            continue
        if c.key == "keras1":
            est_s = _sec_keras1(shape, roof.peak_bytes_per_s)
            if est_s > time_limit_s:
                rec.update(status="skipped", reason=f"est. {est_s:.0f} s per step > "
                           f"limit {time_limit_s:.0f} s")
                continue
        log(f"  {shape.label}: build and check {c.key}")
        built = (_build_conv(ref_layer, shape, device) if c.key == "conv"
                 else c.build(ref_layer, shape))
        leaves = [*built.params, x]
        _clear(leaves)
        y = built.forward(x)
        y.backward(dy)  # the check's run is also the warm-up
        got = {"y": y.detach(), "dx": x.grad.detach().clone()}
        if built.weight_grad is not None:
            got["dw"] = built.weight_grad().detach().clone()
        if c.key == "ours":
            reference = got
            rec["check"] = "reference"
        elif c.same_weights and reference is not None:
            err = _check(reference, got)
            rec["check_rel_err"] = err
            rec["check"] = "ok" if err < 1e-4 else f"DIFFERS (rel. err {err:.1e})"
        del got, y
        ready[c.key] = (built, leaves)

    def stepper(built: Built, leaves: list[torch.Tensor]) -> Callable[[], None]:
        def step() -> None:
            _clear(leaves)
            built.forward(x).backward(dy)
        return step

    fns = {k: stepper(*v) for k, v in ready.items()}
    if ref_layer is not None:
        fns["bmm_only"] = bmm_only(shape, device)
    # ours' parts and the empty step, timed in the same rounds as the step (see
    # _passes_section); held only by fns, so their tensors go with fns.clear()
    extra = {PART + name: fn for name, fn in
             ((ref_layer is not None and kernel_passes(shape, device)) or {}).items()}
    extra["empty_step"] = empty_step(shape, device)
    for fn in extra.values():
        fn()  # warm-up; the contenders ran in their checks
    fns.update(extra)
    del extra
    probes = speed_probes(row["floor"]["bandwidth_working_set_bytes"], device)
    fns.update({"probe_" + kind: fn for kind, (fn, *_) in probes.items()})
    log(f"  {shape.label}: timing {', '.join(fns)} in {rounds} interleaved rounds")
    timings = interleaved_timings(fns, device=device, rounds=rounds, repeats=repeats,
                                  min_run_time_s=min_run_time_s)
    if "bmm_only" in timings:
        row["bmm_only"] = {"timing": timings.pop("bmm_only"),
                           "flops": row["floor"]["flops"]}
    row["probes"] = {kind: {"timing": timings.pop("probe_" + kind), "amount": amount,
                            **({"working_set_bytes": ws} if ws else {})}
                     for kind, (_, amount, ws) in probes.items()}
    del probes  # its copy buffers (up to 256 MiB) must not count in the memory steps below
    row["empty_step_s"] = timings.pop("empty_step")["median_s"]
    passes = {k.removeprefix(PART): timings.pop(k)["median_s"] for k in list(timings)
              if k.startswith(PART)}
    if passes:
        row["passes"] = passes
    fns.clear()
    for key, (built, leaves) in ready.items():
        _clear(leaves)
        held = sum(t.numel() * t.element_size() for t in built.held) + F32 * (
            x.numel() + dy.numel())
        if key == "ours":  # the gradient storage and scratch the kernel keeps between steps
            held += lc_native.held_bytes()
        rec = row["contenders"][key]
        rec.update(status="ok", timing=timings[key], held_bytes=held)
        if key == "keras1" and device.type == "cpu" and shape.positions > KERAS1_MEMORY_MAX_L:
            # the CPU memory measurement records every allocator event in a profiler
            # trace: ~8 autograd nodes per position made a 900-position step's trace take
            # 2.4 GB of RAM, and a 3,844-position one ran the machine out of memory
            rec.update(peak_bytes=None, resident_bytes=None, memory_method=(
                f"not measured: {shape.positions} positions > {KERAS1_MEMORY_MAX_L} "
                "(profiler trace too large)"))
        else:
            mem = peak_memory(lambda built=built: built.forward(x).backward(dy), device)
            rec.update(peak_bytes=mem.peak_bytes, resident_bytes=held + mem.peak_bytes,
                       memory_method=mem.method)
        _clear(leaves)
    ready.clear()
    lc_native.release()  # the next shape starts with nothing kept by this one
    gc.collect()
    _ratios(row)
    return row


def _median(row: dict[str, Any], key: str) -> float | None:
    rec = row["contenders"].get(key, {})
    return rec["timing"]["median_s"] if rec.get("status") == "ok" else None


def _ratios(row: dict[str, Any]) -> None:
    """Speed-ups of ours over each baseline, ours vs floor, memory ratio, goals."""
    shape = Shape(**row["shape"])
    for who in ("ours", "bmm"):
        t = _median(row, who)
        rec = row["contenders"].get(who, {})
        if t is None:
            continue
        rec["speedup_over"] = {k: (_median(row, k) / t if _median(row, k) else None)
                               for k in ("broadcast", "keras1", "keras2", "conv")}
        rec["vs_floor"] = t / row["floor"]["floor_s"]
        if row.get("floor_then_s"):
            rec["vs_floor_then"] = t / row["floor_then_s"]
        rec["memory_ratio"] = rec["resident_bytes"] / row["required_bytes"]
        sp = rec["speedup_over"]["broadcast"]
        rec["unreachable"] = {}
        if sp is not None and sp < GOAL_VS_BROADCAST and row.get("empty_step_s") is not None:
            need = _median(row, "broadcast") / GOAL_VS_BROADCAST
            least = row["floor"]["floor_s"] + row["empty_step_s"]
            if need < least:  # no layer driven through autograd here can be that fast
                rec["unreachable"]["vs_broadcast"] = (need, least)
        rec["goals"] = {
            "vs_broadcast": None if sp is None else sp >= GOAL_VS_BROADCAST,
            "vs_floor": (rec["vs_floor"] <= GOAL_VS_FLOOR
                         if shape.batch <= GOAL_FLOOR_MAX_BATCH else None),
            "memory": rec["memory_ratio"] <= GOAL_MEMORY,
        }


# --------------------------------------------------------------------------- profile


class _EmptyStep(torch.autograd.Function):
    """A layer that computes nothing: allocates its output and its inputs' gradients."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                out_shape: tuple[int, ...]) -> torch.Tensor:
        ctx.shapes = (x.shape, w.shape, b.shape)
        return x.new_empty(out_shape)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[Any, ...]:
        return (*(dy.new_empty(s) for s in ctx.shapes), None)


def empty_step(shape: Shape, device: torch.device) -> Callable[[], None]:
    """A training step through autograd that computes nothing, on the step's tensors: what
    any layer driven from PyTorch pays on top of its arithmetic (Python, the autograd
    engine, allocating output and gradients). Through the C++ operator's empty twin where
    ours runs through the C++ operator; timed in the shape's rounds (:func:`run_shape`)."""
    b, c, n, o = shape.batch, shape.channels, shape.in_size, shape.out_size
    x = torch.randn(b, c, n, n, device=device, requires_grad=True)
    w = torch.randn(shape.positions, shape.fan_in, c, device=device, requires_grad=True)
    bias = torch.randn(c, o, o, device=device, requires_grad=True)
    dy = torch.randn(b, c, o, o, device=device)

    fn = _EmptyStep.apply  # through the same mechanism as ours: a Python autograd.Function

    def step() -> None:
        x.grad = w.grad = bias.grad = None
        fn(x, w, bias, (b, c, o, o)).backward(dy)

    return step


def kernel_passes(shape: Shape, device: torch.device) -> dict[str, Callable[[], Any]] | None:
    """The parts of ours' step, each to be timed on its own: the fused kernel's forward
    (adding a bias, as the layer's does), weight-gradient and input-gradient passes, its
    bias-gradient sum, and the packing of the input and unpacking of its gradient (the
    layout copies), each called straight through ``lc_native.library()`` on the step's
    shapes; and ``sequence``, a step's two calls back to back (each pass then starts with
    what the previous one left in cache). What a full step takes beyond the sequence is
    Python, autograd and allocation. :func:`run_shape` times them in the same rounds as the
    step, so the differences are not the machine's drift between two moments. None where
    the kernel does not run (GPU, no compiler)."""
    lib = lc_native.library()
    if device.type != "cpu" or lib is None:
        return None
    b, c, k, n = shape.batch, shape.channels, shape.kernel, shape.in_size
    ho, L, K = shape.out_size, shape.positions, shape.fan_in
    g = torch.Generator().manual_seed(0)
    xt = torch.randn(n, n, c, b, generator=g)
    w = torch.randn(L, K, c, generator=g)
    dy = torch.randn(b, c, L, generator=g)
    x = torch.randn(b, c, n, n, generator=g)
    bias = torch.randn(c, L, generator=g)
    dw, dxt, y, db = torch.empty_like(w), torch.empty_like(xt), torch.empty_like(dy), \
        torch.empty(c, L)
    dx = torch.empty_like(x)
    pl = lc_native.plan(lc_native.geometry((b, c, n, n), c, (k, k), (1, 1), (0, 0), (ho, ho)), 1)
    work = torch.empty(pl.work_floats)
    gm = pl.gm

    def p(t: torch.Tensor | None) -> int | None:
        return None if t is None else t.data_ptr()

    def backward(db: torch.Tensor | None, want_dw: int, want_dx: int) -> Callable[[], int]:
        return lambda: lib.lc_backward(p(xt), p(w), p(dy), p(dw), p(dxt), p(db), None, p(work),
                                       0, L, gm, want_dw, want_dx)

    calls = {
        "forward": lambda: lib.lc_forward(None, p(xt), p(w), p(bias), p(y), p(work), 0, L, gm),
        "weight_grad": backward(None, 1, 0),
        "input_grad": backward(None, 0, 1),
        "bias_grad": backward(db, 0, 0),
        "pack": lambda: lib.lc_pack(p(x), p(xt), gm),
        "unpack": lambda: lib.lc_unpack((ctypes.c_void_p * 1)(dxt.data_ptr()), 1, p(dx), gm),
        # a step's two C calls back to back, as the layer makes them, without Python around
        "sequence": lambda: (
            lib.lc_forward(p(x), p(xt), p(w), p(bias), p(y), p(work), 0, L, gm),
            lib.lc_backward(p(xt), p(w), p(dy), p(dw), p(dxt), p(db), p(dx), p(work), 0, L,
                            gm, 1, 1)),
    }
    return calls


PROFILE_SHAPE = Shape(16, 32, 3, 16)


#: Profiler events kept: aten operators and the fused kernel's forward and backward (the
#: C++ operator and its autograd node, or the Python LocalFn and LocalFnBackward).
_PROFILED = ("aten::", "LocalFn", "gardenpath::", "torch::autograd::CppNode<")


def _op_label(key: str) -> str:
    """A profiler key as the report names it (the C++ autograd node by its function)."""
    if key.startswith("torch::autograd::CppNode<"):
        return key.split("::")[-1].rstrip(">") + " (backward)"
    return key


def profile_ops(shape: Shape, device: torch.device, steps: int = 3,
                top: int = 8) -> dict[str, list[dict[str, Any]]]:
    """Where a step's time goes: ``torch.profiler`` op table for ours and its bmm path.

    For each, the ``top`` aten operators (and the fused kernel's autograd nodes, whose self
    time is the C code's) by self time (CPU, or CUDA on a GPU), with calls per step. The
    profiler adds a few microseconds to every op, so ops called thousands of times look
    more expensive than they are; the call counts are exact.
    """
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    layer = LocallyConnected2d(shape.channels, shape.channels, shape.kernel, shape.in_size,
                               device=device)
    x = torch.randn(shape.batch, shape.channels, shape.in_size, shape.in_size,
                    device=device, requires_grad=True)
    dy = torch.randn(shape.batch, shape.channels, shape.out_size, shape.out_size,
                     device=device)
    cuda = device.type == "cuda"
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    out = {}
    for name, fwd in (("ours", layer), ("bmm", layer.forward_bmm)):
        def step(fwd: Callable = fwd) -> None:
            _clear([layer.weight, layer.bias, x])
            fwd(x).backward(dy)

        step()
        with profile(activities=acts) as prof:
            for _ in range(steps):
                step()
            if cuda:
                torch.cuda.synchronize(device)
        events = [e for e in prof.key_averages() if e.key.startswith(_PROFILED)]
        total = sum(getattr(e, key) for e in events) or 1.0
        events.sort(key=lambda e: getattr(e, key), reverse=True)
        out[name] = [{"op": _op_label(e.key), "calls_per_step": e.count / steps,
                      "self_us_per_step": getattr(e, key) / steps,
                      "share": getattr(e, key) / total} for e in events[:top]]
    return out


# --------------------------------------------------------------------------- the report


def _goal_cells(rec: dict[str, Any], shape: Shape, row: dict[str, Any]) -> list[str]:
    if rec.get("status") != "ok":
        return ["-"] * 3
    g, sp = rec["goals"], rec["speedup_over"]["broadcast"]
    if g["vs_broadcast"] is None:
        b = row["contenders"].get("broadcast", {})
        cell_b = verdict(None, b.get("reason", "not run"))
    else:
        cell_b = verdict(g["vs_broadcast"], f"{sp:.3g}x" + (
            "" if g["vs_broadcast"] else f", {GOAL_VS_BROADCAST / sp:.2g}x short"))
        if rec.get("unreachable", {}).get("vs_broadcast"):
            need, least = rec["unreachable"]["vs_broadcast"]
            cell_b += (f"; unreachable here: needs ≤ {fmt_time(need)}, floor + empty "
                       f"autograd step = {fmt_time(least)}")
    if g["vs_floor"] is None:
        cell_f = verdict(None, f"B > {GOAL_FLOOR_MAX_BATCH}")
    else:
        cell_f = verdict(g["vs_floor"], f"{rec['vs_floor']:.3g}x" + (
            "" if g["vs_floor"] else f", {rec['vs_floor'] / GOAL_VS_FLOOR:.2g}x over"))
        if rec.get("vs_floor_then") is not None:
            sp_m = row["speed"]
            cell_f += (f"; {rec['vs_floor_then']:.3g}x at the machine's speed then "
                       f"(matmul {sp_m['matmul']:.2f}, copy {sp_m['copy']:.2f})")
    cell_m = verdict(g["memory"], f"{rec['memory_ratio']:.3g}x" + (
        "" if g["memory"] else f", {rec['memory_ratio'] / GOAL_MEMORY:.2g}x over"))
    return [cell_b, cell_f, cell_m]


def _ceilings_text(data: dict[str, Any], bw_text: str) -> str:
    """The ceilings line: the best of every measurement the run made, and their spread."""
    peak = data["ceilings"]["peak_flops_per_s"] / 1e9
    between = data.get("ceilings_between")
    if not between:  # results from before the ceilings were measured between shapes
        return (f"- **Ceilings** (best of start and end of the run): {peak:.3g} GFLOP/s "
                f"({data['flops_ceiling_source']}; the "
                f"{data['ceilings_start']['peak_flops_per_s'] / 1e9:.3g} and "
                f"{data['ceilings_end']['peak_flops_per_s'] / 1e9:.3g} GFLOP/s measured by "
                f"`measure.roofline` at start and end); copy bandwidth in GB/s by working "
                f"set: {bw_text}")
    flops = [r["peak_flops_per_s"] / 1e9 for r in
             (data["ceilings_start"], *between, data["ceilings_end"])]
    return (f"- **Ceilings** (the best of {len(flops)} measurements by `measure.roofline`: "
            "at the start, before each shape was timed and at the end): "
            f"{peak:.3g} GFLOP/s ({data['flops_ceiling_source']}; the measurements ranged "
            f"from {min(flops):.3g} to {max(flops):.3g} GFLOP/s); copy bandwidth in GB/s by "
            f"working set: {bw_text}")


def _raised_text(raised: list[dict[str, Any]], ceilings: str = "start and end") -> str:
    """What the ceilings line adds where a shape's copy probe beat the ceilings."""
    if not raised:
        return ""
    parts = [f"{fmt_bytes(r['working_set_bytes'])} {r['bytes_per_s'] / 1e9:.3g} by the probe "
             f"in the rounds of {r['shape']} ({ceilings}: "
             f"{r['ceilings_bytes_per_s'] / 1e9:.3g})" for r in raised]
    return ("; raised where a shape's copy probe measured more (the same copy kernel, "
            "between them): " + ", ".join(parts))


def _retimed_text(rows: list[dict[str, Any]], retime: dict[str, Any] | None) -> list[str]:
    """The paragraph naming the shapes timed again (:func:`retime_slow`) and every attempt."""
    parts = []
    for row in rows:
        tries = row.get("attempts")
        if not tries:
            continue
        each = [f"{fmt_time(t['ours_s'])} at {_speeds_text(t['speed'])}"
                + (" (kept)" if t["kept"] else "")
                if t["speed"] else f"{fmt_time(t['ours_s'])} (no probes)" for t in tries]
        parts.append(f"{row['label']}: ours " + "; ".join(each))
    if not parts or not retime:
        return []
    probes = ("a probe (the matmul, the copy over the floor's working set, or the copy that "
              "stays in the last-level cache)")
    if retime.get("when") == "end of run":
        rule = (f"after every shape had been timed once, each shape during whose rounds "
                f"{probes} ran below {retime['below']:g} of the best the whole run saw was "
                f"timed again at the end of the run, in at most {retime['max_more']} more "
                "passes over the shapes still below")
    else:  # results from before the end-of-run passes: right after the slow attempt
        rule = (f"a shape during whose rounds {probes} ran below {retime['below']:g} of the "
                f"best the run had seen by then is timed again, at most "
                f"{retime['max_more']} more times")
    return [f"**Timed again**: {rule}, and the attempt whose slowest probe ran fastest is "
            "kept (chosen by the probes alone, not by any contender's time). "
            + ". ".join(parts) + "." + _waits_text(retime)]


def _waits_text(retime: dict[str, Any]) -> str:
    """How long each re-timing pass waited for a quiet machine (results from before the
    waits: nothing)."""
    waits = retime.get("waits")
    if not waits:
        return ""
    probes = " Before each pass the matmul and the copies over those shapes' working sets"
    if retime["quiet_wait_s"] <= 0:  # --quick's default: a look, no wait
        each = [f"pass {i} at {_speeds_text(w['speeds'])}" for i, w in enumerate(waits, 1)]
        return f"{probes} were timed once, without waiting for a quiet machine: " \
            + "; ".join(each) + "."
    each = [f"pass {i} after {w['waited_s']:.0f} s, " + ("the machine at " if w["quiet"]
                                                          else "still slow: ")
            + _speeds_text(w["speeds"]) for i, w in enumerate(waits, 1)]
    return (f"{probes} were timed every {retime['quiet_poll_s']:.0f} s until each ran at "
            f"{retime['below']:g} of the run's best or {retime['quiet_wait_s']:.0f} s had "
            f"passed: " + "; ".join(each) + ".")


def render(data: dict[str, Any]) -> str:
    """The markdown page section: conditions, goals table, all-contenders table, notes."""
    env, roof = data["environment"], data["ceilings"]
    rows = data["rows"]
    goal_rows, detail_rows = [], []
    for row in rows:
        shape = Shape(**row["shape"])
        fl = row["floor"]
        for who in ("ours", "bmm"):
            rec = row["contenders"][who]
            t = rec.get("timing")
            sp = rec.get("speedup_over", {})
            goal_rows.append([
                row["label"] if who == "ours" else "″",
                rec["label"],
                fmt_timing(t) if t else rec.get("reason", "-"),
                f"{fmt_time(fl['floor_s'])} ({fl['bound']})",
                (f"{fmt_time(row['bmm_only']['timing']['median_s'])} "
                 f"({fmt_ratio(row['bmm_only']['timing']['median_s'] / fl['floor_s'])})"
                 if row.get("bmm_only") and who == "ours" else ""),
                fmt_ratio(sp.get("keras1")), fmt_ratio(sp.get("keras2")),
                fmt_ratio(sp.get("conv")),
                *_goal_cells(rec, shape, row),
            ])
        for key, c in row["contenders"].items():
            ok = c.get("status") == "ok"
            own_floor = row["conv_floor" if key == "conv" else "floor"]["floor_s"]
            detail_rows.append([
                row["label"], c["label"],
                fmt_timing(c.get("timing")) if ok else f"skipped: {c.get('reason')}",
                fmt_ratio(c["timing"]["median_s"] / own_floor) if ok else "-",
                ("not measured" if c.get("resident_bytes") is None
                 else fmt_bytes(c["resident_bytes"])) if ok else "-",
                fmt_bytes(c["estimate_bytes"]),
                c.get("check", "-") if ok else "-",
            ])
    cached = [row for row in rows if "cache" in row.get("probes", {})]
    bw = roof["bandwidth"]
    bw_text = ", ".join(f"{fmt_bytes(p['working_set_bytes'])}: "
                        f"{p['bytes_per_s'] / 1e9:.3g}" for p in bw)
    n_goal = {"vs_broadcast": [0, 0, 0], "vs_floor": [0, 0, 0], "memory": [0, 0, 0]}
    then = [0, 0]  # within the floor goal at the machine's speed then, of those measured
    for row in rows:
        rec = row["contenders"]["ours"]
        for k, v in rec.get("goals", {}).items():
            if v is not None:
                n_goal[k][0] += int(v)
                n_goal[k][1] += 1
                n_goal[k][2] += int(k in rec.get("unreachable", {}))
        if rec.get("goals", {}).get("vs_floor") is not None and "vs_floor_then" in rec:
            then[0] += int(rec["vs_floor_then"] <= GOAL_VS_FLOOR)
            then[1] += 1
    summary = "; ".join(
        f"{name}: {p}/{n} PASS" + (f" ({u} of the misses unreachable here)" if u else "")
        + (f" ({then[0]}/{then[1]} at the machine's speed during their rounds)"
           if name.startswith("within") and then[1] else "")
        for name, (p, n, u) in
        [("10x over unfold-broadcast", n_goal["vs_broadcast"]),
         (f"within {GOAL_VS_FLOOR:g}x of the floor at B ≤ {GOAL_FLOOR_MAX_BATCH}",
          n_goal["vs_floor"]),
         (f"peak memory within {GOAL_MEMORY:g}x", n_goal["memory"])])
    return "\n\n".join([
        "## Locally connected layer: forward + backward",
        env_markdown(env),
        _ceilings_text(data, bw_text)
        + _raised_text(data.get("bandwidth_raised_by_probes") or [],
                       "ceilings" if data.get("ceilings_between") else "start and end"),
        f"- **Memory limit** for a contender: {fmt_bytes(data['mem_limit_bytes'])} "
        f"(estimated before it is built); Keras impl. 1 time limit "
        f"{data['time_limit_s']:g} s per step",
        f"**Goals, ours (`LocallyConnected2d`):** {summary}.",
        *_retimed_text(rows, data.get("retime")),
        "Times are one training step (forward, then backward with respect to the input, "
        "weights and bias), median with the interquartile range. *Speed-up* columns are "
        "the baseline's median over ours (above 1: ours is faster). The floor is "
        "max(bytes / bandwidth, FLOPs / FLOP rate), bytes and FLOPs of the three passes "
        "from `measure.traffic`. Memory: peak bytes allocated during the step plus "
        "the bytes held before it, over the weights, bias, input, output and all their "
        "gradients. *ours* is `LocallyConnected2d` as the book runs it; here it took "
        f"this path: {data.get('lc_path', 'not recorded')}. The *bmm fallback* row is "
        "the same layer's `forward_bmm` (unfold + one `torch.bmm`, autograd backward), "
        "what runs on CUDA, in float64 and where no C compiler is found. *3 bmm alone* "
        "times only a step's three batched matrix products on contiguous operands (no "
        "unfold, fold, bias or autograd): what any `bmm`-based layer costs at least on "
        "this device. Where ours misses the 10x goal, the cell says whether any layer could "
        "meet it: the least a step can take is the floor plus an *empty autograd step* (a "
        "layer that allocates its output and gradients and computes nothing, measured on "
        "the same tensors through the same autograd mechanism as ours). *At the machine's "
        "speed then*: in each of a shape's timing rounds a "
        f"{PROBE_MATMUL_N}x{PROBE_MATMUL_N} matmul and the copy over the working set whose "
        "bandwidth its floor uses were timed beside the contenders; their rates over the "
        "best the run saw (the matmul's at any shape, the copy's at any shape or in the "
        f"{'' if data.get('ceilings_between') else 'start and end '}ceilings) are the "
        "machine's speeds while the shape was timed, and the "
        "floor with its compute term divided by the first and its memory term by the second "
        "gives that ratio. The goal is judged on the floor itself." + (
            " A third probe, a copy that stays in the last-level cache (over "
            f"{fmt_bytes(_probe_set(cached[0], 'cache'))}), is timed with them: it sees a "
            "neighbour taking the cache, which slows a layer whose weights stay there "
            "between its passes." if cached else ""),
        md_table(["shape", "implementation", "time", "floor", "3 bmm alone (÷ floor)",
                  "speed-up over Keras 1",
                  "over Keras 2", "over Conv2d", f"≥{GOAL_VS_BROADCAST:g}x over broadcast",
                  f"≤{GOAL_VS_FLOOR:g}x floor (B≤{GOAL_FLOOR_MAX_BATCH})",
                  f"memory ≤{GOAL_MEMORY:g}x"], goal_rows),
        "### Every contender",
        "*÷ its floor* is the time over the floor of the layer it computes (the "
        "convolution's floor for Conv2d: same FLOPs, fewer weight bytes). "
        "Resident memory is the measured peak plus what the contender held before the "
        "step; the estimate is what decided whether it ran. *check* compares output, "
        "input gradient and weight gradient with ours on the same weights (relative "
        "error below 1e-4).",
        md_table(["shape", "implementation", "time", "÷ its floor", "peak resident",
                  "estimate", "check"],
                 detail_rows),
        *_passes_section(rows, data["ceilings"]["peak_flops_per_s"]),
        *_profile_section(data.get("profile")),
    ])


def _passes_section(rows: list[dict[str, Any]], peak: float) -> list[str]:
    """Where ours' step goes, by part of the fused kernel (rows at B <= 16)."""
    table = []
    for row in rows:
        passes, rec = row.get("passes"), row["contenders"]["ours"]
        if not passes or rec.get("status") != "ok" or row["shape"]["batch"] > \
                GOAL_FLOOR_MAX_BATCH:
            continue
        step = rec["timing"]["median_s"]
        per_pass = row["floor"]["flops"] / 3  # each product pass does a third of the FLOPs
        copies = passes["pack"] + passes["unpack"] + passes["bias_grad"]
        alone = sum(passes[k] for k in ("forward", "weight_grad", "input_grad")) + copies
        cells = [f"{fmt_time(passes[k])} ({per_pass / passes[k] / 1e9:.3g} GFLOP/s)"
                 for k in ("forward", "weight_grad", "input_grad")]
        seq = passes.get("sequence")  # absent in results from before it was measured
        between = (f"{fmt_time(seq - alone)} ({100 * (seq - alone) / step:.0f}%)"
                   if seq is not None else "-")
        rest = step - (seq if seq is not None else alone)
        empty = row.get("empty_step_s")
        table.append([row["label"], fmt_time(step), fmt_time(row["floor"]["floor_s"]),
                      *cells, fmt_time(copies), between,
                      f"{fmt_time(rest)} ({100 * rest / step:.0f}%)",
                      fmt_time(empty) if empty is not None else "-"])
    if not table:
        return []
    return ["### Where ours' time goes",
            "Each part of the fused kernel timed on its own on the step's shapes, in the same "
            "interleaved rounds as the step, so that the differences below are not the "
            "machine's drift from minute to minute; each part's inputs are warm in cache, "
            "so the parts can add up to less than a step. *Layout copies* are packing the "
            "input batch-innermost, unpacking its gradient and the bias gradient. *Between "
            "passes* is what the same parts take more when a step's two C calls run back "
            "to back without Python (each pass finds in cache what "
            "the previous one left, not its own inputs; negative: the sequence is faster "
            "than the parts alone); *Python and autograd* is the step's median minus that "
            "sequence: the autograd engine, the Python around the kernel, allocating the "
            "step's tensors, and the cache misses these cause (what they evict, and fresh "
            "tensors not yet in cache). Beside it, the *empty autograd step* of the same "
            "rounds: a layer that allocates its output and gradients through the same "
            "autograd mechanism and computes nothing, what any layer pays. The compute "
            f"ceiling is {peak / 1e9:.3g} GFLOP/s.",
            md_table(["shape", "step", "floor", "forward pass", "weight-gradient pass",
                      "input-gradient pass", "layout copies", "between passes",
                      "Python and autograd", "empty autograd step"], table)]


def _profile_section(prof: dict[str, Any] | None) -> list[str]:
    """The profiler tables (ours, its bmm path) as markdown blocks."""
    if not prof:
        return []
    label = Shape(**prof["shape"]).label
    blocks = [f"### Where the time goes ({label}, `torch.profiler`)",
              "Self time of the heaviest aten operators per training step. The profiler "
              "adds a few microseconds to every call, so an op called hundreds of times "
              "per step is overstated; the call counts are exact. In ours, "
              "`gardenpath::locally_connected` and `LocallyConnectedFn (backward)` (or, "
              "where the C++ operator did not build, `LocalFn` and `LocalFnBackward`) are "
              "the fused kernel's forward and backward: their self time is the C code's (the "
              "tensors they allocate count as `aten::empty`)."]
    for who in ("ours", "bmm"):
        rows = [[r["op"], f"{r['calls_per_step']:g}", fmt_time(r["self_us_per_step"] / 1e6),
                 f"{100 * r['share']:.0f}%"] for r in prof["ops"][who]]
        blocks.append(md_table([f"{who}: operator", "calls per step", "self time per step",
                                "share"], rows))
    return blocks


def run(quick: bool = False, *, device: str = "auto", mem_limit_gib: float = 3.0,
        time_limit_s: float = 2.0, repeats: int = 5, rounds: int = 3,
        min_run_time_s: float = 0.3, shapes: list[Shape] | None = None,
        quiet_wait_s: float | None = None) -> dict[str, Any]:
    """Run the locally connected benchmark; returns the JSON-ready results. Before each
    pass of timing slow shapes again, waits up to ``quiet_wait_s`` for a quiet machine
    (default: QUIET_WAIT_S, and none for the quick grid, which checks once and goes on)."""
    if quiet_wait_s is None:
        quiet_wait_s = 0.0 if quick else QUIET_WAIT_S
    dev = resolve_device(device)
    env = environment(dev)
    grid = shapes or (QUICK_GRID if quick else FULL_GRID)
    log(f"local: measuring this device's ceilings ({len(grid)} shapes to run)")
    roof_start = measure_ceilings(dev)
    limit = int(mem_limit_gib * 2**30)
    # the ceilings again before every shape (2-3 s each): on a shared VM the start and end
    # measurements can both come out slow (69.6 and 76.4 GFLOP/s in one run, against
    # 87-94 in others, while ours ran as fast as ever), and a floor built on a slow
    # measurement flatters every ratio to it; the floors take the best of all
    between: list[Roofline] = []

    def run_one(i: int) -> dict[str, Any]:
        log(f"local [{i + 1}/{len(grid)}] {grid[i].label}")
        between.append(measure_ceilings(dev))
        return run_shape(grid[i], roof_start, dev, mem_limit_bytes=limit,
                         time_limit_s=time_limit_s, repeats=repeats, rounds=rounds,
                         min_run_time_s=min_run_time_s, contenders=CONTENDERS)

    first = [run_one(i) for i in range(len(grid))]
    waits: list[dict[str, Any]] = []

    def settle(slow: list[dict[str, Any]], best_mm: float | None,
               best_copy: dict[int, float]) -> None:
        log(f"local: {len(slow)} shape(s) to time again; waiting up to {quiet_wait_s:.0f} s "
            f"for every probe to run at {RETIME_BELOW:g} of the run's best")
        rec = wait_for_quiet(lambda: probe_speeds(slow, best_mm, best_copy, dev),
                             max_s=quiet_wait_s)
        log(f"local: after {rec['waited_s']:.0f} s the machine ran at "
            f"{_speeds_text(rec['speeds'])}" + ("" if rec["quiet"] else ": timing anyway"))
        waits.append(rec)

    def roof_so_far() -> Roofline:
        return functools.reduce(best_of, [roof_start, *between])

    # judged against the copy ceilings measured so far too, as machine_speed judges them,
    # those measured before each attempt of the passes included: in the run at fab71c6
    # the best 16 MiB copy ceiling of the run (55.0 GB/s) came in the second pass
    rows = retime_slow(first, run_one, roof_so_far, settle)
    log(f"local: profiling ours and its bmm path at {PROFILE_SHAPE.label}")
    ops = profile_ops(PROFILE_SHAPE, dev)
    roof_end = measure_ceilings(dev)
    roof = best_of(roof_so_far(), roof_end)
    achieved = best_achieved_flops(rows)
    flops_source = "measure.roofline: the faster of a large matmul and a convolution"
    if achieved is not None and achieved[0] > roof.peak_flops_per_s:
        # a contender beat the matmul measurement: the device can do at least that much
        roof.peak_flops_per_s, flops_source = achieved[0], f"achieved by {achieved[1]}"
    raised = raise_to_probes(roof, rows)
    for row in rows:  # floors against the best ceilings seen
        row["floor"] = floor_for(Shape(**row["shape"]), roof)
        row["conv_floor"] = floor_for(Shape(**row["shape"]), roof, sharing="conv")
    machine_speed(rows, roof)
    for row in rows:
        _ratios(row)
    finish_environment(env)
    data = {
        "benchmark": "local",
        "quick": quick,
        "environment": env,
        "ceilings": roof.as_dict(),
        "lc_path": ("fused CPU kernel, " + lc_native.status()
                    if dev.type == "cpu" and lc_native.available()
                    else "bmm (" + lc_native.status() + ")"),
        "flops_ceiling_source": flops_source,
        "bandwidth_raised_by_probes": raised,
        "ceilings_start": roof_start.as_dict(),
        "ceilings_end": roof_end.as_dict(),
        "ceilings_between": [r.as_dict() for r in between],
        "mem_limit_bytes": limit,
        "time_limit_s": time_limit_s,
        "rounds": rounds,
        "repeats": repeats,
        "retime": {"below": RETIME_BELOW, "max_more": RETIME_MAX, "when": "end of run",
                   "quiet_wait_s": quiet_wait_s, "quiet_poll_s": QUIET_POLL_S,
                   "waits": waits},
        "goals": {"vs_broadcast": GOAL_VS_BROADCAST, "vs_floor": GOAL_VS_FLOOR,
                  "floor_max_batch": GOAL_FLOOR_MAX_BATCH, "memory": GOAL_MEMORY},
        "rows": rows,
        "profile": {"shape": asdict(PROFILE_SHAPE), "ops": ops},
    }
    data["markdown"] = render(data)
    return data
