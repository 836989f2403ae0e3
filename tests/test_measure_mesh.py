"""measure.mesh: bytes x hops on the PE mesh against cases counted by hand."""

from __future__ import annotations

import math

import pytest

from gardenpath.measure.mesh import (
    conv_over_local,
    halo_pixel_hops,
    mesh_traffic,
    ring_link_hops,
    weight_sync_hops,
)


def test_two_by_two_mesh_by_hand():
    # 2x2 input, 3x3 kernel, padding 1, one channel, batch 1, one PE per output: 2x2 mesh.
    # Each PE's 3x3 window, clipped to the image, is the whole image: 3 foreign pixels,
    # two from the PEs beside it (1 hop each) and one from the diagonal PE (2 hops):
    # 4 pixel-hops per PE, 16 for the mesh.
    assert halo_pixel_hops(2, 3, 1) == 16
    local = mesh_traffic("local", 1, 1, 3, 2)
    conv = mesh_traffic("conv", 1, 1, 3, 2)
    # fp32: forward halo 16 x 4 bytes = 64; the input gradient's partial sums go back: 64
    assert (local.halo_forward, local.halo_backward, local.weight_sync) == (64, 64, 0)
    assert local.total == 128
    # convolution: 9 weights = 36 bytes; tree over 4 PEs: 3 links carry them each way
    assert conv.weight_sync == 2 * 3 * 36 == 216
    assert conv.total == 128 + 216 == 344
    assert conv_over_local(1, 1, 3, 2) == pytest.approx(344 / 128)
    # ring: the snake (0,0)-(0,1)-(1,1)-(1,0) closes with one hop, 4 links; each PE sends
    # 2 x 3/4 x 36 = 54 bytes over its link: 216, as the tree
    assert ring_link_hops(2) == 4
    assert mesh_traffic("conv", 1, 1, 3, 2, reduction="ring").weight_sync == pytest.approx(216)


def test_three_by_three_mesh_by_hand():
    # corner PE: 3 foreign pixels, 1 + 1 + 2 = 4 pixel-hops; edge PE (0,1): (0,0) and (0,2)
    # 1 hop, (1,1) 1 hop, (1,0) and (1,2) 2 hops = 7; centre: 4 at 1 hop, 4 at 2 = 12.
    assert halo_pixel_hops(3, 3, 1) == 4 * 4 + 4 * 7 + 12 == 56
    # the ring through 3x3 in snake order ends at (2,2): the closing link is 4 hops
    assert ring_link_hops(3) == 8 + 4
    assert weight_sync_hops(36, 3, "ring") == pytest.approx(2 * 8 / 9 * 36 * 12)
    assert weight_sync_hops(36, 3, "tree") == 2 * 8 * 36
    assert weight_sync_hops(36, 1, "ring") == weight_sync_hops(36, 1, "tree") == 0


def test_tiles_of_positions_by_hand():
    # 4x4 input in 2x2 tiles, 3x3 kernel: PE (0,0) needs rows and columns 0..2; foreign:
    # (2,0), (2,1), (0,2), (1,2) at 1 hop and (2,2) at 2 hops = 6; the four PEs alike.
    assert halo_pixel_hops(4, 3, 2) == 4 * 6
    t = mesh_traffic("local", 2, 2, 3, 4, batch_size=3, tile=2)
    assert t.mesh_side == 2 and t.pes == 4
    assert t.halo_forward == 24 * 3 * 2 * 4  # pixel-hops x batch x channels x bytes


def test_what_scales_the_halo_and_the_sync():
    base = mesh_traffic("conv", 4, 4, 3, 8, batch_size=2)
    twice_batch = mesh_traffic("conv", 4, 4, 3, 8, batch_size=4)
    assert twice_batch.halo_forward == 2 * base.halo_forward
    assert twice_batch.weight_sync == base.weight_sync  # once per step, whatever the batch
    more_out = mesh_traffic("conv", 4, 8, 3, 8, batch_size=2)
    assert more_out.weight_sync == 2 * base.weight_sync
    assert more_out.halo_forward == base.halo_forward


def test_a_one_by_one_kernel_moves_nothing_without_sharing():
    assert mesh_traffic("local", 4, 4, 1, 8).total == 0
    assert math.isinf(conv_over_local(4, 4, 1, 8))
    # one PE holding the whole layer: nothing moves for either
    assert conv_over_local(4, 4, 3, 4, tile=4) == 1.0


def test_bad_arguments():
    with pytest.raises(ValueError):
        mesh_traffic("conv", 1, 1, 2, 4)
    with pytest.raises(ValueError):
        mesh_traffic("dense", 1, 1, 3, 4)
    with pytest.raises(ValueError):
        weight_sync_hops(4, 2, "butterfly")
    with pytest.raises(ValueError):
        mesh_traffic("conv", 1, 1, 3, 4, tile=0)


def _brute_halo(in_size: int, k: int, tile: int) -> int:
    """Every PE's outputs' windows, as sets, each foreign pixel's hops summed."""
    r, total = k // 2, 0
    side = -(-in_size // tile)
    for pi in range(side):
        for pj in range(side):
            need = {(i + di, j + dj)
                    for i in range(pi * tile, min(in_size, (pi + 1) * tile))
                    for j in range(pj * tile, min(in_size, (pj + 1) * tile))
                    for di in range(-r, r + 1) for dj in range(-r, r + 1)
                    if 0 <= i + di < in_size and 0 <= j + dj < in_size}
            total += sum(abs(i // tile - pi) + abs(j // tile - pj) for i, j in need)
    return total


@pytest.mark.parametrize("in_size,k,tile", [(5, 3, 1), (7, 5, 2), (9, 3, 4), (6, 7, 3),
                                            (8, 5, 1)])
def test_halo_matches_a_brute_force_count(in_size, k, tile):
    assert halo_pixel_hops(in_size, k, tile) == _brute_halo(in_size, k, tile)
