"""Chapter 3, ImageNet without sharing: what ResNet-18 and AlexNet cost with and without it.

The essay asks what ImageNet training would cost without parameter sharing. This module
answers with counts and measurements on the running device:

* **counts** (exact, on the meta device, nothing allocated): weights of every conv /
  locally connected layer and every linear layer, multiply-accumulates per image, and the
  bytes that fp32 training keeps for weights, gradients and optimizer state (SGD with
  momentum: one buffer per weight; Adam: two);
* **time**, measured one layer at a time at its real input shape (the whole locally
  connected net does not fit a CPU's memory budget; layers repeated with identical shapes
  are timed once and counted as often as they occur), at a possibly reduced width and
  two small batch sizes, then projected to full width and a training batch with the model
  in :func:`project`;
* where the whole net fits the memory budget, one whole training step measured directly,
  as a check on the layer-by-layer sum.

The projection to many workers is linear data-parallel scaling plus the ring all-reduce
of all gradients per step (:func:`gardenpath.measure.comm.ring_allreduce_time`), with
the interconnect's latency and bandwidth as stated parameters: an assumption, not a
measurement.

Published results shown beside ours (:data:`ANCHORS`): Bartunov et al. (NeurIPS 2018),
Pogodin et al. (NeurIPS 2021), Taigman et al. (DeepFace, CVPR 2014).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import altair as alt
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call

from gardenpath import charts
from gardenpath.measure.comm import ring_allreduce_time
from gardenpath.measure.flops import conv2d_flops, local2d_flops
from gardenpath.measure.timing import time_fn
from gardenpath.models import lc_native
from gardenpath.models.local import LocallyConnected2d
from gardenpath.models.nets import SPATIAL_TYPES, alexnet_like, layer_kind, resnet18

#: Images in the ILSVRC-2012 training set (Russakovsky et al., IJCV 2015).
IMAGENET_TRAIN_IMAGES = 1_281_167

#: fp32: bytes per weight, per gradient, per optimizer buffer.
FP32_BYTES = 4

#: Optimizer buffers per weight: SGD with momentum keeps one, Adam two (m and v).
OPTIMIZER_BUFFERS = {"sgd_momentum": 1, "adam": 2}

#: The verdict's rule: the claim (training time depends on sharing) is supported when the
#: locally connected net's projected multi-worker training time is at least this many
#: times the convolutional one's for every net, not supported when it is below
#: :data:`NOT_SUPPORTED_BELOW` for every net, and mixed otherwise.
SUPPORTED_AT = 2.0
NOT_SUPPORTED_BELOW = 1.25

NETS: dict[str, Callable[..., nn.Module]] = {"resnet18": resnet18, "alexnet_like": alexnet_like}
SHARINGS = ("conv", "local")

#: Defaults of the notebook's parameters cell (the ``cpu`` profile); used by
#: :func:`memory_estimate` when the pipeline passes a partial dict. A test checks they
#: equal the notebook's.
DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "seed": 0,
    "in_size": 224,
    "width": 64,
    "time_width": 64,
    "time_batches": [16, 64],
    "time_fraction": 0.25,
    "min_run_time_s": 0.5,
    "threads": 1,
    "whole_net_budget_gb": 2.0,
    "batch_size": 256,
    "num_epochs": 90,
    "workers": 8,
    "link_bandwidth_gbs": 200.0,
    "link_latency_us": 5.0,
    "accelerator_memory_gb": 80.0,
}

#: Published numbers, with their sources, shown beside ours. Each says its data set.
ANCHORS: dict[str, dict[str, Any]] = {
    "bartunov_2018": {
        "source": "Bartunov, Santoro, Richards, Marris, Hinton, Lillicrap, NeurIPS 2018",
        "cite": "bartunov_2018",
        "dataset": "ImageNet (ILSVRC-2012), top-1 test error, trained with backprop",
        "conv_top1_error_pct": 63.93,
        "local_top1_error_pct": 71.43,
        "conv_top5_error_pct": 40.17,
        "local_top5_error_pct": 49.07,
        "note": "their locally connected net had to be narrowed: a naive replacement of "
                "every convolution was computationally prohibitive",
    },
    "pogodin_2021": {
        "source": "Pogodin, Mehta, Lillicrap, Latham, NeurIPS 2021",
        "cite": "pogodin_2021",
        "dataset": "ImageNet, locally connected ResNet-18 with dynamic weight sharing",
        "claim": "approaches convolutional top-1 accuracy ('nearly convolutional "
                 "performance', in their abstract)",
        "note": "exact top-1 numbers are not reproduced here: we could not confirm them "
                "from a stored copy of the paper's tables",
    },
    "taigman_2014": {
        "source": "Taigman, Yang, Ranzato, Wolf, DeepFace, CVPR 2014",
        "cite": "taigman_2014",
        "dataset": "faces (SFC training set; LFW 97.35% accuracy)",
        "parameters_over": 120_000_000,
        "note": "more than 120 M parameters, mostly in three locally connected layers",
    },
}


# ---------------------------------------------------------------------------- counting


def build(net: str, sharing: str, width: int, in_size: int,
          device: torch.device | str | None = "meta") -> nn.Module:
    """One of :data:`NETS` with conv or locally connected layers (meta by default)."""
    if net not in NETS:
        raise ValueError(f"unknown net {net!r}: choose from {sorted(NETS)}")
    return NETS[net](sharing, width=width, in_size=in_size, device=device)


@dataclass
class LayerRow:
    """One weight layer of a net, with the shapes it sees for one image.

    Attributes:
        name: dotted module name (``layer2.0.conv1``, ``classifier.1``).
        kind: ``"conv"``, ``"local"`` or ``"linear"``.
        module: the layer (on the meta device).
        in_shape: input shape of one image, without the batch dimension.
        out_shape: output shape of one image.
        weights: its weight count (no bias).
        params: weights plus bias.
        macs: multiply-accumulates of the forward pass for one image.
        train_flops: FLOPs of forward, input gradient and weight gradient for one image
            (2 FLOPs per MAC, three passes; :mod:`gardenpath.measure.flops`).
        first: whether its input is the image (no input gradient is needed).
    """

    name: str
    kind: str
    module: nn.Module
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weights: int
    params: int
    macs: int
    train_flops: int
    first: bool = False

    def key(self) -> tuple:
        """What makes two layers time alike: kind, shapes, kernel, stride, padding, bias."""
        m = self.module
        geometry = tuple(getattr(m, a, None) for a in ("kernel_size", "stride", "padding"))
        has_bias = getattr(m, "bias", None) is not None
        return (self.kind, self.in_shape, self.out_shape, geometry, has_bias, self.first)


def _train_flops(kind: str, m: nn.Module, in_shape: tuple[int, ...]) -> int:
    """Training FLOPs for one image from the measure.flops formulas (3 passes)."""
    if kind == "linear":
        return 3 * 2 * m.in_features * m.out_features
    fn = conv2d_flops if kind == "conv" else local2d_flops
    stride = m.stride
    padding = m.padding
    return fn(m.in_channels, m.out_channels, m.kernel_size, in_shape[1:], 1, stride,
              padding).total


def walk(net: nn.Module, in_size: int) -> list[LayerRow]:
    """Every conv, locally connected and linear layer of ``net``, in execution order.

    One forward pass over a meta batch of one image (``torch.func.functional_call``
    with meta copies of the parameters), so nothing is allocated or computed.
    """
    rows: list[LayerRow] = []

    def hook(name: str) -> Callable[..., None]:
        def record(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            x = args[0]
            if isinstance(module, nn.Linear):
                kind, fan_in = "linear", module.in_features
            else:
                kind = layer_kind(module)
                fan_in = (module.fan_in if isinstance(module, LocallyConnected2d)
                          else module.weight[0].numel())
            in_shape, out_shape = tuple(x.shape[1:]), tuple(out.shape[1:])
            params = sum(p.numel() for p in module.parameters())
            rows.append(LayerRow(name, kind, module, in_shape, out_shape,
                                 module.weight.numel(), params, out[0].numel() * fan_in,
                                 _train_flops(kind, module, in_shape), first=not rows))
        return record

    targets = [(n, m) for n, m in net.named_modules()
               if isinstance(m, (*SPATIAL_TYPES, nn.Linear))
               and not any(n.startswith(p + ".") for p, q in net.named_modules()
                           if p and isinstance(q, SPATIAL_TYPES))]
    handles = [m.register_forward_hook(hook(n)) for n, m in targets]
    meta = {n: torch.empty_like(t, device="meta")
            for n, t in [*net.named_parameters(), *net.named_buffers()]}
    try:
        with torch.no_grad():
            functional_call(net, meta, (torch.empty(1, 3, in_size, in_size, device="meta"),))
    finally:
        for h in handles:
            h.remove()
    return rows


@dataclass
class NetCount:
    """Exact counts for one net and sharing at one width (fp32 training)."""

    net: str
    sharing: str
    width: int
    in_size: int
    spatial_weights: int
    parameters: int
    macs_per_image: int
    train_flops_per_image: int
    weights_bytes: int
    grads_bytes: int
    sgd_momentum_bytes: int
    adam_bytes: int

    @property
    def total_sgd_bytes(self) -> int:
        """Weights + gradients + one momentum buffer, bytes."""
        return self.weights_bytes + self.grads_bytes + self.sgd_momentum_bytes

    @property
    def total_adam_bytes(self) -> int:
        """Weights + gradients + Adam's two moment buffers, bytes."""
        return self.weights_bytes + self.grads_bytes + self.adam_bytes


