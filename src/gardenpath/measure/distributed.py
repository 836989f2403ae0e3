"""Distributed training runs that count every byte: data parallel, spatial, parameter server.

One rank's work is :func:`run_rank`: optionally an all-reduce sweep of the link, then, for
each requested (net, regime), a few warm-up steps and ``steps`` timed training steps of
:func:`~gardenpath.models.nets.digits_net` on scikit-learn's digits, with every message
recorded by a :class:`~gardenpath.measure.comm.CommCounter`:

* ``data``: DistributedDataParallel, every gradient bucket all-reduced (counted through
  the counter's DDP hook);
* ``spatial``: :class:`~gardenpath.models.partitioned.SpatialDigitsNet`, halos between
  neighbouring bands, partial logits all-reduced, a convolution's shared gradients
  all-reduced;
* ``server``: a parameter server and asynchronous SGD (Dean et al. 2012's Downpour):
  rank 0 holds the parameters, every other rank is a worker that pushes its gradient and
  pulls the parameters back; the server applies each gradient as it arrives.

The same code runs two ways. Under torchrun (several machines: the same command with
torchrun's rendezvous options)::

    torchrun --standalone --nproc_per_node=2 -m gardenpath.measure.distributed \\
        --net conv --regime spatial --steps 3 --json

prints, as JSON on rank 0's stdout, every rank's bytes sent and step times. Without
torchrun, :func:`launch` and :func:`gather` spawn the processes on a free loopback port
(the chapter does this; so does ``python -m gardenpath.measure.distributed`` when not
started by torchrun). Unset options take the parallelism notebook's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from gardenpath.measure.comm import (
    CommCounter,
    CommRecord,
    allreduce_sweep,
    ring_allreduce_bytes_per_worker,
)
from gardenpath.models.nets import digits_net
from gardenpath.models.partitioned import BandComm, SpatialDigitsNet, check_config

#: Command-line net names and the builders' sharing names.
NETS = {"conv": "conv", "lc": "local"}
REGIMES = ("data", "spatial", "server")
#: Untimed steps before the timed ones (allocation, DDP's bucket rebuild).
WARMUP = 2
#: Operations that receive rather than send: their bytes are the sender's.
RECEIVES = ("server_push_recv", "worker_pull_recv")
#: The configuration a run needs, all from the parallelism notebook's parameters cell.
CONFIG_KEYS = ("seed", "world_size", "canvas", "channels", "batch_size", "steps", "lr",
               "threads", "sweep_max_kib", "sweep_repeats", "timeout_s")


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def digits_data(canvas: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's training digits centred on a ``canvas`` x ``canvas`` blank image."""
    from gardenpath.data import load_digits_split, place_on_canvas

    x_train, _, y_train, _ = load_digits_split(seed=seed)
    off = (canvas - 8) // 2
    x = place_on_canvas(x_train, canvas, (off, off)).reshape(-1, 1, canvas, canvas)
    return torch.from_numpy(x), torch.from_numpy(y_train)


def sent_bytes(record: CommRecord) -> float:
    """Bytes this rank put on the wire for one record.

    All-reduces as the ring algorithm sends them (``2 (p-1)/p`` of the payload), receives
    nothing (their bytes are counted by the sender), every other message its payload.
    """
    if record.op in RECEIVES:
        return 0.0
    if "all_reduce" in record.op:
        return ring_allreduce_bytes_per_worker(record.payload_bytes, record.world_size)
    return float(record.payload_bytes)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed_steps(step: Callable[[], None], counter: CommCounter, steps: int,
                dev: torch.device) -> dict[str, Any]:
    """``WARMUP`` untimed calls of ``step``, then ``steps`` timed ones, each with its messages.

    Each step's wall time comes with the bytes and time of the messages sent during it,
    which :func:`~gardenpath.measure.timing.time_fn` cannot attribute (it adds its own
    warm-up calls), so the loop is written out here.
    """
    for _ in range(WARMUP):
        step()
    _sync(dev)
    counter.reset()
    step_s, comm_s, sent = [], [], []
    ops: dict[str, float] = {}
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        _sync(dev)
        step_s.append(time.perf_counter() - t0)
        records = counter.reset()
        comm_s.append(sum(r.time_s for r in records))
        sent.append(sum(sent_bytes(r) for r in records))
        for r in records:
            if r.op not in RECEIVES:
                ops[r.op] = ops.get(r.op, 0.0) + sent_bytes(r) / steps
    return {"step_s": step_s, "comm_s": comm_s, "sent_bytes": sent, "ops": ops}


