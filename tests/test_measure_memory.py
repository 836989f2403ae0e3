"""measure.memory: peak of known allocation patterns, measured from allocator events."""

from __future__ import annotations

import os

import pytest
import torch

from gardenpath.measure.memory import CPU_METHOD, peak_memory, running_peak

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_running_peak():
    assert running_peak([]) == (0, 0)
    assert running_peak([10, -10, 5, 7, -12]) == (12, 0)
    assert running_peak([-4, 3]) == (0, -1)


def test_cpu_peak_of_known_allocations_is_exact():
    def step():
        a = torch.empty(1_000_000)  # 4 MB
        del a
        b = torch.empty(1_000_000)  # 4 MB
        c = torch.empty(500_000)  # 2 MB, live with b
        del b, c

    m = peak_memory(step, "cpu")
    assert m.peak_bytes == 6_000_000
    assert m.end_bytes == 0
    assert m.method == CPU_METHOD and m.baseline_bytes is None


def test_cpu_counts_what_the_step_keeps_and_ignores_what_existed():
    kept = []
    existing = torch.ones(2_000_000)
    holder = [existing]
    del existing

    def step():
        kept.append(torch.ones(250_000))  # 1 MB kept
        holder.clear()  # frees 8 MB allocated before the window: not ours

    m = peak_memory(step, "cpu")
    assert m.peak_bytes == 1_000_000
    assert m.end_bytes == 1_000_000


def test_cpu_training_step_peak_covers_activations_and_grads():
    lin = torch.nn.Linear(500, 400)
    x = torch.randn(64, 500)

    def step():
        lin.zero_grad(set_to_none=True)
        lin(x).square().sum().backward()

    m = peak_memory(step, "cpu")
    weight_grad = 500 * 400 * 4
    activation = 64 * 400 * 4
    assert weight_grad + activation <= m.peak_bytes < 4 * (weight_grad + activation)
    assert m.end_bytes >= weight_grad  # .grad survives the step


@pytest.mark.gpu
@requires_cuda
def test_cuda_peak_of_known_allocation():
    base = torch.zeros(1 << 20, device="cuda")

    def step():
        a = torch.empty(4 << 20, device="cuda")  # 16 MiB
        del a

    m = peak_memory(step, "cuda")
    assert m.peak_bytes == 16 << 20
    assert m.baseline_bytes >= base.numel() * 4
    assert m.end_bytes == 0
    assert "max_memory_allocated" in m.method


def test_quiet_fd2_silences_only_its_block(capfd):
    from gardenpath.measure.memory import quiet_fd2

    with quiet_fd2():
        os.write(2, b"hidden")
    os.write(2, b"shown")
    assert capfd.readouterr().err == "shown"


def test_cpu_peak_leaves_no_profiler_lines_on_stderr(capfd):
    peak_memory(lambda: torch.ones(256, 256), "cpu")
    assert "USDT" not in capfd.readouterr().err
