"""measure.device: resolving auto/cpu/cuda and describing the machine."""

from __future__ import annotations

import pytest
import torch

from gardenpath.measure import device as md

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_auto_picks_cuda_exactly_when_available():
    dev = md.resolve_device("auto")
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert md.resolve_device(None) == dev


def test_cpu_is_taken_literally():
    assert md.resolve_device("cpu") == torch.device("cpu")
    assert md.resolve_device(" CPU ") == torch.device("cpu")
    assert md.resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="cuda.*is_available"):
        md.resolve_device("cuda")
    with pytest.raises(ValueError, match="cuda"):
        md.resolve_device(torch.device("cuda", 0))


@pytest.mark.parametrize("bad", ["gpu0", "tpu", "meta"])
def test_unknown_kinds_are_rejected(bad):
    with pytest.raises(ValueError):
        md.resolve_device(bad)


def test_describe_cpu_reports_model_cores_memory_and_torch():
    info = md.describe("cpu")
    assert info["type"] == "cpu"
    assert info["device"] == "cpu"
    assert info["torch"] == torch.__version__
    assert info["cores_logical"] >= 1
    assert info["torch_threads"] == torch.get_num_threads()
    with open("/proc/meminfo") as fh:
        kb = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
    assert info["memory_total_bytes"] == kb * 1024
    assert isinstance(info["name"], str) and info["name"]


def test_cpuinfo_parsing_x86_and_arm(tmp_path):
    x86 = "processor\t: 0\nphysical id\t: 0\ncore id\t: 0\nmodel name\t: Some CPU 9000\n" \
          "flags\t\t: fpu sse2 avx avx2 fma\n\n" \
          "processor\t: 1\nphysical id\t: 0\ncore id\t: 0\nmodel name\t: Some CPU 9000\n\n" \
          "processor\t: 2\nphysical id\t: 0\ncore id\t: 1\nmodel name\t: Some CPU 9000\n"
    arm = "processor\t: 0\nBogoMIPS\t: 50.00\n\nModel\t: Raspberry Pi 4 Model B\n"
    assert md._cpu_model(x86) == "Some CPU 9000"
    assert md._physical_cores(x86) == 2
    assert md._cpu_model(arm) == "Raspberry Pi 4 Model B"
    assert md._physical_cores(arm) is None
    assert md._vector_isa(x86) == "AVX2"
    assert md._vector_isa(x86.replace("avx2", "avx2 avx512f")) == "AVX-512"
    assert md._vector_isa("Features\t: fp asimd evtstrm\n") == "NEON"
    assert md._vector_isa(arm) is None  # no flags line: unknown, not guessed
    (tmp_path / "cpuinfo").write_text(x86)
    (tmp_path / "meminfo").write_text("MemTotal:       1000 kB\nMemFree: 1 kB\n")
    info = md.describe_cpu(str(tmp_path / "cpuinfo"), str(tmp_path / "meminfo"))
    assert info["memory_total_bytes"] == 1_024_000
    assert info["cores_physical"] == 2


@pytest.mark.gpu
@requires_cuda
def test_describe_cuda_names_the_gpu():
    dev = md.resolve_device("cuda")
    assert dev.index is not None
    info = md.describe(dev)
    props = torch.cuda.get_device_properties(dev.index)
    assert info["name"] == props.name
    assert info["sm_count"] == props.multi_processor_count > 0
    assert info["memory_total_bytes"] == props.total_memory
    assert info["host"]["type"] == "cpu"
    with pytest.raises(ValueError):
        md.resolve_device(f"cuda:{torch.cuda.device_count()}")