def count(net_name: str, sharing: str, width: int, in_size: int) -> tuple[NetCount, list]:
    """Counts of one net (built on meta) and its layer rows."""
    net = build(net_name, sharing, width, in_size)
    rows = walk(net, in_size)
    params = sum(p.numel() for p in net.parameters())
    spatial = sum(r.weights for r in rows if r.kind != "linear")
    nc = NetCount(
        net=net_name, sharing=sharing, width=width, in_size=in_size,
        spatial_weights=spatial, parameters=params,
        macs_per_image=sum(r.macs for r in rows),
        train_flops_per_image=sum(r.train_flops for r in rows),
        weights_bytes=FP32_BYTES * params,
        grads_bytes=FP32_BYTES * params,
        sgd_momentum_bytes=FP32_BYTES * params * OPTIMIZER_BUFFERS["sgd_momentum"],
        adam_bytes=FP32_BYTES * params * OPTIMIZER_BUFFERS["adam"],
    )
    return nc, rows


# ---------------------------------------------------------------------------- memory


def layer_step_bytes(row: LayerRow, batch: int) -> int:
    """Bytes one layer's timed training step holds at once, an upper estimate.

    ``4 (3 P + 2 B in + 2 B out + U)``: weights, gradient and momentum (``P`` params);
    input and its gradient, output and its gradient; ``U`` the unfolded input of a
    locally connected layer on its ``bmm`` path (CUDA, or no C compiler), kept three times
    (``unfold``, its permuted copy for the batched matmul, and its gradient: ``3 B K L``;
    the fused CPU kernel keeps none, so this over-estimates there), or once for a
    convolution's im2col workspace.
    """
    n_in, n_out = math.prod(row.in_shape), math.prod(row.out_shape)
    unfold = 0
    if row.kind in ("conv", "local"):
        m = row.module
        k = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        positions = row.out_shape[1] * row.out_shape[2]
        unfold = (3 if row.kind == "local" else 1) * batch * k * positions
    return FP32_BYTES * (3 * row.params + 2 * batch * n_in + 2 * batch * n_out + unfold)