class Batches:
    """Consecutive batches of ``size`` indices from a seeded shuffle's ``shard``, wrapping."""

    def __init__(self, n: int, seed: int, shard: slice, size: int) -> None:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        self.order, self.size, self.calls = order[shard], size, 0

    def next(self) -> torch.Tensor:
        """The next batch's indices."""
        i = self.calls * self.size % max(1, len(self.order) - self.size)
        self.calls += 1
        return self.order[i:i + self.size]


def _data_run(sharing: str, cfg: dict[str, Any], x: torch.Tensor, y: torch.Tensor,
              rank: int, world: int, dev: torch.device) -> dict[str, Any]:
    """Data parallel with DDP; every gradient bucket counted."""
    torch.manual_seed(cfg["seed"])
    net = digits_net(sharing, cfg["canvas"], cfg["channels"]).to(dev)
    ddp = nn.parallel.DistributedDataParallel(
        net, device_ids=[dev.index] if dev.type == "cuda" else None)
    counter = CommCounter()
    counter.attach(ddp)
    opt = torch.optim.SGD(ddp.parameters(), lr=cfg["lr"])
    batches = Batches(len(x), cfg["seed"], slice(rank, None, world), cfg["batch_size"])

    def step() -> None:
        idx = batches.next()
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(ddp(x[idx].to(dev)), y[idx].to(dev)).backward()
        opt.step()

    return {"role": "worker", "parameters": sum(p.numel() for p in net.parameters()),
            **timed_steps(step, counter, cfg["steps"], dev)}


def _spatial_run(sharing: str, cfg: dict[str, Any], x: torch.Tensor, y: torch.Tensor,
                 rank: int, world: int, dev: torch.device) -> dict[str, Any]:
    """Spatially partitioned: halos, partial logits, shared-gradient sums; gradients checked."""
    torch.manual_seed(cfg["seed"])
    full = digits_net(sharing, cfg["canvas"], cfg["channels"]).to(dev)
    counter = CommCounter()
    net = SpatialDigitsNet(full, cfg["canvas"], rank, world,
                           BandComm(rank, world, counter)).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"])
    # the same images per step as data parallel, every band seeing all of them
    batches = Batches(len(x), cfg["seed"] + 1, slice(None), cfg["batch_size"] * world)

    # correctness: one step's gradients against the whole net on one process
    first = batches.order[:batches.size]
    xb, yb = x[first].to(dev), y[first].to(dev)
    F.cross_entropy(full(xb), yb).backward()
    F.cross_entropy(net(net.band_input(xb)), yb).backward()
    net.sync_shared_grads()
    grad_error = net.grad_error(full)
    grad_scale = float(max(p.grad.abs().max() for p in full.parameters()))

    def step() -> None:
        idx = batches.next()
        xb, yb = x[idx].to(dev), y[idx].to(dev)
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(net(net.band_input(xb)), yb).backward()
        net.sync_shared_grads()
        opt.step()

    return {"role": "band", "grad_error": grad_error, "grad_scale": grad_scale,
            "params_held": sum(p.numel() for p in net.parameters()),
            "shared_params": sum(p.numel() for p in net.shared_parameters()),
            **timed_steps(step, counter, cfg["steps"], dev)}


def _server_run(sharing: str, cfg: dict[str, Any], x: torch.Tensor, y: torch.Tensor,
                rank: int, world: int, dev: torch.device) -> dict[str, Any]:
    """Parameter server (rank 0) and asynchronous SGD workers (every other rank).

    A worker's step: gradient of its batch at the parameters it holds, pushed to the
    server, then the server's parameters pulled back. The server applies each pushed
    gradient at once (plain SGD), without waiting for the other workers; with gloo it
    serves whichever worker pushes first (NCCL has no any-source receive, so there the
    workers are served in turn).
    """
    torch.manual_seed(cfg["seed"])
    net = digits_net(sharing, cfg["canvas"], cfg["channels"]).to(dev)
    params = list(net.parameters())
    flat = parameters_to_vector(params).detach().clone()  # (N,)
    counter = CommCounter()
    workers = world - 1
    if rank == 0:
        grad = torch.empty_like(flat)
        requests = (WARMUP + cfg["steps"]) * workers
        any_source = dist.get_backend() != "nccl"
        for i in range(requests):
            src = counter.call("server_push_recv", dist.recv, grad,
                               None if any_source else 1 + i % workers)
            flat -= cfg["lr"] * grad
            counter.call("server_pull_send", dist.send, flat, src)
        total = sum(sent_bytes(r) for r in counter.records)
        return {"role": "server", "parameters": flat.numel(), "requests": requests,
                "step_s": [], "comm_s": [],
                "sent_bytes": [total / (WARMUP + cfg["steps"])] * cfg["steps"],
                "ops": {"server_pull_send": total / (WARMUP + cfg["steps"])}}
    batches = Batches(len(x), cfg["seed"], slice(rank - 1, None, workers), cfg["batch_size"])

    def step() -> None:
        idx = batches.next()
        net.zero_grad(set_to_none=False)
        F.cross_entropy(net(x[idx].to(dev)), y[idx].to(dev)).backward()
        g = parameters_to_vector([p.grad for p in params])
        counter.call("worker_push", dist.send, g, 0)
        counter.call("worker_pull_recv", dist.recv, flat, 0)
        with torch.no_grad():
            vector_to_parameters(flat, params)

    return {"role": "worker", "parameters": flat.numel(),
            **timed_steps(step, counter, cfg["steps"], dev)}


