"""measure.flops: analytic conv and locally connected FLOPs equal FlopCounterMode's counts."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from gardenpath.measure.flops import (
    FlopCount,
    conv2d_flops,
    count_flops,
    local2d_flops,
    out_size,
)


def random_shapes(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        k = (rng.randint(1, 4), rng.randint(1, 4))
        shape = dict(
            in_channels=rng.randint(1, 5),
            out_channels=rng.randint(1, 6),
            kernel_size=k if rng.random() < 0.5 else k[0],
            in_size=(rng.randint(4, 9), rng.randint(4, 9)),
            batch_size=rng.randint(1, 3),
            stride=rng.choice([1, 2, (1, 2)]),
            padding=rng.choice([0, 1, (2, 0)]),
        )
        try:
            out_size(shape["in_size"], shape["kernel_size"], shape["stride"], shape["padding"])
        except ValueError:
            continue
        out.append(shape)
    return out


class RefLocal(torch.nn.Module):
    """Reference locally connected forward: unfold then one bmm over positions."""

    def __init__(self, in_channels, out_channels, kernel_size, in_size, stride, padding):
        super().__init__()
        self.k, self.s, self.p = kernel_size, stride, padding
        oh, ow = out_size(in_size, kernel_size, stride, padding)
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.oh, self.ow = oh, ow
        self.weight = torch.nn.Parameter(torch.randn(oh * ow, in_channels * kh * kw, out_channels))

    def forward(self, x):
        u = F.unfold(x, self.k, padding=self.p, stride=self.s)  # (B, C*kh*kw, L)
        y = torch.bmm(u.permute(2, 0, 1), self.weight)  # (L, B, O)
        return y.permute(1, 2, 0).reshape(x.shape[0], -1, self.oh, self.ow)  # (B, O, oh, ow)


@pytest.mark.parametrize("shape", random_shapes(8, seed=1))
def test_conv_formula_equals_counter(shape):
    conv = torch.nn.Conv2d(shape["in_channels"], shape["out_channels"], shape["kernel_size"],
                           stride=shape["stride"], padding=shape["padding"])
    x = torch.randn(shape["batch_size"], shape["in_channels"], *shape["in_size"])
    counted = count_flops(conv, x)
    expect = conv2d_flops(**shape)
    assert counted.forward == expect.forward > 0
    assert counted.backward == expect.input_grad + expect.weight_grad == expect.backward
    assert counted.total == expect.total == 3 * expect.forward
    first_layer = count_flops(conv, x, input_grad=False)
    assert first_layer.backward == expect.weight_grad


@pytest.mark.parametrize("shape", random_shapes(8, seed=2))
def test_local_formula_equals_counter(shape):
    layer = RefLocal(shape["in_channels"], shape["out_channels"], shape["kernel_size"],
                     shape["in_size"], shape["stride"], shape["padding"])
    x = torch.randn(shape["batch_size"], shape["in_channels"], *shape["in_size"])
    counted = count_flops(layer, x)
    expect = local2d_flops(**shape)
    assert counted.forward == expect.forward
    assert counted.backward == expect.backward
    assert set(counted.by_op["forward"]) == {"aten.bmm"}
    assert counted.by_op["backward"]["aten.bmm"] == expect.input_grad + expect.weight_grad


def test_local_formula_equals_counter_on_project_layer():
    local = pytest.importorskip("gardenpath.models.local")
    try:
        layer = local.LocallyConnected2d(3, 4, 3, in_size=(7, 6), stride=2, padding=1)
    except TypeError as err:
        pytest.skip(f"LocallyConnected2d signature differs: {err}")
    x = torch.randn(2, 3, 7, 6)
    counted = count_flops(layer, x)
    expect = local2d_flops(3, 4, 3, (7, 6), batch_size=2, stride=2, padding=1)
    assert counted.forward == expect.forward
    assert counted.backward == expect.backward


def test_hand_computed_conv():
    # 1x1 input channel, 3x3 kernel on 4x4 -> 2x2 outputs, 9 MACs each, 2 outputs channels
    f = conv2d_flops(1, 2, 3, 4, batch_size=1)
    assert f.forward == 2 * 4 * 9 * 2 == 144
    assert local2d_flops(1, 2, 3, 4) == f


def test_forward_only_and_errors():
    lin = torch.nn.Linear(8, 4)
    x = torch.randn(5, 8)
    fwd = count_flops(lin, x, backward=False)
    assert fwd == FlopCount(forward=2 * 5 * 8 * 4, backward=0)
    assert fwd.total == fwd.forward
    with pytest.raises(ValueError, match="requires grad"):
        count_flops(lambda t: t.detach() * 2, x)
    with pytest.raises(ValueError, match="does not fit"):
        out_size(3, 5)


def test_function_with_several_inputs_and_outputs():
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    count = count_flops(lambda p, q: (p @ q, q.sum()), (a, b))
    assert count.forward == 2 * 3 * 4 * 5
    assert count.backward == 2 * (2 * 3 * 4 * 5)