def whole_net_step_bytes(rows: Sequence[LayerRow], params: int, batch: int) -> int:
    """Bytes of a whole-net training step, an upper estimate.

    Weights, gradients and momentum (``3 P``), plus every layer's activations kept for
    the backward pass counted as in :func:`layer_step_bytes` without the weights, plus
    as much again for the batch-norm and ReLU outputs between them.
    """
    act = sum(layer_step_bytes(r, batch) - FP32_BYTES * 3 * r.params for r in rows)
    return FP32_BYTES * 3 * params + 2 * act


def memory_estimate(params: dict) -> int:
    """Bytes the chapter's timing needs at most with these parameters.

    The largest single layer step (the timed strip of it) at the timed width and largest
    batch, or a whole-net
    step where it fits ``whole_net_budget_gb`` (the chapter skips whole-net timing above
    the budget, so the budget bounds it).
    """
    p = {**DEFAULTS, **(params or {})}
    batch = max(p["time_batches"])
    need = 0
    for net_name in NETS:
        for sharing in SHARINGS:
            nc, rows = count(net_name, sharing, p["time_width"], p["in_size"])
            need = max(need, *(layer_step_bytes(strip(r, p["time_fraction"]), batch)
                               for r in rows))
            whole = whole_net_step_bytes(rows, nc.parameters, min(p["time_batches"]))
            if whole <= p["whole_net_budget_gb"] * 1e9:
                need = max(need, whole)
    return int(need)


# ---------------------------------------------------------------------------- timing


def strip(row: LayerRow, fraction: float) -> LayerRow:
    """The same layer cut to a horizontal strip of about ``fraction`` of its output rows.

    Every output position of a conv or locally connected layer does the same work (one
    ``K x O`` product per image), so timing a strip of ``r`` of the ``H_out`` rows and
    scaling by the ratio of MACs measures the whole layer at a fraction of the memory
    and time. The strip is an interior one: its input is the ``(r - 1) s + k`` rows it
    needs, with no vertical padding. A locally connected strip holds only its own
    positions' filters, so its weights scale with it too. Linear layers, and
    ``fraction >= 1``, are returned unchanged.
    """
    if row.kind == "linear" or fraction >= 1:
        return row
    m = row.module
    (kh, kw), (sh, sw), (_, pw) = m.kernel_size, m.stride, m.padding
    c, _, w_in = row.in_shape
    o, h_out, w_out = row.out_shape
    r = max(1, round(h_out * fraction))
    if r >= h_out:
        return row
    rows_in = (r - 1) * sh + kh
    bias = m.bias is not None
    if row.kind == "local":
        mod: nn.Module = LocallyConnected2d(c, o, (kh, kw), (rows_in, w_in), (sh, sw), (0, pw),
                                            bias, device="meta")
    else:
        mod = nn.Conv2d(c, o, (kh, kw), (sh, sw), (0, pw), bias=bias, device="meta")
    params = sum(q.numel() for q in mod.parameters())
    macs = o * r * w_out * c * kh * kw
    return LayerRow(row.name, row.kind, mod, (c, rows_in, w_in), (o, r, w_out),
                    mod.weight.numel(), params, macs, 3 * 2 * macs, row.first)


def _make_layer(row: LayerRow, device: torch.device, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    m = row.module
    if row.kind == "linear":
        return nn.Linear(m.in_features, m.out_features, bias=m.bias is not None, device=device)
    if row.kind == "local":
        return LocallyConnected2d(m.in_channels, m.out_channels, m.kernel_size, m.in_size,
                                  m.stride, m.padding, m.bias is not None, device=device)
    return nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                     bias=m.bias is not None, device=device)


@dataclass
class LayerTiming:
    """Measured time of one layer configuration (or a strip of it), and its cost model.

    ``fwd_bwd_s[i]`` is the median time of forward plus backward of the timed layer at
    ``batches[i]``; ``t(B) = fixed_s + per_image_s * B`` is the straight line through the
    smallest and largest batch (see :func:`fit_line`); ``optimizer_s`` is one SGD
    momentum update of the timed layer's parameters. ``timed_params`` and
    ``timed_macs`` (per image) describe what was timed, ``names`` every layer of the net
    with this configuration.
    """

    key: str
    names: list[str]
    kind: str
    timed_params: int
    timed_macs: int
    timed_in_shape: list[int]
    batches: list[int]
    fwd_bwd_s: list[float]
    iqr_s: list[float]
    optimizer_s: float
    fixed_s: float
    per_image_s: float
    fallback: bool = False
    warnings: list[str] = field(default_factory=list)


def fit_line(batches: Sequence[int], times: Sequence[float]) -> tuple[float, float, bool]:
    """``(fixed_s, per_image_s, fallback)``: the line through the first and last point.

    Both coefficients must be >= 0. When noise makes the slope <= 0 or the intercept < 0,
    the line through the origin and the largest batch's point is used instead
    (``fallback`` is then True): all of its time counted per image.
    """
    b0, b1, t0, t1 = batches[0], batches[-1], times[0], times[-1]
    if b1 == b0:
        return 0.0, t1 / b1, False
    slope = (t1 - t0) / (b1 - b0)
    fixed = t0 - slope * b0
    if slope <= 0 or fixed < 0:
        return 0.0, t1 / b1, True
    return fixed, slope, False


