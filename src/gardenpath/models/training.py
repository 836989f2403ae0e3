"""Nets with and without sharing for real digits, and the one loop that trains them all.

Two families, each in four wirings (:data:`KINDS`):

- :func:`image_net` for one-channel images (MNIST's 28x28, or digits on a wider canvas): two
  'same'-padded layers, each followed by ReLU and 2x2 max pooling, then a linear readout;
- :func:`sequence_net` for MNIST-1D's 40-sample sequences (Greydanus & Kobak): the published
  CNN (three stride-2 ``Conv1d`` layers of 25 channels, 5,210 parameters) and MLP
  (40-100-100-10 with a residual second layer, 15,210 parameters), as in their
  ``notebooks/models.py``.

``conv`` shares one filter over all positions; ``local`` has the same shapes with a filter of
its own at each position; ``local_dws`` is ``local`` trained with dynamic weight sharing
(:mod:`gardenpath.models.dynamic_sharing`), and starts, as in Pogodin et al.'s code, with
one filter copied to every position (the conv net's of the same seed): a first sleep phase
would otherwise average independent random filters to nearly nothing;
``dense`` is an MLP, every unit seeing the whole layer below (no locality, no sharing).

:func:`train` is the loop: Adam or SGD on cross-entropy, batches drawn in a seeded shuffled
order or walked in order (MNIST-1D's published protocol), optional random horizontal shifts of
every training image (training with translations), and sleep phases for ``local_dws``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gardenpath.models.dynamic_sharing import SleepConfig, sleep_
from gardenpath.models.local import LocallyConnected2d
from gardenpath.models.local1d import LocallyConnected1d
from gardenpath.models.nets import spatial_layer

#: The four wirings, in the order tables and legends show them.
KINDS = ("conv", "local", "local_dws", "dense")
OPTIMIZERS = ("adam", "sgd")
ORDERS = ("shuffle", "sequential")
NUM_CLASSES = 10


# ---------------------------------------------------------------------------- nets


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def mlp(in_features: int, hidden: int = 100, residual: bool = False) -> nn.Module:
    """Two hidden ReLU layers of ``hidden`` units; ``residual`` adds the second to its input
    (MNIST-1D's published MLP does)."""
    return _MLP(in_features, hidden, residual)


class _MLP(nn.Module):
    def __init__(self, in_features: int, hidden: int, residual: bool) -> None:
        super().__init__()
        self.linear1 = nn.Linear(in_features, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, NUM_CLASSES)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear1(x.flatten(1)).relu()  # (B, hidden)
        h2 = self.linear2(h).relu()
        return self.linear3(h + h2 if self.residual else h2)  # (B, 10)


def image_net(kind: str, in_size: tuple[int, int] = (28, 28), channels: Sequence[int] = (8, 16),
              kernel_size: int = 3, hidden: int = 100) -> nn.Module:
    """A net for (B, 1, H, W) images: conv, locally connected (``local``, ``local_dws``) or
    dense (an MLP with ``hidden`` units per layer; ``channels`` unused), with a linear readout
    of the flattened last feature map."""
    _check_kind(kind)
    h, w = in_size
    if kind == "dense":
        return mlp(h * w, hidden)
    layers: list[nn.Module] = []
    c_in = 1
    for c_out in channels:
        layer = spatial_layer("local" if kind == "local" else "conv", c_in, c_out,
                              kernel_size, (h, w), 1, kernel_size // 2)
        if kind == "local_dws":
            with torch.random.fork_rng():  # the conv net's later layers draw the same
                layer = LocallyConnected2d.from_conv(layer, (h, w))
        layers += [layer, nn.ReLU(), nn.MaxPool2d(2)]
        h, w, c_in = h // 2, w // 2, c_out
        if min(h, w) < 1:
            raise ValueError(f"in_size {in_size} too small for {len(channels)} poolings")
    layers += [nn.Flatten(), nn.Linear(c_in * h * w, NUM_CLASSES)]
    return nn.Sequential(*layers)


class _Unsqueeze(nn.Module):
    """(B, L) sequences to (B, 1, L)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], 1, -1)


#: MNIST-1D's published CNN: (out channels, kernel, stride, padding) per layer.
SEQUENCE_LAYERS = ((25, 5, 2, 1), (25, 3, 2, 1), (25, 3, 2, 1))


def sequence_net(kind: str, length: int = 40) -> nn.Module:
    """A net for (B, length) sequences: MNIST-1D's published CNN (``conv``), the same shapes
    untied (``local``, ``local_dws``), or its published residual MLP (``dense``)."""
    _check_kind(kind)
    if kind == "dense":
        return mlp(length, 100, residual=True)
    layers: list[nn.Module] = [_Unsqueeze()]
    c_in, n = 1, length
    for c_out, k, s, p in SEQUENCE_LAYERS:
        if kind == "local":
            layer: nn.Module = LocallyConnected1d(c_in, c_out, k, n, stride=s, padding=p)
        else:
            layer = nn.Conv1d(c_in, c_out, k, stride=s, padding=p)
            if kind == "local_dws":
                with torch.random.fork_rng():
                    layer = LocallyConnected1d.from_conv(layer, n)
        n = (n + 2 * p - k) // s + 1
        layers += [layer, nn.ReLU()]
        c_in = c_out
    layers += [nn.Flatten(), nn.Linear(c_in * n, NUM_CLASSES)]
    return nn.Sequential(*layers)


def build(family: str, kind: str, seed: int, device: Any = "cpu", **kw: Any) -> nn.Module:
    """A seeded net of ``family`` (``"image"`` or ``"sequence"``) on ``device``."""
    torch.manual_seed(seed)
    if family == "image":
        net = image_net(kind, **kw)
    elif family == "sequence":
        net = sequence_net(kind, **kw)
    else:
        raise ValueError(f"family must be 'image' or 'sequence', got {family!r}")
    return net.to(device)


def count_parameters(net: nn.Module) -> int:
    """Weights and biases of every layer."""
    return sum(p.numel() for p in net.parameters())


# ---------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainConfig:
    """How a net is trained; the same for every wiring, so only connectivity differs.

    Attributes:
        steps: gradient steps.
        batch_size: examples per step, capped at the training-set size.
        lr: learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9).
        order: ``"shuffle"`` (a seeded new order every pass) or ``"sequential"`` (walk the
            set in its order, as MNIST-1D's published training code does).
        max_shift: when above 0, every training image is moved sideways by a random
            whole number of pixels in [-max_shift, max_shift] (training with translations;
            the canvas's blank margin must be at least this wide).
        sleep: dynamic weight sharing for ``local_dws`` (None: none).
    """

    steps: int
    batch_size: int
    lr: float
    optimizer: str = "adam"
    order: str = "shuffle"
    max_shift: int = 0
    sleep: SleepConfig | None = field(default=None)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {self.order!r}")
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or self.max_shift < 0:
            raise ValueError("steps and batch_size >= 1, lr > 0, max_shift >= 0")


def make_optimizer(net: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam, or SGD with momentum 0.9, at ``cfg.lr``."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(net.parameters(), lr=cfg.lr)
    return torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9)


def shift_sideways(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of (B, 1, H, W) moved by its own random column offset in [-m, m].

    A roll: what leaves one edge enters the other, so the canvas's blank margins must be
    at least ``max_shift`` wide for the digit to move intact.
    """
    shifts = torch.randint(-max_shift, max_shift + 1, (x.shape[0],), generator=generator)
    out = torch.empty_like(x)
    for s in shifts.unique().tolist():
        idx = (shifts == s).nonzero().flatten().to(x.device)
        out[idx] = torch.roll(x[idx], int(s), dims=-1)
    return out


@dataclass
class TrainLog:
    """What a training run reports besides the net: spreads after each sleep phase."""

    spreads: list[list[float]] = field(default_factory=list)


def train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, seed: int = 0,
          share: bool = False) -> TrainLog:
    """Train ``net`` in place with cross-entropy on ``x`` (N, ...) and ``y`` (N,).

    ``seed`` fixes the batch order, the shifts and the sleep phases' noise. ``share`` runs a
    sleep phase (``cfg.sleep``) every ``cfg.sleep.every`` steps and after the last one.
    """
    if share and cfg.sleep is None:
        raise ValueError("share=True needs cfg.sleep")
    gen = torch.Generator().manual_seed(seed)
    opt = make_optimizer(net, cfg)
    n, bs = len(x), min(cfg.batch_size, len(x))
    log = TrainLog()
    order = torch.randperm(n, generator=gen) if cfg.order == "shuffle" else torch.arange(n)
    pos = 0
    net.train()
    for step in range(1, cfg.steps + 1):
        if pos + bs > n:
            if cfg.order == "shuffle":
                order = torch.randperm(n, generator=gen)
            pos = 0
        idx = order[pos:pos + bs].to(x.device)
        pos += bs
        xb = x[idx]
        if cfg.max_shift:
            xb = shift_sideways(xb, cfg.max_shift, gen)
        loss = F.cross_entropy(net(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if share and (step % cfg.sleep.every == 0 or step == cfg.steps):
            log.spreads.append(sleep_(net, cfg.sleep, gen))
    return log


@torch.no_grad()
def accuracy_pct(net: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 1000) -> float:
    """Percentage of ``x`` that ``net`` classifies as ``y``."""
    was = net.training
    net.eval()
    correct = sum(int((net(x[i:i + chunk]).argmax(1) == y[i:i + chunk]).sum())
                  for i in range(0, len(x), chunk))
    net.train(was)
    return 100.0 * correct / len(x)
