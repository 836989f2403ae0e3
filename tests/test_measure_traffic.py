"""measure.traffic: minimum bytes per pass against hand-computed cases."""

from __future__ import annotations

import pytest

from gardenpath.measure.traffic import layer_traffic


def test_smallest_case_by_hand():
    # 1 channel in and out, 3x3 kernel on 4x4, batch 1: output 2x2 (L = 4)
    conv = layer_traffic("conv", 1, 1, 3, 4)
    local = layer_traffic("local", 1, 1, 3, 4)
    # |X| = 16, |Y| = 4, conv |W| = 9, local |W| = 4 * 9 = 36; float32
    assert conv.forward_bytes == (16 + 4 + 9) * 4 == 116
    assert local.forward_bytes == (16 + 4 + 36) * 4 == 224
    for t in (conv, local):
        assert t.input_grad_bytes == t.weight_grad_bytes == t.forward_bytes
        assert t.forward_flops == t.input_grad_flops == t.weight_grad_flops == 2 * 4 * 9
    assert conv.params == 9 and local.params == 36
    assert conv.forward_intensity == pytest.approx(72 / 116)
    assert local.forward_intensity == pytest.approx(72 / 224)
    assert conv.partial_products_per_weight_grad == 4
    assert local.partial_products_per_weight_grad == 1


def test_strided_padded_half_precision_by_hand():
    # B=2, C=3, O=5, k=3, 8x8, stride 2, padding 1: out (8+2-3)//2+1 = 4 -> 4x4, L=16
    conv = layer_traffic("conv", 3, 5, 3, 8, batch_size=2, stride=2, padding=1, dtype_bytes=2)
    local = layer_traffic("local", 3, 5, 3, 8, batch_size=2, stride=2, padding=1, dtype_bytes=2)
    assert conv.output_shape == local.output_shape == (2, 5, 4, 4)
    assert conv.weight_shape == (5, 3, 3, 3)
    assert local.weight_shape == (16, 27, 5)
    assert conv.input_bytes == 2 * 3 * 64 * 2 == 768
    assert conv.output_bytes == 2 * 5 * 16 * 2 == 320
    assert conv.weight_bytes == 135 * 2
    assert local.weight_bytes == 2160 * 2
    assert conv.forward_bytes == (384 + 160 + 135) * 2 == 1358
    assert local.forward_bytes == (384 + 160 + 2160) * 2 == 5408
    assert conv.total_bytes == 3 * 1358
    assert conv.forward_flops == local.forward_flops == 2 * 2 * 16 * 27 * 5 == 8640
    assert conv.total_flops == 3 * 8640
    assert conv.intensity == pytest.approx(8640 / 1358)
    assert conv.partial_products_per_weight_grad == 2 * 16
    assert local.partial_products_per_weight_grad == 2


def test_rectangular_kernel_and_input():
    t = layer_traffic("local", 2, 3, (1, 3), (5, 7), batch_size=1)
    # out 5x5, L = 25, K = 2*1*3 = 6
    assert t.output_shape == (1, 3, 5, 5)
    assert t.params == 25 * 6 * 3
    assert t.forward_bytes == (2 * 35 + 3 * 25 + 450) * 4


def test_unsharing_lowers_intensity_and_matches_the_real_layer():
    conv = layer_traffic("conv", 16, 16, 3, 32, batch_size=8, padding=1)
    local = layer_traffic("local", 16, 16, 3, 32, batch_size=8, padding=1)
    assert local.intensity < conv.intensity
    assert local.params == 32 * 32 * conv.params
    d = local.as_dict()
    assert d["weight_grad_intensity"] == local.weight_grad_intensity
    mod = pytest.importorskip("gardenpath.models.local")
    layer = mod.LocallyConnected2d(16, 16, 3, in_size=32, padding=1, bias=False)
    assert layer.weight.numel() == local.params
    assert tuple(layer.weight.shape) == local.weight_shape


def test_bad_sharing():
    with pytest.raises(ValueError):
        layer_traffic("tied", 1, 1, 3, 4)  # type: ignore[arg-type]
