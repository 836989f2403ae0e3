"""Chapter 4, machine parallelism: what sharing costs and saves when training is spread out.

Two ways to spread one training step over ``p`` workers, run for real with
``torch.distributed`` (gloo on CPU, NCCL when every rank has a GPU) and modelled for
larger ``p``:

* **data parallel**: every worker holds the whole net and a slice of the batch, and the
  gradients of *all* parameters are all-reduced each step (PyTorch's
  DistributedDataParallel, counted through :class:`~gardenpath.measure.comm.CommCounter`'s
  DDP hook). A locally connected net has far more parameters than its convolutional twin,
  so it moves far more bytes.
* **spatial partitioning**: every worker holds a horizontal band of every feature map
  and the weights of its own positions. Neighbouring bands exchange halo rows before
  each 3x3 layer (forward) and the halo gradients back (backward), implemented here with
  ``dist.batch_isend_irecv`` inside an autograd function (:class:`HaloExchange`); the
  readout's partial logits are all-reduced. A convolution's shared weights must still
  have their gradients summed over all workers (an all-reduce); a locally connected
  layer's weights belong to one worker and need no communication at all.

The worker function :func:`_worker` lives in this module so that
``torch.multiprocessing`` can pickle it. :func:`run_distributed` spawns the processes on
a free loopback port, waits with a deadline and gathers each rank's record.

For larger worker counts, :func:`model_regimes` counts the bytes of ResNet-18 (conv and
locally connected, built on the meta device) under both regimes and times them with the
ring all-reduce alpha-beta model (:func:`gardenpath.measure.comm.ring_allreduce_time`),
with alpha and beta fitted to a real all-reduce sweep on this machine and, as a second
line, stated datacenter-class values.
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from gardenpath import charts
from gardenpath.measure.comm import (
    CommCounter,
    CommRecord,
    allreduce_sweep,
    fit_alpha_beta,
    halo_exchange_bytes,
    ring_allreduce_bytes_per_worker,
    ring_allreduce_time,
)
from gardenpath.measure.timing import time_fn
from gardenpath.models.local import LocallyConnected2d
from gardenpath.models.nets import digits_net, resnet18

SHARINGS = ("conv", "local")
FP32_BYTES = 4

#: A regime counts for the essay when the convolutional net moves at least this many
#: times the locally connected net's bytes, and against it when the locally connected
#: net moves at least this many times the convolutional net's.
MARGIN = 1.1

#: Defaults of the notebook's parameters cell (the ``cpu`` profile). A test checks them.
DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "seed": 0,
    "world_size": 2,
    "canvas": 16,
    "channels": [16, 32],
    "batch_size": 32,
    "steps": 10,
    "lr": 0.05,
    "sweep_max_kib": 16384,
    "sweep_points": 7,
    "sweep_repeats": 10,
    "threads": 1,
    "timeout_s": 300,
    "model_width": 64,
    "model_in_size": 224,
    "model_batch": 1024,
    "model_workers_max": 1024,
    "dc_bandwidth_gbs": 25.0,
    "dc_latency_us": 5.0,
}


# ---------------------------------------------------------------------------- the real run


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_config(cfg: dict[str, Any]) -> None:
    """Raise ``ValueError`` for a configuration the spatial split cannot cut evenly.

    Each of the ``len(channels)`` stages halves the map, and each band must hold an even
    number of rows at every stage so that 2x2 pooling stays inside it:
    ``canvas`` must be a multiple of ``world_size * 2**len(channels)``.
    """
    world, canvas, n = cfg["world_size"], cfg["canvas"], len(cfg["channels"])
    if world < 2:
        raise ValueError("world_size must be at least 2")
    if canvas < 8:
        raise ValueError("canvas must be at least 8 to hold an 8x8 digit")
    if canvas % (world * 2 ** n):
        raise ValueError(f"canvas {canvas} must be a multiple of world_size * 2**stages = "
                         f"{world * 2 ** n} so every worker's band pools evenly")


def digits_data(canvas: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's training digits centred on a ``canvas`` x ``canvas`` blank image."""
    from gardenpath.data import load_digits_split, place_on_canvas

    x_train, _, y_train, _ = load_digits_split(seed=seed)
    off = (canvas - 8) // 2
    x = place_on_canvas(x_train, canvas, (off, off)).reshape(-1, 1, canvas, canvas)
    return torch.from_numpy(x), torch.from_numpy(y_train)


class _Comm:
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
    def forward(ctx: Any, x: torch.Tensor, halo: int, comm: _Comm) -> torch.Tensor:
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
                 comm: _Comm) -> None:
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


def expected_halo_bytes(cfg: dict[str, Any], global_batch: int) -> int:
    """Halo bytes all ranks send per step, from :func:`halo_exchange_bytes`.

    Row bands ``(world, 1)``; forward and backward for every 3x3 layer except the first,
    whose input is the image and needs no gradient (forward only).
    """
    total, size, c_in = 0, cfg["canvas"], 1
    for i, c_out in enumerate(cfg["channels"]):
        total += halo_exchange_bytes(global_batch, c_in, size, 3, (cfg["world_size"], 1),
                                     backward=i > 0)
        size, c_in = size // 2, c_out
    return total


