"""Nets split over workers, and what each worker sends per step.

Two parts:

* the real thing, for :func:`~gardenpath.models.nets.digits_net`:
  :class:`SpatialDigitsNet` holds one worker's horizontal band of every feature map and
  the weights of its own positions; :class:`HaloExchange` swaps the border rows with the
  neighbouring bands (forward) and their gradients back (backward) through
  ``dist.batch_isend_irecv``, counted by a :class:`~gardenpath.measure.comm.CommCounter`;
* the model at paper scale, for ResNet-18 (He et al. 2016): :func:`resnet_layout` reads
  the layer shapes from :func:`~gardenpath.models.nets.layer_specs`, and
  :func:`step_comm` / :func:`server_comm` count the bytes each worker sends per step and
  time them on a :class:`~gardenpath.measure.comm.Link`, for data parallelism, spatial
  partitioning (with data-parallel groups beyond the largest grid) and a parameter
  server (asynchronous SGD, Dean et al. 2012's Downpour).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from gardenpath.constants import FP32_BYTES, SHARINGS
from gardenpath.measure.comm import (
    CommCounter,
    Link,
    halo_exchange_bytes,
    ring_allreduce_bytes_per_worker,
)
from gardenpath.models.local import LocallyConnected2d
from gardenpath.models.nets import layer_specs, resnet18


def check_config(world_size: int, canvas: int, channels: Sequence[int]) -> None:
    """Raise ``ValueError`` for a configuration the spatial split cannot cut evenly.

    Each of the ``len(channels)`` stages halves the map, and each band must hold an even
    number of rows at every stage so that 2x2 pooling stays inside it:
    ``canvas`` must be a multiple of ``world_size * 2**len(channels)``.
    """
    n = len(channels)
    if world_size < 2:
        raise ValueError("world_size must be at least 2")
    if canvas < 8:
        raise ValueError("canvas must be at least 8 to hold an 8x8 digit")
    if canvas % (world_size * 2 ** n):
        raise ValueError(f"canvas {canvas} must be a multiple of world_size * 2**stages = "
                         f"{world_size * 2 ** n} so every worker's band pools evenly")


# ---------------------------------------------------------------------------- the real split


class BandComm:
    """This rank's place in a row-band split, and the counter its exchanges go to."""

    def __init__(self, rank: int, world: int, counter: CommCounter) -> None:
        self.rank, self.world, self.counter = rank, world, counter

    def exchange(self, op: str, up: torch.Tensor, down: torch.Tensor,
                 from_up: torch.Tensor, from_down: torch.Tensor) -> None:
        """Send ``up``/``down`` to the neighbours above/below and receive into ``from_*``.

        One batch of non-blocking sends and receives (no ordering deadlock); the payload
        recorded is the bytes this rank sends.
        """
        ops, sent = [], []
        if self.rank > 0:
            ops += [dist.P2POp(dist.isend, up, self.rank - 1),
                    dist.P2POp(dist.irecv, from_up, self.rank - 1)]
            sent.append(up)
        if self.rank < self.world - 1:
            ops += [dist.P2POp(dist.isend, down, self.rank + 1),
                    dist.P2POp(dist.irecv, from_down, self.rank + 1)]
            sent.append(down)

        def go(*_: torch.Tensor) -> None:
            for req in dist.batch_isend_irecv(ops):
                req.wait()

        self.counter.call(op, go, *sent)


class HaloExchange(torch.autograd.Function):
    """Pad a band (B, C, h, W) with ``halo`` rows from each neighbour; zeros at the edges.

    Forward: send my top rows up and my bottom rows down, receive the neighbours' into
    the padding. Backward: the gradient that landed on the padding belongs to the
    neighbours' rows, so it is sent back and added to theirs (the same bytes again).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, halo: int, comm: BandComm) -> torch.Tensor:
        ctx.halo, ctx.comm = halo, comm
        up, down = x[:, :, :halo].contiguous(), x[:, :, -halo:].contiguous()
        from_up, from_down = torch.zeros_like(up), torch.zeros_like(down)
        comm.exchange("halo_forward", up, down, from_up, from_down)
        return torch.cat([from_up, x, from_down], dim=2)  # (B, C, h + 2 halo, W)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        h, comm = ctx.halo, ctx.comm
        g_up, g_down = g[:, :, :h].contiguous(), g[:, :, -h:].contiguous()
        g_mid = g[:, :, h:-h].clone()  # (B, C, h_band, W)
        from_up, from_down = torch.zeros_like(g_up), torch.zeros_like(g_down)
        comm.exchange("halo_backward", g_up, g_down, from_up, from_down)
        g_mid[:, :, :h] += from_up
        g_mid[:, :, -h:] += from_down
        return g_mid, None, None


class AllReduceSum(torch.autograd.Function):
    """Sum a tensor over all ranks (recorded); the gradient passes through unchanged.

    Used for partial logits: the full logits are the sum of every band's part, and every
    rank computes the same loss from them, so each part's gradient is the logits' own.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, counter: CommCounter) -> torch.Tensor:
        y = x.clone()
        counter.call("logits_all_reduce", dist.all_reduce, y)
        return y

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        return g, None


