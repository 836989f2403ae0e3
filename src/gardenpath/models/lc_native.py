"""Build, load and call the fused CPU kernel of the locally connected layer (``lc_kernel.c``).

The kernel is compiled on first use with the machine's C compiler (``-O3 -march=native``)
into a per-user cache and loaded with :mod:`ctypes`, so no build step, Python headers or
extra package is needed. Where there is no compiler, the compile fails, or
``GARDENPATH_LC_NATIVE=0`` is set, :func:`status` says why and the layer keeps its
``torch.bmm`` path. ctypes releases the GIL during a call, so positions are split across
``torch.get_num_threads()`` Python threads. :class:`LocalFn` is the layer's autograd
function, the one CPU driver of the kernel (a C++ torch operator driving the same kernel
measured within 10% of it at the book's shapes, see benchmarks/README.md, and was
removed); benchmarks time the kernel's passes through :func:`library`.

The hot path (:func:`applies`, :func:`locally_connected`, :class:`LocalFn`,
:class:`GradPool`) uses no ``torch._C`` function and no private attribute of the thread
pool (tests/test_models_local.py checks its source).
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
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch.autograd.function import once_differentiable
from torch.utils._python_dispatch import is_in_torch_dispatch_mode

SOURCE = Path(__file__).with_name("lc_kernel.c")
FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-funroll-loops", "-shared", "-fPIC",
         "-std=c11", "-Wall", "-Wextra")
# -ffp-contract=fast: ISO C mode otherwise forbids fusing a*b+c into one FMA.
# -Wall -Wextra: the kernel compiles without a warning (tests/test_models_local.py checks it
# for the baseline x86-64, AVX2 and AVX-512 targets); not -Werror, so that another
# compiler's new warning does not send the layer to its slower path.
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
        lib = open_library(lib_path)
    except OSError as exc:
        return None, f"load failed: {exc}"
    return lib, f"native ({Path(cc).name} {' '.join(FLAGS[:2])}, {lib_path.name})"


def open_library(path: Path | str) -> Any:
    """Load a build of ``lc_kernel.c`` with ctypes and declare its entry points."""
    lib = ctypes.CDLL(str(path))
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
    return lib


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
        return ("On this CPU the locally connected layer runs our fused C kernel "
                "(gardenpath.models.lc_native): each position's patches are read in place "
                "from a batch-innermost copy of the input and multiplied with that "
                "position's filter by a register-tiled matrix product, so no unfolded copy "
                "of the input is ever made; autograd calls its forward and backward "
                "passes through ctypes.")
    why = f" (the fused CPU kernel is not in use: {status()})" if dev.type == "cpu" else ""
    return ("The locally connected layer unfolds its input into patches, a tensor as large "
            "as the input times the kernel's area, and runs one batched matrix product over "
            f"the positions (torch.bmm){why}.")


def applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the fused kernel serves this call: float32 CPU tensors, kernel available, and
    no dispatch or function mode active and no tensor subclass (a FLOP counter, fake tensors
    or a tracer must see the layer's arithmetic as aten operators, so they get the bmm
    path)."""
    return (x.is_cpu and weight.is_cpu  # not .device: it builds an object per call
            and x.dtype == torch.float32 and weight.dtype == torch.float32
            and not is_in_torch_dispatch_mode()  # a module flag torch keeps; no C call
            # public: true under a torch function mode or for a subclass that overrides
            and not torch.overrides.has_torch_function((x, weight))
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
    point of the kernel takes it."""
    b, c, h, w = x_shape
    return (b, c, h, w, *padding, *kernel, *stride, *out_size, out_channels)


@cache
def plan(geometry: tuple[int, ...], threads: int) -> Plan:
    """The :class:`Plan` of ``geometry`` = (B, C, H, W, ph, pw, kh, kw, sh, sw, Ho, Wo, O)."""
    b, c, h, w, ph, pw, *_, ho, wo, o = geometry
    n = ho * wo
    count = max(1, min(threads, n // 8))
    bounds = [n * i // count for i in range(count + 1)]
    gm = (ctypes.c_long * len(geometry))(*geometry)
    return Plan(gm, tuple(zip(bounds[:-1], bounds[1:], strict=True)),
                int(_load()[0].lc_work_floats(gm)), (h + 2 * ph, w + 2 * pw, c, b))


_pool: ThreadPoolExecutor | None = None
_pool_workers = 0  # how many threads _pool was made with (its own count is private)
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    """A thread pool kept between calls (starting threads per call is slow)."""
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers < workers:
            if _pool is not None:  # more threads wanted: the old pool ends after its tasks
                _pool.shutdown(wait=False)
            _pool, _pool_workers = ThreadPoolExecutor(workers, "lc_kernel"), workers
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


def _dead() -> None:
    """A weak reference that is always dead: the buffer it stands for is free."""
    return None


class GradPool:
    """Reuses the storage of the previous step's weight gradient once nothing else holds it.

    A fresh (L, K, O) gradient is fresh memory from the OS every step (glibc maps large
    blocks with mmap and unmaps them on free), and touching it first costs page faults that
    can take longer than the forward pass (benchmarks/README.md). The pool keeps one buffer
    per shape and hands it out again only once it knows the last gradient written into it
    is gone: :meth:`watch` hooks a weight so that, after autograd stores the gradient,
    :meth:`note` keeps a weak reference to the ``.grad`` tensor; the buffer is free when
    that tensor has died (``.grad`` set to None and not held elsewhere). Until the hook has
    seen where the gradient went (a weight not watched), the buffer is not reused. A view
    taken of the gradient does not keep it alive: whoever keeps a view past the next step
    must clone it. Held memory: :meth:`held_bytes`.
    """

    def __init__(self) -> None:
        # (shape, dtype) -> [buffer, weak reference to the tensor holding it, or None while
        # handed out and not yet noted]
        self._bufs: dict[tuple[Any, ...], list[Any]] = {}
        self._lock = threading.Lock()

    def watch(self, weight: torch.Tensor) -> None:
        """Have autograd tell the pool where ``weight``'s gradient went (a leaf only)."""
        if weight.is_leaf and weight.requires_grad:
            # a module-level function: a bound method would be deep-copied with the module
            weight.register_post_accumulate_grad_hook(_note_grad)

    def note(self, weight: torch.Tensor) -> None:
        """After autograd stored ``weight.grad``: remember it if it is the pooled buffer,
        else (the buffer was added into another gradient) free the buffer."""
        grad = weight.grad
        with self._lock:
            entry = self._bufs.get((weight.shape, weight.dtype))
            if entry is None or grad is None:
                return
            if grad.data_ptr() == entry[0].data_ptr():
                entry[1] = weakref.ref(grad)
            elif entry[1] is None:
                entry[1] = _dead

    def take(self, like: torch.Tensor) -> torch.Tensor:
        """An uninitialised tensor shaped like ``like``, reused when possible."""
        reused = self.reuse(like)
        if reused is None:
            return torch.empty_like(like, memory_format=torch.contiguous_format)
        return reused

    def reuse(self, like: torch.Tensor) -> torch.Tensor | None:
        """The pooled buffer for ``like``'s shape when it is free, else None (CPU only)."""
        if like.numel() * like.element_size() < POOL_MIN_BYTES:
            return None
        key = (like.shape, like.dtype)
        with self._lock:
            entry = self._bufs.get(key)
            if entry is None:
                entry = self._bufs[key] = [
                    torch.empty_like(like, memory_format=torch.contiguous_format), _dead]
            if entry[1] is None or entry[1]() is not None:
                return None
            entry[1] = None  # handed out: not free until note() has seen where it went
            return entry[0].detach()

    def held_bytes(self) -> int:
        """Bytes the pool keeps alive."""
        with self._lock:
            return sum(b.numel() * b.element_size() for b, _ in self._bufs.values())

    def clear(self) -> None:
        """Drop every pooled buffer (the memory returns once no gradient aliases it)."""
        with self._lock:
            self._bufs.clear()


grad_pool = GradPool()


def _note_grad(weight: torch.Tensor) -> None:
    """The hook :meth:`GradPool.watch` registers: tells :data:`grad_pool` where it went."""
    grad_pool.note(weight)


_scratch = threading.local()


def held_bytes() -> int:
    """Memory the fused kernel keeps between calls: pooled weight gradients and this
    thread's scratch buffers."""
    scratch = sum(b.numel() * b.element_size() for b in getattr(_scratch, "bufs", None) or [])
    return grad_pool.held_bytes() + scratch


def release() -> None:
    """Drop what the fused kernel keeps between calls (:func:`held_bytes`), so that what a
    step keeps is what its own shapes need, not the largest shapes run before."""
    grad_pool.clear()
    _scratch.bufs = None


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
                geom: tuple[int, ...]) -> torch.Tensor:
        lib = _load()[0]
        pl = plan(geom, torch.get_num_threads())
        xc, w = x.contiguous(), weight.contiguous()
        bias_p = bias.contiguous().data_ptr() if bias is not None else None
        xt = x.new_empty(pl.xt_shape)
        y = x.new_empty(geom[0], geom[12], geom[10], geom[11])  # (B, O, Ho, Wo)
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
        return dx, dw if want_dw else None, db, None


def locally_connected(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                      geom: tuple[int, ...]) -> torch.Tensor:
    """The fused kernel's forward, differentiable (the caller has checked :func:`applies`);
    ``geom`` is :func:`geometry` of the call."""
    return LocalFn.apply(x, weight, bias, geom)
