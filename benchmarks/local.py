"""The locally connected layer's training step against other ways to compute it.

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
  positions slices each patch, the patches are stacked to (L, B, K) and one batched
  matmul follows;
* ``keras2``: Keras's ``implementation=2`` (``local_conv_matmul``): one dense
  (C*H*W) x (O*Ho*Wo) kernel times a 0/1 mask, then one matmul;
* ``conv``: ``nn.Conv2d`` of the same shape (the same FLOPs per image, shared weights).

A step is ``y = layer(x); y.backward(dy)`` with ``x`` requiring grad and every ``.grad``
cleared first. At each shape all contenders are timed in the same interleaved rounds
(:func:`benchmarks.common.interleaved_timings`), so their ratios are measured side by
side under the same load. Goals (issue 28): ours at least 10x faster than
unfold-broadcast where that fits in memory, and faster than both Keras formulations; the
ratio to ``Conv2d`` is reported, not judged. So is the ratio to the floor
``max(bytes / bandwidth, FLOPs / FLOP rate)`` (bytes and FLOPs of the three passes from
:func:`gardenpath.measure.traffic.layer_traffic`; ceilings measured on this device at the
start and the end of the run, the better of the two).

A contender whose estimated memory exceeds ``mem_limit_gib`` is not run (``skipped``);
``keras1`` is also skipped where its backward (one full-size input gradient per position)
is estimated to exceed ``time_limit_s`` per step.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import (
    env_markdown,
    environment,
    finish_environment,
    fmt_ratio,
    fmt_time,
    interleaved_timings,
    log,
    md_table,
)
from gardenpath.measure.device import resolve_device
from gardenpath.measure.roofline import BandwidthPoint, Roofline
from gardenpath.measure.traffic import layer_traffic
from gardenpath.models import lc_native
from gardenpath.models.local import LocallyConnected2d

F32 = 4  # bytes per float32 element

#: Goals of issue 28, each a ratio of medians timed in the same rounds.
GOAL_VS_BROADCAST = 10.0  # ours at least this many times faster than unfold-broadcast
GOAL_VS_KERAS = 1.0  # ours faster than each Keras formulation
#: Intra-op threads by default: one, as the book's cpu profile runs the layer. On a shared
#: 2-core machine two threads stall at a barrier whenever a neighbour's process takes a
#: core, and the ratios scatter (benchmarks/README.md).
THREADS = 1


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


#: The book's shapes (chapter 'What sharing moves', params/: one factor at a time around
#: the base layer 16² C32 k3 B16; without its padding).
FULL_GRID = [
    *[Shape(s, 32, 3, 16) for s in (8, 16, 32)],
    *[Shape(16, c, 3, 16) for c in (8, 16, 64)],
    *[Shape(16, 32, k, 16) for k in (1, 5)],
    *[Shape(16, 32, 3, b) for b in (1, 4, 64)],
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
LABELS = {c.key: c.label for c in CONTENDERS}


# --------------------------------------------------------------------------- the floor


def best_of(a: Roofline, b: Roofline) -> Roofline:
    """The higher of two measurements of each ceiling (the floor should be the lowest)."""
    points = [pa if pa.bytes_per_s >= pb.bytes_per_s else pb
              for pa, pb in zip(a.bandwidth, b.bandwidth, strict=True)]
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


def floor_for(shape: Shape, roof: Roofline) -> dict[str, Any]:
    """The floor of one training step: ``max(bytes / bandwidth, FLOPs / FLOP rate)``, the
    bandwidth that of the step's working set (its six tensors)."""
    t = layer_traffic("local", shape.channels, shape.channels, shape.kernel, shape.in_size,
                      shape.batch)
    touched = 2 * (t.weight_bytes + t.input_bytes + t.output_bytes)  # W, dW, X, dX, Y, dY
    memory_s = t.total_bytes / bandwidth_for(roof.bandwidth, touched).bytes_per_s
    compute_s = t.total_flops / roof.peak_flops_per_s
    return {"floor_s": max(memory_s, compute_s),
            "bound": "memory" if memory_s >= compute_s else "compute"}


# --------------------------------------------------------------------------- one shape