RUNNERS = {"data": _data_run, "spatial": _spatial_run, "server": _server_run}


def run_rank(rank: int, world: int, cfg: dict[str, Any], x: torch.Tensor, y: torch.Tensor,
             jobs: Sequence[tuple[str, str]], dev: torch.device,
             sweep_sizes: Sequence[int] = ()) -> dict[str, Any]:
    """One rank's record: the link sweep (if sizes are given), then every (net, regime).

    The process group must be initialised. ``jobs`` holds ``(net, regime)`` pairs with
    nets as in :data:`NETS` (``conv``, ``lc``) and regimes in :data:`REGIMES`.
    """
    out: dict[str, Any] = {"rank": rank, "device": str(dev), "backend": dist.get_backend()}
    if sweep_sizes:
        sweep = allreduce_sweep(sweep_sizes, device=dev, repeats=cfg["sweep_repeats"])
        out["sweep"] = [(r.payload_bytes, r.time_s, r.world_size) for r in sweep]
    out["jobs"] = []
    for net, regime in jobs:
        rec = RUNNERS[regime](NETS[net], cfg, x, y, rank, world, dev)
        out["jobs"].append({"net": net, "regime": regime, **rec})
        dist.barrier()
    return out


def choose_backend(device: torch.device, world: int) -> str:
    """``"nccl"`` when the device is CUDA and there is a GPU per rank, else ``"gloo"``."""
    if device.type == "cuda" and torch.cuda.device_count() >= world:
        return "nccl"
    return "gloo"


def _rank_device(backend: str, local_rank: int) -> torch.device:
    if backend == "nccl":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        return dev
    return torch.device("cpu")


def _spawned(rank: int, cfg: dict[str, Any], port: int, out_dir: str, x: torch.Tensor,
             y: torch.Tensor, jobs: list[tuple[str, str]], sizes: list[int]) -> None:
    """One spawned rank: join the group on the loopback port, run, write its record."""
    if cfg["threads"] > 0:
        torch.set_num_threads(cfg["threads"])
    world = cfg["world_size"]
    dist.init_process_group(cfg["backend"], init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world)
    try:
        out = run_rank(rank, world, cfg, x, y, jobs, _rank_device(cfg["backend"], rank), sizes)
    finally:
        dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
        json.dump(out, fh)


def _check(cfg: dict[str, Any], world: int, jobs: Sequence[tuple[str, str]]) -> None:
    """Two processes at least; for a spatial job, bands that every stage can pool."""
    if world < 2:
        raise ValueError("a distributed run needs at least 2 processes")
    if any(regime == "spatial" for _, regime in jobs):
        check_config(world, cfg["canvas"], cfg["channels"])


class Launch:
    """Processes of a run that were started and not yet gathered."""

    def __init__(self, cfg: dict[str, Any], ctx: Any, out_dir: tempfile.TemporaryDirectory,
                 deadline: float) -> None:
        self.cfg, self.ctx, self.out_dir, self.deadline = cfg, ctx, out_dir, deadline


def launch(cfg: dict[str, Any], device: torch.device, jobs: Sequence[tuple[str, str]],
           sweep_sizes: Sequence[int] = ()) -> Launch:
    """Spawn ``world_size`` processes running :func:`run_rank` and return at once."""
    import torch.multiprocessing as mp

    _check(cfg, cfg["world_size"], jobs)
    cfg = {**cfg, "backend": choose_backend(device, cfg["world_size"])}
    x, y = digits_data(cfg["canvas"], cfg["seed"])
    out_dir = tempfile.TemporaryDirectory(prefix="gardenpath-parallel-")
    ctx = mp.spawn(_spawned, args=(cfg, free_port(), out_dir.name, x, y, list(jobs),
                                   list(sweep_sizes)),
                   nprocs=cfg["world_size"], join=False)
    return Launch(cfg, ctx, out_dir, time.monotonic() + cfg["timeout_s"])


