"""The 1-D locally connected layer: a Conv1d when its filters are tied, untied otherwise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gardenpath.models.local1d import LocallyConnected1d, conv1d_out_len


@pytest.mark.parametrize("k, stride, padding", [(5, 2, 1), (3, 1, 1), (3, 2, 0)])
def test_tied_layer_equals_conv1d_forward_and_summed_gradient(k, stride, padding):
    torch.manual_seed(0)
    conv = nn.Conv1d(3, 4, k, stride=stride, padding=padding)
    lc = LocallyConnected1d.from_conv(conv, 17)
    x = torch.randn(6, 3, 17)
    torch.testing.assert_close(lc(x), conv(x), rtol=1e-5, atol=1e-5)
    conv(x).square().sum().backward()
    lc(x).square().sum().backward()
    # the conv's weight gradient is the sum over positions of the local ones
    summed = lc.weight.grad.sum(0).t().reshape_as(conv.weight)  # (out, C, k)
    torch.testing.assert_close(summed, conv.weight.grad, rtol=1e-4, atol=1e-5)


def test_untied_positions_compute_their_own_filters():
    torch.manual_seed(1)
    lc = LocallyConnected1d(1, 2, 3, 8, padding=1)
    x = torch.randn(4, 1, 8)
    y = lc(x)
    xp = nn.functional.pad(x, (1, 1))
    for pos in (0, 5, 7):
        want = xp[:, 0, pos:pos + 3] @ lc.weight[pos] + lc.bias[:, pos]  # (B, out)
        torch.testing.assert_close(y[:, :, pos], want)


def test_shapes_and_checks():
    assert conv1d_out_len(40, 5, 2, 1) == 19
    lc = LocallyConnected1d(2, 5, 3, 10, stride=2, padding=1)
    assert lc.weight.shape == (5, 6, 5) and lc.bias.shape == (5, 5)
    with pytest.raises(ValueError):
        lc(torch.randn(1, 2, 11))
    with pytest.raises(ValueError):
        conv1d_out_len(2, 5)