def time_layer(row: LayerRow, batches: Sequence[int], device: torch.device, seed: int,
               min_run_time_s: float) -> tuple[list, list, float, list[str]]:
    """Median fwd+bwd time at each batch, and one SGD momentum step, for one layer.

    Gradients stay allocated between calls (accumulated in place), so the time is the
    computation's and not the operating system's cost of fresh allocations. The first
    layer of a net gets no input gradient, as in training.
    """
    layer = _make_layer(row, device, seed)
    opt = torch.optim.SGD(layer.parameters(), lr=1e-3, momentum=0.9)
    medians, iqrs, notes = [], [], []
    g = torch.Generator().manual_seed(seed)
    for b in batches:
        x = torch.randn(b, *row.in_shape, generator=g).to(device)
        x.requires_grad_(not row.first)
        gy = torch.randn(b, *row.out_shape, generator=g).to(device)

        def step(x: torch.Tensor = x, gy: torch.Tensor = gy) -> None:
            layer(x).backward(gy)

        t = time_fn(step, device=device, warmup=1, min_run_time_s=min_run_time_s)
        medians.append(t.median_s)
        iqrs.append(t.iqr_s)
        if t.warning:
            notes.append(f"batch {b}: {t.warning}")
    t_opt = time_fn(opt.step, device=device, warmup=1, min_run_time_s=min_run_time_s)
    return medians, iqrs, t_opt.median_s, notes


def time_net_layers(rows: dict[str, Sequence[LayerRow]], batches: Sequence[int],
                    fraction: float, device: torch.device, seed: int,
                    min_run_time_s: float) -> dict[str, list[LayerTiming]]:
    """Time each distinct layer configuration of each version of a net once.

    ``rows`` maps a sharing (``"conv"``, ``"local"``) to the net's layer rows. Layers with
    identical configurations (ResNet's repeated blocks) share one timing, and so do
    layers identical in both versions (the linear layers), which are timed once. The
    versions are timed layer by layer in turn, conv then locally connected, so that a
    change in the machine's load over the run affects both alike.
    """
    groups: dict[str, dict[tuple, list[LayerRow]]] = {}
    for sharing, rs in rows.items():
        for r in rs:
            groups.setdefault(sharing, {}).setdefault(r.key(), []).append(r)
    done: dict[tuple, tuple] = {}
    out: dict[str, list[LayerTiming]] = {sharing: [] for sharing in rows}
    keys = [list(g) for g in groups.values()]
    for i in range(max(len(k) for k in keys)):
        for sharing, g in groups.items():
            ks = list(g)
            if i >= len(ks):
                continue
            same = g[ks[i]]
            timed = strip(same[0], fraction)
            key = (ks[i], fraction)
            if key not in done:
                done[key] = time_layer(timed, batches, device, seed, min_run_time_s)
            med, iqr, t_opt, notes = done[key]
            fixed, per_image, fallback = fit_line(batches, med)
            out[sharing].append(LayerTiming(
                timed.name, [s.name for s in same], timed.kind, timed.params, timed.macs,
                list(timed.in_shape), list(batches), med, iqr, t_opt, fixed, per_image,
                fallback, notes))
    return out


def time_whole_net(net_name: str, sharing: str, width: int, in_size: int, batch: int,
                   device: torch.device, seed: int, min_run_time_s: float) -> float:
    """Median time of one whole training step (forward, loss, backward, SGD momentum)."""
    from gardenpath.data import synthetic_imagenet_batch

    torch.manual_seed(seed)
    net = build(net_name, sharing, width, in_size, device=device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    x, y = synthetic_imagenet_batch(batch, in_size, seed=seed, device=device)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=False)
        loss_fn(net(x), y).backward()
        opt.step()

    t = time_fn(step, device=device, warmup=1, min_run_time_s=min_run_time_s)
    return t.median_s


# ---------------------------------------------------------------------------- projection


@dataclass
class Projection:
    """Projected training time of one net and sharing (see :func:`project`)."""

    net: str
    sharing: str
    batch_size: int
    step_s: float
    compute_s: float
    optimizer_s: float
    allreduce_s: float
    epoch_one_s: float
    total_one_s: float
    epoch_workers_s: float
    total_workers_s: float
    workers: int


def step_time(timings: Sequence[LayerTiming], full_rows: Sequence[LayerRow],
              batch: int) -> tuple[float, float]:
    """Projected ``(compute_s, optimizer_s)`` of one step of the full layers at ``batch``.

    For every layer: ``(M / m) (fixed_s + per_image_s B)`` for forward and backward,
    with ``M / m`` its MACs per image over the timed configuration's, and
    ``(P / p) optimizer_s`` with ``P / p`` the ratio of parameters. The ratios cover a
    strip (:func:`strip`) and a narrower width; scaling linearly assumes the full layer
    runs at the timed one's efficiency.
    """
    full = {r.name: r for r in full_rows}
    compute = optim = 0.0
    for t in timings:
        for name in t.names:
            r = full[name]
            compute += r.macs / t.timed_macs * (t.fixed_s + t.per_image_s * batch)
            optim += r.params / t.timed_params * t.optimizer_s
    return compute, optim