def _records(counter: CommCounter, calls: int) -> dict[str, Any]:
    """Per-step payload bytes, ring bytes sent and time, by operation, from a counter.

    Sums over every record first and divides by ``calls`` once, so whole-byte counts
    stay exact.
    """
    by: dict[str, dict[str, float]] = {}
    for r in counter.records:
        d = by.setdefault(r.op, {"payload_bytes": 0, "sent_bytes": 0.0, "time_s": 0.0,
                                 "calls": 0})
        d["payload_bytes"] += r.payload_bytes
        d["sent_bytes"] += (ring_allreduce_bytes_per_worker(r.payload_bytes, r.world_size)
                            if "all_reduce" in r.op else r.payload_bytes)
        d["time_s"] += r.time_s
        d["calls"] += 1
    for d in by.values():
        for k in ("payload_bytes", "sent_bytes", "time_s"):
            d[k] /= calls
    return by


def _dp_run(sharing: str, cfg: dict[str, Any], x: torch.Tensor, y: torch.Tensor,
            rank: int, world: int, dev: torch.device) -> dict[str, Any]:
    """Data-parallel training with DDP; every gradient bucket counted."""
    torch.manual_seed(cfg["seed"])
    net = digits_net(sharing, cfg["canvas"], cfg["channels"]).to(dev)
    n_params = sum(p.numel() for p in net.parameters())
    ddp = nn.parallel.DistributedDataParallel(
        net, device_ids=[dev.index] if dev.type == "cuda" else None)
    counter = CommCounter()
    counter.attach(ddp)
    opt = torch.optim.SGD(ddp.parameters(), lr=cfg["lr"])
    g = torch.Generator().manual_seed(cfg["seed"])
    order = torch.randperm(len(x), generator=g)
    shard = order[rank::world]  # this rank's images
    b = cfg["batch_size"]
    state = {"calls": 0, "losses": []}

    def step() -> None:
        i = state["calls"] * b % max(1, len(shard) - b)
        idx = shard[i:i + b]
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(ddp(x[idx].to(dev)), y[idx].to(dev))
        loss.backward()
        opt.step()
        state["calls"] += 1
        state["losses"].append(float(loss.detach()))

    t = time_fn(step, device=dev, warmup=2, repeats=cfg["steps"], number=1)
    return {"sharing": sharing, "parameters": n_params, "calls": state["calls"],
            "step_s": t.median_s, "step_iqr_s": t.iqr_s,
            "ops": _records(counter, state["calls"]),
            "loss_first": state["losses"][0], "loss_last": state["losses"][-1]}


def _sp_run(sharing: str, cfg: dict[str, Any], x: torch.Tensor, y: torch.Tensor,
            rank: int, world: int, dev: torch.device) -> dict[str, Any]:
    """Spatially partitioned training: halos, partial logits, shared-gradient sums."""
    torch.manual_seed(cfg["seed"])
    full = digits_net(sharing, cfg["canvas"], cfg["channels"]).to(dev)
    counter = CommCounter()
    net = SpatialDigitsNet(full, cfg["canvas"], rank, world,
                           _Comm(rank, world, counter)).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"])
    gb = cfg["batch_size"] * world  # the same images per step as data parallel
    g = torch.Generator().manual_seed(cfg["seed"] + 1)
    order = torch.randperm(len(x), generator=g)

    # correctness: one step's gradients against the whole net on one process
    idx = order[:gb]
    xb, yb = x[idx].to(dev), y[idx].to(dev)
    F.cross_entropy(full(xb), yb).backward()
    F.cross_entropy(net(net.band_input(xb)), yb).backward()
    net.sync_shared_grads()
    grad_error = net.grad_error(full)
    grad_scale = float(max(p.grad.abs().max() for p in full.parameters()))
    counter.reset()
    state = {"calls": 0, "losses": []}

    def step() -> None:
        i = state["calls"] * gb % max(1, len(order) - gb)
        idx = order[i:i + gb]
        xb, yb = x[idx].to(dev), y[idx].to(dev)
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(net(net.band_input(xb)), yb)
        loss.backward()
        net.sync_shared_grads()
        opt.step()
        state["calls"] += 1
        state["losses"].append(float(loss.detach()))

    t = time_fn(step, device=dev, warmup=2, repeats=cfg["steps"], number=1)
    own = sum(p.numel() for p in net.parameters())
    shared = sum(p.numel() for p in net.shared_parameters())
    return {"sharing": sharing, "calls": state["calls"], "step_s": t.median_s,
            "step_iqr_s": t.iqr_s, "ops": _records(counter, state["calls"]),
            "grad_error": grad_error, "grad_scale": grad_scale,
            "params_held": own, "shared_params": shared,
            "loss_first": state["losses"][0], "loss_last": state["losses"][-1]}


