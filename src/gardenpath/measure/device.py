"""Device: choose where a measurement runs and describe that machine.

Every number in the book is "on this device"; a reader comparing two numbers needs to
know which CPU or GPU produced each. :func:`resolve_device` turns a profile's
``device: auto | cpu | cuda`` into a :class:`torch.device`, failing loudly when CUDA is
asked for and absent (a silent fall-back to CPU would mislabel every result), and
:func:`describe` returns a JSON-ready description for the provenance record.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

DeviceLike = torch.device | str | None


def resolve_device(kind: DeviceLike = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a torch device.

    Args:
        kind: ``"auto"`` (or ``None``) picks the current CUDA device when
            ``torch.cuda.is_available()`` and the CPU otherwise; ``"cpu"`` and
            ``"cuda[:N]"`` are taken literally; a :class:`torch.device` passes through
            after the same checks.

    Returns:
        The device. A bare ``"cuda"`` is given the current device index, so that
        results name the exact GPU.

    Raises:
        ValueError: for an unknown kind, for CUDA on a machine without it, or for a
            CUDA index past the number of visible GPUs.
    """
    if kind is None or (isinstance(kind, str) and kind.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    try:
        dev = kind if isinstance(kind, torch.device) else torch.device(str(kind).strip().lower())
    except RuntimeError as err:
        raise ValueError(f"unknown device kind {kind!r}: use 'auto', 'cpu' or 'cuda'") from err
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise ValueError(f"unsupported device type {dev.type!r}: use 'auto', 'cpu' or 'cuda'")
    if not torch.cuda.is_available():
        raise ValueError(
            "device 'cuda' was requested but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
            "use device='cpu' or 'auto'"
        )
    index = torch.cuda.current_device() if dev.index is None else dev.index
    if index >= torch.cuda.device_count():
        raise ValueError(f"cuda:{index} requested but only {torch.cuda.device_count()} GPU(s)")
    return torch.device("cuda", index)


def _cpu_model(cpuinfo: str) -> str | None:
    """The first ``model name`` (x86) or ``Model``/``Hardware`` (ARM) line of cpuinfo."""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in cpuinfo.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return None


#: The widest vector extensions, widest first, by the cpuinfo flag that announces them.
_VECTOR_ISAS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sve", "SVE"),
                ("asimd", "NEON"), ("sse2", "SSE2"))


def _vector_isa(cpuinfo: str) -> str | None:
    """The widest vector instruction set the CPU announces (``flags`` on x86, ``Features``
    on ARM): the same CPU name covers machines with and without AVX-512, and the fused
    kernel's speed depends on it."""
    for line in cpuinfo.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() in ("flags", "Features"):
            flags = set(value.split())
            return next((isa for flag, isa in _VECTOR_ISAS if flag in flags), None)
    return None


def _physical_cores(cpuinfo: str) -> int | None:
    """Distinct (physical id, core id) pairs in cpuinfo; ``None`` when not listed."""
    cores: set[tuple[str, str]] = set()
    phys = ""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        name = name.strip()
        if name == "physical id":
            phys = value.strip()
        elif name == "core id":
            cores.add((phys, value.strip()))
    return len(cores) or None


def _mem_total_bytes(meminfo: str) -> int | None:
    """``MemTotal`` from /proc/meminfo, converted from kB to bytes."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            return int(parts[1]) * 1024
    return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def describe_cpu(
    cpuinfo_path: str = "/proc/cpuinfo", meminfo_path: str = "/proc/meminfo"
) -> dict[str, Any]:
    """Describe the host CPU: model, logical and physical cores, memory, torch threads.

    Fields a platform does not report are ``None`` rather than guessed.
    """
    cpuinfo = _read(cpuinfo_path)
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "type": "cpu",
        "name": _cpu_model(cpuinfo) or platform.processor() or None,
        "machine": platform.machine(),
        "vector_isa": _vector_isa(cpuinfo),
        "cores_logical": os.cpu_count(),
        "cores_physical": _physical_cores(cpuinfo),
        "cores_usable": affinity,
        "memory_total_bytes": _mem_total_bytes(_read(meminfo_path)),
        "torch_threads": torch.get_num_threads(),
    }


def _nvidia_driver_version() -> str | None:
    """The NVIDIA driver version via NVML (imported lazily); ``None`` if NVML is absent."""
    try:
        import pynvml  # optional: only GPU machines have it
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # any NVML failure means "unknown"
        return None
    return version.decode() if isinstance(version, bytes) else str(version)


def describe_cuda(device: torch.device) -> dict[str, Any]:
    """Describe one CUDA GPU: name, SMs, memory, compute capability, driver, CUDA."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {
        "type": "cuda",
        "index": index,
        "name": props.name,
        "sm_count": props.multi_processor_count,
        "memory_total_bytes": int(props.total_memory),
        "compute_capability": f"{props.major}.{props.minor}",
        "driver_version": _nvidia_driver_version(),
        "cuda_version": torch.version.cuda,
        "host": describe_cpu(),
    }


def describe(device: DeviceLike = None) -> dict[str, Any]:
    """Describe ``device`` (resolved with :func:`resolve_device`) for the provenance record.

    Returns:
        A JSON-ready dict: for a CPU its model, cores and memory total; for a GPU its
        name, SM count, memory, compute capability, driver and the host CPU; always the
        torch version and the device string.
    """
    dev = resolve_device("auto" if device is None else device)
    info = describe_cuda(dev) if dev.type == "cuda" else describe_cpu()
    info["device"] = str(dev)
    info["torch"] = torch.__version__
    return info


def prepare(kind: DeviceLike = "auto", *, threads: int = 0,
            allow_tf32: bool = False) -> torch.device:
    """Resolve the device and fix what a measurement depends on, in one place.

    Args:
        kind: ``auto | cpu | cuda`` (see :func:`resolve_device`).
        threads: torch's intra-op CPU threads; 0 keeps torch's default. On a shared or
            small machine, 1 thread gives steadier timings than oversubscribed cores.
        allow_tf32: whether CUDA matmuls and convolutions may use TensorFloat-32
            (ignored on CPU); off by default so float32 means float32.
    """
    dev = resolve_device(kind)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
        torch.backends.cudnn.allow_tf32 = allow_tf32
    if threads > 0:
        torch.set_num_threads(threads)
    return dev