def project(net: str, sharing: str, timings: Sequence[LayerTiming],
            full_rows: Sequence[LayerRow], parameters: int, batch: int, epochs: int,
            workers: int, alpha_s: float, beta_s_per_byte: float,
            images: int = IMAGENET_TRAIN_IMAGES) -> Projection:
    """Training time projected from layer timings.

    One device: ``ceil(N / B)`` steps per epoch, each :func:`step_time`. ``p`` workers,
    data parallel: each takes ``B`` images per step, so ``ceil(N / (p B))`` steps, each
    the one-device step plus a ring all-reduce of all fp32 gradients
    (``ring_allreduce_time(4 P, p, alpha, beta)``), with no overlap of communication and
    computation (an upper bound; DDP overlaps them in part).
    """
    compute, optim = step_time(timings, full_rows, batch)
    step = compute + optim
    ar = ring_allreduce_time(FP32_BYTES * parameters, workers, alpha_s, beta_s_per_byte)
    epoch_one = math.ceil(images / batch) * step
    epoch_p = math.ceil(images / (workers * batch)) * (step + ar)
    return Projection(net, sharing, batch, step, compute, optim, ar, epoch_one,
                      epochs * epoch_one, epoch_p, epochs * epoch_p, workers)


def verdict(time_ratios: dict[str, float]) -> str:
    """The chapter's verdict from each net's LC/conv projected multi-worker time ratio."""
    values = list(time_ratios.values())
    if values and all(r >= SUPPORTED_AT for r in values):
        return "supported"
    if values and all(r < NOT_SUPPORTED_BELOW for r in values):
        return "not supported"
    return "mixed"


# ---------------------------------------------------------------------------- experiment


def run(params: dict, device: torch.device) -> dict[str, Any]:
    """The whole chapter experiment; returns tables (lists of dicts) and raw results."""
    p = {**DEFAULTS, **params}
    if p["time_width"] > p["width"]:
        raise ValueError("time_width must not exceed width")
    threads_before = torch.get_num_threads()
    if p["threads"] > 0:
        torch.set_num_threads(p["threads"])
    try:
        return _run(p, device)
    finally:
        torch.set_num_threads(threads_before)


def _run(p: dict[str, Any], device: torch.device) -> dict[str, Any]:
    alpha = p["link_latency_us"] * 1e-6
    beta = 1.0 / (p["link_bandwidth_gbs"] * 1e9)
    counts, layers, timings, projections, whole = [], [], [], [], []
    budget = p["whole_net_budget_gb"] * 1e9
    for net_name in NETS:
        full = {sh: count(net_name, sh, p["width"], p["in_size"]) for sh in SHARINGS}
        timed = {sh: count(net_name, sh, p["time_width"], p["in_size"]) for sh in SHARINGS}
        lts = time_net_layers({sh: timed[sh][1] for sh in SHARINGS}, p["time_batches"],
                              p["time_fraction"], device, p["seed"], p["min_run_time_s"])
        for sharing in SHARINGS:
            nc, full_rows = full[sharing]
            tc, timed_rows = timed[sharing]
            lt = lts[sharing]
            counts.append(nc)
            for r in full_rows:
                layers.append({"net": net_name, "sharing": sharing, "layer": r.name,
                               "kind": r.kind, "weights": r.weights, "params": r.params,
                               "macs": r.macs})
            timings.append((net_name, sharing, lt))
            projections.append(project(net_name, sharing, lt, full_rows, nc.parameters,
                                       p["batch_size"], p["num_epochs"], p["workers"],
                                       alpha, beta))
            b = min(p["time_batches"])
            need = whole_net_step_bytes(timed_rows, tc.parameters, b)
            entry = {"net": net_name, "sharing": sharing, "width": p["time_width"],
                     "batch": b, "estimate_bytes": need, "measured_s": None,
                     "layer_sum_s": None}
            if need <= budget:
                entry["measured_s"] = time_whole_net(net_name, sharing, p["time_width"],
                                                     p["in_size"], b, device, p["seed"],
                                                     p["min_run_time_s"])
                c, o = step_time(lt, timed_rows, b)
                entry["layer_sum_s"] = c + o
            whole.append(entry)
    return {"counts": counts, "layers": layers, "timings": timings,
            "projections": projections, "whole": whole, "alpha_s": alpha,
            "beta_s_per_byte": beta, "params": p, "threads": torch.get_num_threads()}


