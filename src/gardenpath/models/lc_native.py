"""Build, load and call the fused CPU kernel of the locally connected layer (``lc_kernel.c``).

The kernel is compiled on first use with the machine's C compiler (``-O3 -march=native``)
into a per-user cache and loaded with :mod:`ctypes`, so no build step, Python headers or
extra package is needed. Where there is no compiler, the compile fails, or
``GARDENPATH_LC_NATIVE=0`` is set, :func:`status` says why and the layer keeps its
``torch.bmm`` path. ctypes releases the GIL during a call, so positions are split across
``torch.get_num_threads()`` Python threads. :class:`LocalFn` is the layer's autograd
function where the C++ operator of :mod:`gardenpath.models.lc_op` (the same kernel, with
no Python in the backward) does not build; benchmarks time the kernel's passes through
:func:`library`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch.autograd.function import once_differentiable

SOURCE = Path(__file__).with_name("lc_kernel.c")
FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-funroll-loops", "-shared", "-fPIC",
         "-std=c11")
# -ffp-contract=fast: ISO C mode otherwise forbids fusing a*b+c into one FMA (2x slower here)
ENV_SWITCH = "GARDENPATH_LC_NATIVE"


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$GARDENPATH_CACHE_DIR`` or ``~/.cache/gardenpath``."""
    root = os.environ.get("GARDENPATH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gardenpath")
    return Path(root)


def _cpu_fingerprint() -> str:
    """CPU model and flags: a ``-march=native`` build must not be reused on another CPU."""
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace")
        lines = [ln for ln in info.splitlines() if ln.startswith(("model name", "flags"))][:2]
    except OSError:
        lines = []
    return "\n".join([platform.machine(), platform.processor(), *lines])


def c_compiler() -> str | None:
    """The C compiler to use: ``$CC``, else cc, gcc or clang on the PATH; None if none."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def error_line(text: str) -> str:
    """The first line of a compiler's message that says "error", else its first line."""
    lines = text.strip().splitlines() or ["?"]
    return next((ln for ln in lines if "error" in ln), lines[0])


def build_cached(stem: str, inputs: list[bytes],
                 commands: Callable[[str, str], list[list[str]]]) -> tuple[Path | None, str]:
    """Build a shared library into :func:`cache_dir` once per distinct ``inputs``.

    ``commands(out, tmpdir)`` lists the compiler calls that write ``out`` (intermediate
    files go to ``tmpdir``). Returns (path, "") or (None, why it failed). The file appears
    under its final name in one rename, so concurrent builds never load half a file.
    """
    key = hashlib.sha256(b"\0".join([*inputs, _cpu_fingerprint().encode()])).hexdigest()[:16]
    lib_path = cache_dir() / f"{stem}-{key}.so"
    if lib_path.exists():
        return lib_path, ""
    try:
        lib_path.parent.mkdir(parents=True, exist_ok=True)
        tmpdir = tempfile.mkdtemp(prefix=f".{stem}-", dir=lib_path.parent)
    except OSError as exc:
        return None, f"cache directory not writable: {exc}"
    try:
        out = os.path.join(tmpdir, lib_path.name)
        for cmd in commands(out, tmpdir):
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if res.returncode != 0:
                return None, f"compile failed ({Path(cmd[0]).name}): {error_line(res.stderr)}"
        os.replace(out, lib_path)
        return lib_path, ""
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"compile failed: {exc}"
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def switched_off(name: str) -> bool:
    """Whether environment variable ``name`` says 0, false, no or off."""
    return os.environ.get(name, "1").strip().lower() in ("0", "false", "no", "off")


