"""Training time of a net projected from timings of its layers, and swept over assumptions.

The model: a training step of a net is the sum over its weight layers of forward plus
backward time, each a straight line in the batch (a fixed part plus a part per image,
fitted robustly to timings at several batches), plus one SGD-with-momentum update per
layer. A layer is timed once per distinct configuration, possibly on a horizontal strip
of its output rows (:func:`strip`), and scaled to the whole layer by multiply-accumulates
(MACs) and to its optimizer update by parameters. Many workers are data parallel: each
step adds a ring all-reduce of every fp32 gradient, with no overlap
(:func:`gardenpath.measure.comm.ring_allreduce_time`). A worker faster than the timed
device runs every layer of both nets that many times faster (an assumption).

Layers are walked with :func:`gardenpath.models.nets.layer_specs` (batch 1, linear
layers included), so shapes here are per image with a leading 1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from itertools import product

import numpy as np
import torch
from torch import nn

from gardenpath.constants import FP32_BYTES
from gardenpath.measure.comm import ring_allreduce_time
from gardenpath.models.local import LocallyConnected2d
from gardenpath.models.nets import LayerSpec

#: Images in the ILSVRC-2012 training set (Russakovsky et al., IJCV 2015).
IMAGENET_TRAIN_IMAGES = 1_281_167
#: Bytes of one fp32 number.
#: Passes of a training step over a layer (forward, input gradient, weight gradient).
TRAIN_PASSES = 3


# ---------------------------------------------------------------------------- strips


def layer_step_bytes(spec: LayerSpec, batch: int) -> int:
    """Bytes one layer's timed training step holds at once, an upper estimate.

    ``4 (3 P + 2 B in + 2 B out + U)``: weights, gradient and momentum (``P`` params);
    input and its gradient, output and its gradient; ``U`` the unfolded input of a locally
    connected layer on its ``bmm`` path (CUDA), kept three times, or once for a
    convolution's im2col workspace.
    """
    n_in, n_out = math.prod(spec.in_shape[1:]), math.prod(spec.out_shape[1:])
    unfold = 0
    if spec.kind in ("conv", "local"):
        m = spec.module
        k = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        unfold = (3 if spec.kind == "local" else 1) * batch * k * math.prod(spec.out_shape[2:])
    return FP32_BYTES * (3 * spec.params + 2 * batch * (n_in + n_out) + unfold)


def strip(spec: LayerSpec, fraction: float) -> LayerSpec:
    """The same layer cut to a horizontal strip of about ``fraction`` of its output rows.

    Every output position of a conv or locally connected layer does the same work (one
    ``K x O`` product per image), so a strip of ``r`` of the ``H_out`` rows, scaled by the
    ratio of MACs, measures the whole layer at a fraction of the memory and time. The
    strip is an interior one: its input is the ``(r - 1) s + k`` rows it needs, with no
    vertical padding; a locally connected strip holds only its own positions' filters.
    Linear layers, and ``fraction >= 1``, are returned unchanged.
    """
    if spec.kind not in ("conv", "local") or fraction >= 1:
        return spec
    m = spec.module
    (kh, kw), (sh, sw), (_, pw) = m.kernel_size, m.stride, m.padding
    _, c, _, w_in = spec.in_shape
    _, o, h_out, w_out = spec.out_shape
    r = max(1, round(h_out * fraction))
    if r >= h_out:
        return spec
    rows_in = (r - 1) * sh + kh
    bias = m.bias is not None
    if spec.kind == "local":
        mod: nn.Module = LocallyConnected2d(c, o, (kh, kw), (rows_in, w_in), (sh, sw), (0, pw),
                                            bias, device="meta")
    else:
        mod = nn.Conv2d(c, o, (kh, kw), (sh, sw), (0, pw), bias=bias, device="meta")
    params = sum(q.numel() for q in mod.parameters())
    return replace(spec, module=mod, in_shape=(1, c, rows_in, w_in), out_shape=(1, o, r, w_out),
                   weight_count=mod.weight.numel(), macs=o * r * w_out * c * kh * kw,
                   params=params)


# ---------------------------------------------------------------------------- fits


@dataclass(frozen=True)
class LineFit:
    """``t(B) = fixed_s + per_image_s * B``; ``fallback`` when the robust line was unusable."""

    fixed_s: float
    per_image_s: float
    fallback: bool = False

    def at(self, batch: float) -> float:
        """Time at ``batch`` images."""
        return self.fixed_s + self.per_image_s * batch


def theil_sen(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """``(intercept, slope)``: the median of all pairwise slopes, then the median residual.

    Robust to a minority of outliers (a timing hit by another process), unlike least
    squares (Theil 1950, Sen 1968).
    """
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    i, j = np.triu_indices(len(xa), 1)
    keep = xa[j] != xa[i]
    if not keep.any():
        raise ValueError("theil_sen needs at least two distinct x values")
    slope = float(np.median((ya[j] - ya[i])[keep] / (xa[j] - xa[i])[keep]))
    return float(np.median(ya - slope * xa)), slope


def fit_line(batches: Sequence[int], times: Sequence[float]) -> LineFit:
    """Theil-Sen line of time against batch.

    A negative intercept is kept (time can grow faster than the batch when a larger batch
    leaves the caches); the line is a *fallback*, all time per image through the origin
    (the median of ``t / B``), only when its slope is not positive or it predicts no time
    at the smallest timed batch.
    """
    fixed, slope = theil_sen(batches, times)
    if slope > 0 and fixed + slope * min(batches) > 0:
        return LineFit(fixed, slope)
    return LineFit(0.0, float(np.median(np.asarray(times) / np.asarray(batches))), True)


# ---------------------------------------------------------------------------- timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock_for(device: torch.device) -> tuple[Callable[[], float], str]:
    """The clock to time ``device`` by, and its name.

    On a CPU running one torch thread, the calling thread's CPU time
    (``time.thread_time``): all of the work runs in that thread, and the time other
    processes take the core from it is not counted, so a shared machine's load does not
    inflate it. Otherwise wall time (``time.perf_counter``, after synchronising a GPU).
    """
    if device.type == "cpu" and torch.get_num_threads() == 1:
        return time.thread_time, "the thread's CPU time (time.thread_time)"
    return time.perf_counter, "wall time (time.perf_counter)"


def time_calls(fn: Callable[[], object], device: torch.device, repeats: int,
               warmup: int = 1) -> float:
    """Median time of ``repeats`` calls of ``fn`` after ``warmup`` calls (:func:`clock_for`).

    A plain loop rather than :func:`gardenpath.measure.timing.time_fn`: that one clocks wall
    time, and its fixed mode warms up twice before every block, which triples the cost of
    layer calls that take seconds.
    """
    clock, _ = clock_for(device)
    for _ in range(warmup):
        fn()
    _sync(device)
    out = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        _sync(device)
        out.append(clock() - t0)
    return float(np.median(out))


@dataclass
class LayerTimes:
    """Timings of one layer configuration over rounds.

    ``fwd_bwd_s[r][i]`` is round ``r``'s time of forward plus backward at ``batches[i]``;
    ``optimizer_s[r]`` its SGD momentum update and gradient zeroing. ``timed_params`` and
    ``timed_macs`` (per image) describe what was timed (a strip, perhaps); ``names`` every
    layer of the net with this configuration.
    """

    key: str
    names: list[str]
    kind: str
    timed_params: int
    timed_macs: int
    timed_in_shape: list[int]
    batches: list[int]
    fwd_bwd_s: list[list[float]] = field(default_factory=list)
    optimizer_s: list[float] = field(default_factory=list)

    def fit(self, rounds: Sequence[int] | None = None) -> LineFit:
        """The line through the chosen rounds' points (all rounds by default)."""
        pick = range(len(self.fwd_bwd_s)) if rounds is None else rounds
        b = [bb for r in pick for bb in self.batches]
        t = [tt for r in pick for tt in self.fwd_bwd_s[r]]
        return fit_line(b, t)

    def optimizer(self, rounds: Sequence[int] | None = None) -> float:
        """Median optimizer time over the chosen rounds."""
        pick = range(len(self.optimizer_s)) if rounds is None else rounds
        return float(np.median([self.optimizer_s[r] for r in pick]))

    def resample(self, rng: np.random.Generator) -> tuple[LineFit, float]:
        """A bootstrap draw: each batch's times redrawn from the rounds with replacement,
        then the line and the optimizer's median as for the measured rounds."""
        t = np.asarray(self.fwd_bwd_s)  # (rounds, batches)
        pick = rng.integers(0, t.shape[0], size=t.shape)
        drawn = t[pick, np.arange(t.shape[1])]
        line = fit_line(np.tile(self.batches, t.shape[0]), drawn.ravel())
        opt = np.asarray(self.optimizer_s)[rng.integers(0, t.shape[0], t.shape[0])]
        return line, float(np.median(opt))

    def measured(self) -> tuple[LineFit, float]:
        """The line over all rounds and the optimizer's median: what the projection uses."""
        return self.fit(), self.optimizer()


