"""Feedback alignment (Lillicrap, Cownden, Tweed & Akerman, Nature Communications 2016).

Backprop sends the error down through the transpose of the forward weights,
``delta_l = relu'(a_l) * (W_{l+1}^T delta_{l+1})``. Feedback alignment sends it
through a fixed random matrix B_{l+1} of the same shape instead::

    delta_l = relu'(a_l) * (B_{l+1}^T delta_{l+1}),   dW_l = delta_l h_{l-1}^T

The forward weights come to align with B, so the random feedback still teaches.
Implemented as an autograd Function whose backward returns ``grad_out @ B`` for
the input gradient (and the usual ``grad_out^T x`` for the weight gradient), so
the same optimiser loop as backprop trains it.

Signals a hidden synapse's update needs beyond its two neurons: the next
layer's error vector (a backward pass), through fixed feedback synapses that
need no knowledge of the forward weights (no weight transport).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from gardenpath.models.rules.backprop import MLPRule
from gardenpath.models.rules.base import Locality


class FALinearFunction(torch.autograd.Function):
    """y = x W^T + b; backward sends grad_y through the fixed ``feedback`` (out, in), not W."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                feedback: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, feedback)
        ctx.has_bias = bias is not None
        y = x @ weight.t()  # (B, out)
        return y + bias if bias is not None else y

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, feedback = ctx.saved_tensors
        grad_x = grad_out @ feedback  # (B, in): the random matrix, not the weights
        grad_w = grad_out.t() @ x  # (out, in): local: error x presynaptic activity
        grad_b = grad_out.sum(0) if ctx.has_bias else None
        return grad_x, grad_w, grad_b, None


class FeedbackAlignmentLinear(nn.Module):
    """``nn.Linear`` whose backward pass uses a fixed random feedback matrix (buffer)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 feedback_scale: float | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        lin = nn.Linear(in_features, out_features, bias=bias)
        self.weight, self.bias = lin.weight, lin.bias
        scale = feedback_scale if feedback_scale is not None else 1.0 / math.sqrt(in_features)
        self.register_buffer("feedback", (torch.rand(out_features, in_features) * 2 - 1) * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return FALinearFunction.apply(x, self.weight, self.bias, self.feedback)


class FeedbackAlignmentMLP(MLPRule):
    """MLP trained with random fixed feedback (every layer's backward uses its B)."""

    name: ClassVar[str] = "feedback_alignment"
    signals: ClassVar[str] = (
        "hidden synapse: the next layer's error vector arriving through fixed random "
        "feedback synapses (backward pass; no weight transport); output synapse: its "
        "unit's error (prediction - label)")

    def make_linear(self, n_in: int, n_out: int) -> nn.Module:
        return FeedbackAlignmentLinear(n_in, n_out)

    def locality(self, input_dim: int, num_classes: int = 10) -> Locality:
        return Locality(self.signals, feedback_floats=self._error_floats(num_classes), phases=2)
