"""Locally connected 2-D layer: a convolution whose filters are not shared.

A convolution applies the same filter ``w`` (out, C, kh, kw) at every output
position ``l``; a locally connected layer (LeCun 1989's "locally connected"
layers; Gregor, Szlam & LeCun 2011; Taigman et al., DeepFace, CVPR 2014;
Bartunov et al., NeurIPS 2018) gives every position its own filter ``w_l``::

    y[b, o, l] = sum_{c, i, j} w_l[c*kh*kw + i*kw + j, o] * x[b, c, s*l_h + i - p, s*l_w + j - p]
                 + bias[o, l]

With ``x_unf = unfold(x)`` of shape (B, C*kh*kw, L) this is, for every position
``l``, the matrix product ``y[:, :, l] = x_unf[:, :, l] @ w_l``: one small matrix product
per position, with no weight shared between them. Two implementations compute it:

* on the CPU in float32, a fused C kernel (:mod:`gardenpath.models.lc_native`, compiled on
  first use): each position's patches are read in place from a batch-innermost copy of the
  input and multiplied with ``w_l`` by a register-tiled micro-kernel, and the backward pass
  is written out the same way, so the (B, C*kh*kw, L) unfolded input never exists; autograd
  drives it through :class:`lc_native.LocalFn`;
* everywhere else (CUDA, float64, no C compiler): :meth:`LocallyConnected2d.forward_bmm`,
  ``unfold`` and one ``torch.bmm`` over the L positions, with autograd's backward.

Both give the weight gradient ``dL/dw_l = x_unf[:, :, l]^T @ dL/dy[:, :, l]`` of shape
(C*kh*kw, out) per position, summed over the batch only. A convolution's weight gradient
is the sum of these over the L positions as well: that sum, and the all-reduce of a
shared weight's gradient between workers, is what chapter 2 measures. Keras's
LocallyConnected2D made other trade-offs (a Python loop over positions, or a dense mostly
zero matrix); ``benchmarks/local.py`` measures them all.

Dynamic weight sharing (Pogodin, Mehta, Lillicrap & Latham, "Towards
biologically plausible convolutional networks", NeurIPS 2021): every so often
each position's filter is replaced by the mean over positions,
``w_l <- (1/L) sum_l' w_l'`` (``share_weights_``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gardenpath.models import lc_native

IntPair = int | tuple[int, int]


def _pair(v: IntPair) -> tuple[int, int]:
    """Return ``(v, v)`` for an int, or the pair itself (checked)."""
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


def conv_out_size(in_size: IntPair, kernel_size: IntPair, stride: IntPair = 1,
                  padding: IntPair = 0) -> tuple[int, int]:
    """Spatial output size of a convolution: ``floor((n + 2p - k) / s) + 1`` per side."""
    (h, w), (kh, kw) = _pair(in_size), _pair(kernel_size)
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    out = ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"kernel {kh}x{kw} does not fit input {h}x{w} with padding {ph},{pw}")
    return out


class LocallyConnected2d(nn.Module):
    """2-D layer with a separate filter (and bias) at every output position.

    Args:
        in_channels: input channels C.
        out_channels: output channels (filters per position).
        kernel_size: filter side, an int or (kh, kw).
        in_size: input spatial size, an int or (H, W); needed because the number
            of filters depends on it.
        stride, padding: as in ``nn.Conv2d`` (zero padding; no dilation, no groups).
        bias: one bias per output channel and position, shape (out, H_out, W_out).
        device, dtype: where to allocate; ``device="meta"`` allocates nothing, so a
            1.8-billion-parameter net can be built and counted.

    Attributes:
        weight: (L, C*kh*kw, out_channels), L = H_out * W_out, positions in
            row-major order; row index ``c*kh*kw + i*kw + j`` as in ``F.unfold``.
        bias: (out_channels, H_out, W_out) or None.
        out_size: (H_out, W_out).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 in_size: IntPair, stride: IntPair = 1, padding: IntPair = 0,
                 bias: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = _pair(kernel_size)
        self.in_size = _pair(in_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.out_size = conv_out_size(self.in_size, self.kernel_size, self.stride, self.padding)
        self._in_shape = (self.in_channels, *self.in_size)  # what forward checks x.shape[1:] by
        self._geom: tuple[int, ...] | None = None  # the fused kernel's geometry, by batch size
        self.num_positions = self.out_size[0] * self.out_size[1]
        self.fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        kw = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(self.num_positions, self.fan_in,
                                               self.out_channels, **kw))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_channels, *self.out_size, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        lc_native.grad_pool.watch(self.weight)  # so the fused path can reuse its gradient

    def reset_parameters(self) -> None:
        """Initialise as ``nn.Conv2d`` does, per position: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

        (Conv2d's kaiming_uniform_ with a = sqrt(5) reduces to this bound.)
        """
        bound = 1.0 / math.sqrt(self.fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply each position's filter to its patch.

        float32 on CPU goes through the fused kernel of :mod:`gardenpath.models.lc_native`
        when it compiled (``lc_native.status()`` says); everything else (CUDA, float64, no
        C compiler) through :meth:`forward_bmm`. Both compute the same function.
        """
        # the least Python per call: at small shapes a step's Python is a visible share of it
        weight = self.weight  # read once: a parameter read goes through Module.__getattr__
        if x.shape[1:] != self._in_shape:
            self._check_input(x)  # raises, saying why
        if lc_native.applies(x, weight):
            geom = self._geom
            if geom is None or geom[0] != x.shape[0]:
                geom = self._geom = lc_native.geometry(
                    x.shape, self.out_channels, self.kernel_size, self.stride, self.padding,
                    self.out_size)
            return lc_native.locally_connected(x, weight, self.bias, geom)
        return self.forward_bmm(x)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[-2:]) != self.in_size \
                or x.shape[-3] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, {self.in_size[0]}, "
                             f"{self.in_size[1]}), got {tuple(x.shape)}")

    def forward_bmm(self, x: torch.Tensor) -> torch.Tensor:
        """Unfold, then one ``torch.bmm`` over positions; autograd does the backward."""
        self._check_input(x)
        b = x.shape[0]
        cols = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)
        # cols: (B, C*kh*kw, L)
        # contiguous: CPU bmm on the permuted view is far slower (benchmarks/results/README.md)
        cols = cols.permute(2, 0, 1).contiguous()  # (L, B, C*kh*kw)
        out = torch.bmm(cols, self.weight)  # (L, B, out)
        out = out.permute(1, 2, 0).reshape(b, self.out_channels, *self.out_size)
        # out: (B, out, H_out, W_out)
        if self.bias is not None:
            out = out + self.bias
        return out

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, in_size: IntPair) -> LocallyConnected2d:
        """Build a locally connected layer holding ``conv``'s filter at every position.

        Its output equals the conv's, and its weight gradient summed over positions
        equals the conv's weight gradient (after reshaping). Only zero padding,
        dilation 1 and groups 1 are supported.
        """
        if conv.groups != 1 or _pair(conv.dilation) != (1, 1):
            raise ValueError("from_conv supports groups=1 and dilation=1 only")
        if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
            raise ValueError("from_conv supports explicit zero padding only")
        w = conv.weight
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, in_size,
                    stride=conv.stride, padding=conv.padding, bias=conv.bias is not None,
                    device=w.device, dtype=w.dtype)
        with torch.no_grad():
            filt = w.reshape(conv.out_channels, -1).t()  # (C*kh*kw, out)
            layer.weight.copy_(filt.unsqueeze(0).expand_as(layer.weight))  # (L, C*kh*kw, out)
            if conv.bias is not None:
                layer.bias.copy_(conv.bias.view(-1, 1, 1).expand_as(layer.bias))
                # bias: (out, H_out, W_out)
        return layer

    def conv_weight(self) -> torch.Tensor:
        """Mean filter over positions in ``nn.Conv2d`` layout (out, C, kh, kw)."""
        mean = self.weight.mean(0)  # (C*kh*kw, out)
        return mean.t().reshape(self.out_channels, self.in_channels, *self.kernel_size)

    @torch.no_grad()
    def share_weights_(self, include_bias: bool = True) -> LocallyConnected2d:
        """Set every position's filter (and bias) to its mean over positions, in place.

        Dynamic weight sharing (Pogodin et al. 2021): after this call the layer
        computes exactly a convolution with the mean filter.
        """
        self.weight.copy_(self.weight.mean(0, keepdim=True).expand_as(self.weight))
        if include_bias and self.bias is not None:
            mean_b = self.bias.mean(dim=(1, 2), keepdim=True)  # (out, 1, 1)
            self.bias.copy_(mean_b.expand_as(self.bias))
        return self

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"in_size={self.in_size}, out_size={self.out_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}")