def gather(run: Launch) -> dict[str, Any]:
    """Wait for the processes (until the deadline) and return every rank's record.

    Raises ``RuntimeError`` when the run passes ``timeout_s`` (the processes are then
    terminated); a process that fails raises its own exception here.
    """
    try:
        while not run.ctx.join(timeout=1):
            if time.monotonic() > run.deadline:
                for proc in run.ctx.processes:
                    if proc.is_alive():
                        proc.terminate()
                raise RuntimeError(f"the {run.cfg['world_size']}-process run did not "
                                   f"finish in {run.cfg['timeout_s']} s")
        ranks = []
        for r in range(run.cfg["world_size"]):
            with open(os.path.join(run.out_dir.name, f"rank{r}.json")) as fh:
                ranks.append(json.load(fh))
    finally:
        run.out_dir.cleanup()
    return {"cfg": run.cfg, "ranks": ranks}


# ---------------------------------------------------------------------------- command line


def notebook_defaults() -> dict[str, Any]:
    """The parallelism notebook's parameter defaults: one place for every default."""
    from gardenpath.params import notebook_parameters

    root = Path(os.environ.get("GARDENPATH_ROOT") or Path(__file__).resolve().parents[3])
    declared = notebook_parameters(root / "notebooks" / "parallelism.py")
    return {name: p.default for name, p in declared.items()}


def job_report(ranks: Sequence[dict[str, Any]], index: int = 0) -> dict[str, Any]:
    """Per rank, one job's bytes sent per step and step times, as the command prints them."""
    out = []
    for r in ranks:
        j = r["jobs"][index]
        n = max(1, len(j["sent_bytes"]))
        out.append({"rank": r["rank"], "role": j["role"],
                    "bytes_sent_per_step": sum(j["sent_bytes"]) / n,
                    "bytes_sent_by_op": j["ops"], "step_s": j["step_s"],
                    "comm_s": j["comm_s"]})
    first = ranks[0]["jobs"][index]
    return {"net": first["net"], "regime": first["regime"], "world_size": len(ranks),
            "backend": ranks[0]["backend"], "ranks": out,
            "bytes_sent_per_step_all_ranks": sum(r["bytes_sent_per_step"] for r in out)}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m gardenpath.measure.distributed",
        description="Train the digits net distributed for a few steps and count its bytes. "
                    "Run under torchrun, or alone (it then spawns --world-size processes). "
                    "Unset options take the parallelism notebook's defaults.")
    ap.add_argument("--net", choices=sorted(NETS), required=True)
    ap.add_argument("--regime", choices=REGIMES, required=True)
    ap.add_argument("--steps", type=int, help="timed steps after the warm-up")
    ap.add_argument("--json", action="store_true", help="print JSON on stdout (rank 0)")
    ap.add_argument("--canvas", type=int)
    ap.add_argument("--channels", type=int, nargs="+")
    ap.add_argument("--batch-size", type=int, dest="batch_size")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--world-size", type=int, dest="world_size",
                    help="processes to spawn when not under torchrun")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    return ap


def config(args: argparse.Namespace, world_size: int | None = None) -> dict[str, Any]:
    """The run's configuration: the notebook's defaults, overridden by the options given."""
    cfg = {k: v for k, v in notebook_defaults().items() if k in CONFIG_KEYS}
    cfg.update({k: getattr(args, k) for k in CONFIG_KEYS
                if getattr(args, k, None) is not None})
    if world_size is not None:
        cfg["world_size"] = world_size
    return cfg


def _print(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report))
        return
    print(f"{report['net']} / {report['regime']}, {report['world_size']} processes "
          f"({report['backend']}): {report['bytes_sent_per_step_all_ranks']:,.0f} bytes "
          f"sent per step by all ranks")
    for r in report["ranks"]:
        times = ", ".join(f"{1e3 * t:.2f}" for t in r["step_s"]) or "-"
        print(f"  rank {r['rank']} ({r['role']}): {r['bytes_sent_per_step']:,.0f} B/step, "
              f"steps {times} ms")


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: one (net, regime) under torchrun, or spawned here without it."""
    args = _parser().parse_args(argv)
    job = [(args.net, args.regime)]
    device = torch.device(args.device)
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # started by torchrun
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        cfg = config(args, world)
        _check(cfg, world, job)
        backend = choose_backend(device, int(os.environ.get("LOCAL_WORLD_SIZE", world)))
        if cfg["threads"] > 0:
            torch.set_num_threads(cfg["threads"])
        dist.init_process_group(backend)
        try:
            x, y = digits_data(cfg["canvas"], cfg["seed"])
            dev = _rank_device(backend, int(os.environ.get("LOCAL_RANK", 0)))
            mine = run_rank(rank, world, cfg, x, y, job, dev)
            ranks: list[Any] = [None] * world
            dist.all_gather_object(ranks, mine)
        finally:
            dist.destroy_process_group()
        if rank == 0:
            _print(job_report(ranks), args.json)
        return 0
    cfg = config(args)
    _print(job_report(gather(launch(cfg, device, job))["ranks"]), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
