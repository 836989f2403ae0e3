"""Dynamic weight sharing: a sleep-like phase that pulls a locally connected layer's filters
together through lateral connections and a Hebbian rule (Pogodin, Mehta, Lillicrap & Latham,
"Towards biologically plausible convolutional networks", NeurIPS 2021).

Every ``every`` training steps, learning from data pauses. During the pause the layer below
produces a pattern ``x`` (here Gaussian noise) that reaches every position of a pool alike;
each position ``l`` responds ``z_l = x . w_l + b_l``; lateral connections subtract the pool's
mean response, leaving ``r_l = z_l - mean_l' z_l'``; and each synapse changes by an
anti-Hebbian rule that uses only what it sees, its input and its neuron's lateral-corrected
activity::

    w_l <- w_l - lr * x r_l        b_l <- b_l - lr * r_l

This is a gradient step on ``(1/2) sum_l (z_l - mean z)^2``: with ``E[x x^T] = I`` the
deviation of each filter from the mean filter shrinks by ``(1 - lr)`` per iteration while
the mean filter stays where it was (the ``r_l`` sum to zero). After enough iterations every
position holds nearly the mean filter, the state a convolution keeps by construction; a finite
phase leaves some spread (:func:`spread` measures it). Nothing here averages weights directly
and no optimiser state is touched: the optimiser's moments stay per synapse, as in the
authors' code, which keeps one Adam state per locally connected weight.

Simplifications, said on the page: the pool is the whole layer (every position sees the same
pattern); in the authors' implementation the input layer repeats a pattern with the kernel's
period, so positions a kernel width apart share, and a term ``gamma (w_l - w_l^before)``
can hold weights near their pre-sleep values (``gamma = 0`` here).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gardenpath.models.local import LocallyConnected2d
from gardenpath.models.local1d import LocallyConnected1d

LOCAL_TYPES = (LocallyConnected1d, LocallyConnected2d)


@dataclass(frozen=True)
class SleepConfig:
    """When and how long the network sleeps.

    Attributes:
        every: training steps between sleep phases (Pogodin et al. share every 1 to 100).
        iterations: Hebbian updates per phase.
        lr: Hebbian learning rate; below 1 for the iteration to converge.
        noise_batch: noise patterns per update (the average over them estimates ``E[x r]``).
    """

    every: int = 10
    iterations: int = 10
    lr: float = 0.5
    noise_batch: int = 64

    def __post_init__(self) -> None:
        if min(self.every, self.iterations, self.noise_batch) < 1:
            raise ValueError("every, iterations and noise_batch must be at least 1")
        if not 0.0 < self.lr < 2.0:
            raise ValueError(f"lr must lie in (0, 2) for the dynamics to settle, got {self.lr}")


def local_layers(net: nn.Module) -> list[nn.Module]:
    """The locally connected layers (1-D and 2-D) of ``net``, in definition order."""
    return [m for m in net.modules() if isinstance(m, LOCAL_TYPES)]


def _bias_2d(layer: nn.Module) -> torch.Tensor | None:
    """The layer's bias as an (out, L) view, or None."""
    return None if layer.bias is None else layer.bias.view(layer.out_channels, -1)


@torch.no_grad()
def deviation(layer: nn.Module) -> float:
    """How far the filters lie from their mean over positions: ``||w - mean_l w||``."""
    w = layer.weight  # (L, fan_in, out)
    return float((w - w.mean(0, keepdim=True)).norm())


@torch.no_grad()
def spread(layer: nn.Module) -> float:
    """:func:`deviation` relative to the filters' size, ``/ ||w||`` (0: shared; near 1 for
    independent random filters, whose mean is small)."""
    norm = float(layer.weight.norm())
    return 0.0 if norm == 0 else deviation(layer) / norm


@torch.no_grad()
def sleep_layer_(layer: nn.Module, cfg: SleepConfig, generator: torch.Generator) -> None:
    """One sleep phase of ``cfg.iterations`` lateral Hebbian updates on ``layer``, in place."""
    w = layer.weight  # (L, fan_in, out)
    b = _bias_2d(layer)  # (out, L) or None
    for _ in range(cfg.iterations):
        x = torch.randn(cfg.noise_batch, layer.fan_in, generator=generator).to(
            device=w.device, dtype=w.dtype)  # (N, fan_in): one pattern for every position
        z = torch.einsum("nf,lfo->nlo", x, w)  # (N, L, out)
        if b is not None:
            z = z + b.t()  # (N, L, out)
        r = z - z.mean(1, keepdim=True)  # lateral connections remove the pool's mean
        w.sub_(torch.einsum("nf,nlo->lfo", x, r), alpha=cfg.lr / cfg.noise_batch)
        if b is not None:
            b.sub_(r.mean(0).t(), alpha=cfg.lr)  # the bias sees a constant input of 1


def sleep_(net: nn.Module, cfg: SleepConfig, generator: torch.Generator) -> list[float]:
    """A sleep phase on every locally connected layer of ``net``; their spreads after it."""
    out = []
    for layer in local_layers(net):
        sleep_layer_(layer, cfg, generator)
        out.append(spread(layer))
    return out
