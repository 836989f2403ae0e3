"""measure.comm: ring model, alpha-beta fit, halo bytes, and a real 2-process gloo run."""

from __future__ import annotations

import json
import os
import random
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gardenpath.measure.comm import (
    CommCounter,
    CommRecord,
    Link,
    allreduce_sweep,
    fit_alpha_beta,
    fit_link,
    halo_exchange_bytes,
    ring_allreduce_bytes_per_worker,
    ring_allreduce_time,
    sweep_sizes,
    tensor_bytes,
)

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_ring_allreduce_model():
    assert ring_allreduce_bytes_per_worker(1000, 1) == 0
    assert ring_allreduce_bytes_per_worker(1000, 4) == 1500
    assert ring_allreduce_time(1000, 4, alpha_s=1e-5, beta_s_per_byte=1e-9) == pytest.approx(
        6e-5 + 1.5e-6
    )
    # bandwidth term tends to 2 n beta as p grows; latency term grows linearly
    assert ring_allreduce_bytes_per_worker(1000, 1000) == pytest.approx(1998)
    with pytest.raises(ValueError):
        ring_allreduce_time(1, 0, 0, 0)


def test_fit_recovers_known_alpha_beta():
    alpha, beta = 3e-5, 2e-10
    sizes = [1e3, 1e5, 1e6, 1e7]
    p2p = fit_alpha_beta([(n, alpha + n * beta) for n in sizes])
    assert p2p.alpha_s == pytest.approx(alpha) and p2p.beta_s_per_byte == pytest.approx(beta)
    assert p2p.workers is None and p2p.rms_residual_s < 1e-12
    recs = [CommRecord("all_reduce", int(n), ring_allreduce_time(n, 8, alpha, beta), 8)
            for n in sizes]
    ring = fit_alpha_beta(recs)
    assert ring.workers == 8
    assert ring.alpha_s == pytest.approx(alpha) and ring.beta_s_per_byte == pytest.approx(beta)
    assert ring.bandwidth_bytes_per_s == pytest.approx(1 / beta)
    with pytest.raises(ValueError, match="two or more sizes"):
        fit_alpha_beta([(10, 1.0), (10, 2.0)])


def test_sweep_sizes_are_every_power_of_two():
    assert sweep_sizes(64) == [4, 8, 16, 32, 64]
    assert sweep_sizes(100, 16) == [16, 32, 64]
    with pytest.raises(ValueError):
        sweep_sizes(2)


def _records(cost, sizes, world=2, rounds=3, noise=()):
    """Sweep records of a ring all-reduce whose messages cost ``cost(m)``; ``noise`` adds
    a slow reading to some (round, size) pairs, as a busy machine would."""
    out = []
    for r in range(rounds):
        for n in sizes:
            t = 2 * (world - 1) * cost(n / world) + (5e-3 if (r, n) in noise else 0.0)
            out.append(CommRecord("all_reduce", n, t, world))
    return out


def test_fit_link_recovers_a_link_per_size_range():
    small, large = (40e-6, 2e-9), (300e-6, 0.5e-9)

    def cost(m):
        a, b = small if m <= 32768 else large
        return a + m * b

    sizes = sweep_sizes(2 ** 24)
    link = fit_link(_records(cost, sizes, noise={(1, 1024), (2, 2 ** 22)}), [32768])
    assert len(link.ranges) == 2
    (_, lo), (_, hi) = link.ranges
    assert (lo.alpha_s, lo.beta_s_per_byte) == (pytest.approx(small[0]), pytest.approx(small[1]))
    assert (hi.alpha_s, hi.beta_s_per_byte) == (pytest.approx(large[0]), pytest.approx(large[1]))
    assert link.latency_s == pytest.approx(40e-6)
    assert link.rms_over_latency < 1e-6  # the fastest round of each size: noise gone
    assert link.message_s(1000) == pytest.approx(cost(1000))
    assert link.message_s(10 ** 6) == pytest.approx(cost(10 ** 6))
    assert link.allreduce_s(8e6, 4) == pytest.approx(6 * cost(2e6))
    assert link.allreduce_s(8e6, 1) == 0
    # one line through both ranges cannot follow them: its misfit exceeds the latency
    assert fit_link(_records(cost, sizes), []).rms_over_latency > 1


def test_fit_link_merges_a_range_with_too_few_sizes():
    link = fit_link(_records(lambda m: 1e-5 + m * 1e-9, sweep_sizes(2 ** 16)), [16384])
    assert len(link.ranges) == 1  # above 16 KiB: one message size only
    assert link.latency_s == pytest.approx(1e-5)


def test_single_link_is_the_alpha_beta_model():
    link = Link.single(1e-5, 1e-9)
    assert link.allreduce_s(1000, 4) == pytest.approx(ring_allreduce_time(1000, 4, 1e-5, 1e-9))
    assert link.message_s(0) == pytest.approx(1e-5)


def test_tensor_bytes():
    assert tensor_bytes(torch.zeros(3, 5, dtype=torch.float16)) == 30
    assert tensor_bytes([torch.zeros(2), (torch.zeros(1, dtype=torch.int64),), "x"]) == 16