def _clear(tensors: list[torch.Tensor]) -> None:
    for t in tensors:
        t.grad = None


def _check(ref: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference, relative to the reference's largest magnitude."""
    worst = 0.0
    for name, r in ref.items():
        scale = float(r.abs().max()) or 1.0
        worst = max(worst, float((got[name] - r).abs().max()) / scale)
    return worst


def _skip_reason(c: Contender, shape: Shape, mem_limit_bytes: int, time_limit_s: float,
                 bytes_per_s: float) -> str | None:
    """Why ``c`` is not run at ``shape``, or None."""
    est = c.estimate_bytes(shape)
    if est > mem_limit_bytes:
        return f"est. {est / 2**30:.1f} GiB > {mem_limit_bytes / 2**30:.1f} GiB"
    if c.key == "keras1" and _sec_keras1(shape, bytes_per_s) > time_limit_s:
        return f"est. {_sec_keras1(shape, bytes_per_s):.0f} s per step > {time_limit_s:g} s"
    return None


def run_shape(shape: Shape, device: torch.device, *, mem_limit_bytes: int,
              time_limit_s: float, bytes_per_s: float, repeats: int, rounds: int,
              min_run_time_s: float) -> dict[str, Any]:
    """Check every contender that fits against ours, then time them all in the same
    interleaved rounds; returns the shape's record (medians, IQRs, ratios)."""
    torch.manual_seed(0)
    lc_native.release()  # what earlier shapes left kept does not weigh on this one
    ref = LocallyConnected2d(shape.channels, shape.channels, shape.kernel, shape.in_size,
                             device=device)
    x = torch.randn(shape.batch, shape.channels, shape.in_size, shape.in_size,
                    device=device, requires_grad=True)
    dy = torch.randn(shape.batch, shape.channels, shape.out_size, shape.out_size,
                     device=device)
    row: dict[str, Any] = {"shape": asdict(shape), "label": shape.label, "contenders": {}}
    fns: dict[str, Callable[[], None]] = {}
    reference: dict[str, torch.Tensor] = {}
    for c in CONTENDERS:
        rec: dict[str, Any] = {}
        row["contenders"][c.key] = rec
        why = _skip_reason(c, shape, mem_limit_bytes, time_limit_s, bytes_per_s)
        if why is None and c.same_weights and c.key != "ours" and not reference:
            why = "ours did not run: nothing to check it against"
        if why is not None:
            rec.update(status="skipped", reason=why)
            continue
        built = _build_conv(ref, shape, device) if c.key == "conv" else c.build(ref, shape)
        leaves = [*built.params, x]
        _clear(leaves)
        y = built.forward(x)
        y.backward(dy)  # the check's run is also the warm-up
        got = {"y": y.detach(), "dx": x.grad.detach().clone()}
        if built.weight_grad is not None:
            got["dw"] = built.weight_grad().detach().clone()
        if c.key == "ours":
            reference = got
        elif c.same_weights:
            err = _check(reference, got)
            if err > 1e-4:
                rec.update(status="differs", reason=f"rel. err {err:.1e}")
                continue
        del got, y

        def step(built: Built = built, leaves: list[torch.Tensor] = leaves) -> None:
            _clear(leaves)
            built.forward(x).backward(dy)

        fns[c.key] = step
    log(f"  {shape.label}: timing {', '.join(fns)} in {rounds} interleaved rounds")
    timings = interleaved_timings(fns, device=device, rounds=rounds, repeats=repeats,
                                  min_run_time_s=min_run_time_s) if fns else {}
    for key, t in timings.items():
        row["contenders"][key].update(status="ok", median_s=t["median_s"], iqr_s=t["iqr_s"])
    fns.clear()
    lc_native.release()
    gc.collect()
    return row


def _median(row: dict[str, Any], key: str) -> float | None:
    rec = row["contenders"].get(key, {})
    return rec.get("median_s") if rec.get("status") == "ok" else None


def ratios(row: dict[str, Any]) -> dict[str, float | None]:
    """Each contender's median over ours (above 1: ours is faster), and ours over the
    floor."""
    ours = _median(row, "ours")
    out: dict[str, float | None] = {
        k: (_median(row, k) / ours if ours and _median(row, k) else None)
        for k in ("bmm", "broadcast", "keras1", "keras2", "conv")}
    out["floor"] = ours / row["floor"]["floor_s"] if ours else None
    return out


def goals(row: dict[str, Any]) -> dict[str, bool | None]:
    """The goals at one shape: None where the baseline did not run."""
    r = row["ratios"]
    return {"vs_broadcast": None if r["broadcast"] is None
            else r["broadcast"] >= GOAL_VS_BROADCAST,
            "vs_keras": None if r["keras1"] is None and r["keras2"] is None
            else all(v > GOAL_VS_KERAS for v in (r["keras1"], r["keras2"]) if v is not None)}


# --------------------------------------------------------------------------- report

#: The table's ratio columns: ratio key, heading.
RATIO_COLUMNS = [("broadcast", "unfold-broadcast ÷ ours"), ("keras1", "Keras 1 ÷ ours"),
                 ("keras2", "Keras 2 ÷ ours"), ("conv", "Conv2d ÷ ours"),
                 ("bmm", "bmm path ÷ ours"), ("floor", "ours ÷ floor")]


def _cell(row: dict[str, Any], key: str) -> str:
    r = row["ratios"][key]
    if r is not None:
        return fmt_ratio(r)
    rec = row["contenders"].get(key, {})
    return rec.get("status", "-") if key != "floor" else "-"


def _count(rows: list[dict[str, Any]], goal: str) -> tuple[int, int]:
    judged = [r["goals"][goal] for r in rows if r["goals"][goal] is not None]
    return sum(judged), len(judged)


def sentences(data: dict[str, Any]) -> list[str]:
    """The few sentences under the table, every number from the run."""
    rows = data["rows"]
    out = []
    met, n = _count(rows, "vs_broadcast")
    lo = min((r["ratios"]["broadcast"] for r in rows if r["ratios"]["broadcast"]),
             default=None)
    out.append(f"Ours was at least {GOAL_VS_BROADCAST:g}x faster than unfold-broadcast at "
               f"{met} of the {n} shapes where unfold-broadcast fitted in memory"
               + (f" (the smallest ratio {fmt_ratio(lo)})." if lo else "."))
    met, n = _count(rows, "vs_keras")
    out.append(f"It was faster than both Keras formulations at {met} of {n} shapes.")
    conv = [r["ratios"]["conv"] for r in rows if r["ratios"]["conv"]]
    if conv:
        out.append(f"Conv2d, which shares one filter across positions, took "
                   f"{fmt_ratio(min(conv))} to {fmt_ratio(max(conv))} of ours' time "
                   f"(median {fmt_ratio(statistics.median(conv))}); a locally connected "
                   f"layer moves L times more weight bytes.")
    floor = [r["ratios"]["floor"] for r in rows if r["ratios"]["floor"]]
    if floor:
        out.append(f"Ours took {fmt_ratio(min(floor))} to {fmt_ratio(max(floor))} of the "
                   f"floor (median {fmt_ratio(statistics.median(floor))}); reported, not "
                   f"judged.")
    below = sum(f < 1 for f in floor)
    if below:
        out.append(f"At {below} shape(s) ours ran below the floor: the ceilings, measured "
                   f"at the start and end of the run, came out slower than the machine "
                   f"ran while those shapes were timed, so there the floor is no bound.")
    return out


def render(data: dict[str, Any]) -> str:
    """Markdown: the run's conditions, one table, a few sentences."""
    rows = [[r["label"], fmt_time(_median(r, "ours")), *[_cell(r, k) for k, _ in
                                                         RATIO_COLUMNS]]
            for r in data["rows"]]
    ceil = data["ceilings"]
    return "\n\n".join([
        "## The locally connected layer" + (" (quick grid)" if data["quick"] else ""),
        env_markdown(data["environment"]),
        f"One training step (forward, then backward into the input, weights and bias). "
        f"*ours* is `LocallyConnected2d` as the book runs it, here: {data['lc_path']}. "
        f"Each ratio is a contender's median time over ours', all timed at that shape in "
        f"the same {data['rounds']} interleaved rounds (above 1: ours is faster); "
        f"*skipped*: too much memory or time, estimated. The floor is "
        f"max(bytes / bandwidth, FLOPs / FLOP rate) with this machine's ceilings "
        f"({ceil['peak_flops_per_s'] / 1e9:.1f} GFLOP/s, "
        f"{ceil['peak_bytes_per_s'] / 1e9:.1f} GB/s from memory, faster for working sets "
        f"that fit in cache).",
        md_table(["shape", "ours", *[h for _, h in RATIO_COLUMNS]], rows),
        " ".join(sentences(data)),
    ]) + "\n"


def chart(data: dict[str, Any], path: Path) -> Path:
    """An SVG of each contender's step time at each shape, in the grid's order (log time),
    drawn offline with Altair and vl-convert."""
    import altair as alt
    import vl_convert as vlc

    points = [{"shape": row["label"], "contender": LABELS[key], "ms": rec["median_s"] * 1e3}
              for row in data["rows"] for key, rec in row["contenders"].items()
              if rec.get("status") == "ok"]
    order = [row["label"] for row in data["rows"]]
    spec = alt.Chart(alt.Data(values=points)).mark_line(point=True).encode(
        x=alt.X("shape:N", sort=order, title=None, axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("ms:Q", title="training step (ms, log scale)", scale=alt.Scale(type="log")),
        color=alt.Color("contender:N", title=None, sort=list(LABELS.values())),
    ).properties(width=520, height=260)
    path.write_text(vlc.vegalite_to_svg(spec.to_dict()))
    return path


# --------------------------------------------------------------------------- run


def run(quick: bool = False, *, device: str = "auto", mem_limit_gib: float = 3.0,
        time_limit_s: float = 2.0, repeats: int = 5, rounds: int = 5,
        min_run_time_s: float = 0.3, shapes: list[Shape] | None = None,
        threads: int | None = None) -> dict[str, Any]:
    """Run the benchmark (on ``threads`` intra-op threads, default :data:`THREADS`);
    returns the JSON-ready results with their markdown."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads or THREADS)
    try:
        return _run(quick, device, mem_limit_gib, time_limit_s, repeats, rounds,
                    min_run_time_s, shapes)
    finally:
        torch.set_num_threads(before)


def _run(quick: bool, device: str, mem_limit_gib: float, time_limit_s: float, repeats: int,
         rounds: int, min_run_time_s: float, shapes: list[Shape] | None) -> dict[str, Any]:
    dev = resolve_device(device)
    env = environment(dev)
    grid = shapes or (QUICK_GRID if quick else FULL_GRID)
    log(f"local: measuring this device's ceilings ({len(grid)} shapes to run)")
    roof_start = Roofline.measure(dev, min_run_time_s=0.1)
    limit = int(mem_limit_gib * 2**30)
    rows = []
    for i, shape in enumerate(grid):
        log(f"local [{i + 1}/{len(grid)}] {shape.label}")
        rows.append(run_shape(shape, dev, mem_limit_bytes=limit, time_limit_s=time_limit_s,
                              bytes_per_s=roof_start.peak_bytes_per_s, repeats=repeats,
                              rounds=rounds, min_run_time_s=min_run_time_s))
    roof = best_of(roof_start, Roofline.measure(dev, min_run_time_s=0.1))
    for row in rows:
        row["floor"] = floor_for(Shape(**row["shape"]), roof)
        row["ratios"] = ratios(row)
        row["goals"] = goals(row)
    finish_environment(env)
    data = {
        "benchmark": "local",
        "quick": quick,
        "environment": env,
        "ceilings": {"peak_flops_per_s": roof.peak_flops_per_s,
                     "peak_bytes_per_s": roof.peak_bytes_per_s},
        "lc_path": ("fused CPU kernel, " + lc_native.status()
                    if dev.type == "cpu" and lc_native.available()
                    else "bmm (" + lc_native.status() + ")"),
        "rounds": rounds,
        "goals": {"vs_broadcast": GOAL_VS_BROADCAST, "vs_keras": GOAL_VS_KERAS},
        "rows": rows,
    }
    data["markdown"] = render(data)
    return data
