"""The locally connected layer's fused kernel as a torch operator with a C++ autograd function.

``lc_op.cpp`` and ``lc_kernel.c`` are compiled together on first use (about 20 s) against
the headers the torch wheel ships, into the same cache as the kernel, and loaded with
``torch.ops.load_library``; no Python headers, pybind11 or ninja are needed. The operator
computes what :class:`lc_native.LocalFn` computes, but autograd calls its backward without
entering Python: at small shapes that Python (argument conversion, the autograd.Function
machinery) took as long as a pass of the kernel. Where the compiler refuses OpenMP, it is
built without (its parts then run on one thread); where it does not build at all, or
``GARDENPATH_LC_OP=0`` is set, :func:`locally_connected` uses ``LocalFn``, and
:func:`status` says why.
"""

from __future__ import annotations

import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import torch

from gardenpath.models import lc_native

SOURCE = Path(__file__).with_name("lc_op.cpp")
CXXFLAGS = ("-O2", "-std=c++17", "-shared", "-fPIC", "-w")
#: Lets the operator split positions between torch's intra-op threads; where the compiler
#: refuses it (clang without libomp), the operator is built without and runs on one thread.
OPENMP = "-fopenmp"
ENV_SWITCH = "GARDENPATH_LC_OP"


def _cxx() -> str | None:
    """The C++ compiler: ``$CXX``, else c++, g++ or clang++ on the PATH; None if none."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@cache
def _load() -> tuple[Any, str]:
    """(operator or None, one-line status); built at most once per machine, source and torch."""
    if lc_native.switched_off(ENV_SWITCH):
        return None, f"disabled by {ENV_SWITCH}=0"
    if not lc_native.available():
        return None, f"no fused kernel ({lc_native.status()})"
    cc, cxx = lc_native.c_compiler(), _cxx()
    if cxx is None:
        return None, "no C++ compiler found (set CXX)"
    root = Path(torch.__file__).parent
    includes = [root / "include", root / "include" / "torch" / "csrc" / "api" / "include"]
    if not (includes[0] / "torch" / "library.h").exists():
        return None, "this torch ships no C++ headers"
    abi = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"
    kernel_flags = [f for f in lc_native.FLAGS if f != "-shared"]

    def build(flags: tuple[str, ...]) -> tuple[Path | None, str]:
        def commands(out: str, tmpdir: str) -> list[list[str]]:
            obj = os.path.join(tmpdir, "lc_kernel.o")
            return [[cc, *kernel_flags, "-c", str(lc_native.SOURCE), "-o", obj],
                    [cxx, *flags, abi, *[f"-I{d}" for d in includes], str(SOURCE), obj,
                     f"-L{root / 'lib'}", "-lc10", "-ltorch_cpu", "-ltorch",
                     f"-Wl,-rpath,{root / 'lib'}", "-o", out]]

        inputs = [SOURCE.read_bytes(), lc_native.SOURCE.read_bytes(), " ".join(flags).encode(),
                  " ".join(lc_native.FLAGS).encode(), f"{cc} {cxx} {abi}".encode(),
                  torch.__version__.encode()]
        return lc_native.build_cached("lc_op", inputs, commands)

    path, why = build((*CXXFLAGS, OPENMP))
    single = ""
    if path is None and "omp" in why.lower():  # e.g. clang without libomp
        path, _ = build(CXXFLAGS)
        single = f" without OpenMP, its parts on one thread ({OPENMP}: {why})"
    if path is None:
        return None, why
    try:
        torch.ops.load_library(str(path))
        # the overload itself: called through its packet, each call costs ~3 us more
        return (torch.ops.gardenpath.locally_connected.default,
                f"C++ autograd operator{single} ({path.name})")
    except (OSError, RuntimeError) as exc:
        return None, f"load failed: {lc_native.error_line(str(exc))}"


def operator() -> Any:
    """``torch.ops.gardenpath.locally_connected.default``, or None where it did not build."""
    return _load()[0]


def _loaded() -> bool:
    """Whether the operator is loaded (asking never triggers its build)."""
    return _load.cache_info().currsize > 0 and operator() is not None


def scratch_bytes() -> int:
    """Bytes of kernel scratch the C++ operator keeps between calls (0 where it is not
    loaded; building it is not triggered)."""
    return int(torch.ops.gardenpath.scratch_bytes()) if _loaded() else 0


def status() -> str:
    """One line: whether the C++ operator is in use, and if not, why."""
    return _load()[1]


def release_scratch() -> None:
    """Have every thread free the scratch the C++ operator keeps at its next call (it keeps
    the largest any call needed until then); nothing where the operator is not loaded."""
    if _loaded():
        torch.ops.gardenpath.release_scratch()


def locally_connected(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                      geometry: tuple[int, ...]) -> torch.Tensor:
    """The fused kernel's forward, differentiable: through the C++ operator when it built,
    else through :class:`lc_native.LocalFn` (the caller has checked
    :func:`lc_native.applies`). ``geometry`` is :func:`lc_native.geometry` of the call. A
    large weight gradient is written into :data:`lc_native.grad_pool`'s buffer when nothing
    else holds it."""
    op = operator()
    if op is None:
        _, _, _, _, ph, pw, kh, kw, sh, sw, ho, wo, _ = geometry
        return lc_native.LocalFn.apply(x, weight, bias, (kh, kw), (sh, sw), (ph, pw),
                                       (ho, wo))
    buf = lc_native.grad_pool.reuse(weight) \
        if weight.requires_grad and torch.is_grad_enabled() else None
    return op(x, weight, bias, buf, geometry)