def _worker(rank: int, cfg: dict[str, Any], port: int, out_dir: str, x: torch.Tensor,
            y: torch.Tensor) -> None:
    """One rank of the real run: all-reduce sweep, then DP and SP runs of both nets.

    The digits ``x`` (N, 1, canvas, canvas) and labels ``y`` come from the parent, so
    the workers need not import scikit-learn.
    """
    world = cfg["world_size"]
    use_cuda = cfg["backend"] == "nccl"
    dev = torch.device("cuda", rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if cfg["threads"] > 0:
        torch.set_num_threads(cfg["threads"])
    dist.init_process_group(cfg["backend"], init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world)
    try:
        sweep = allreduce_sweep(cfg["sweep_sizes"], device=dev, repeats=cfg["sweep_repeats"])
        out: dict[str, Any] = {
            "rank": rank, "backend": cfg["backend"], "device": str(dev),
            "sweep": [(r.payload_bytes, r.time_s, r.world_size) for r in sweep],
            "dp": [_dp_run(s, cfg, x, y, rank, world, dev) for s in SHARINGS],
            "sp": [_sp_run(s, cfg, x, y, rank, world, dev) for s in SHARINGS],
        }
        dist.barrier()
    finally:
        dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
        json.dump(out, fh)


def choose_backend(device: torch.device, world: int) -> str:
    """``"nccl"`` when the device is CUDA and there is a GPU per rank, else ``"gloo"``."""
    if device.type == "cuda" and torch.cuda.device_count() >= world:
        return "nccl"
    return "gloo"


def sweep_sizes(max_kib: int, points: int) -> list[int]:
    """``points`` all-reduce sizes in bytes, the largest ``max_kib`` KiB, a factor 4 apart."""
    top = max_kib * 1024
    return sorted({max(4, int(top / 4 ** i)) for i in range(points)})


class Launch:
    """Processes of a real run that were started and not yet gathered."""

    def __init__(self, cfg: dict[str, Any], ctx: Any, out_dir: tempfile.TemporaryDirectory,
                 deadline: float) -> None:
        self.cfg, self.ctx, self.out_dir, self.deadline = cfg, ctx, out_dir, deadline


def start_distributed(cfg: dict[str, Any], device: torch.device) -> Launch:
    """Spawn ``world_size`` processes running :func:`_worker` and return at once.

    The parent can do other work meanwhile; :func:`finish_distributed` gathers.
    """
    import torch.multiprocessing as mp

    check_config(cfg)
    cfg = {**cfg, "backend": choose_backend(device, cfg["world_size"]),
           "sweep_sizes": sweep_sizes(cfg["sweep_max_kib"], cfg["sweep_points"])}
    x, y = digits_data(cfg["canvas"], cfg["seed"])
    out_dir = tempfile.TemporaryDirectory(prefix="gardenpath-parallel-")
    ctx = mp.spawn(_worker, args=(cfg, free_port(), out_dir.name, x, y),
                   nprocs=cfg["world_size"], join=False)
    return Launch(cfg, ctx, out_dir, time.monotonic() + cfg["timeout_s"])


def finish_distributed(launch: Launch) -> dict[str, Any]:
    """Wait for the processes (until the deadline) and return every rank's record.

    Raises ``RuntimeError`` when the run passes ``timeout_s`` (the processes are then
    terminated); a process that fails raises its own exception here.
    """
    try:
        while not launch.ctx.join(timeout=1):
            if time.monotonic() > launch.deadline:
                for proc in launch.ctx.processes:
                    if proc.is_alive():
                        proc.terminate()
                raise RuntimeError(f"the {launch.cfg['world_size']}-process run did not "
                                   f"finish in {launch.cfg['timeout_s']} s")
        ranks = []
        for r in range(launch.cfg["world_size"]):
            with open(os.path.join(launch.out_dir.name, f"rank{r}.json")) as fh:
                ranks.append(json.load(fh))
    finally:
        launch.out_dir.cleanup()
    return {"cfg": launch.cfg, "ranks": ranks}


def run_distributed(cfg: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """:func:`start_distributed` then :func:`finish_distributed`."""
    return finish_distributed(start_distributed(cfg, device))


# ---------------------------------------------------------------------------- summary


def _sum_op(runs: Sequence[dict], field: str, ops: Sequence[str] | None = None) -> float:
    return sum(v[field] for run in runs for op, v in run["ops"].items()
               if ops is None or op in ops)


def summarise_real(real: dict[str, Any]) -> dict[str, Any]:
    """Per sharing and regime: bytes per step (all ranks), time per step, checks."""
    cfg, ranks = real["cfg"], real["ranks"]
    world = cfg["world_size"]
    gb = cfg["batch_size"] * world
    out: dict[str, Any] = {"world_size": world, "backend": cfg["backend"],
                           "global_batch": gb,
                           "halo_bytes_formula": expected_halo_bytes(cfg, gb)}
    for i, sharing in enumerate(SHARINGS):
        dp = [r["dp"][i] for r in ranks]
        sp = [r["sp"][i] for r in ranks]
        pre = f"{sharing}_"
        out[pre + "parameters"] = dp[0]["parameters"]
        out[pre + "dp_payload_bytes"] = _sum_op(dp, "payload_bytes") / world
        out[pre + "dp_sent_bytes"] = _sum_op(dp, "sent_bytes")
        out[pre + "sp_halo_bytes"] = _sum_op(sp, "sent_bytes", ["halo_forward",
                                                                 "halo_backward"])
        out[pre + "sp_logits_sent_bytes"] = _sum_op(sp, "sent_bytes", ["logits_all_reduce"])
        out[pre + "sp_shared_sent_bytes"] = _sum_op(sp, "sent_bytes",
                                                    ["shared_grad_all_reduce"])
        out[pre + "sp_sent_bytes"] = _sum_op(sp, "sent_bytes")
        out[pre + "sp_shared_params"] = sp[0]["shared_params"]
        out[pre + "sp_params_held_max"] = max(r["params_held"] for r in sp)
        out[pre + "sp_grad_error"] = max(r["grad_error"] for r in sp)
        out[pre + "sp_grad_scale"] = sp[0]["grad_scale"]
        out[pre + "dp_step_s"] = max(r["step_s"] for r in dp)
        out[pre + "sp_step_s"] = max(r["step_s"] for r in sp)
        out[pre + "dp_comm_s"] = max(sum(v["time_s"] for v in r["ops"].values()) for r in dp)
        out[pre + "sp_comm_s"] = max(sum(v["time_s"] for v in r["ops"].values()) for r in sp)
        out[pre + "dp_loss_first"] = dp[0]["loss_first"]
        out[pre + "dp_loss_last"] = dp[0]["loss_last"]
        out[pre + "sp_loss_first"] = sp[0]["loss_first"]
        out[pre + "sp_loss_last"] = sp[0]["loss_last"]
    sweep = [CommRecord("all_reduce", int(n), t, w) for n, t, w in ranks[0]["sweep"]]
    fit = fit_alpha_beta(sweep)
    out["alpha_s"], out["beta_s_per_byte"] = fit.alpha_s, fit.beta_s_per_byte
    out["fit_rms_s"] = fit.rms_residual_s
    out["sweep"] = ranks[0]["sweep"]
    return out


# ---------------------------------------------------------------------------- the model


def grid_for(p: int) -> tuple[int, int]:
    """The most nearly square ``(rows, cols)`` with ``rows * cols == p``, rows >= cols."""
    cols = int(math.isqrt(p))
    while p % cols:
        cols -= 1
    return p // cols, cols


def resnet_layout(width: int, in_size: int) -> dict[str, Any]:
    """ResNet-18's parameter groups and 3x3/7x7 layers for the communication model.

    Returns spatial-layer weights (conv and locally connected), batch-norm parameters and
    channels, readout parameters, last-stage channels, and every spatial layer's input
    (channels, side) and kernel.
    """
    from gardenpath.chapters.imagenet import walk

    out: dict[str, Any] = {}
    for sharing in SHARINGS:
        net = resnet18(sharing, width=width, in_size=in_size, device="meta")
        rows = walk(net, in_size)
        out[f"{sharing}_spatial"] = sum(r.params for r in rows if r.kind != "linear")
        if sharing == "conv":
            bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
            out["bn_params"] = sum(p.numel() for m in bns for p in m.parameters())
            out["bn_channels"] = sum(m.num_features for m in bns)
            out["fc_params"] = sum(r.params for r in rows if r.kind == "linear")
            out["last_channels"] = rows[-1].in_shape[0]
            out["layers"] = [{"name": r.name, "channels": r.in_shape[0],
                              "side": r.in_shape[1], "kernel": r.module.kernel_size[0],
                              "first": r.first}
                             for r in rows if r.kind != "linear"]
    sides = [lay["side"] for lay in out["layers"] if lay["kernel"] > 1]
    out["min_side"] = min(sides)
    return out


def spatial_max(layout: dict[str, Any]) -> int:
    """Largest power of two whose near-square grid fits the smallest halo'd map."""
    p = 1
    while True:
        r, c = grid_for(2 * p)
        if r > layout["min_side"] or c > layout["min_side"]:
            return p
        p *= 2


def step_comm(layout: dict[str, Any], sharing: str, p: int, s: int, batch: int,
              alpha_s: float, beta_s_per_byte: float) -> dict[str, float]:
    """Bytes each worker sends and time per step: ``s``-way spatial x ``p / s`` data groups.

    ``s = 1`` is pure data parallelism, ``s = p`` pure spatial partitioning. Per worker:

    * halos: :func:`halo_exchange_bytes` of every layer with a kernel over 1 for the
      group's ``batch / d`` images on a near-square grid, forward and backward (forward
      only for the first layer), divided by ``s``; counted as for stride 1 (an upper
      bound for the stride-2 layers); time ``alpha`` per exchange plus bytes x ``beta``;
    * within the group (ring over ``s``): the pooled features (``batch / d`` x last
      channels) and batch-norm statistics (sum and sum of squares per channel, forward
      and backward);
    * shared gradients, summed over all ``p`` workers: a convolution's filters and
      batch-norm's affine parameters (ring over ``p``);
    * owned gradients, averaged over the ``d`` data groups: the readout, and a locally
      connected net's own positions' filters, ``1 / s`` of them (ring over ``d``).
    """
    d = p // s
    images = batch / d
    spatial = layout[f"{sharing}_spatial"]
    halo = n_halo = 0.0
    if s > 1:
        grid = grid_for(s)
        for lay in layout["layers"]:
            if lay["kernel"] > 1:
                halo += halo_exchange_bytes(images, lay["channels"], lay["side"],
                                            lay["kernel"], grid, backward=not lay["first"])
                n_halo += 1 if lay["first"] else 2
        halo /= s
    group = [FP32_BYTES * images * layout["last_channels"],
             FP32_BYTES * 4 * layout["bn_channels"]] if s > 1 else []
    shared = FP32_BYTES * (layout["bn_params"] + (spatial if sharing == "conv" else 0))
    owned = FP32_BYTES * (layout["fc_params"] + (spatial / s if sharing == "local" else 0))
    sent = halo + sum(ring_allreduce_bytes_per_worker(n, s) for n in group)
    sent += ring_allreduce_bytes_per_worker(shared, p) + ring_allreduce_bytes_per_worker(owned, d)
    t = n_halo * alpha_s + halo * beta_s_per_byte
    t += sum(ring_allreduce_time(n, s, alpha_s, beta_s_per_byte) for n in group)
    t += ring_allreduce_time(shared, p, alpha_s, beta_s_per_byte)
    t += ring_allreduce_time(owned, d, alpha_s, beta_s_per_byte)
    return {"sent_bytes": sent, "halo_bytes": halo, "time_s": t,
            "held_params": spatial / s if sharing == "local" else spatial}


def model_regimes(layout: dict[str, Any], workers: Sequence[int], batch: int,
                  links: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Every (regime, sharing, p, link): bytes sent per worker and time per step."""
    s_max = spatial_max(layout)
    rows = []
    for p in workers:
        for regime, s in (("data parallel", 1), ("spatial", min(p, s_max))):
            for sharing in SHARINGS:
                for link, (alpha, beta) in links.items():
                    r = step_comm(layout, sharing, p, s, batch, alpha, beta)
                    rows.append({"workers": p, "regime": regime, "sharing": sharing,
                                 "spatial_ways": s, "data_groups": p // s, "link": link,
                                 **r})
    return pd.DataFrame(rows)


def power_of_two_workers(max_workers: int) -> list[int]:
    """2, 4, ..., up to ``max_workers``."""
    return [2 ** i for i in range(1, int(math.log2(max_workers)) + 1)]


# ---------------------------------------------------------------------------- verdict


def regime_direction(conv_bytes: float, local_bytes: float) -> str:
    """``"for"`` the essay when sharing moves more, ``"against"`` when less, else ``"even"``."""
    if conv_bytes >= MARGIN * local_bytes:
        return "for"
    if local_bytes >= MARGIN * conv_bytes:
        return "against"
    return "even"


def verdict(directions: dict[str, str]) -> str:
    """Supported when every comparison is for the essay, not supported when none is."""
    values = list(directions.values())
    if values and all(v == "for" for v in values):
        return "supported"
    if not any(v == "for" for v in values):
        return "not supported"
    return "mixed"


# ---------------------------------------------------------------------------- experiment


def run(params: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The chapter: the real 2-process runs, the sweep fit, and the modelled regimes."""
    p = {**DEFAULTS, **params}
    cfg = {k: p[k] for k in ("seed", "world_size", "canvas", "channels", "batch_size",
                             "steps", "lr", "sweep_max_kib", "sweep_points",
                             "sweep_repeats", "threads", "timeout_s")}
    launch = start_distributed(cfg, device)
    layout = resnet_layout(p["model_width"], p["model_in_size"])  # while the workers run
    real = finish_distributed(launch)
    summary = summarise_real(real)
    links = {"this machine (fitted)": (max(summary["alpha_s"], 0.0),
                                       max(summary["beta_s_per_byte"], 1e-15)),
             "datacenter (assumed)": (p["dc_latency_us"] * 1e-6,
                                      1.0 / (p["dc_bandwidth_gbs"] * 1e9))}
    model = model_regimes(layout, power_of_two_workers(p["model_workers_max"]),
                          p["model_batch"], links)
    return {"params": p, "real": real, "summary": summary, "layout": layout,
            "model": model, "links": links, "spatial_max": spatial_max(layout)}


def summarise(res: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """``(numbers, measurements, verdict, why)``.

    ``numbers`` are bytes and counts (the same on every rerun with the same parameters);
    ``measurements`` are times, the fitted alpha and beta, losses and everything modelled
    with the fitted link.
    """
    s, p, layout, model = res["summary"], res["params"], res["layout"], res["model"]
    numbers: dict[str, Any] = {"world_size": s["world_size"], "global_batch": s["global_batch"],
                               "halo_bytes_formula": s["halo_bytes_formula"],
                               "margin": MARGIN, "spatial_max": res["spatial_max"]}
    meas: dict[str, Any] = {"alpha_us": s["alpha_s"] * 1e6,
                            "bandwidth_gbs": (1e-9 / s["beta_s_per_byte"]
                                              if s["beta_s_per_byte"] > 0 else None),
                            "fit_rms_us": s["fit_rms_s"] * 1e6}
    for sharing in SHARINGS:
        pre = f"{sharing}_"
        for k in ("parameters", "dp_payload_bytes", "dp_sent_bytes", "sp_halo_bytes",
                  "sp_logits_sent_bytes", "sp_shared_sent_bytes", "sp_sent_bytes",
                  "sp_shared_params", "sp_params_held_max"):
            numbers[pre + k] = int(round(s[pre + k]))
        numbers[pre + "sp_matches_single_process"] = bool(
            s[pre + "sp_grad_error"] <= 1e-4 * max(1.0, s[pre + "sp_grad_scale"]))
        numbers[pre + "halo_matches_formula"] = (
            int(round(s[pre + "sp_halo_bytes"])) == s["halo_bytes_formula"])
        for k in ("dp_step_s", "sp_step_s", "dp_comm_s", "sp_comm_s", "dp_loss_first",
                  "dp_loss_last", "sp_loss_first", "sp_loss_last", "sp_grad_error"):
            meas[pre + k] = s[pre + k]
    numbers["dp_local_over_conv"] = s["local_dp_sent_bytes"] / s["conv_dp_sent_bytes"]
    numbers["sp_conv_over_local"] = s["conv_sp_sent_bytes"] / s["local_sp_sent_bytes"]
    numbers["dp_direction"] = regime_direction(s["conv_dp_sent_bytes"],
                                               s["local_dp_sent_bytes"])
    numbers["sp_direction"] = regime_direction(s["conv_sp_sent_bytes"],
                                               s["local_sp_sent_bytes"])
    # the model at paper scale, bytes (deterministic) and times (two links)
    for k in ("conv_spatial", "local_spatial", "bn_params", "fc_params"):
        numbers[f"resnet_{k}"] = layout[k]
    dc = model[model["link"] == "datacenter (assumed)"]
    for _, row in dc.iterrows():
        if row["workers"] in (8, p["model_workers_max"]):
            key = (f"model_{'dp' if row['regime'] == 'data parallel' else 'sp'}_"
                   f"{row['sharing']}_p{row['workers']}")
            numbers[key + "_sent_mb"] = row["sent_bytes"] / 1e6
            numbers[key + "_dc_ms"] = row["time_s"] * 1e3
    here = model[model["link"] == "this machine (fitted)"]
    for _, row in here[here["workers"] == 8].iterrows():
        key = f"model_{'dp' if row['regime'] == 'data parallel' else 'sp'}_{row['sharing']}_p8"
        meas[key + "_here_ms"] = row["time_s"] * 1e3
    m8 = {(r["regime"], r["sharing"]): r["sent_bytes"] for _, r in dc[dc["workers"] == 8]
          .iterrows()} if 8 in set(dc["workers"]) else {}
    for workers in (8, p["model_workers_max"]):
        at = dc[dc["workers"] == workers]
        if len(at):
            best = at.groupby("sharing")["sent_bytes"].min()
            numbers[f"model_best_conv_over_local_p{workers}"] = best["conv"] / best["local"]
            numbers[f"model_best_local_mb_p{workers}"] = best["local"] / 1e6
            numbers[f"model_best_conv_mb_p{workers}"] = best["conv"] / 1e6
    if m8:
        numbers["model_dp_direction_p8"] = regime_direction(m8[("data parallel", "conv")],
                                                            m8[("data parallel", "local")])
        numbers["model_sp_direction_p8"] = regime_direction(m8[("spatial", "conv")],
                                                            m8[("spatial", "local")])
    best_conv = min(s["conv_dp_sent_bytes"], s["conv_sp_sent_bytes"])
    best_local = min(s["local_dp_sent_bytes"], s["local_sp_sent_bytes"])
    numbers["best_conv_over_local"] = best_conv / best_local
    numbers["best_direction"] = regime_direction(best_conv, best_local)
    directions = {"data parallel": numbers["dp_direction"],
                  "spatial": numbers["sp_direction"],
                  "each in its cheaper regime": numbers["best_direction"]}
    v = verdict(directions)
    why = (f"Measured with {s['world_size']} processes on digits. Data parallel: the locally "
           f"connected net sends {numbers['dp_local_over_conv']:.1f}x the convolutional "
           f"net's bytes ({numbers['dp_direction']} the essay). Spatially partitioned: the "
           f"convolutional net sends {numbers['sp_conv_over_local']:.2f}x the locally "
           f"connected net's ({numbers['sp_direction']} the essay). Each in its cheaper "
           f"regime: the convolutional net sends {numbers['best_conv_over_local']:.2f}x "
           f"the locally connected net's ({numbers['best_direction']} the essay). A "
           f"comparison counts when one side sends at least {MARGIN}x the other's bytes.")
    return _plain(numbers), _plain(meas), v, why


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """Numpy scalars as Python ones (``glue`` formats Python numbers only)."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in d.items()}


def memory_estimate(params: dict) -> int:
    """Bytes the real run needs at most: every process's data, nets and activations.

    Per process: the digits on their canvas (float32), each net's parameters with
    gradients and optimizer state (x3) and the DDP buckets (x1), and activations of
    the largest batch (the spatial run's whole global batch, forward and backward),
    plus a fixed 400 MB for the interpreter and torch; times ``world_size``.
    """
    p = {**DEFAULTS, **(params or {})}
    canvas, ch = p["canvas"], p["channels"]
    data = 1797 * canvas * canvas * 4
    net = digits_net("local", canvas, ch, device="meta")
    n = sum(q.numel() for q in net.parameters())
    acts, size, c_in = 0, canvas, 1
    for c_out in ch:
        acts += size * size * (c_in * 9 * 3 + c_out * 3)
        size, c_in = size // 2, c_out
    gb = p["batch_size"] * p["world_size"]
    per = data + 4 * n * 4 + 4 * gb * acts * 2 + p["sweep_max_kib"] * 1024 * 2 + 400 * 2 ** 20
    return int(p["world_size"] * per)


# ---------------------------------------------------------------------------- tables, charts

SHARING_LABELS = {"conv": "conv (shared)", "local": "locally connected"}


def real_table(res: dict[str, Any]) -> pd.DataFrame:
    """Bytes sent per step by every rank together, by regime, sharing and kind of message."""
    s = res["summary"]
    rows = []
    for sharing in SHARINGS:
        pre = f"{sharing}_"
        rows.append({"regime": "data parallel", "layers": SHARING_LABELS[sharing],
                     "parameters": f"{s[pre + 'parameters']:,}",
                     "gradient all-reduce": f"{s[pre + 'dp_sent_bytes']:,.0f}",
                     "halos": "0", "partial logits": "0",
                     "total bytes sent": f"{s[pre + 'dp_sent_bytes']:,.0f}",
                     "step (ms)": round(1e3 * s[pre + "dp_step_s"], 2)})
        rows.append({"regime": "spatial", "layers": SHARING_LABELS[sharing],
                     "parameters": f"{s[pre + 'parameters']:,}",
                     "gradient all-reduce": f"{s[pre + 'sp_shared_sent_bytes']:,.0f}",
                     "halos": f"{s[pre + 'sp_halo_bytes']:,.0f}",
                     "partial logits": f"{s[pre + 'sp_logits_sent_bytes']:,.0f}",
                     "total bytes sent": f"{s[pre + 'sp_sent_bytes']:,.0f}",
                     "step (ms)": round(1e3 * s[pre + "sp_step_s"], 2)})
    return pd.DataFrame(rows).set_index(["regime", "layers"])


def _color() -> alt.Color:
    labels = [SHARING_LABELS[k] for k in SHARINGS]
    return alt.Color("layers:N", title="layers",
                     scale=alt.Scale(domain=labels,
                                     range=[charts.SHARING_COLORS[k] for k in SHARINGS]))


def chart_real(res: dict[str, Any]) -> alt.Chart:
    """Stacked bars: bytes sent per step in the real run, by kind of message."""
    s = res["summary"]
    rows = []
    for sharing in SHARINGS:
        pre = f"{sharing}_"
        for regime, kind, value in (
                ("data parallel", "gradient all-reduce", s[pre + "dp_sent_bytes"]),
                ("spatial", "gradient all-reduce", s[pre + "sp_shared_sent_bytes"]),
                ("spatial", "halos", s[pre + "sp_halo_bytes"]),
                ("spatial", "partial logits", s[pre + "sp_logits_sent_bytes"])):
            rows.append({"run": f"{regime}, {SHARING_LABELS[sharing]}",
                         "message": kind, "KB": value / 1e3})
    df = pd.DataFrame(rows)
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y("run:N", sort=list(dict.fromkeys(df["run"])), title=None,
                axis=alt.Axis(labelLimit=260)),
        x=alt.X("KB:Q", title="kilobytes sent per training step, all processes"),
        color=alt.Color("message:N", title="message",
                        scale=alt.Scale(range=[charts.PALETTE[2], charts.PALETTE[3],
                                               charts.PALETTE[5]])),
        order=alt.Order("message:N"),
        tooltip=["run", "message", alt.Tooltip("KB:Q", format=",.1f")],
    ).properties(height=160, title="Bytes each training step sends (measured)")


def chart_sweep(res: dict[str, Any]) -> alt.LayerChart:
    """All-reduce time against size: measured points and the fitted alpha-beta line."""
    s = res["summary"]
    world = s["world_size"]
    pts = pd.DataFrame([{"bytes": n, "ms": t * 1e3} for n, t, _ in s["sweep"]])
    sizes = np.geomspace(pts["bytes"].min(), pts["bytes"].max(), 40)
    line = pd.DataFrame({"bytes": sizes, "ms": [1e3 * ring_allreduce_time(
        n, world, max(s["alpha_s"], 0.0), max(s["beta_s_per_byte"], 0.0)) for n in sizes]})
    x = alt.X("bytes:Q", scale=alt.Scale(type="log"), title="bytes all-reduced (log scale)")
    y = alt.Y("ms:Q", scale=alt.Scale(type="log"), title="milliseconds (log scale)")
    dots = alt.Chart(pts).mark_point(filled=True, color=charts.PALETTE[0]).encode(
        x=x, y=y, tooltip=[alt.Tooltip("bytes:Q", format=","),
                           alt.Tooltip("ms:Q", format=".3f")])
    fit = alt.Chart(line).mark_line(color=charts.PALETTE[1]).encode(x=x, y=y)
    return (dots + fit).properties(title=f"All-reduce across {world} processes: "
                                         f"measured and fitted")


def chart_model(res: dict[str, Any], value: str) -> alt.Chart:
    """Modelled ResNet-18 communication per worker and step against the worker count."""
    df = res["model"].copy()
    df["layers"] = df["sharing"].map(SHARING_LABELS)
    df["series"] = df["regime"] + ", " + df["layers"]
    if value == "bytes":
        df = df[df["link"] == "datacenter (assumed)"]
        df["y"] = df["sent_bytes"] / 1e6
        title, y_title = "Bytes each worker sends per step (modelled)", "MB (log scale)"
        dash = alt.StrokeDash("regime:N", title="regime")
    else:
        df["y"] = df["time_s"] * 1e3
        title, y_title = "Communication time per step (modelled)", "ms (log scale)"
        dash = alt.StrokeDash("link:N", title="link")
    enc = {
        "x": alt.X("workers:Q", scale=alt.Scale(type="log", base=2), title="workers"),
        "y": alt.Y("y:Q", scale=alt.Scale(type="log"), title=y_title),
        "color": _color(),
        "detail": "series:N",
        "tooltip": ["regime", "layers", "workers", "spatial_ways", "data_groups", "link",
                    alt.Tooltip("y:Q", format=",.3f", title=y_title.split(" ")[0])],
    }
    if value == "bytes":
        chart = alt.Chart(df).mark_line(point=True).encode(strokeDash=dash, **enc)
    else:
        df["line"] = df["series"] + ", " + df["link"]
        enc["detail"] = "line:N"
        chart = alt.Chart(df).mark_line(point=True).encode(
            strokeDash=dash, shape=alt.Shape("regime:N", title="regime"), **enc)
    return chart.properties(title=title)


# ---------------------------------------------------------------------------- prose pieces


def setup_values(res: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """Parameters and run facts, flat, for ``{glue:text}``."""
    p, s = res["params"], res["summary"]
    name = info.get("name") or info.get("device") or "this device"
    cfg = res["real"]["cfg"]
    return {
        "canvas": p["canvas"], "batch_size": p["batch_size"], "steps": p["steps"],
        "channels_text": " and ".join(str(c) for c in p["channels"]),
        "backend": cfg["backend"], "rank_device": res["real"]["ranks"][0]["device"],
        "device_name": f"{name} ({info.get('device', '')})",
        "model_width": p["model_width"], "model_in_size": p["model_in_size"],
        "model_batch": p["model_batch"], "model_workers_max": p["model_workers_max"],
        "dc_bandwidth_gbs": p["dc_bandwidth_gbs"], "dc_latency_us": p["dc_latency_us"],
        "sweep_min_bytes": min(cfg["sweep_sizes"]), "sweep_max_bytes": max(cfg["sweep_sizes"]),
        "sweep_repeats": p["sweep_repeats"], "threads": p["threads"],
        "halo_bytes_measured_conv": s["conv_sp_halo_bytes"],
    }


def prose(res: dict[str, Any], info: dict[str, Any]) -> dict[str, str]:
    """Sentences that depend on the run, glued as Markdown."""
    s, p = res["summary"], res["params"]
    cfg = res["real"]["cfg"]
    if cfg["backend"] == "nccl":
        backend = (f"The {s['world_size']} processes used NCCL, one GPU each "
                   f"({res['real']['ranks'][0]['device']} for the first).")
    else:
        why = ""
        if p["device"] != "cpu" and torch.cuda.is_available():
            why = (f" (this machine has {torch.cuda.device_count()} GPU(s), fewer than the "
                   f"{s['world_size']} processes, so NCCL could not give each its own)")
        backend = (f"The {s['world_size']} processes ran on the CPU and talked through "
                   f"gloo over the loopback interface{why}, with {p['threads']} torch "
                   f"thread(s) each.")
    ok = all(s[f"{k}_sp_grad_error"] <= 1e-4 * max(1.0, s[f"{k}_sp_grad_scale"])
             for k in SHARINGS)
    check = (
        "Before timing, one spatially partitioned step's gradients were compared with the "
        "same step of the whole net on one process: "
        + ("they agree " if ok else "they do NOT agree ")
        + f"(largest difference {max(s['conv_sp_grad_error'], s['local_sp_grad_error']):.1e}"
        f" against gradients up to {s['conv_sp_grad_scale']:.2f}).")
    halo_ok = all(int(round(s[f"{k}_sp_halo_bytes"])) == s["halo_bytes_formula"]
                  for k in SHARINGS)
    halo = ("The halo bytes counted on the wire equal the formula's "
            if halo_ok else "The halo bytes counted on the wire differ from the formula's ") + (
        f"{s['halo_bytes_formula']:,} per step (forward and backward for the second layer, "
        f"forward only for the first, whose input needs no gradient).")
    share = s["local_sp_halo_bytes"] / s["local_sp_sent_bytes"]
    split = (f"the halos ({s['local_sp_halo_bytes']:,.0f} bytes, the same for both nets) "
             f"are {100 * share:.0f}% of the locally connected net's traffic, and the "
             f"convolutional net adds {s['conv_sp_shared_sent_bytes']:,.0f} bytes for its "
             f"shared filters.")
    dc = res["model"][res["model"]["link"] == "datacenter (assumed)"]
    pick = 8 if 8 in set(dc["workers"]) else int(dc["workers"].min())
    at = dc[dc["workers"] == pick]
    best = at.groupby("sharing")["sent_bytes"].min()
    regimes = at.loc[at.groupby("sharing")["sent_bytes"].idxmin()].set_index("sharing")
    workers = int(at["workers"].iloc[0])
    cheaper = "less" if best["conv"] < best["local"] else "more"
    compare = (f"In the ResNet-18 model at {workers} workers, the shared net in its cheaper "
               f"regime ({regimes.loc['conv', 'regime']}) sends {cheaper} than the "
               f"unshared net in its cheaper one ({regimes.loc['local', 'regime']}): "
               f"{best['conv'] / 1e6:,.0f} MB against {best['local'] / 1e6:,.0f} MB per "
               f"worker and step.")
    return {"backend_sentence": backend, "check_sentence": check, "halo_sentence": halo,
            "split_sentence": split, "compare_sentence": compare}