class SpatialDigitsNet(nn.Module):
    """One rank's band of a :func:`~gardenpath.models.nets.digits_net` (conv or local).

    Built from the full net so that every rank starts from the same weights: a
    convolution keeps the whole (shared) filter, a locally connected layer keeps the
    filters and biases of its own output positions only, the readout keeps the columns
    that read its band (its bias is replicated).
    """

    def __init__(self, full: nn.Sequential, in_size: int, rank: int, world: int,
                 comm: BandComm) -> None:
        super().__init__()
        self.rank, self.world, self.comm = rank, world, comm
        self.sharing = "local" if any(isinstance(m, LocallyConnected2d) for m in full) else "conv"
        self.layers = nn.ModuleList()
        self.halos: list[int] = []
        self.bands: list[tuple[int, int, int]] = []  # (row0, row1, H) per spatial layer
        size = in_size
        for m in full:
            if isinstance(m, (nn.Conv2d, LocallyConnected2d)):
                self.layers.append(self._band_layer(m, size))
                size //= 2  # each stage ends in 2x2 pooling
        readout = full[-1]
        c_last = self.layers[-1].out_channels
        side = self.bands[-1][2] // 2  # after the last pooling
        rows = side // world
        q0 = rank * rows
        idx = [c * side * side + h * side + w for c in range(c_last)
               for h in range(q0, q0 + rows) for w in range(side)]
        self.readout_weight = nn.Parameter(readout.weight.detach()[:, idx].clone())
        self.readout_bias = nn.Parameter(readout.bias.detach().clone())
        self.readout_idx = idx

    def _band_layer(self, m: nn.Module, size: int) -> nn.Module:
        """This rank's band of one 3x3 'same' layer whose input is ``size`` x ``size``."""
        (kh, kw) = m.kernel_size
        h_full = w_full = size
        rows = h_full // self.world
        r0 = self.rank * rows
        halo = kh // 2
        self.halos.append(halo)
        self.bands.append((r0, r0 + rows, h_full))
        if isinstance(m, LocallyConnected2d):
            band = LocallyConnected2d(m.in_channels, m.out_channels, (kh, kw),
                                      (rows + 2 * halo, w_full), 1, (0, kw // 2),
                                      m.bias is not None, device=m.weight.device)
            with torch.no_grad():
                band.weight.copy_(m.weight[r0 * w_full:(r0 + rows) * w_full])
                if m.bias is not None:
                    band.bias.copy_(m.bias[:, r0:r0 + rows])
            return band
        conv = nn.Conv2d(m.in_channels, m.out_channels, (kh, kw), 1, (0, kw // 2),
                         bias=m.bias is not None, device=m.weight.device)
        conv.load_state_dict(m.state_dict())
        return conv

    def forward(self, x_band: torch.Tensor) -> torch.Tensor:
        """Logits (B, classes) of the whole image from this rank's band of it."""
        h = x_band
        for layer, halo in zip(self.layers, self.halos, strict=True):
            h = HaloExchange.apply(h, halo, self.comm)  # (B, C, rows + 2 halo, W)
            h = F.max_pool2d(F.relu(layer(h)), 2)  # (B, C_out, rows / 2, W / 2)
        partial = h.flatten(1) @ self.readout_weight.t()  # (B, classes)
        return AllReduceSum.apply(partial, self.comm.counter) + self.readout_bias

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters whose gradient is a sum over bands (a convolution's filters)."""
        if self.sharing == "local":
            return []
        return [p for layer in self.layers for p in layer.parameters()]

    def sync_shared_grads(self) -> None:
        """All-reduce (sum) the shared parameters' gradients, as one flat bucket."""
        params = self.shared_parameters()
        if not params:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        self.comm.counter.call("shared_grad_all_reduce", dist.all_reduce, flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p))
            offset += n

    def band_input(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a full batch of images (B, 1, H, W)."""
        r0, r1, _ = self.bands[0]
        return x[:, :, r0:r1]

    def grad_error(self, full: nn.Sequential) -> float:
        """Largest absolute difference between this band's gradients and the full net's."""
        errs = []
        spatial = [m for m in full if isinstance(m, (nn.Conv2d, LocallyConnected2d))]
        for band, m, (r0, r1, _) in zip(self.layers, spatial, self.bands, strict=True):
            if isinstance(m, LocallyConnected2d):
                w_full = m.in_size[1]
                ref_w = m.weight.grad[r0 * w_full:r1 * w_full]
                errs.append((band.weight.grad - ref_w).abs().max())
                if m.bias is not None:
                    errs.append((band.bias.grad - m.bias.grad[:, r0:r1]).abs().max())
            else:
                errs.append((band.weight.grad - m.weight.grad).abs().max())
                if m.bias is not None:
                    errs.append((band.bias.grad - m.bias.grad).abs().max())
        readout = full[-1]
        errs.append((self.readout_weight.grad
                     - readout.weight.grad[:, self.readout_idx]).abs().max())
        errs.append((self.readout_bias.grad - readout.bias.grad).abs().max())
        return float(max(errs))


def expected_halo_bytes(canvas: int, channels: Sequence[int], world_size: int,
                        global_batch: int) -> int:
    """Halo bytes all bands send per step, from :func:`halo_exchange_bytes`.

    Row bands ``(world_size, 1)``; forward and backward for every 3x3 layer except the
    first, whose input is the image and needs no gradient (forward only).
    """
    total, size, c_in = 0, canvas, 1
    for i, c_out in enumerate(channels):
        total += halo_exchange_bytes(global_batch, c_in, size, 3, (world_size, 1),
                                     backward=i > 0)
        size, c_in = size // 2, c_out
    return total


# ---------------------------------------------------------------------------- paper scale


def grid_for(p: int) -> tuple[int, int]:
    """The most nearly square ``(rows, cols)`` with ``rows * cols == p``, rows >= cols."""
    cols = int(math.isqrt(p))
    while p % cols:
        cols -= 1
    return p // cols, cols


def resnet_layout(width: int, in_size: int) -> dict[str, Any]:
    """ResNet-18's parameter groups and halo'd layers for the communication model.

    From :func:`~gardenpath.models.nets.layer_specs` on the meta device: the spatial
    layers' weights (conv and locally connected; ResNet's spatial layers have no bias),
    batch-norm parameters and channels, the readout's parameters and input channels, and
    every spatial layer's input channels, side and kernel (``first``: the image's layer).
    """
    out: dict[str, Any] = {}
    for sharing in SHARINGS:
        net = resnet18(sharing, width=width, in_size=in_size, device="meta")
        specs = layer_specs(net, in_size)
        out[f"{sharing}_spatial"] = sum(sp.weight_count for sp in specs)
        if sharing == "conv":
            bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
            out["bn_params"] = sum(p.numel() for m in bns for p in m.parameters())
            out["bn_channels"] = sum(m.num_features for m in bns)
            out["fc_params"] = sum(p.numel() for p in net.fc.parameters())
            out["last_channels"] = net.fc.in_features
            out["layers"] = [{"name": sp.name, "channels": sp.in_shape[1],
                              "side": sp.in_shape[2], "kernel": sp.module.kernel_size[0],
                              "first": i == 0}
                             for i, sp in enumerate(specs)]
    out["min_side"] = min(lay["side"] for lay in out["layers"] if lay["kernel"] > 1)
    return out


def parameters(layout: dict[str, Any], sharing: str) -> int:
    """Every parameter of the net: spatial weights, batch norm, readout."""
    return layout[f"{sharing}_spatial"] + layout["bn_params"] + layout["fc_params"]


def spatial_max(layout: dict[str, Any]) -> int:
    """Largest power of two whose near-square grid fits the smallest halo'd map."""
    p = 1
    while True:
        r, c = grid_for(2 * p)
        if r > layout["min_side"] or c > layout["min_side"]:
            return p
        p *= 2


def step_comm(layout: dict[str, Any], sharing: str, p: int, s: int, batch: int,
              link: Link) -> dict[str, float]:
    """Bytes each worker sends and time per step: ``s``-way spatial x ``p / s`` data groups.

    ``s = 1`` is pure data parallelism, ``s = p`` pure spatial partitioning. Per worker:

    * halos: :func:`halo_exchange_bytes` of every layer with a kernel over 1 for the
      group's ``batch / d`` images on a near-square grid, forward and backward (forward
      only for the first layer), divided by ``s``; counted as for stride 1 (an upper
      bound for the stride-2 layers); one message per layer and direction;
    * within the group (ring over ``s``): the pooled features (``batch / d`` x last
      channels) and batch-norm statistics (sum and sum of squares per channel, forward
      and backward);
    * shared gradients, summed over all ``p`` workers: a convolution's filters and
      batch-norm's affine parameters (ring over ``p``);
    * owned gradients, averaged over the ``d`` data groups: the readout, and a locally
      connected net's own positions' filters, ``1 / s`` of them (ring over ``d``).

    Time: every message on ``link``, no overlap of communication and computation.
    """
    d = p // s
    images = batch / d
    spatial = layout[f"{sharing}_spatial"]
    halo = t = 0.0
    if s > 1:
        grid = grid_for(s)
        for lay in layout["layers"]:
            if lay["kernel"] > 1:
                one = halo_exchange_bytes(images, lay["channels"], lay["side"], lay["kernel"],
                                          grid, backward=False) / s
                times = 1 if lay["first"] else 2
                halo += times * one
                t += times * link.message_s(one)
    group = [FP32_BYTES * images * layout["last_channels"],
             FP32_BYTES * 4 * layout["bn_channels"]] if s > 1 else []
    shared = FP32_BYTES * (layout["bn_params"] + (spatial if sharing == "conv" else 0))
    owned = FP32_BYTES * (layout["fc_params"] + (spatial / s if sharing == "local" else 0))
    sent = halo + sum(ring_allreduce_bytes_per_worker(n, s) for n in group)
    sent += ring_allreduce_bytes_per_worker(shared, p) + ring_allreduce_bytes_per_worker(owned, d)
    t += sum(link.allreduce_s(n, s) for n in group)
    t += link.allreduce_s(shared, p) + link.allreduce_s(owned, d)
    return {"sent_bytes": sent, "halo_bytes": halo, "time_s": t,
            "held_params": spatial / s if sharing == "local" else spatial}


def server_comm(layout: dict[str, Any], sharing: str, link: Link) -> dict[str, float]:
    """Bytes per step for each worker of a parameter server, and its time (Downpour SGD).

    Every worker holds a whole replica and, each step, pushes the gradient of every
    parameter and pulls every parameter back: the push is the worker's message, the pull
    the server's message on its behalf, so the bytes sent per step for each worker are
    ``2 x 4 x parameters`` whatever the number of workers. Asynchronous: no worker waits
    for another; the servers are assumed sharded widely enough that their links are not
    the bottleneck. Time: the push and the pull on ``link``.
    """
    n = FP32_BYTES * parameters(layout, sharing)
    return {"sent_bytes": 2.0 * n, "halo_bytes": 0.0, "time_s": 2.0 * link.message_s(n),
            "held_params": layout[f"{sharing}_spatial"]}


REGIMES = ("data parallel", "spatial", "parameter server")


def regime_comm(layout: dict[str, Any], regime: str, sharing: str, p: int, batch: int,
                link: Link) -> dict[str, float]:
    """One regime's :func:`step_comm` or :func:`server_comm` at ``p`` workers."""
    if regime == "data parallel":
        return step_comm(layout, sharing, p, 1, batch, link)
    if regime == "spatial":
        return step_comm(layout, sharing, p, min(p, spatial_max(layout)), batch, link)
    if regime == "parameter server":
        return server_comm(layout, sharing, link)
    raise ValueError(f"regime must be one of {REGIMES}, got {regime!r}")


def model_regimes(layout: dict[str, Any], workers: Sequence[int], batch: int,
                  links: dict[str, Link]) -> pd.DataFrame:
    """Every (regime, sharing, p, link): bytes sent per worker and time per step."""
    s_max = spatial_max(layout)
    rows = []
    for p in workers:
        for regime in REGIMES:
            for sharing in SHARINGS:
                for name, link in links.items():
                    r = regime_comm(layout, regime, sharing, p, batch, link)
                    s = min(p, s_max) if regime == "spatial" else 1
                    rows.append({"workers": p, "regime": regime, "sharing": sharing,
                                 "spatial_ways": s, "data_groups": p // s, "link": name, **r})
    return pd.DataFrame(rows)


def cheapest(layout: dict[str, Any], sharing: str, p: int, batch: int,
             link: Link) -> tuple[str, float]:
    """The regime with the least communication time for ``sharing`` at ``p``, and that time."""
    times = {r: regime_comm(layout, r, sharing, p, batch, link)["time_s"] for r in REGIMES}
    best = min(times, key=times.__getitem__)
    return best, times[best]


def power_of_two_workers(max_workers: int) -> list[int]:
    """2, 4, ..., up to ``max_workers``."""
    return [2 ** i for i in range(1, int(math.log2(max_workers)) + 1)]
