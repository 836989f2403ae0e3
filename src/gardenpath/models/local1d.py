"""Locally connected 1-D layer: a ``Conv1d`` whose filters are not shared between positions.

The 1-D twin of :class:`gardenpath.models.local.LocallyConnected2d`, with the same weight
layout, so the sharing code (:mod:`gardenpath.models.dynamic_sharing`) treats both alike::

    y[b, o, l] = sum_{c, j} weight[l, c*k + j, o] * x[b, c, s*l + j - p] + bias[o, l]

It runs as ``unfold`` and one batched matrix product over the L positions (sequences such as
MNIST-1D's 40 samples are short, so no fused kernel is needed). Used by the MNIST-1D part of
chapter 5 beside the published CNN of Greydanus & Kobak: same shapes, weights untied.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def conv1d_out_len(length: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a 1-D convolution: ``floor((n + 2p - k) / s) + 1``."""
    out = (length + 2 * padding - kernel_size) // stride + 1
    if out < 1:
        raise ValueError(f"kernel {kernel_size} does not fit length {length} "
                         f"with padding {padding}")
    return out


class LocallyConnected1d(nn.Module):
    """1-D layer with a separate filter (and bias) at every output position.

    Args:
        in_channels, out_channels, kernel_size, stride, padding: as in ``nn.Conv1d``
            (zero padding only).
        in_len: input length; the number of filters depends on it.

    Attributes:
        weight: (L, C*k, out_channels), L the output length; row ``c*k + j``.
        bias: (out_channels, L) or None.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, in_len: int,
                 stride: int = 1, padding: int = 0, bias: bool = True,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.in_len = int(kernel_size), int(in_len)
        self.stride, self.padding = int(stride), int(padding)
        self.out_len = conv1d_out_len(self.in_len, self.kernel_size, self.stride, self.padding)
        self.num_positions = self.out_len
        self.fan_in = self.in_channels * self.kernel_size
        kw = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(self.out_len, self.fan_in, self.out_channels,
                                               **kw))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_channels, self.out_len, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Per position, as ``nn.Conv1d`` initialises: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        bound = 1.0 / math.sqrt(self.fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply each position's filter to its window of ``x`` (B, C, in_len)."""
        if x.dim() != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.in_len:
            raise ValueError(f"expected (B, {self.in_channels}, {self.in_len}), "
                             f"got {tuple(x.shape)}")
        if self.padding:
            x = nn.functional.pad(x, (self.padding, self.padding))
        win = x.unfold(2, self.kernel_size, self.stride)  # (B, C, L, k)
        win = win.permute(2, 0, 1, 3).reshape(self.out_len, x.shape[0], self.fan_in)
        # win: (L, B, C*k), row c*k + j as in the weight
        out = torch.bmm(win, self.weight)  # (L, B, out)
        out = out.permute(1, 2, 0)  # (B, out, L)
        return out + self.bias if self.bias is not None else out

    @classmethod
    def from_conv(cls, conv: nn.Conv1d, in_len: int) -> LocallyConnected1d:
        """A layer holding ``conv``'s filter at every position: it computes the same function."""
        if conv.groups != 1 or conv.dilation[0] != 1 or isinstance(conv.padding, str) \
                or conv.padding_mode != "zeros":
            raise ValueError("from_conv supports groups=1, dilation=1, explicit zero padding")
        w = conv.weight  # (out, C, k)
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size[0], in_len,
                    conv.stride[0], conv.padding[0], conv.bias is not None,
                    device=w.device, dtype=w.dtype)
        with torch.no_grad():
            filt = w.reshape(conv.out_channels, -1).t()  # (C*k, out)
            layer.weight.copy_(filt.unsqueeze(0).expand_as(layer.weight))  # (L, C*k, out)
            if conv.bias is not None:
                layer.bias.copy_(conv.bias.view(-1, 1).expand_as(layer.bias))  # (out, L)
        return layer

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"in_len={self.in_len}, out_len={self.out_len}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}")