def time_layer_once(spec: LayerSpec, batches: Sequence[int], device: torch.device, seed: int,
                    repeats: int, order: Sequence[int] | None = None
                    ) -> tuple[list[float], float]:
    """Forward+backward time at each batch, and one optimizer step, for one layer.

    One whole training step (forward, backward, update) at the smallest batch runs first,
    so that gradients and momentum are allocated before anything is timed, as they are
    in training. Gradients stay allocated between calls (accumulated in place), so the
    time is the computation's, not fresh allocations'. The optimizer step is the SGD
    momentum update plus the zeroing of the gradients (``zero_grad(set_to_none=False)``),
    what a training step adds per parameter. The first layer of a net gets no input
    gradient, as in training. ``order`` gives the order in which the batches are timed
    (indices into ``batches``; by default as given); the times come back in the order of
    ``batches``.
    """
    layer = spec.build(device=device, seed=seed)
    opt = torch.optim.SGD(layer.parameters(), lr=1e-3, momentum=0.9)
    g = torch.Generator().manual_seed(seed)

    def data(b: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(b, *spec.in_shape[1:], generator=g).to(device)
        x.requires_grad_(not spec.first)
        return x, torch.randn(b, *spec.out_shape[1:], generator=g).to(device)

    def update() -> None:
        opt.step()
        opt.zero_grad(set_to_none=False)

    x, gy = data(min(batches))
    layer(x).backward(gy)
    update()
    del x, gy
    out: dict[int, float] = {}
    for i in (range(len(batches)) if order is None else order):
        x, gy = data(batches[i])
        out[i] = time_calls(lambda x=x, gy=gy: layer(x).backward(gy), device, repeats)
        del x, gy
    return [out[i] for i in range(len(batches))], time_calls(update, device, repeats)


def time_rounds(nets: dict[str, Sequence[LayerSpec]], batches: Sequence[int], fraction: float,
                rounds: int, device: torch.device, seed: int, repeats: int,
                after_round: Callable[[], object] | None = None) -> dict[str, list[LayerTimes]]:
    """Time each distinct layer configuration of several nets, ``rounds`` times over.

    ``nets`` maps a label to the net's layer specs. Layers with one configuration (ResNet's
    repeated blocks, the linear layers both versions share) are timed once per round. A
    round times every configuration in turn, alternating between the nets, so that a
    change in the machine's load affects all alike; each round is one sample of every
    layer's time. ``after_round`` is called after each round (to time something else under
    the same load, interleaved with the layers).
    """
    groups: dict[str, dict[tuple, list[LayerSpec]]] = {}
    for label, specs in nets.items():
        for s in specs:
            groups.setdefault(label, {}).setdefault(s.key(), []).append(s)
    shared: dict[tuple, tuple[LayerTimes, LayerSpec]] = {}
    out: dict[str, list[LayerTimes]] = {label: [] for label in nets}
    for i in range(max(len(g) for g in groups.values())):
        for label, g in groups.items():
            if i >= len(g):
                continue
            key, same = list(g.items())[i]
            if key not in shared:
                timed = strip(same[0], fraction)
                shared[key] = (LayerTimes(timed.name, [], timed.kind, timed.params,
                                          timed.macs_per_image, list(timed.in_shape[1:]),
                                          list(batches)), timed)
            # the same sample lists, under this net's layer names
            out[label].append(replace(shared[key][0], names=[s.name for s in same]))
    for r in range(rounds):
        # each round starts at another batch, so that whatever favours or penalises the
        # first batch timed falls on every batch in turn and not always on the smallest
        order = [(r + i) % len(batches) for i in range(len(batches))]
        for lt, timed in shared.values():
            t, opt = time_layer_once(timed, batches, device, seed, repeats, order)
            lt.fwd_bwd_s.append(t)
            lt.optimizer_s.append(opt)
        if after_round is not None:
            after_round()
    return out


# ---------------------------------------------------------------------------- projection


def step_time(timings: Sequence[LayerTimes], specs: Sequence[LayerSpec], batch: int,
              fits: Callable[[LayerTimes], tuple[LineFit, float]] = LayerTimes.measured
              ) -> float:
    """Projected seconds of one training step of the layers ``specs`` at ``batch``.

    For every layer: ``(M / m) t(B)`` for forward and backward, with ``M / m`` its MACs per
    image over the timed configuration's and ``t`` the fitted line, plus
    ``(P / p) optimizer_s`` with ``P / p`` the ratio of parameters. Scaling linearly
    assumes the whole layer runs at the timed strip's efficiency. ``fits`` gives each
    configuration's line and optimizer time (the measured ones, or a bootstrap draw's).
    """
    full = {s.name: s for s in specs}
    total = 0.0
    for t in timings:
        line, opt = fits(t)
        for name in t.names:
            s = full[name]
            total += s.macs_per_image / t.timed_macs * line.at(batch)
            total += s.params / t.timed_params * opt
    return total


def train_time_s(step_s: float, parameters: int, batch: int, workers: int, speedup: float,
                 link_gbs: float, latency_s: float, epochs: float,
                 images: int = IMAGENET_TRAIN_IMAGES) -> float:
    """Seconds to train for ``epochs`` on ``workers`` data-parallel workers.

    Each worker takes ``batch`` images per step and computes ``speedup`` times faster than
    the timed device; ``ceil(N / (p B))`` steps per epoch, each the compute plus a ring
    all-reduce of all fp32 gradients over a link of ``link_gbs`` GB/s per direction and
    ``latency_s`` per message, without overlap (an upper bound; DDP overlaps them in part).
    """
    ar = ring_allreduce_time(FP32_BYTES * parameters, workers, latency_s, 1 / (link_gbs * 1e9))
    return epochs * math.ceil(images / (workers * batch)) * (step_s / speedup + ar)


@dataclass(frozen=True)
class SweepAxes:
    """The assumptions swept: worker speed, worker counts, links and epoch factors.

    Worker speed runs from the timed device's measured rate to ``fast_macs_per_s``
    (training MACs per second of a faster worker, from a published throughput) in
    ``speed_points`` steps, evenly on a log scale.
    """

    fast_macs_per_s: float
    speed_points: int
    workers: tuple[int, ...]
    links_gbs: tuple[float, ...]
    epoch_factors: tuple[float, ...]

    def points(self, measured_macs_per_s: float) -> list[tuple[float, int, float, float]]:
        """Every combination: the plausible region, each point weighted alike."""
        speeds = log_points(measured_macs_per_s, self.fast_macs_per_s, self.speed_points)
        return list(product(speeds, self.workers, self.links_gbs, self.epoch_factors))


def log_points(lo: float, hi: float, n: int) -> tuple[float, ...]:
    """``n`` points from ``lo`` to ``hi``, evenly spaced on a log scale."""
    if n == 1 or lo == hi:
        return (float(lo),)
    return tuple(float(v) for v in np.geomspace(lo, hi, n))


def sweep_ratios(conv: tuple[float, int, float], local: tuple[float, int], axes: SweepAxes,
                 batch: int, epochs: float, latency_s: float) -> list[dict[str, float]]:
    """Locally connected over conv training time at every point of ``axes``.

    ``conv`` is ``(step_s, parameters, train_macs_per_step)`` of the shared net on the timed
    device, ``local`` ``(step_s, parameters)`` of the unshared one. A worker of speed ``v``
    (training MACs per second) runs ``v / v0`` times faster than the timed device, ``v0``
    the conv net's measured rate, for both nets; the unshared net trains for
    ``factor x epochs``.
    """
    conv_s, conv_p, macs = conv
    local_s, local_p = local
    rate = macs / conv_s
    out = []
    for speed, p, link, factor in axes.points(rate):
        up = speed / rate
        tc = train_time_s(conv_s, conv_p, batch, p, up, link, latency_s, epochs)
        tl = train_time_s(local_s, local_p, batch, p, up, link, latency_s, factor * epochs)
        out.append({"speed": speed, "workers": p, "link_gbs": link, "epoch_factor": factor,
                    "speedup": up, "ratio": tl / tc})
    return out


def share_passing(points: Sequence[dict[str, float]], threshold: float) -> float:
    """Share of the swept points whose ratio is at least ``threshold``."""
    return sum(pt["ratio"] >= threshold for pt in points) / len(points)
