"""Roofline: this device's measured ceilings, and where a measured kernel sits under them.

Williams, Waterman, Patterson, "Roofline: an insightful visual performance model for
multicore architectures", CACM 2009: a kernel doing ``F`` FLOPs while moving ``Q`` bytes
has arithmetic intensity ``I = F / Q`` (FLOP/byte) and can run no faster than
``min(P, I * BW)`` FLOP/s, where ``P`` is peak arithmetic throughput and ``BW`` the
memory bandwidth. Both ceilings are measured here on the device itself (never typed in
from a data sheet):

* bandwidth: a STREAM-like kernel over working sets from cache-sized to far larger than
  the last-level cache, so the curve shows each memory level;
* arithmetic: a large square matmul, ``2 n^3`` FLOPs.

Timing goes through :func:`gardenpath.measure.timing.time_fn`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from gardenpath.measure.device import DeviceLike, resolve_device
from gardenpath.measure.timing import time_fn

Kernel = Literal["copy", "triad", "read"]

#: Working sets (bytes) swept by default: 16 KiB .. 256 MiB on CPU (past a 32 MiB
#: L3), 64 KiB .. 4 GiB on GPU (past an H100's 50 MB L2), in steps of 4x.
CPU_SIZES_BYTES = tuple(2**e for e in range(14, 29, 2))
GPU_SIZES_BYTES = tuple(2**e for e in range(16, 33, 2))


@dataclass(frozen=True)
class BandwidthPoint:
    """Achieved bandwidth of one kernel at one working-set size.

    Attributes:
        working_set_bytes: bytes of all arrays the kernel touches.
        bytes_per_s: ``bytes_moved / time_s``.
        time_s: median time of one kernel call, seconds.
        bytes_moved: bytes counted per call (STREAM convention: reads + writes, no
            write-allocate traffic).
        kernel: ``"copy"``, ``"triad"`` or ``"read"``.
        iqr_s: interquartile range of the per-call time, seconds.
    """

    working_set_bytes: int
    bytes_per_s: float
    time_s: float
    bytes_moved: int
    kernel: str
    iqr_s: float


def bandwidth_kernel(
    kernel: Kernel, working_set_bytes: int, dtype: torch.dtype, device: torch.device
) -> tuple[Callable[[], Any], int]:
    """Return ``(fn, bytes_moved_per_call)`` for one kernel and working set.

    * copy: ``b.copy_(a)``; two arrays of ``ws/2`` bytes; moves ``2 n e`` bytes;
    * triad: ``a = b + 3 c`` (``torch.add(b, c, alpha=3, out=a)``); three arrays of
      ``ws/3``; moves ``3 n e``;
    * read: ``x.expand(R, n).sum()``: one array of ``ws`` bytes read ``R`` times from
      wherever it fits, ``R n e`` bytes with ``R`` chosen so a call reads at least
      64 MiB (hides per-call overhead at cache sizes).
    """
    esize = torch.empty((), dtype=dtype).element_size()
    if kernel == "copy":
        n = max(1, working_set_bytes // (2 * esize))
        a = torch.rand(n, dtype=dtype, device=device)
        b = torch.empty_like(a)
        return (lambda: b.copy_(a)), 2 * n * esize
    if kernel == "triad":
        n = max(1, working_set_bytes // (3 * esize))
        b = torch.rand(n, dtype=dtype, device=device)
        c = torch.rand(n, dtype=dtype, device=device)
        a = torch.empty_like(b)
        return (lambda: torch.add(b, c, alpha=3, out=a)), 3 * n * esize
    if kernel == "read":
        n = max(1, working_set_bytes // esize)
        reps = max(1, -(-(64 << 20) // (n * esize)))  # ceil: at least 64 MiB per call
        x = torch.rand(n, dtype=dtype, device=device).expand(reps, n)
        return (lambda: x.sum()), reps * n * esize
    raise ValueError(f"kernel must be 'copy', 'triad' or 'read', not {kernel!r}")


def measure_bandwidth(
    sizes_bytes: Sequence[int] | None = None,
    device: DeviceLike = None,
    *,
    kernel: Kernel = "copy",
    dtype: torch.dtype = torch.float32,
    min_run_time_s: float = 0.2,
) -> list[BandwidthPoint]:
    """Achieved memory bandwidth across working-set sizes, caches to main memory.

    ``bytes_per_s = bytes_moved / median time``, with ``bytes_moved`` per
    :func:`bandwidth_kernel`. Small working sets include PyTorch's per-call
    dispatch (about 1 us on CPU, several on GPU), so their copy bandwidth is a lower
    bound on the cache's; the ``read`` kernel avoids that overhead.

    Args:
        sizes_bytes: working sets to sweep (default :data:`CPU_SIZES_BYTES` or
            :data:`GPU_SIZES_BYTES`).
        device: where to measure.
        kernel: ``"copy"``, ``"triad"`` or ``"read"``.
        dtype: element type.
        min_run_time_s: measured time per size, seconds.
    """
    dev = resolve_device("auto" if device is None else device)
    if sizes_bytes is None:
        sizes_bytes = GPU_SIZES_BYTES if dev.type == "cuda" else CPU_SIZES_BYTES
    points = []
    for ws in sizes_bytes:
        fn, moved = bandwidth_kernel(kernel, int(ws), dtype, dev)
        t = time_fn(fn, device=dev, warmup=2, min_run_time_s=min_run_time_s)
        points.append(
            BandwidthPoint(
                working_set_bytes=int(ws),
                bytes_per_s=moved / t.median_s,
                time_s=t.median_s,
                bytes_moved=moved,
                kernel=kernel,
                iqr_s=t.iqr_s,
            )
        )
        del fn
    return points


def measure_matmul_flops(
    n: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: DeviceLike = None,
    *,
    min_run_time_s: float = 0.2,
) -> float:
    """Achieved arithmetic throughput of an ``n x n`` by ``n x n`` matmul, FLOP/s.

    ``2 n^3 / median time`` (one multiply and one add per MAC). Default ``n``: 2048 on
    CPU, 8192 on GPU. On CUDA the result depends on ``torch.backends.cuda.matmul
    .allow_tf32`` for float32; it is measured under the current setting.
    """
    dev = resolve_device("auto" if device is None else device)
    if n is None:
        n = 8192 if dev.type == "cuda" else 2048
    fn, flops = matmul_kernel(n, dtype, dev)
    t = time_fn(fn, device=dev, warmup=2, min_run_time_s=min_run_time_s)
    return flops / t.median_s


def matmul_kernel(
    n: int, dtype: torch.dtype, device: torch.device
) -> tuple[Callable[[], Any], int]:
    """Return ``(fn, flops_per_call)``: ``fn`` multiplies two ``n x n`` random matrices
    into a preallocated output (``2 n^3`` FLOPs, one multiply and one add per MAC)."""
    a = torch.rand(n, n, dtype=dtype, device=device)
    b = torch.rand(n, n, dtype=dtype, device=device)
    out = torch.empty(n, n, dtype=dtype, device=device)
    return (lambda: torch.mm(a, b, out=out)), 2 * n**3


def measure_conv_flops(
    channels: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: DeviceLike = None,
    *,
    min_run_time_s: float = 0.2,
) -> float:
    """Achieved throughput of a large 3x3 convolution (stride 1, same padding), FLOP/s.

    ``2 * B * C_out * H * W * C_in * 9 / median time``. On some CPUs the convolution
    library (oneDNN) reaches well above the matrix-multiply library, so the compute roof
    takes the better of the two: a ceiling that measured kernels exceed is no ceiling.
    """
    dev = resolve_device("auto" if device is None else device)
    c = channels or (256 if dev.type == "cuda" else 128)
    batch, side = (32, 56) if dev.type == "cuda" else (4, 28)
    x = torch.rand(batch, c, side, side, dtype=dtype, device=dev)
    w = torch.rand(c, c, 3, 3, dtype=dtype, device=dev)
    t = time_fn(lambda: torch.nn.functional.conv2d(x, w, padding=1), device=dev, warmup=2,
                min_run_time_s=min_run_time_s)
    return 2.0 * batch * c * side * side * c * 9 / t.median_s


@dataclass(frozen=True)
class RooflinePoint:
    """A measured kernel placed under the roofline.

    Attributes:
        achieved_flops_per_s: ``flops / time_s``.
        achieved_bytes_per_s: ``bytes_moved / time_s``.
        intensity: ``flops / bytes_moved``, FLOP/byte.
        bound: ``"memory"`` left of the ridge point, ``"compute"`` right of it.
        fraction_of_roof: achieved FLOP/s over the attainable FLOP/s at this intensity.
        attainable_flops_per_s: ``min(peak FLOP/s, intensity * bandwidth)``.
    """

    achieved_flops_per_s: float
    achieved_bytes_per_s: float
    intensity: float
    bound: Literal["memory", "compute"]
    fraction_of_roof: float
    attainable_flops_per_s: float


@dataclass
class Roofline:
    """Ceilings of one device: peak FLOP/s and main-memory bandwidth, both measured.

    Attributes:
        peak_flops_per_s: matmul throughput, FLOP/s.
        peak_bytes_per_s: bandwidth at the largest working set (main memory), bytes/s.
        device: the device string.
        dtype: element type of both measurements.
        bandwidth: every bandwidth point measured (cache levels as extra ceilings).
    """

    peak_flops_per_s: float
    peak_bytes_per_s: float
    device: str = "unknown"
    dtype: str = "torch.float32"
    bandwidth: list[BandwidthPoint] = field(default_factory=list)

    @property
    def ridge_intensity(self) -> float:
        """Intensity where the two roofs meet, ``peak FLOP/s / bandwidth``, FLOP/byte."""
        return self.peak_flops_per_s / self.peak_bytes_per_s

    def attainable(self, intensity: Any, bytes_per_s: float | None = None) -> Any:
        """``min(peak FLOP/s, intensity * bandwidth)`` (scalar or array), FLOP/s.

        ``bytes_per_s`` selects another ceiling (e.g. a cache level's bandwidth).
        """
        bw = self.peak_bytes_per_s if bytes_per_s is None else bytes_per_s
        out = np.minimum(self.peak_flops_per_s, np.asarray(intensity, dtype=float) * bw)
        return float(out) if out.ndim == 0 else out

    def place(self, flops: float, bytes_moved: float, time_s: float) -> RooflinePoint:
        """Place a kernel that did ``flops`` FLOPs moving ``bytes_moved`` bytes in ``time_s``."""
        if flops <= 0 or bytes_moved <= 0 or time_s <= 0:
            raise ValueError("flops, bytes_moved and time_s must be positive")
        intensity = flops / bytes_moved
        roof = self.attainable(intensity)
        achieved = flops / time_s
        return RooflinePoint(
            achieved_flops_per_s=achieved,
            achieved_bytes_per_s=bytes_moved / time_s,
            intensity=intensity,
            bound="memory" if intensity < self.ridge_intensity else "compute",
            fraction_of_roof=achieved / roof,
            attainable_flops_per_s=roof,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict, including the ridge intensity."""
        out = asdict(self)
        out["ridge_intensity"] = self.ridge_intensity
        return out

    @classmethod
    def measure(
        cls,
        device: DeviceLike = None,
        *,
        sizes_bytes: Sequence[int] | None = None,
        matmul_n: int | None = None,
        dtype: torch.dtype = torch.float32,
        kernel: Kernel = "copy",
        min_run_time_s: float = 0.2,
    ) -> Roofline:
        """Measure both ceilings on ``device`` (see :func:`measure_bandwidth`,
        :func:`measure_matmul_flops`, :func:`measure_conv_flops`): the compute roof is the
        faster of a large matmul and a large convolution; the memory roof is the largest
        working set's."""
        dev = resolve_device("auto" if device is None else device)
        points = measure_bandwidth(
            sizes_bytes, dev, kernel=kernel, dtype=dtype, min_run_time_s=min_run_time_s
        )
        peak = max(measure_matmul_flops(matmul_n, dtype, dev, min_run_time_s=min_run_time_s),
                   measure_conv_flops(None, dtype, dev, min_run_time_s=min_run_time_s))
        main = max(points, key=lambda p: p.working_set_bytes)
        return cls(
            peak_flops_per_s=peak,
            peak_bytes_per_s=main.bytes_per_s,
            device=str(dev),
            dtype=str(dtype),
            bandwidth=points,
        )
