"""Competing hidden units (Krotov & Hopfield, "Unsupervised learning by competing hidden
units", PNAS 2019), with a delta-rule linear readout.

Hidden weights W (h x d) start N(0, 1). For an input x the current into unit mu
is the p-norm-weighted overlap::

    I_mu = < sign(W_mu) |W_mu|^(p-1), x >

Units compete by ranking their currents: the most driven unit gets g = 1
(Hebbian), the k-th most driven g = -Delta (anti-Hebbian), all others g = 0.
For a minibatch X (d x B), with G = [g_mu,b]::

    dW = G X^T - diag(sum_b g_mu,b I_mu,b) W
    W <- W + eps dW / max|dW|,     eps = eps0 (1 - epoch / num_epochs)

The second term makes W_mu converge to unit p-norm, sum_i |W_mu,i|^p = 1. No
autograd and no labels: the update of synapse (mu, i) uses x_i, the unit's own
current I_mu and its competition outcome g_mu. The competition is the one
non-local signal: each unit must learn its rank among all h units (one
inhibition value per unit per example, counted as h lateral floats).

Defaults follow their MNIST notebook (p = 2, k = 2, Delta = 0.4, eps0 = 0.02)
except: 400 hidden units, 100 epochs and minibatch 10 (not 100), because the
digits' training set is ~50x smaller than MNIST's and units need enough
updates to converge. The readout sees relu(I)^power (power 3; KH used a
power of the rectified current too), standardised. Chosen on a validation
split of the training data (0.965 with power 3 vs 0.959 with power 1).
Units that never win keep their random N(0, 1) weights (on the digits about
a third of 400), and units that are only ever k-th grow (the anti-Hebbian
term pushes their norm away from 1); units that win converge to unit p-norm.
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


class KrotovHopfield:
    """The unsupervised competing-hidden-units layer."""

    def __init__(self, n_visible: int, n_hidden: int = 400, p: float = 2.0, k: int = 2,
                 delta: float = 0.4, eps0: float = 0.02, precision: float = 1e-30,
                 seed: int = 0, dtype: torch.dtype = torch.float32) -> None:
        if not 1 <= k <= n_hidden:
            raise ValueError(f"ranking k={k} must be in [1, n_hidden={n_hidden}]")
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(n_hidden, n_visible, generator=g, dtype=dtype)
        self.p, self.k, self.delta, self.eps0, self.precision = p, k, delta, eps0, precision
        self.wins = torch.zeros(n_hidden, dtype=torch.int64)  # times ranked first
        self.seconds = torch.zeros(n_hidden, dtype=torch.int64)  # times ranked k-th

    def currents(self, x: torch.Tensor) -> torch.Tensor:
        """I (h, B) for inputs x (B, d)."""
        w = self.W.sign() * self.W.abs() ** (self.p - 1)  # (h, d)
        return w @ x.t().to(self.W.dtype)  # (h, B)

    def step(self, x: torch.Tensor, eps: float) -> None:
        """One unsupervised update on a minibatch x (B, d)."""
        cur = self.currents(x)  # (h, B)
        top = cur.topk(self.k, dim=0).indices  # (k, B): top[0] most driven, top[k-1] k-th
        cols = torch.arange(x.shape[0])
        g = torch.zeros_like(cur)  # (h, B)
        g[top[self.k - 1], cols] = -self.delta
        g[top[0], cols] = 1.0  # k = 1: Hebbian only
        self.wins += torch.bincount(top[0], minlength=len(self.W))
        if self.k > 1:
            self.seconds += torch.bincount(top[self.k - 1], minlength=len(self.W))
        xx = (g * cur).sum(1)  # (h,)
        ds = g @ x.to(self.W.dtype) - xx[:, None] * self.W  # (h, d)
        nc = max(float(ds.abs().max()), self.precision)
        self.W += eps * ds / nc

    def p_norms(self) -> torch.Tensor:
        """sum_i |W_mu,i|^p for every unit (converges to 1)."""
        return (self.W.abs() ** self.p).sum(1)


class KrotovHopfieldClassifier(Rule):
    """Krotov-Hopfield hidden layer (unsupervised, local) + delta-rule softmax readout."""

    name: ClassVar[str] = "krotov_hopfield"
    signals: ClassVar[str] = (
        "hidden synapse: its input, its unit's own current, and the unit's rank among all "
        "hidden units (lateral competition: Hebbian if first, anti-Hebbian if k-th); no error, "
        "no label; readout synapse: its unit's error (prediction - label)")

    def __init__(self, n_hidden: int = 400, num_epochs: int = 100, p: float = 2.0, k: int = 2,
                 delta: float = 0.4, eps0: float = 0.02, batch_size: int = 10,
                 power: float = 3.0, readout_epochs: int = 50, num_classes: int = 10) -> None:
        self.n_hidden, self.num_epochs, self.p, self.k = n_hidden, num_epochs, p, k
        self.delta, self.eps0, self.batch_size, self.power = delta, eps0, batch_size, power
        self.readout_epochs, self.num_classes = readout_epochs, num_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """relu(I)^power, (B, h) float32."""
        return self.layer.currents(x).t().clamp_min(0).pow(self.power).float()

    def fit(self, X: np.ndarray, y: np.ndarray, *, seed: int = 0) -> TrainReport:
        x = as_tensor(X)
        g = torch.Generator().manual_seed(seed)
        self.layer = KrotovHopfield(x.shape[1], self.n_hidden, self.p, self.k, self.delta,
                                    self.eps0, seed=seed)
        self.readout = SoftmaxReadout(self.num_classes, self.readout_epochs)
        updates = 0
        with Timer() as timer:
            for epoch in range(self.num_epochs):
                eps = self.eps0 * (1 - epoch / self.num_epochs)
                for idx in torch.randperm(len(x), generator=g).split(self.batch_size):
                    self.layer.step(x[idx], eps)
                    updates += 1
            updates += self.readout.fit(self.features(x), y, seed=seed)
        norms = self.layer.p_norms()
        return TrainReport(self.name, self.num_epochs, updates,
                           (self.num_epochs + self.readout_epochs) * len(x), timer.elapsed_s,
                           len(x), extra={"readout_passes": self.readout_epochs,
                                          "p_norm_median": float(norms.median())})

    @torch.no_grad()
    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.readout.predict(self.features(as_tensor(X)))

    def locality(self, input_dim: int, num_classes: int = 10) -> Locality:
        return Locality(self.signals, lateral_floats=self.n_hidden, phases=1)
