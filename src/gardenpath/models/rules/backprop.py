"""Backpropagation (Rumelhart, Hinton & Williams 1986): ordinary autograd training of an MLP.

Network: x -> [Linear -> ReLU] * len(hidden) -> Linear -> softmax, cross-entropy loss.
For a hidden layer l with pre-activation a_l = W_l h_{l-1} and h_l = relu(a_l)::

    delta_L = p - t                                   (output error)
    delta_l = relu'(a_l) * (W_{l+1}^T delta_{l+1})    (error sent back through W^T)
    dW_l    = delta_l h_{l-1}^T

Signals a hidden synapse's update needs beyond its two neurons: the next
layer's error vector delta_{l+1} (a backward pass, a second phase) and the
*forward* weights W_{l+1} of its neuron's outgoing synapses (weight transport).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from gardenpath.models.rules.base import Locality, Rule, Timer, TrainReport, as_tensor


class MLPRule(Rule):
    """An MLP trained by a gradient rule; subclasses choose the linear layer."""

    name: ClassVar[str] = "mlp"

    def __init__(self, hidden: Sequence[int] = (256,), num_epochs: int = 30, lr: float = 1e-3,
                 batch_size: int = 32, num_classes: int = 10) -> None:
        self.hidden, self.num_epochs, self.lr = tuple(hidden), num_epochs, lr
        self.batch_size, self.num_classes = batch_size, num_classes
        self.net: nn.Sequential | None = None

    def make_linear(self, n_in: int, n_out: int) -> nn.Module:
        """The layer type: ``nn.Linear`` for backprop."""
        return nn.Linear(n_in, n_out)

    def build(self, input_dim: int) -> nn.Sequential:
        """The MLP for ``input_dim`` inputs."""
        layers: list[nn.Module] = []
        sizes = [input_dim, *self.hidden]
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [self.make_linear(a, b), nn.ReLU()]
        layers.append(self.make_linear(sizes[-1], self.num_classes))
        return nn.Sequential(*layers)

    def start(self, X: np.ndarray, y: np.ndarray, seed: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.optim.Optimizer, torch.Generator]:
        """Seed, build a fresh net for ``X`` and its Adam optimiser: ``(x, t, opt, g)``."""
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        x, t = as_tensor(X), torch.as_tensor(np.asarray(y), dtype=torch.int64)
        self.net = self.build(x.shape[1])
        return x, t, torch.optim.Adam(self.net.parameters(), lr=self.lr), g

    def epoch(self, x: torch.Tensor, t: torch.Tensor, opt: torch.optim.Optimizer,
              g: torch.Generator) -> int:
        """One shuffled pass of minibatch steps on cross-entropy; returns the steps taken."""
        steps = 0
        for idx in torch.randperm(len(x), generator=g).split(self.batch_size):
            opt.zero_grad()
            nn.functional.cross_entropy(self.net(x[idx]), t[idx]).backward()
            opt.step()
            steps += 1
        return steps

    def fit(self, X: np.ndarray, y: np.ndarray, *, seed: int = 0) -> TrainReport:
        """Adam on cross-entropy, minibatches of ``batch_size``, ``num_epochs`` passes."""
        x, t, opt, g = self.start(X, y, seed)
        with Timer() as timer:
            updates = sum(self.epoch(x, t, opt, g) for _ in range(self.num_epochs))
        return TrainReport(self.name, self.num_epochs, updates, self.num_epochs * len(x),
                           timer.elapsed_s, len(x))

    @torch.no_grad()
    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.net(as_tensor(X)).argmax(1).numpy()

    def _error_floats(self, num_classes: int) -> int:
        """Error values delivered to hidden units per example: sum_l n_l * n_{l+1}."""
        sizes = [*self.hidden, num_classes]
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


class BackpropMLP(MLPRule):
    """MLP trained by backpropagation (autograd)."""

    name: ClassVar[str] = "backprop"
    signals: ClassVar[str] = (
        "hidden synapse: the next layer's error vector (backward pass) weighted by the "
        "neuron's own outgoing forward weights (weight transport); output synapse: its "
        "unit's error (prediction - label)")

    def locality(self, input_dim: int, num_classes: int = 10) -> Locality:
        e = self._error_floats(num_classes)
        return Locality(self.signals, feedback_floats=e, transported_floats=e, phases=2)