@cache
def _load() -> tuple[Any, str]:
    """(library or None, one-line status); compiled at most once per machine and source."""
    if switched_off(ENV_SWITCH):
        return None, f"disabled by {ENV_SWITCH}=0"
    cc = c_compiler()
    if cc is None:
        return None, "no C compiler found (set CC)"
    lib_path, why = build_cached(
        "lc_kernel", [SOURCE.read_bytes(), " ".join(FLAGS).encode(), cc.encode()],
        lambda out, _: [[cc, *FLAGS, str(SOURCE), "-o", out]])
    if lib_path is None:
        return None, why
    try:
        lib = ctypes.CDLL(str(lib_path))
    except OSError as exc:
        return None, f"load failed: {exc}"
    ptr, n, gm = ctypes.c_void_p, ctypes.c_long, ctypes.POINTER(ctypes.c_long)
    lib.lc_work_floats.argtypes = [gm]
    lib.lc_work_floats.restype = n
    lib.lc_forward.argtypes = [ptr] * 6 + [n] * 2 + [gm]
    lib.lc_forward.restype = ctypes.c_int
    lib.lc_backward.argtypes = [ptr] * 8 + [n] * 2 + [gm] + [ctypes.c_int] * 2
    lib.lc_backward.restype = ctypes.c_int
    lib.lc_pack.argtypes = [ptr] * 2 + [gm]
    lib.lc_pack.restype = None
    lib.lc_unpack.argtypes = [ctypes.POINTER(ptr), n, ptr, gm]
    lib.lc_unpack.restype = None
    return lib, f"native ({Path(cc).name} {' '.join(FLAGS[:2])}, {lib_path.name})"


def library() -> Any:
    """The loaded kernel library (ctypes), or None; for benchmarks that time its passes."""
    return _load()[0]


def status() -> str:
    """One line: whether the fused kernel is in use, and if not, why."""
    return _load()[1]


def available() -> bool:
    """True when the fused CPU kernel compiled and loaded."""
    return _load()[0] is not None


def describe(device: torch.device | str) -> str:
    """One sentence for a chapter's method text: how the layer's step runs on ``device``."""
    dev = torch.device(device)
    if dev.type == "cpu" and available():
        from gardenpath.models import lc_op  # lc_op imports this module

        driver = ("a C++ autograd operator (gardenpath.models.lc_op) calls it, so the "
                  "backward pass runs without Python" if lc_op.operator() is not None else
                  f"autograd calls it from Python (the C++ operator is not in use: "
                  f"{lc_op.status()})")
        return ("On this CPU the locally connected layer runs our fused C kernel "
                "(gardenpath.models.lc_native): each position's patches are read in place "
                "from a batch-innermost copy of the input and multiplied with that "
                "position's filter by a register-tiled matrix product, so no unfolded copy "
                f"of the input is ever made; {driver}.")
    why = f" (the fused CPU kernel is not in use: {status()})" if dev.type == "cpu" else ""
    return ("The locally connected layer unfolds its input into patches, a tensor as large "
            "as the input times the kernel's area, and runs one batched matrix product over "
            f"the positions (torch.bmm){why}.")


def applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the fused kernel serves this call: float32 CPU tensors, kernel available, and
    no dispatch or function mode active (a FLOP counter, fake tensors or a tracer must see
    the layer's arithmetic as aten operators, so they get the bmm path)."""
    return (x.is_cpu and weight.is_cpu  # not .device: it builds an object per call
            and x.dtype == torch.float32 and weight.dtype == torch.float32
            # what torch.utils._python_dispatch._get_current_dispatch_mode() is None tests,
            # without its Python frame
            and not torch._C._len_torch_dispatch_stack()
            and not torch.overrides._is_torch_function_mode_enabled()
            and available())


@dataclass(frozen=True)
class Plan:
    """What a call of the kernel needs besides its tensors, worked out once per layer shape
    and thread count: the geometry array the C entry points take, the position range of
    each thread (at least 8 positions each) and the scratch floats per thread."""

    gm: Any  # ctypes (c_long * 13): B, C, H, W, ph, pw, kh, kw, sh, sw, Ho, Wo, O
    parts: tuple[tuple[int, int], ...]
    work_floats: int
    xt_shape: tuple[int, int, int, int]  # the padded batch-innermost input (Hp, Wp, C, B)


def geometry(x_shape: Sequence[int], out_channels: int, kernel: tuple[int, int],
             stride: tuple[int, int], padding: tuple[int, int],
             out_size: tuple[int, int]) -> tuple[int, ...]:
    """(B, C, H, W, ph, pw, kh, kw, sh, sw, Ho, Wo, O): the layer's geometry as every entry
    point of the kernel (and the C++ operator) takes it."""
    b, c, h, w = x_shape
    return (b, c, h, w, *padding, *kernel, *stride, *out_size, out_channels)


@cache
def plan(geometry: tuple[int, ...], threads: int) -> Plan:
    """The :class:`Plan` of ``geometry`` = (B, C, H, W, ph, pw, kh, kw, sh, sw, Ho, Wo, O)."""
    b, c, h, w, ph, pw, *_, ho, wo, o = geometry
    n = ho * wo
    count = max(1, min(threads, n // 8))  # lc_op.cpp's make_plan splits the same way
    bounds = [n * i // count for i in range(count + 1)]
    gm = (ctypes.c_long * len(geometry))(*geometry)
    return Plan(gm, tuple(zip(bounds[:-1], bounds[1:], strict=True)),
                int(_load()[0].lc_work_floats(gm)), (h + 2 * ph, w + 2 * pw, c, b))


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    """A thread pool kept between calls (starting threads per call cost ~100 us)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            if _pool is not None:  # more threads wanted: the old pool ends after its tasks
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="lc_kernel")
        return _pool


def _run(calls: list[Any]) -> None:
    """Run the kernel calls (one per thread); a nonzero return means it ran out of memory."""
    if len(calls) == 1:
        codes = [calls[0]()]
    else:
        pool = _executor(len(calls) - 1)
        futures = [pool.submit(c) for c in calls[1:]]
        codes = [calls[0]()] + [f.result() for f in futures]  # this thread does one part
    if any(codes):
        raise MemoryError("lc_kernel: could not allocate its offset table")


#: Weight gradients at least this large are drawn from :class:`GradPool`.
POOL_MIN_BYTES = 1 << 20


class GradPool:
    """Reuses the storage of the previous step's weight gradient once nothing else holds it.

    A fresh (L, K, O) gradient is fresh memory from the OS every step (glibc maps blocks
    over 32 MB with mmap and unmaps them on free), and touching it first costs page faults:
    measured here, 48 ms per step for a 115 MB gradient whose whole forward pass takes 19
    ms. The pool keeps one buffer per shape and hands out a detached alias of it only when
    the storage has no other user (``.grad`` was set to None or accumulated into), so a
    gradient the caller still holds is never overwritten. Held memory: :meth:`held_bytes`.
    """

    def __init__(self) -> None:
        # (shape, dtype) -> (buffer, its storage's use count when free, that storage's handle)
        self._bufs: dict[tuple[Any, ...], tuple[torch.Tensor, int, int]] = {}
        self._lock = threading.Lock()
        self._count = getattr(torch._C, "_storage_Use_Count", None)

    def take(self, like: torch.Tensor) -> torch.Tensor:
        """An uninitialised tensor shaped like ``like``, reused when possible."""
        reused = self.reuse(like)
        if reused is None:
            return torch.empty_like(like, memory_format=torch.contiguous_format)
        return reused

    def reuse(self, like: torch.Tensor) -> torch.Tensor | None:
        """The pooled buffer for ``like``'s shape when nothing else holds it, else None.

        CPU tensors only (the fused kernel's). Called on every training step, so it keeps
        to a few attribute reads: at small shapes a step's Python is a tenth of its time."""
        if self._count is None or like.numel() * like.element_size() < POOL_MIN_BYTES:
            return None
        key = (like.shape, like.dtype)
        with self._lock:
            entry = self._bufs.get(key)
            if entry is None:
                base = torch.empty_like(like, memory_format=torch.contiguous_format)
                handle = base.untyped_storage()._cdata  # valid while the pool holds base
                entry = self._bufs[key] = (base, self._count(handle), handle)
            base, free, handle = entry
            return base.detach() if self._count(handle) == free else None

    def held_bytes(self) -> int:
        """Bytes the pool keeps alive."""
        with self._lock:
            return sum(b.numel() * b.element_size() for b, *_ in self._bufs.values())

    def clear(self) -> None:
        """Drop every pooled buffer (the memory returns once no gradient aliases it)."""
        with self._lock:
            self._bufs.clear()


grad_pool = GradPool()


_scratch = threading.local()


def held_bytes() -> int:
    """Memory the fused kernel keeps between calls: pooled weight gradients, this thread's
    scratch buffers (Python path) and every thread's scratch kept by the C++ operator."""
    scratch = sum(b.numel() * b.element_size() for b in getattr(_scratch, "bufs", None) or [])
    from gardenpath.models import lc_op  # lc_op imports this module

    return grad_pool.held_bytes() + scratch + lc_op.scratch_bytes()


def release() -> None:
    """Drop what the fused kernel keeps between calls (:func:`held_bytes`): the pooled
    weight gradients, this thread's scratch (Python path), and the C++ operator's scratch
    (each thread frees it at its next call). What a step keeps then is what its own
    shapes need, not the largest shapes run before."""
    from gardenpath.models import lc_op  # lc_op imports this module

    grad_pool.clear()
    _scratch.bufs = None
    lc_op.release_scratch()


def _work(like: torch.Tensor, floats: int, parts: int) -> list[torch.Tensor]:
    """Per-part scratch buffers of ``floats`` floats, kept per calling thread between calls
    (the kernel only uses them during a call, so reusing them is safe)."""
    bufs = getattr(_scratch, "bufs", None)
    if bufs is None or len(bufs) < parts or bufs[0].numel() < floats \
            or bufs[0].device != like.device:
        bufs = _scratch.bufs = [like.new_empty(floats) for _ in range(parts)]
    return bufs[:parts]


class LocalFn(torch.autograd.Function):
    """Forward and backward of a locally connected layer through the fused kernel.

    Saves the input, padded and batch-innermost (not unfolded): the kernel reads every
    position's patches from it in place, in both passes. With one thread, packing the input
    and unpacking its gradient happen inside the forward and backward calls (one C call
    per pass: at small shapes the Python around the kernel is a sixth of the step).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                out_size: tuple[int, int]) -> torch.Tensor:
        lib = _load()[0]
        b, o = x.shape[0], weight.shape[2]
        pl = plan(geometry(x.shape, o, kernel, stride, padding, out_size),
                  torch.get_num_threads())
        xc, w = x.contiguous(), weight.contiguous()
        bias_p = bias.contiguous().data_ptr() if bias is not None else None
        xt = x.new_empty(pl.xt_shape)
        y = x.new_empty(b, o, *out_size)
        work = _work(x, pl.work_floats, len(pl.parts))
        if len(pl.parts) == 1:  # packs, then multiplies
            _run([lambda: lib.lc_forward(xc.data_ptr(), xt.data_ptr(), w.data_ptr(), bias_p,
                                         y.data_ptr(), work[0].data_ptr(), *pl.parts[0],
                                         pl.gm)])
        else:
            lib.lc_pack(xc.data_ptr(), xt.data_ptr(), pl.gm)
            _run([lambda l0=l0, l1=l1, wk=wk: lib.lc_forward(
                      None, xt.data_ptr(), w.data_ptr(), bias_p, y.data_ptr(), wk.data_ptr(),
                      l0, l1, pl.gm)
                  for (l0, l1), wk in zip(pl.parts, work, strict=True)])
        ctx.save_for_backward(xt, w)  # freed by backward (attributes would outlive it)
        ctx.plan, ctx.x_shape, ctx.has_bias = pl, x.shape, bias is not None
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[Any, ...]:
        lib = _load()[0]
        (xt, w), pl = ctx.saved_tensors, ctx.plan
        want_dx, want_dw = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        dy = dy.contiguous()  # (B, O, Ho, Wo), read in place by the kernel
        dw = grad_pool.take(w) if want_dw else w.new_empty(1)
        # each thread adds into its own padded input gradient (like xt); summed afterwards
        dxts = [xt.new_empty(xt.shape if want_dx else (1,)) for _ in pl.parts]
        dx = xt.new_empty(ctx.x_shape) if want_dx else None
        work = _work(xt, pl.work_floats, len(pl.parts))
        want_db = ctx.has_bias and ctx.needs_input_grad[2]
        db = dy.new_empty(dy.shape[1:]) if want_db else None  # (O, Ho, Wo)
        db_p = db.data_ptr() if db is not None else None
        one = len(pl.parts) == 1  # then the call unpacks the input gradient itself
        dx_p = dx.data_ptr() if one and dx is not None else None
        _run([lambda l0=l0, l1=l1, d=d, wk=wk: lib.lc_backward(
                  xt.data_ptr(), w.data_ptr(), dy.data_ptr(), dw.data_ptr(), d.data_ptr(),
                  db_p, dx_p, wk.data_ptr(), l0, l1, pl.gm, int(want_dw), int(want_dx))
              for (l0, l1), d, wk in zip(pl.parts, dxts, work, strict=True)])
        if dx is not None and not one:
            ptrs = (ctypes.c_void_p * len(dxts))(*[d.data_ptr() for d in dxts])
            lib.lc_unpack(ptrs, len(dxts), dx.data_ptr(), pl.gm)
        return dx, dw if want_dw else None, db, None, None, None, None
