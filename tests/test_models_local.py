"""LocallyConnected2d: equivalence with Conv2d, gradients, sharing, meta device, cost."""

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from gardenpath.models.local import LocallyConnected2d, conv_out_size


def _random_cases(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)

    def r(lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    for _ in range(n):
        k = r(1, 4)
        yield dict(b=r(1, 3), c=r(1, 4), o=r(1, 5), k=k, s=r(1, 3), p=r(0, k - 1),
                   h=r(k, 9), w=r(k, 9), bias=bool(r(0, 1)))


@pytest.mark.parametrize("case", list(_random_cases(12)))
def test_from_conv_matches_conv_outputs_and_summed_weight_gradients(case):
    torch.manual_seed(1)
    conv = nn.Conv2d(case["c"], case["o"], case["k"], case["s"], case["p"], bias=case["bias"])
    x = torch.randn(case["b"], case["c"], case["h"], case["w"])
    lc = LocallyConnected2d.from_conv(conv, (case["h"], case["w"]))
    y_conv, y_lc = conv(x), lc(x)
    assert y_lc.shape == y_conv.shape
    assert lc.out_size == tuple(y_conv.shape[-2:])
    torch.testing.assert_close(y_lc, y_conv, rtol=1e-5, atol=1e-5)

    grad_out = torch.randn_like(y_conv)
    y_conv.backward(grad_out)
    y_lc.backward(grad_out)
    summed = lc.weight.grad.sum(0).t().reshape(conv.weight.shape)  # (out, C, k, k)
    torch.testing.assert_close(summed, conv.weight.grad, rtol=1e-4, atol=1e-4)
    if case["bias"]:
        torch.testing.assert_close(lc.bias.grad.sum((1, 2)), conv.bias.grad, rtol=1e-4,
                                   atol=1e-4)


def test_positions_have_independent_filters():
    torch.manual_seed(0)
    lc = LocallyConnected2d(2, 3, 3, 5, padding=1)
    x = torch.randn(2, 2, 5, 5)
    y = lc(x)
    with torch.no_grad():
        lc.weight[7].zero_()  # position 7 = row 1, column 2
        lc.bias[:, 1, 2] = 0
    y2 = lc(x)
    changed = (y2 != y).any(dim=(0, 1))  # (H_out, W_out)
    assert changed[1, 2] and changed.sum() == 1
    assert torch.all(y2[:, :, 1, 2] == 0)


def test_gradcheck_float64():
    torch.manual_seed(0)
    lc = LocallyConnected2d(2, 3, 3, (5, 4), stride=2, padding=1, dtype=torch.float64)
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)

    def f(x, w, b):
        return torch.func.functional_call(lc, {"weight": w, "bias": b}, (x,))

    w = lc.weight.detach().clone().requires_grad_(True)
    b = lc.bias.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (x, w, b))


def test_share_weights_turns_it_into_the_mean_convolution():
    torch.manual_seed(0)
    lc = LocallyConnected2d(3, 4, 3, 6, stride=1, padding=1)
    mean_w = lc.weight.detach().mean(0).t().reshape(4, 3, 3, 3)  # (out, C, k, k)
    mean_b = lc.bias.detach().mean((1, 2))
    x = torch.randn(2, 3, 6, 6)
    assert not torch.allclose(lc(x), nn.functional.conv2d(x, mean_w, mean_b, padding=1))
    lc.share_weights_()
    torch.testing.assert_close(lc(x), nn.functional.conv2d(x, mean_w, mean_b, padding=1),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lc.conv_weight(), mean_w)


def test_builds_on_meta_device_with_expected_shapes():
    lc = LocallyConnected2d(64, 64, 3, 56, padding=1, device="meta", bias=False)
    assert lc.weight.device.type == "meta"
    assert lc.weight.shape == (56 * 56, 64 * 9, 64)
    assert lc.weight.numel() == 56 * 56 * 64 * 9 * 64
    y = lc(torch.empty(8, 64, 56, 56, device="meta"))
    assert y.shape == (8, 64, 56, 56)


class _Ops(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops: list[tuple[str, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        numel = out.numel() if isinstance(out, torch.Tensor) else 0
        self.ops.append((str(func.overloadpacket.__name__), numel))
        return out


def test_forward_is_one_batched_matmul_without_a_blown_up_intermediate():
    b, c, o, k, n = 4, 3, 5, 3, 7
    lc = LocallyConnected2d(c, o, k, n)
    x = torch.randn(b, c, n, n)
    with _Ops() as rec:
        lc(x)
    names = [name for name, _ in rec.ops]
    matmuls = [nm for nm in names if nm in ("bmm", "mm", "matmul", "baddbmm", "addmm", "einsum")]
    assert matmuls == ["bmm"], names
    positions = lc.num_positions
    biggest = max(numel for _, numel in rec.ops)
    assert biggest <= b * positions * max(c * k * k, o)  # never B x L x out x C*k*k
    assert biggest < b * positions * o * c * k * k


def test_rejects_wrong_input_shape_and_oversized_kernel():
    lc = LocallyConnected2d(1, 2, 3, 8)
    with pytest.raises(ValueError, match="expected"):
        lc(torch.randn(1, 1, 9, 8))
    with pytest.raises(ValueError):
        conv_out_size(2, 5)
