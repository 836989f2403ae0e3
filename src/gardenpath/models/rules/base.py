"""What every learning rule shares: the data interface, the training report, the locality record,
and the supervised linear readout that the unsupervised rules put on top of their features.

Data interface (all rules): ``fit(X, y, *, seed) -> TrainReport`` and
``predict(X) -> labels``, X float (n, d) in [0, 1], y int (n,).

How non-locality is counted (chapter 6). For one training example we count the
values a neuron needs for updating its input synapses that come neither from
its own presynaptic inputs' forward activity nor from itself, summed over the
neurons whose synapses learn; float32, so 4 bytes each:

- ``feedback_floats``: error values arriving from higher layers (backprop and
  feedback alignment: every hidden unit receives the next layer's error vector);
- ``transported_floats``: other synapses' weights the update reads (backprop's
  weight transport: a hidden unit's error is weighted by its outgoing weights);
- ``lateral_floats``: competition signals from units of the same layer (a
  winner-take-all inhibition value, a per-module normaliser, a global
  familiarity broadcast);
- ``phases``: how many passes through the network one update needs (the RBM's
  negative phase, backprop's backward pass);
- ``symmetric_weights``: whether the rule assumes the same weight is used in both
  directions (RBM; backprop's weight transport is counted in floats instead).

Not counted, identically for all rules: the label delivered to the output
units and the softmax normaliser of the linear readout (the supervised top
layer of backprop and feedback alignment is the same delta rule).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from gardenpath.constants import FP32_BYTES


@dataclass
class TrainReport:
    """What a rule's training cost, in the units chapter 6 and 7 compare.

    Attributes:
        rule: rule name.
        passes: epochs over the training data by the part that learns most
            (for two-stage rules, unsupervised + readout passes are in ``extra``).
        weight_updates: weight-update events (one optimizer step, one CD step,
            one stored item: each changes the weights once).
        presentations: training examples shown, counting repeats.
        train_time_s: wall-clock training time.
        n_train: training-set size.
        extra: rule-specific numbers (e.g. final reconstruction error).
    """

    rule: str
    passes: float
    weight_updates: int
    presentations: int
    train_time_s: float
    n_train: int
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for results JSON."""
        return asdict(self)


@dataclass(frozen=True)
class Locality:
    """Non-local signal one training example sends to the learning synapses (see module doc)."""

    signals: str
    feedback_floats: int = 0
    transported_floats: int = 0
    lateral_floats: int = 0
    phases: int = 1
    symmetric_weights: bool = False

    @property
    def nonlocal_floats(self) -> int:
        """All non-local values per example."""
        return self.feedback_floats + self.transported_floats + self.lateral_floats

    @property
    def nonlocal_bytes(self) -> int:
        """Non-local values per example, as float32 bytes."""
        return FP32_BYTES * self.nonlocal_floats


class Rule(ABC):
    """A learning rule with the common data interface."""

    name: ClassVar[str]
    signals: ClassVar[str]  # which signals a weight update uses, beyond its two neurons

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray, *, seed: int = 0) -> TrainReport:
        """Train on X (n, d) in [0, 1] and labels y (n,)."""

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels (n,) int64."""

    @abstractmethod
    def locality(self, input_dim: int, num_classes: int = 10) -> Locality:
        """The non-local signals of one training example for this rule's sizes."""

    def nonlocal_bytes_per_example(self, input_dim: int, num_classes: int = 10) -> int:
        """Bytes of non-local signal per training example (float32)."""
        return self.locality(input_dim, num_classes).nonlocal_bytes

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        """Accuracy on (X, y)."""
        return float(np.mean(self.predict(X) == np.asarray(y)))


def as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """float32 CPU tensor view of an array."""
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


class SoftmaxReadout:
    """Linear softmax classifier trained by the delta rule (minibatch SGD with momentum).

    Update for a batch (features f, one-hot targets t, p = softmax(f W + b))::

        W <- W - lr (f^T (p - t) / B + wd W),   b <- b - lr mean(p - t)

    Each output unit's update uses its own error and its presynaptic features:
    local, given the label. Features are standardised with training mean and std.
    No autograd: the gradient is written out.
    """

    def __init__(self, num_classes: int = 10, num_epochs: int = 50, lr: float = 0.1,
                 batch_size: int = 32, momentum: float = 0.9, weight_decay: float = 1e-4) -> None:
        self.num_classes, self.num_epochs, self.lr = num_classes, num_epochs, lr
        self.batch_size, self.momentum, self.weight_decay = batch_size, momentum, weight_decay
        self.W: torch.Tensor | None = None

    def fit(self, feats: torch.Tensor, y: np.ndarray, seed: int = 0) -> int:
        """Train; returns the number of weight updates."""
        g = torch.Generator().manual_seed(seed)
        self.mean, self.std = feats.mean(0), feats.std(0) + 1e-6
        f = (feats - self.mean) / self.std  # (n, F)
        t = torch.nn.functional.one_hot(torch.as_tensor(y), self.num_classes).float()  # (n, C)
        n, d = f.shape
        self.W, self.b = torch.zeros(d, self.num_classes), torch.zeros(self.num_classes)
        vw, vb = torch.zeros_like(self.W), torch.zeros_like(self.b)
        updates = 0
        for _ in range(self.num_epochs):
            for idx in torch.randperm(n, generator=g).split(self.batch_size):
                fb = f[idx]  # (B, F)
                err = torch.softmax(fb @ self.W + self.b, 1) - t[idx]  # (B, C)
                vw.mul_(self.momentum).add_(fb.t() @ err / len(idx) + self.weight_decay * self.W)
                vb.mul_(self.momentum).add_(err.mean(0))
                self.W -= self.lr * vw
                self.b -= self.lr * vb
                updates += 1
        return updates

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        """(n, C) class scores."""
        return ((feats - self.mean) / self.std) @ self.W + self.b

    def predict(self, feats: torch.Tensor) -> np.ndarray:
        """(n,) predicted labels."""
        return self.logits(feats).argmax(1).numpy()


class Timer:
    """Context manager measuring wall time in ``elapsed_s``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed_s = time.perf_counter() - self.start
