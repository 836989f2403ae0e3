"""A single-presentation classifier on a Sparsey-style sparse distributed code.

Rinkus 2010, 2014 (see :mod:`gardenpath.models.sdr`). Each training image is
encoded as binary inputs, stored once in an
:class:`~gardenpath.models.sdr.SDRMacrocolumn` (its code chosen by the code
selection algorithm, its binary weights set in that one presentation), and its
label is associated with the code's Q winning units by a Hebbian
unit-to-label weight set or incremented in the same presentation. To classify,
the macrocolumn retrieves the best-matching code (the largest-V unit per
module) and the Q winners vote with their label weights::

    score(c) = sum_{u in code} A[u, c],   label = argmax_c score(c)

Storing an example and classifying one each cost a fixed amount of work
(the macrocolumn's fixed weight matrix plus a Q*K x classes table), whatever
the number of examples stored; there is no search over stored items.

Input encoding. Sparsey works on sparse inputs (skeletonised edges, and
features from lower levels of its hierarchy). Raw 8x8 digits are dense and
overlap heavily (every digit shares most of its pixels with many others), and
the code selection algorithm then collapses: a few units win most items, their
binary weights saturate to cover every input, V = 1 everywhere and retrieval
returns the same code for every digit (near-chance accuracy; measured). The
default ``"patches"`` encoding stands in for a first level: each 3x3 binarised
patch is one-hot coded over its 511 non-blank patterns (18,396 inputs, about
33 active, 0.2%). ``"levels"`` (one-hot grey level per pixel) and
``"threshold"`` (pixels above 0.5) remain for comparison.

Defaults (Q = 48, K = 256, patches, count label weights, the CSA's demo
values lambda 28, phi 5, chi 2.5, G_min 0.2) were chosen on a validation split
carved from the training data (75/25, seed 1), never on the test split:
validation accuracy 0.79 (Q=16), 0.85 (Q=24), 0.87 (Q=32), 0.90 (Q=48); the
levels and threshold encodings scored 0.10-0.27.

Signals a weight update uses: the binary afferent weight (i, u) is set when
input i and unit u are both active — its own two neurons — but which unit wins
depends on a per-module normalisation (lateral, K units) and on the
macrocolumn-wide familiarity G (one broadcast value per unit): 2*Q*K lateral
floats per example. The label weight is set from the unit and the label unit.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch

from gardenpath.models.rules.base import Locality, Rule, Timer, TrainReport, as_tensor
from gardenpath.models.sdr import SDRMacrocolumn

Encoding = Literal["patches", "levels", "threshold"]


def encode_patches(x: torch.Tensor, patch: int = 3, threshold: float = 0.5,
                   stride: int = 1) -> torch.Tensor:
    """Local binary conjunctions: which of the 2**(p*p) patterns each p x p patch shows.

    (n, side*side) in [0, 1] -> (n, L * (2**(p*p) - 1)) of 0/1, L = ((side - p) // s + 1)**2
    patch positions for stride s; pixels above ``threshold`` are on; the all-off pattern
    is dropped, so an input is active only where there is ink. For 8x8 digits, p = 3,
    s = 1: 36 positions x 511 patterns = 18,396 inputs, about 33 active (0.2%); for 28x28
    MNIST, p = 2, s = 2: 196 positions x 15 patterns = 2,940 inputs.
    """
    side = int(round(x.shape[1] ** 0.5))
    if side * side != x.shape[1]:
        raise ValueError(f"patch encoding needs square images, got {x.shape[1]} pixels")
    img = (x > threshold).float().view(-1, 1, side, side)  # (n, 1, side, side)
    cols = torch.nn.functional.unfold(img, patch, stride=stride)  # (n, p*p, L)
    weights = (2 ** torch.arange(patch * patch)).view(1, -1, 1).float()  # (1, p*p, 1)
    pattern = (cols * weights).sum(1).long()  # (n, L)
    onehot = torch.nn.functional.one_hot(pattern, 2 ** (patch * patch))  # (n, L, 2**(p*p))
    return onehot[..., 1:].flatten(1).float()  # (n, L * (2**(p*p) - 1))


def encode_levels(x: torch.Tensor, levels: int) -> torch.Tensor:
    """One-hot intensity bins per pixel: (n, d) in [0, 1] -> (n, d*levels) of 0/1."""
    bins = (x * levels).long().clamp_(0, levels - 1)  # (n, d)
    return torch.nn.functional.one_hot(bins, levels).flatten(1).float()  # (n, d*levels)


class SparseyClassifier(Rule):
    """SDR macrocolumn + Hebbian label association, one presentation per training example."""

    name: ClassVar[str] = "sparsey"
    signals: ClassVar[str] = (
        "afferent synapse: set to 1 when its input and its unit are active together "
        "(its own two neurons), the unit chosen by competition within its module "
        "(per-module normaliser) biased by the macrocolumn's familiarity G (one broadcast "
        "value); label synapse: its unit and the label unit; no error, no second phase")

    def __init__(self, Q: int = 48, K: int = 256, encoding: Encoding = "patches",
                 patch: int = 3, levels: int = 4,
                 label_weights: Literal["count", "binary"] = "count", num_classes: int = 10,
                 **sdr_kwargs: float) -> None:
        self.Q, self.K, self.encoding, self.levels = Q, K, encoding, levels
        self.patch = patch
        self.label_weights, self.num_classes = label_weights, num_classes
        self.sdr_kwargs = sdr_kwargs

    def encode(self, X: np.ndarray) -> torch.Tensor:
        """Binary input vectors for the macrocolumn."""
        x = as_tensor(X)
        if self.encoding == "patches":
            return encode_patches(x, self.patch)
        if self.encoding == "levels":
            return encode_levels(x, self.levels)
        if self.encoding == "threshold":
            return (x > 0.5).float()
        raise ValueError(f"encoding must be 'levels' or 'threshold', got {self.encoding!r}")

    def fit(self, X: np.ndarray, y: np.ndarray, *, seed: int = 0) -> TrainReport:
        xb = self.encode(X)
        t = torch.as_tensor(np.asarray(y), dtype=torch.int64)
        self.mac = SDRMacrocolumn(xb.shape[1], self.Q, self.K, seed=seed, **self.sdr_kwargs)
        self.assoc = torch.zeros(self.Q * self.K, self.num_classes)
        with Timer() as timer:
            for i in range(len(xb)):  # one presentation each, in order
                units = self.mac.units(self.mac.learn(xb[i:i + 1]))[0]  # (Q,)
                if self.label_weights == "binary":
                    self.assoc[units, t[i]] = 1.0
                else:
                    self.assoc[units, t[i]] += 1.0
        fam = self.mac.last_familiarity
        return TrainReport(self.name, 1, len(xb), len(xb), timer.elapsed_s, len(xb),
                           extra={"weight_density": self.mac.weight_density(),
                                  "last_familiarity": float(fam[-1]) if fam is not None else None})

    def scores(self, X: np.ndarray) -> torch.Tensor:
        """(n, classes) votes of the retrieved codes' units."""
        units = self.mac.units(self.mac.infer(self.encode(X)))  # (n, Q)
        return self.assoc[units].sum(1)  # (n, classes)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.scores(X).argmax(1).numpy()

    def locality(self, input_dim: int, num_classes: int = 10) -> Locality:
        return Locality(self.signals, lateral_floats=2 * self.Q * self.K, phases=1)
