"""FLOPs: counted by PyTorch for any function, and derived by hand for conv and local layers.

The counter is :class:`torch.utils.flop_counter.FlopCounterMode`, which intercepts every
aten operator and counts 2 FLOPs per multiply-accumulate (MAC) of matmuls and
convolutions (element-wise ops, bias adds and reductions are not counted). The analytic
formulas below follow the same convention, so a chapter can predict a layer's cost from
its shapes alone (a ResNet-sized locally connected layer that would not fit in memory)
and the tests check the two agree on shapes that do fit.

Shapes (a square kernel or side may be given as an int):

* input ``(B, C, H, W)``, kernel ``k_h x k_w``, output ``(B, O, H_out, W_out)`` with
  ``H_out = floor((H + 2 p_h - k_h) / s_h) + 1`` (same for W);
* positions ``L = H_out * W_out``; receptive field ``K = C k_h k_w``;
* a convolution has one weight ``(O, C, k_h, k_w)`` shared over all ``L`` positions; a
  locally connected layer has one per position, ``(L, K, O)``, and computes
  ``unfold(x) -> (L, B, K)`` then a batched matmul ``(L, B, K) x (L, K, O)``.

Both do ``B L K O`` MACs per pass; sharing changes the bytes moved (see
:mod:`gardenpath.measure.traffic`), not the arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

IntPair = int | tuple[int, int]


def pair(value: IntPair) -> tuple[int, int]:
    """``3 -> (3, 3)``; a 2-sequence passes through as a tuple of ints."""
    if isinstance(value, int):
        return (value, value)
    a, b = value
    return (int(a), int(b))


def out_size(
    in_size: IntPair, kernel_size: IntPair, stride: IntPair = 1, padding: IntPair = 0
) -> tuple[int, int]:
    """Output spatial size ``(H_out, W_out)`` of a convolution-shaped layer.

    ``H_out = floor((H + 2 padding_h - k_h) / stride_h) + 1``, same for W (no dilation).

    Raises:
        ValueError: when the kernel does not fit in the padded input.
    """
    (h, w), (kh, kw) = pair(in_size), pair(kernel_size)
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {kh}x{kw} does not fit input {h}x{w} with padding {ph},{pw}")
    return oh, ow


@dataclass(frozen=True)
class LayerFlops:
    """FLOPs of one layer's three passes (2 FLOPs per multiply-accumulate).

    Attributes:
        forward: FLOPs of ``y = layer(x)``.
        input_grad: FLOPs of the gradient with respect to the input, ``dL/dx``.
        weight_grad: FLOPs of the gradient with respect to the weights, ``dL/dw``.
    """

    forward: int
    input_grad: int
    weight_grad: int

    @property
    def backward(self) -> int:
        """``input_grad + weight_grad``, FLOPs."""
        return self.input_grad + self.weight_grad

    @property
    def total(self) -> int:
        """Forward plus backward, FLOPs."""
        return self.forward + self.backward


def _macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntPair,
    in_size: IntPair,
    batch_size: int,
    stride: IntPair,
    padding: IntPair,
) -> int:
    oh, ow = out_size(in_size, kernel_size, stride, padding)
    kh, kw = pair(kernel_size)
    return batch_size * oh * ow * in_channels * kh * kw * out_channels


def conv2d_flops(
    in_channels: int,
    out_channels: int,
    kernel_size: IntPair,
    in_size: IntPair,
    batch_size: int = 1,
    stride: IntPair = 1,
    padding: IntPair = 0,
) -> LayerFlops:
    """FLOPs of a 2-D convolution (groups 1, no dilation; bias not counted).

    Each pass is ``2 * B * H_out * W_out * C * k_h * k_w * O`` FLOPs:

    * forward: every output element is a dot product of length ``C k_h k_w``;
    * input gradient: a transposed convolution of ``dL/dy`` with the same weights,
      the same MACs counted densely (as PyTorch's counter does);
    * weight gradient: each of the ``O C k_h k_w`` weights sums ``B H_out W_out``
      products.
    """
    f = 2 * _macs(in_channels, out_channels, kernel_size, in_size, batch_size, stride, padding)
    return LayerFlops(forward=f, input_grad=f, weight_grad=f)


def local2d_flops(
    in_channels: int,
    out_channels: int,
    kernel_size: IntPair,
    in_size: IntPair,
    batch_size: int = 1,
    stride: IntPair = 1,
    padding: IntPair = 0,
) -> LayerFlops:
    """FLOPs of a locally connected 2-D layer (unshared weights; bias not counted).

    With ``L = H_out W_out`` positions and ``K = C k_h k_w``, each pass is one batched
    matmul over positions, ``2 * L * B * K * O`` FLOPs:

    * forward: ``(L, B, K) x (L, K, O) -> (L, B, O)``;
    * input gradient: ``(L, B, O) x (L, O, K) -> (L, B, K)``, then ``fold`` (adds, not
      counted);
    * weight gradient: ``(L, K, B) x (L, B, O) -> (L, K, O)``: each weight sums only
      ``B`` products, against ``B L`` for a convolution.

    The totals equal :func:`conv2d_flops`: unsharing costs no extra arithmetic.
    """
    f = 2 * _macs(in_channels, out_channels, kernel_size, in_size, batch_size, stride, padding)
    return LayerFlops(forward=f, input_grad=f, weight_grad=f)


@dataclass(frozen=True)
class FlopCount:
    """FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode``.

    Attributes:
        forward: FLOPs of the forward call.
        backward: FLOPs of the backward pass (0 when not run).
        by_op: FLOPs per aten operator and pass, e.g. ``{"forward": {"aten.bmm": n}}``.
    """

    forward: int
    backward: int
    by_op: dict[str, dict[str, int]] = field(default_factory=dict, compare=False)

    @property
    def total(self) -> int:
        """Forward plus backward, FLOPs."""
        return self.forward + self.backward


def _as_tuple(inputs: Any) -> tuple[Any, ...]:
    if isinstance(inputs, tuple):
        return inputs
    if isinstance(inputs, list):
        return tuple(inputs)
    return (inputs,)


def _grad_ready(inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """Floating tensors detached and marked ``requires_grad`` so the input gradient runs."""
    return tuple(
        t.detach().requires_grad_(True)
        if isinstance(t, torch.Tensor) and t.is_floating_point()
        else t
        for t in inputs
    )


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, Sequence) and not isinstance(out, str):
        return [t for o in out for t in _tensors(o)]
    return []


def _by_op(mode: FlopCounterMode) -> dict[str, int]:
    counts = mode.get_flop_counts().get("Global", {})
    return {str(op): int(n) for op, n in counts.items()}


def count_flops(
    fn_or_module: Callable[..., Any] | torch.nn.Module,
    inputs: Any,
    backward: bool = True,
    input_grad: bool = True,
) -> FlopCount:
    """Count the FLOPs of ``fn_or_module(*inputs)`` and of its backward pass.

    The forward and backward passes are counted in separate ``FlopCounterMode``
    windows, so they can be reported apart. Backward runs
    ``torch.autograd.backward(outputs, ones)`` over every output tensor that requires
    grad (for a scalar loss that is the usual ``loss.backward()``); the ``ones`` seed
    costs no counted FLOPs. Parameter ``.grad`` fields are left populated.

    Args:
        fn_or_module: a module or function.
        inputs: one tensor or a tuple/list of positional arguments.
        backward: also run and count the backward pass.
        input_grad: detach floating-point input tensors and set ``requires_grad`` so
            the backward pass includes the input gradient, as for a layer inside a
            network. With ``False`` inputs are used as given (a first layer).

    Returns:
        A :class:`FlopCount` (FLOPs, 2 per MAC).
    """
    args = _as_tuple(inputs)
    if backward and input_grad:
        args = _grad_ready(args)
    with torch.set_grad_enabled(backward), FlopCounterMode(display=False) as fwd_mode:
        out = fn_or_module(*args)
    by_op = {"forward": _by_op(fwd_mode)}
    bwd_flops = 0
    if backward:
        outs = [t for t in _tensors(out) if t.requires_grad]
        if not outs:
            raise ValueError("backward=True but no output requires grad")
        with FlopCounterMode(display=False) as bwd_mode:
            torch.autograd.backward(outs, [torch.ones_like(t) for t in outs])
        bwd_flops = int(bwd_mode.get_total_flops())
        by_op["backward"] = _by_op(bwd_mode)
    return FlopCount(forward=int(fwd_mode.get_total_flops()), backward=bwd_flops, by_op=by_op)