def summarise(res: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """``(numbers, measurements, verdict, why)`` from :func:`run`'s result.

    ``numbers`` holds what a rerun reproduces exactly (counts, FLOPs, bytes);
    ``measurements`` the times and everything projected from them.
    """
    p = res["params"]
    numbers: dict[str, Any] = {"imagenet_train_images": IMAGENET_TRAIN_IMAGES,
                               "supported_at": SUPPORTED_AT,
                               "not_supported_below": NOT_SUPPORTED_BELOW}
    by = {(c.net, c.sharing): c for c in res["counts"]}
    for (net, sharing), c in by.items():
        pre = f"{net}_{sharing}_"
        numbers[pre + "spatial_weights"] = c.spatial_weights
        numbers[pre + "parameters"] = c.parameters
        numbers[pre + "macs_per_image"] = c.macs_per_image
        numbers[pre + "train_gflops_per_image"] = c.train_flops_per_image / 1e9
        numbers[pre + "weights_gb"] = c.weights_bytes / 1e9
        numbers[pre + "sgd_gb"] = c.total_sgd_bytes / 1e9
        numbers[pre + "adam_gb"] = c.total_adam_bytes / 1e9
        numbers[pre + "adam_fits"] = c.total_adam_bytes <= p["accelerator_memory_gb"] * 1e9
        numbers[pre + "gradient_allreduce_gb"] = c.weights_bytes / 1e9
    for net in NETS:
        conv, local = by[(net, "conv")], by[(net, "local")]
        numbers[f"{net}_weight_ratio"] = local.spatial_weights / conv.spatial_weights
        numbers[f"{net}_param_ratio"] = local.parameters / conv.parameters
        numbers[f"{net}_macs_equal"] = local.macs_per_image == conv.macs_per_image
        numbers[f"{net}_epoch_pflops"] = (conv.train_flops_per_image
                                          * IMAGENET_TRAIN_IMAGES / 1e15)

    meas: dict[str, Any] = {}
    ratios = {}
    proj = {(q.net, q.sharing): q for q in res["projections"]}
    for (net, sharing), q in proj.items():
        pre = f"{net}_{sharing}_"
        meas[pre + "step_s"] = q.step_s
        meas[pre + "compute_s"] = q.compute_s
        meas[pre + "optimizer_s"] = q.optimizer_s
        meas[pre + "allreduce_s"] = q.allreduce_s
        meas[pre + "epoch_one_h"] = q.epoch_one_s / 3600
        meas[pre + "total_one_days"] = q.total_one_s / 86400
        meas[pre + "epoch_workers_h"] = q.epoch_workers_s / 3600
        meas[pre + "total_workers_days"] = q.total_workers_s / 86400
    for net in NETS:
        a, b = proj[(net, "local")], proj[(net, "conv")]
        ratios[net] = a.total_workers_s / b.total_workers_s
        meas[f"{net}_time_ratio_workers"] = ratios[net]
        meas[f"{net}_time_ratio_one"] = a.total_one_s / b.total_one_s
    for net, sharing, lt in res["timings"]:
        meas[f"{net}_{sharing}_layer_timings"] = [asdict(t) for t in lt]
    for w in res["whole"]:
        pre = f"{w['net']}_{w['sharing']}_whole_"
        meas[pre + "measured_s"] = w["measured_s"]
        meas[pre + "layer_sum_s"] = w["layer_sum_s"]
    v = verdict(ratios)
    parts = [f"{NET_LABELS[net]}: projected {p['workers']}-worker training time "
             f"{ratios[net]:.1f}x without sharing, weights "
             f"{numbers[f'{net}_weight_ratio']:.0f}x, MACs equal"
             for net in NETS]
    why = ("; ".join(parts) + f" (rule: supported if every time ratio is at least "
           f"{SUPPORTED_AT}, not supported if every one is below {NOT_SUPPORTED_BELOW}).")
    return numbers, meas, v, why


# ---------------------------------------------------------------------------- tables, charts

NET_LABELS = {"resnet18": "ResNet-18", "alexnet_like": "AlexNet-like"}
SHARING_LABELS = {"conv": "conv (shared)", "local": "locally connected"}


def counts_table(res: dict[str, Any]) -> pd.DataFrame:
    """One row per net and sharing: weights, parameters, GMACs, training memory (GB)."""
    rows = []
    for c in res["counts"]:
        rows.append({
            "net": NET_LABELS[c.net], "layers": SHARING_LABELS[c.sharing],
            "conv/LC weights": f"{c.spatial_weights:,}", "all parameters": f"{c.parameters:,}",
            "GMACs per image": round(c.macs_per_image / 1e9, 3),
            "weights GB": round(c.weights_bytes / 1e9, 2),
            "+ grads + SGD momentum GB": round(c.total_sgd_bytes / 1e9, 2),
            "+ grads + Adam GB": round(c.total_adam_bytes / 1e9, 2),
        })
    return pd.DataFrame(rows).set_index(["net", "layers"])


def projection_table(res: dict[str, Any]) -> pd.DataFrame:
    """One row per net and sharing: projected step, epoch and total times."""
    rows = []
    for q in res["projections"]:
        rows.append({
            "net": NET_LABELS[q.net], "layers": SHARING_LABELS[q.sharing],
            f"step at batch {q.batch_size} (s)": round(q.step_s, 2),
            "of which optimizer (s)": round(q.optimizer_s, 3),
            "gradient all-reduce (s)": round(q.allreduce_s, 4),
            "epoch, 1 device (h)": round(q.epoch_one_s / 3600, 1),
            "total, 1 device (days)": round(q.total_one_s / 86400, 1),
            f"total, {q.workers} workers (days)": round(q.total_workers_s / 86400, 1),
        })
    return pd.DataFrame(rows).set_index(["net", "layers"])


def whole_table(res: dict[str, Any]) -> pd.DataFrame:
    """Whole-net step measured (where it fit) beside the layer-by-layer estimate."""
    rows = []
    for w in res["whole"]:
        fit = w["measured_s"] is not None
        rows.append({
            "net": NET_LABELS[w["net"]], "layers": SHARING_LABELS[w["sharing"]],
            "width": w["width"], "batch": w["batch"],
            "estimated memory GB": round(w["estimate_bytes"] / 1e9, 2),
            "whole step measured (s)": round(w["measured_s"], 4) if fit else "over budget",
            "layer-by-layer estimate (s)": round(w["layer_sum_s"], 4) if fit else "",
        })
    return pd.DataFrame(rows).set_index(["net", "layers"])


def anchors_table() -> pd.DataFrame:
    """The published results beside which the chapter puts its own."""
    b, pg, t = ANCHORS["bartunov_2018"], ANCHORS["pogodin_2021"], ANCHORS["taigman_2014"]
    return pd.DataFrame([
        {"source": b["source"], "data set": b["dataset"],
         "result": f"top-1 error {b['conv_top1_error_pct']}% conv vs "
                   f"{b['local_top1_error_pct']}% locally connected (top-5 "
                   f"{b['conv_top5_error_pct']}% vs {b['local_top5_error_pct']}%)",
         "note": b["note"]},
        {"source": pg["source"], "data set": pg["dataset"], "result": pg["claim"],
         "note": pg["note"]},
        {"source": t["source"], "data set": t["dataset"],
         "result": f"over {t['parameters_over']:,} parameters", "note": t["note"]},
    ]).set_index("source")


def _color(field_name: str = "sharing") -> alt.Color:
    labels = [SHARING_LABELS[k] for k in SHARINGS]
    return alt.Color(f"{field_name}:N", title="layers",
                     scale=alt.Scale(domain=labels,
                                     range=[charts.SHARING_COLORS[k] for k in SHARINGS]))


def _dumbbell(df: pd.DataFrame, y: str, x: str, x_title: str, tooltip: list,
              title: str, row_px: int = 16) -> alt.LayerChart:
    """Conv and locally connected values on one row each, joined by a line; log x."""
    order = list(dict.fromkeys(df[y]))
    base = alt.Chart(df).encode(
        y=alt.Y(f"{y}:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        x=alt.X(f"{x}:Q", scale=alt.Scale(type="log"), title=x_title),
    )
    line = base.mark_line(color="#b0b0b0", strokeWidth=1.5).encode(detail=f"{y}:N")
    dots = base.mark_point(filled=True, size=70, opacity=1).encode(color=_color(),
                                                                    tooltip=tooltip)
    return (line + dots).properties(height=max(120, row_px * len(order)), title=title)


def chart_weights(res: dict[str, Any]) -> alt.LayerChart:
    """Every layer of both nets: parameters with and without sharing (log scale)."""
    df = pd.DataFrame(res["layers"])
    df["net"] = df["net"].map(NET_LABELS)
    df["sharing"] = df["sharing"].map(SHARING_LABELS)
    df["layer"] = df["net"] + " " + df["layer"]
    tooltip = ["layer", "sharing", alt.Tooltip("params:Q", format=","),
               alt.Tooltip("macs:Q", format=",", title="MACs per image")]
    return _dumbbell(df, "layer", "params", "parameters (log scale)", tooltip,
                     "Parameters per layer at full width", row_px=14)


def chart_memory(res: dict[str, Any]) -> alt.LayerChart:
    """Bytes for weights + gradients + optimizer state, against one accelerator."""
    accel = res["params"]["accelerator_memory_gb"]
    rows = []
    for c in res["counts"]:
        for opt, total in (("SGD with momentum", c.total_sgd_bytes),
                           ("Adam", c.total_adam_bytes)):
            rows.append({"training": f"{NET_LABELS[c.net]}, {opt}",
                         "sharing": SHARING_LABELS[c.sharing], "GB": total / 1e9})
    df = pd.DataFrame(rows)
    tooltip = ["training", "sharing", alt.Tooltip("GB:Q", format=".3f")]
    dots = _dumbbell(df, "training", "GB", "GB in fp32 (log scale)", tooltip,
                     "Training memory: weights, gradients, optimizer state", row_px=40)
    rule_df = pd.DataFrame({"GB": [accel], "label": [f"one accelerator: {accel:g} GB"]})
    rule = alt.Chart(rule_df).mark_rule(strokeDash=[4, 3], color="#444").encode(x="GB:Q")
    text = alt.Chart(rule_df).mark_text(align="right", baseline="top", dx=-4, y=2,
                                        color="#444").encode(x="GB:Q", text="label:N")
    return alt.layer(dots, rule, text)


def chart_layer_time(res: dict[str, Any]) -> alt.LayerChart:
    """Each layer configuration's projected step time at the training batch (log scale)."""
    batch = res["params"]["batch_size"]
    rows_by = {}
    for c in res["counts"]:
        _, full_rows = count(c.net, c.sharing, c.width, c.in_size)
        rows_by[(c.net, c.sharing)] = {r.name: r for r in full_rows}
    data = []
    for net, sharing, lt in res["timings"]:
        full = rows_by[(net, sharing)]
        for t in lt:
            scale = sum(full[n].macs for n in t.names) / t.timed_macs
            label = f"{NET_LABELS[net]} {t.key}" + (f" (x{len(t.names)})" if len(t.names) > 1
                                                     else "")
            data.append({"layer": label, "sharing": SHARING_LABELS[sharing],
                         "seconds": scale * (t.fixed_s + t.per_image_s * batch),
                         "fixed part (s)": scale * t.fixed_s,
                         "timed batches": str(t.batches),
                         "timed strip input": str(t.timed_in_shape),
                         "measured fwd+bwd (s)": str([round(v, 4) for v in t.fwd_bwd_s]),
                         "fit": "fallback: all per image" if t.fallback else "line"})
    df = pd.DataFrame(data)
    tooltip = ["layer", "sharing", alt.Tooltip("seconds:Q", format=".3f"),
               alt.Tooltip("fixed part (s):Q", format=".3f"), "timed strip input",
               "timed batches", "measured fwd+bwd (s)", "fit"]
    return _dumbbell(df, "layer", "seconds",
                     f"forward + backward per step at batch {batch}, s (log scale)", tooltip,
                     "Time per layer configuration, projected from layer timings")


def chart_projection(res: dict[str, Any]) -> alt.LayerChart:
    """Projected days to train for the chosen epochs, one device and many workers."""
    data = []
    for q in res["projections"]:
        for setting, total in (("1 device", q.total_one_s),
                               (f"{q.workers} workers", q.total_workers_s)):
            data.append({"run": f"{NET_LABELS[q.net]}, {setting}",
                         "sharing": SHARING_LABELS[q.sharing], "days": total / 86400})
    df = pd.DataFrame(data)
    epochs = res["params"]["num_epochs"]
    tooltip = ["run", "sharing", alt.Tooltip("days:Q", format=",.2f")]
    return _dumbbell(df, "run", "days", f"days for {epochs} epochs (log scale)", tooltip,
                     "Projected ImageNet training time", row_px=40)


# ---------------------------------------------------------------------------- prose pieces


def anchor_numbers() -> dict[str, Any]:
    """The published numbers the prose quotes, flat, for ``glue``."""
    return {
        "bartunov_conv_top1": ANCHORS["bartunov_2018"]["conv_top1_error_pct"],
        "bartunov_local_top1": ANCHORS["bartunov_2018"]["local_top1_error_pct"],
        "deepface_params": ANCHORS["taigman_2014"]["parameters_over"],
    }


def device_name(info: dict[str, Any]) -> str:
    """``"<model> (<torch device>)"`` from :func:`gardenpath.measure.device.describe`."""
    name = info.get("name") or info.get("device") or "this device"
    return f"{name} ({info.get('device', '')})"


def setup_values(res: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters and device, flat, for ``{glue:text}`` in the prose."""
    p = res["params"]
    out: dict[str, Any] = {k: p[k] for k in (
        "in_size", "width", "batch_size", "workers", "num_epochs", "link_latency_us",
        "link_bandwidth_gbs", "accelerator_memory_gb", "whole_net_budget_gb")}
    out["device_name"] = device_name(info)
    out["threads_used"] = res["threads"]
    return out


def prose(res: dict[str, Any], info: dict[str, Any]) -> dict[str, str]:
    """Sentences that depend on the run (method, fits, fallbacks, whole-net check).

    Glued as Markdown (``{glue:md}``) so that they read as ordinary text.
    """
    p = res["params"]
    out: dict[str, str] = {}
    width_part = (f"at the full width of {p['width']}" if p["time_width"] == p["width"]
                  else f"at width {p['time_width']} and scaled to width {p['width']} by "
                       f"multiply-accumulates (narrow layers run less efficiently, so this "
                       f"tends to overstate the full-width time)")
    strip_part = ("whole" if p["time_fraction"] >= 1 else
                  f"on a strip of about {100 * p['time_fraction']:.0f}% of its output rows "
                  f"(every output position does the same work, so the strip's time is "
                  f"scaled up by the ratio of multiply-accumulates)")
    batches = " and ".join(str(b) for b in p["time_batches"])
    out["method_sentence"] = (
        f"Each weight layer was built on its own, {width_part}, and its forward and "
        f"backward pass timed {strip_part}, at batches of {batches} images, on "
        f"{device_name(info)} with {res['threads']} thread(s), in float32 (TensorFloat-32 "
        f"off on GPUs, so that cuDNN's convolutions and the locally connected layers' "
        f"matrix products do the same arithmetic). {lc_native.describe(info['device'])} "
        f"The two versions of a net "
        f"are timed in turn, layer by layer, so that changes in the machine's load during "
        f"the run affect both alike; linear layers, identical in both, are timed once.")
    total = sum(len(lt) for _, _, lt in res["timings"])
    falls = sum(t.fallback for _, _, lt in res["timings"] for t in lt)
    out["fallback_sentence"] = (
        "Every fit had a positive slope and intercept." if not falls else
        f"For {falls} of the {total} timed configurations, timing noise gave a negative "
        f"slope or intercept, and all of the larger batch's time was counted per image "
        f"instead (marked in the figure's tooltips).")
    checks = [w for w in res["whole"] if w["measured_s"] is not None]
    if checks:
        parts = [f"{NET_LABELS[w['net']]} {SHARING_LABELS[w['sharing']]} at width "
                 f"{w['width']} and batch {w['batch']} measured {w['measured_s']:.3f} s per "
                 f"step against {w['layer_sum_s']:.3f} s from the layer model "
                 f"(ratio {w['measured_s'] / w['layer_sum_s']:.2f})" for w in checks]
        out["whole_sentence"] = "; ".join(parts) + (
            ". The remaining nets did not fit the budget (see the table).")
    else:
        out["whole_sentence"] = "no whole net fitted the budget on this run."
    over = [f"{NET_LABELS[c.net]} {SHARING_LABELS[c.sharing]} with Adam"
            for c in res["counts"]
            if c.total_adam_bytes > p["accelerator_memory_gb"] * 1e9]
    ratios = {net: next(q for q in res["projections"] if q.net == net and q.sharing == "local")
              .total_workers_s / next(q for q in res["projections"]
                                      if q.net == net and q.sharing == "conv").total_workers_s
              for net in NETS}
    close = [f"{NET_LABELS[n]} ({r:.2f})" for n, r in ratios.items()
             if any(abs(r / t - 1) < 0.2 for t in (SUPPORTED_AT, NOT_SUPPORTED_BELOW))]
    out["robustness_sentence"] = (
        "Every ratio is more than 20% away from the thresholds." if not close else
        "Within 20% of a threshold: " + ", ".join(close) + ". Timing noise of that size "
        "is common on a shared machine, so a rerun may give a different verdict.")
    out["fits_sentence"] = (
        "every version fits one such accelerator, even with Adam" if not over else
        "more than one accelerator's memory is needed for: " + ", ".join(over))
    return out
