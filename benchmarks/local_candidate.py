"""A proposed CPU layout for ``LocallyConnected2d``'s forward and backward (evidence only).

This is not the book's layer (that is :class:`gardenpath.models.local.LocallyConnected2d`,
which this module does not change). It exists so the benchmark can show, next to the
layer as it is, what the same arithmetic costs when every operand of the three batched
matrix products is laid out the way a CPU BLAS wants it. Profiling the current layer
(``torch.profiler``, see ``benchmarks/results/local.md``) shows where its time goes:

* ``cols.permute(2, 0, 1)`` hands ``bmm`` a (L, B, K) operand whose unit stride is in the
  *batch* dimension; neither matrix dimension is contiguous, so ATen's CPU ``bmm`` copies
  every one of the L matrices before multiplying (L ``copy_`` calls forward, L more for
  the weight gradient, L more for the output gradient);
* the input gradient goes through ``F.fold`` (``col2im``) of a permuted tensor, which
  first makes a contiguous copy of the whole (B, K, L) gradient and then runs a scalar
  scatter loop.

Here instead (same weight layout ``(L, C*kh*kw, O)``, same results to float tolerance):

* the input is transposed once to (H, W, B, C) and the patches are gathered with
  ``kh*kw`` slice copies (or one strided copy when B*C is small) straight into a
  contiguous (L, B, C*kh*kw) tensor, so every
  ``bmm`` operand is contiguous or a plain transpose (no per-matrix copies);
* the backward pass is written out (a ``torch.autograd.Function``): ``dW = cols^T @ g``,
  ``dcols = g @ W^T`` with ``g`` the output gradient made contiguous as (L, B, O) once,
  and ``dx`` is accumulated with ``kh*kw`` strided adds into an (H, W, B, C) buffer
  instead of ``col2im``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from gardenpath.models.local import LocallyConnected2d

#: At or above this B*C the patches are gathered with kh*kw slice copies (contiguous
#: runs of B*C floats); below it with one strided copy (measured on a 2-core EPYC:
#: 57 vs 16 us at B*C = 16, 0.73 vs 2.2 ms at B*C = 512).
GATHER_LOOP_MIN_BC = 128


class _LocalFn(torch.autograd.Function):
    """Forward and backward of a locally connected layer with BLAS-friendly layouts."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                out_size: tuple[int, int]) -> torch.Tensor:
        (kh, kw), (sh, sw), (ph, pw), (ho, wo) = kernel, stride, padding, out_size
        b, c = x.shape[:2]
        xt = F.pad(x, (pw, pw, ph, ph)).permute(2, 3, 0, 1).contiguous()  # (Hp, Wp, B, C)
        if b * c >= GATHER_LOOP_MIN_BC:
            # kh*kw copies, each of contiguous runs of B*C elements
            cols = x.new_empty(ho, wo, b, c, kh, kw)  # (Ho, Wo, B, C, kh, kw)
            for i in range(kh):
                for j in range(kw):
                    cols[..., i, j] = xt[i:i + sh * (ho - 1) + 1:sh,
                                         j:j + sw * (wo - 1) + 1:sw]
        else:
            # small B*C: one strided copy costs less than kh*kw dispatches
            s_h, s_w, s_b, s_c = xt.stride()
            cols = xt.as_strided((ho, wo, b, c, kh, kw),
                                 (sh * s_h, sw * s_w, s_b, s_c, s_h, s_w))
        cols = cols.reshape(ho * wo, b, c * kh * kw)  # (L, B, K), K ordered (c, i, j)
        out = torch.bmm(cols, weight)  # (L, B, O)
        y = out.view(ho, wo, b, -1).permute(2, 3, 0, 1)  # (B, O, Ho, Wo), a view
        y = y + bias if bias is not None else y.contiguous()
        ctx.save_for_backward(cols, weight)
        ctx.geometry = (kernel, stride, padding, out_size, tuple(xt.shape), bias is not None)
        return y

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[Any, ...]:
        cols, weight = ctx.saved_tensors
        (kh, kw), (sh, sw), (ph, pw), (ho, wo), (hp, wp, b, c), has_bias = ctx.geometry
        g = dy.permute(2, 3, 0, 1).contiguous().view(ho * wo, b, -1)  # (L, B, O), one copy
        dx = dw = db = None
        if ctx.needs_input_grad[1]:
            dw = torch.bmm(cols.transpose(1, 2), g)  # (L, K, O)
        if ctx.needs_input_grad[0]:
            dcols = torch.bmm(g, weight.transpose(1, 2)).view(ho, wo, b, c, kh, kw)
            dxt = dy.new_zeros(hp, wp, b, c)  # (Hp, Wp, B, C)
            for i in range(kh):
                for j in range(kw):
                    dxt[i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += \
                        dcols[..., i, j]
            dx = dxt[ph:hp - ph, pw:wp - pw].permute(2, 3, 0, 1).contiguous()  # (B, C, H, W)
        if has_bias and ctx.needs_input_grad[2]:
            db = dy.sum(0)  # (O, Ho, Wo)
        return dx, dw, db, None, None, None, None


def candidate_forward(layer: LocallyConnected2d, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` computed with the proposed layouts, using ``layer``'s own parameters."""
    return _LocalFn.apply(x, layer.weight, layer.bias, layer.kernel_size, layer.stride,
                          layer.padding, layer.out_size)