def test_halo_by_hand():
    # 8x8 map, 3x3 kernel, split into 2 row strips: each side needs 1 row of 8
    assert halo_exchange_bytes(1, 1, 8, 3, (2, 1), backward=False) == 2 * 8 * 4
    assert halo_exchange_bytes(1, 1, 8, 3, (2, 1)) == 2 * 2 * 8 * 4
    # 2x2 tiles: two cuts of 2 rows x 8, plus 4 corner elements
    assert halo_exchange_bytes(1, 1, 8, 3, (2, 2), backward=False) == (16 + 16 + 4) * 4
    assert halo_exchange_bytes(2, 3, 8, 1, (4, 4)) == 0  # 1x1 kernels need no halo
    with pytest.raises(ValueError):
        halo_exchange_bytes(1, 1, 4, 3, (5, 1))


def brute_force_halo(h, w, k, rows, cols):
    """Elements each tile reads from other tiles for a 'same' stride-1 conv (odd k)."""
    r = k // 2
    row_cut = [h * i // rows for i in range(rows + 1)]
    col_cut = [w * j // cols for j in range(cols + 1)]
    total = 0
    for i in range(rows):
        for j in range(cols):
            r0, r1, c0, c1 = row_cut[i], row_cut[i + 1], col_cut[j], col_cut[j + 1]
            for y in range(max(0, r0 - r), min(h, r1 + r)):
                for x in range(max(0, c0 - r), min(w, c1 + r)):
                    if not (r0 <= y < r1 and c0 <= x < c1):
                        total += 1
    return total


@pytest.mark.parametrize("seed", range(6))
def test_halo_formula_matches_brute_force(seed):
    rng = random.Random(seed)
    h, w, k = rng.randint(6, 14), rng.randint(6, 14), rng.choice([3, 5])
    rows, cols = rng.randint(1, 3), rng.randint(1, 3)
    expect = brute_force_halo(h, w, k, rows, cols)
    got = halo_exchange_bytes(1, 1, (h, w), k, (rows, cols), dtype_bytes=1, backward=False)
    assert got == expect


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        counter = CommCounter()
        t = torch.full((1000,), float(rank + 1))
        counter.all_reduce(t)
        explicit = counter.reset()

        torch.manual_seed(rank)  # different data per rank; DDP syncs the weights
        net = torch.nn.Sequential(torch.nn.Linear(10, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
        ddp = torch.nn.parallel.DistributedDataParallel(net)
        counter.attach(ddp)
        for _ in range(2):  # the second step runs with DDP's rebuilt buckets
            ddp.zero_grad()
            ddp(torch.randn(5, 10)).square().sum().backward()
        ddp_records = counter.reset()
        grads = [p.grad.clone() for p in net.parameters()]
        gathered = [torch.zeros_like(grads[0]) for _ in range(world)]
        dist.all_gather(gathered, grads[0])

        sweep = allreduce_sweep([4096, 65536], repeats=2)
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump({
                "value": t[0].item(),
                "explicit": [r.payload_bytes for r in explicit],
                "explicit_time_s": [r.time_s for r in explicit],
                "ddp": [r.payload_bytes for r in ddp_records],
                "ddp_ops": sorted({r.op for r in ddp_records}),
                "param_bytes": sum(p.numel() * p.element_size() for p in net.parameters()),
                "grads_equal": all(torch.equal(g, gathered[0]) for g in gathered),
                "sweep": [(r.payload_bytes, r.time_s, r.world_size) for r in sweep],
            }, fh)
    finally:
        dist.destroy_process_group()


def test_real_two_process_gloo_allreduce_is_counted_exactly(tmp_path):
    ctx = mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=False)
    deadline = time.monotonic() + 90
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.terminate()
            pytest.fail("2-process gloo run did not finish in 90 s")
    for rank in range(2):
        res = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert res["value"] == 3.0  # 1 + 2: the all-reduce really ran
        assert res["explicit"] == [1000 * 4]
        assert res["explicit_time_s"][0] > 0
        # every gradient crosses the wire once per step, in buckets
        assert res["param_bytes"] == (10 * 7 + 7 + 7 * 3 + 3) * 4
        assert sum(res["ddp"]) == 2 * res["param_bytes"]
        assert res["ddp_ops"] == ["ddp_bucket_all_reduce"]
        assert res["grads_equal"]
        sizes = [s for s, _, _ in res["sweep"]]
        assert sizes == [4096, 65536, 4096, 65536]  # interleaved rounds
        assert all(t > 0 and w == 2 for _, t, w in res["sweep"])


@pytest.mark.gpu
@requires_cuda
def test_nccl_ddp_hook_counts_bucket_bytes_on_one_gpu():
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0,
                            world_size=1)
    try:
        net = torch.nn.Linear(64, 32).cuda()
        ddp = torch.nn.parallel.DistributedDataParallel(net)
        counter = CommCounter()
        counter.attach(ddp)
        ddp(torch.randn(8, 64, device="cuda")).sum().backward()
        torch.cuda.synchronize()
        assert counter.total_bytes == (64 * 32 + 32) * 4
        t = torch.ones(256, device="cuda")
        counter.reset()
        counter.all_reduce(t)
        assert counter.total_bytes == 1024 and counter.records[0].time_s > 0
    finally:
        dist.destroy_process_group()
