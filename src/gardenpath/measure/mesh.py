"""Traffic of one training step on a spatial machine: a 2-D mesh of processing elements
(PEs), each owning a tile of output positions and holding its own weights.

Why: the essay's picture of cortex is not a processor fetching weights from memory but a
sheet of units whose synapses stay where they are used. On such a machine untied weights
never move; a tied weight has one value for every position, so after each step its
gradient must be summed from every PE and the new value sent back to all of them. This
module counts that traffic in bytes x hops (a word carried over one mesh link costs one
hop; XY routing, so a word between PEs ``(a, b)`` and ``(c, d)`` takes
``|a - c| + |b - d|`` hops).

Layer: stride 1, "same" zero padding (``k // 2``), so the output has the input's size
``H x H`` and output pixel ``(i, j)`` and input pixel ``(i, j)`` live on the same PE,
``(i // t, j // t)`` for tiles of ``t x t`` positions (a ``G x G`` mesh,
``G = ceil(H / t)``).

Per step:

* forward halo: each PE needs the input pixels within ``r = k // 2`` of its tile (zero
  padding needs none); each foreign pixel brings ``B C_in`` words from its owner;
* backward halo: the input gradient of a pixel sums contributions from every output
  whose window covers it; a PE computes those for its outputs (with its own weights) and
  sends the partial sums for foreign pixels back to their owners: the same words and hops
  as the forward halo, in reverse;
* locally connected: the weight gradient is local (each PE has its window's input and its
  outputs' gradients), so nothing else moves;
* convolution: the shared weights' gradient (``|W| = C_out C_in k^2`` words) is summed
  over all ``P = G^2`` PEs and the result returned to all, every step:

  - ``tree``: reduce along a spanning tree of mesh links to one PE, then broadcast back
    along it: each of the ``P - 1`` links carries ``|W|`` each way, ``2 (P - 1) |W|``;
  - ``ring``: ring all-reduce (reduce-scatter then all-gather) around the PEs in snake
    order: each PE sends ``2 (P - 1) / P |W|`` words to its successor; the snake's links
    are one hop, the link closing the ring ``G - 1`` hops (``G`` even) or ``2 (G - 1)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

Reduction = Literal["tree", "ring"]
REDUCTIONS: tuple[str, ...] = ("tree", "ring")


@dataclass(frozen=True)
class MeshTraffic:
    """Bytes x hops of one training step on the mesh, by part.

    Attributes:
        sharing: ``"conv"`` or ``"local"``.
        mesh_side: ``G``, PEs per side.
        pes: ``P = G^2``.
        halo_forward: input pixels carried to the PEs that need them.
        halo_backward: input-gradient partial sums carried back.
        weight_sync: the shared weights' gradient reduction and the weights' return
            (0 for ``local``).
    """

    sharing: str
    mesh_side: int
    pes: int
    halo_forward: int
    halo_backward: int
    weight_sync: float

    @property
    def total(self) -> float:
        """All bytes x hops of the step."""
        return self.halo_forward + self.halo_backward + self.weight_sync

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus the total."""
        return {**asdict(self), "total": self.total}


def _owner_offsets(lo: int, hi: int, own: int, tile: int) -> list[int]:
    """``|owner - own|`` in PE steps for every pixel ``lo..hi`` along one axis."""
    return [abs(i // tile - own) for i in range(lo, hi + 1)]


def halo_pixel_hops(in_size: int, kernel_size: int, tile: int) -> int:
    """Sum over PEs of (foreign input pixel x hops to its owner) for one channel and image.

    A PE at ``(pi, pj)`` needs the rectangle ``[i0 - r, i1 + r] x [j0 - r, j1 + r]``
    (clipped to the image) around its tile; a pixel there is ``|a| + |b|`` hops away, with
    ``a``, ``b`` its owner's offsets along each axis, so the rectangle's sum separates:
    ``cols * sum |a| + rows * sum |b|`` (own pixels add zero).
    """
    if kernel_size % 2 != 1:
        raise ValueError("the mesh model needs an odd kernel ('same' padding)")
    r, side = kernel_size // 2, math.ceil(in_size / tile)
    total = 0
    for pi in range(side):
        rows = (max(0, pi * tile - r), min(in_size - 1, (pi + 1) * tile - 1 + r))
        a = _owner_offsets(*rows, pi, tile)
        for pj in range(side):
            cols = (max(0, pj * tile - r), min(in_size - 1, (pj + 1) * tile - 1 + r))
            b = _owner_offsets(*cols, pj, tile)
            total += len(b) * sum(a) + len(a) * sum(b)
    return total


def ring_link_hops(mesh_side: int) -> int:
    """Hops of all links of a ring through a ``G x G`` mesh in snake order."""
    if mesh_side <= 1:
        return 0
    closing = mesh_side - 1 if mesh_side % 2 == 0 else 2 * (mesh_side - 1)
    return mesh_side**2 - 1 + closing


def weight_sync_hops(weight_bytes: int, mesh_side: int, reduction: str) -> float:
    """Bytes x hops to sum a shared weight gradient over all PEs and return the result."""
    p = mesh_side**2
    if reduction == "tree":
        return 2 * (p - 1) * weight_bytes
    if reduction == "ring":
        return 2 * (p - 1) / p * weight_bytes * ring_link_hops(mesh_side)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, not {reduction!r}")


def mesh_traffic(sharing: str, in_channels: int, out_channels: int, kernel_size: int,
                 in_size: int, batch_size: int = 1, tile: int = 1,
                 reduction: str = "tree", dtype_bytes: int = 4) -> MeshTraffic:
    """Bytes x hops of one training step of a conv or locally connected layer on the mesh.

    Args:
        sharing: ``"conv"`` or ``"local"``.
        in_channels, out_channels: ``C_in``, ``C_out``.
        kernel_size: odd kernel side ``k`` (stride 1, padding ``k // 2``).
        in_size: input (and output) side ``H``.
        batch_size: ``B`` images per step.
        tile: output positions per PE side ``t``.
        reduction: ``"tree"`` or ``"ring"`` for the shared weights' gradient.
        dtype_bytes: bytes per word.
    """
    if sharing not in ("conv", "local"):
        raise ValueError(f"sharing must be 'conv' or 'local', not {sharing!r}")
    if tile < 1:
        raise ValueError("tile must be at least 1")
    side = math.ceil(in_size / tile)
    halo = halo_pixel_hops(in_size, kernel_size, tile) * batch_size * in_channels * dtype_bytes
    weight_bytes = out_channels * in_channels * kernel_size**2 * dtype_bytes
    sync = weight_sync_hops(weight_bytes, side, reduction) if sharing == "conv" else 0.0
    return MeshTraffic(sharing, side, side**2, halo, halo, sync)


def conv_over_local(in_channels: int, out_channels: int, kernel_size: int, in_size: int,
                    batch_size: int = 1, tile: int = 1, reduction: str = "tree") -> float:
    """The convolution's bytes x hops over the locally connected layer's, same shapes;
    ``inf`` where the locally connected layer moves nothing (a 1 x 1 kernel, or one PE
    with a convolution that still has something to sum), 1 where neither moves."""
    args = (in_channels, out_channels, kernel_size, in_size, batch_size, tile, reduction)
    conv, local = mesh_traffic("conv", *args), mesh_traffic("local", *args)
    if local.total == 0:
        return math.inf if conv.total else 1.0
    return conv.total / local.total
