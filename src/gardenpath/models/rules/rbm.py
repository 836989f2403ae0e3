"""Restricted Boltzmann machine trained by contrastive divergence, with a linear readout.

Hinton, "Training products of experts by minimizing contrastive divergence",
Neural Computation 2002; Hinton, "A practical guide to training restricted
Boltzmann machines", UTML TR 2010-003 (learning rate, momentum, weight decay).

Bernoulli visible units v (digit intensities in [0, 1] used as probabilities)
and binary hidden units h::

    p(h_j = 1 | v) = sigmoid(c_j + sum_i v_i W_ij)
    p(v_i = 1 | h) = sigmoid(b_i + sum_j W_ij h_j)

CD-k (here k = 1): positive phase on the data v0, h0 ~ p(h | v0); negative
phase v1 = p(v | h0), h1 = p(h | v1); then::

    dW = lr (<v0 h0^T>_data - <v1 h1^T>_recon) / B,   db = lr <v0 - v1>,   dc = lr <h0 - h1>

Every synapse's update is a product of its own two units' states, in two
phases (data and reconstruction): local in space but not in time, and it
assumes the same weight W_ij is used bottom-up and top-down (symmetry).
Features for the readout are p(h | v); the readout is the delta-rule
:class:`~gardenpath.models.rules.base.SoftmaxReadout`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from gardenpath.models.rules.base import (
    Locality,
    Rule,
    SoftmaxReadout,
    Timer,
    TrainReport,
    as_tensor,
)


class RBM:
    """Bernoulli-Bernoulli RBM trained by CD-k, no autograd."""

    def __init__(self, n_visible: int, n_hidden: int = 256, lr: float = 0.05, cd_k: int = 1,
                 momentum: float = 0.9, weight_decay: float = 1e-4, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(n_visible, n_hidden, generator=g) * 0.01
        self.b, self.c = torch.zeros(n_visible), torch.zeros(n_hidden)
        self.lr, self.cd_k, self.momentum, self.weight_decay = lr, cd_k, momentum, weight_decay
        self.generator = g
        self._vel = [torch.zeros_like(self.W), torch.zeros_like(self.b), torch.zeros_like(self.c)]

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """p(h = 1 | v), (B, n_hidden)."""
        return torch.sigmoid(v @ self.W + self.c)

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """p(v = 1 | h), (B, n_visible)."""
        return torch.sigmoid(h @ self.W.t() + self.b)

    def cd_step(self, v0: torch.Tensor) -> float:
        """One CD-k update on a batch; returns its mean squared reconstruction error."""
        ph0 = self.hidden_probs(v0)
        h = torch.bernoulli(ph0, generator=self.generator)
        for _ in range(self.cd_k):
            v1 = self.visible_probs(h)
            ph1 = self.hidden_probs(v1)
            h = torch.bernoulli(ph1, generator=self.generator)
        n = len(v0)
        grads = [(v0.t() @ ph0 - v1.t() @ ph1) / n - self.weight_decay * self.W,  # (V, H)
                 (v0 - v1).mean(0), (ph0 - ph1).mean(0)]
        for p, vel, grad in zip((self.W, self.b, self.c), self._vel, grads, strict=True):
            vel.mul_(self.momentum).add_(grad, alpha=self.lr)
            p += vel
        return float(((v0 - v1) ** 2).mean())

    def reconstruction_error(self, v: torch.Tensor) -> float:
        """Mean squared error of the mean-field one-step reconstruction p(v | p(h | v))."""
        return float(((v - self.visible_probs(self.hidden_probs(v))) ** 2).mean())


class RBMClassifier(Rule):
    """RBM features (CD-1, unsupervised) + delta-rule softmax readout."""

    name: ClassVar[str] = "rbm"
    signals: ClassVar[str] = (
        "hidden-visible synapse: the product of its own two units' states in the data phase "
        "minus the same product in a reconstruction phase (two phases, symmetric weights); "
        "readout synapse: its unit's error (prediction - label)")

    def __init__(self, n_hidden: int = 256, num_epochs: int = 30, lr: float = 0.05,
                 batch_size: int = 20, cd_k: int = 1, readout_epochs: int = 50,
                 num_classes: int = 10) -> None:
        self.n_hidden, self.num_epochs, self.lr = n_hidden, num_epochs, lr
        self.batch_size, self.cd_k, self.readout_epochs = batch_size, cd_k, readout_epochs
        self.num_classes = num_classes

    def fit(self, X: np.ndarray, y: np.ndarray, *, seed: int = 0) -> TrainReport:
        x = as_tensor(X)
        g = torch.Generator().manual_seed(seed)
        self.rbm = RBM(x.shape[1], self.n_hidden, self.lr, self.cd_k, seed=seed)
        self.readout = SoftmaxReadout(self.num_classes, self.readout_epochs)
        errors, updates = [self.rbm.reconstruction_error(x)], 0
        with Timer() as timer:
            for _ in range(self.num_epochs):
                for idx in torch.randperm(len(x), generator=g).split(self.batch_size):
                    self.rbm.cd_step(x[idx])
                    updates += 1
                errors.append(self.rbm.reconstruction_error(x))
            updates += self.readout.fit(self.rbm.hidden_probs(x), y, seed=seed)
        return TrainReport(self.name, self.num_epochs, updates,
                           (self.num_epochs + self.readout_epochs) * len(x), timer.elapsed_s,
                           len(x), extra={"reconstruction_error": errors,
                                          "readout_passes": self.readout_epochs})

    @torch.no_grad()
    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.readout.predict(self.rbm.hidden_probs(as_tensor(X)))

    def locality(self, input_dim: int, num_classes: int = 10) -> Locality:
        return Locality(self.signals, phases=1 + self.cd_k, symmetric_weights=True)
