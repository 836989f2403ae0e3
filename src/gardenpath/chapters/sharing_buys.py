"""Chapter 5, *What sharing buys*: sample efficiency and translation generalisation.

The essay (Rinkus) treats parameter sharing as something convolutional nets need for
acceptable computation time, and points to the brain's local, unshared connectivity. This
module measures what sharing buys besides compute, on scikit-learn's 8x8 handwritten
digits (1,797 images; far smaller and coarser than MNIST):

1. **Learning curve**: test accuracy against training-set size (``k`` examples per class,
   seeded, several repeats) for four nets with identical layer shapes
   (:func:`gardenpath.models.nets.digits_net`):

   - ``conv``: convolutions, one filter shared by every position;
   - ``local``: locally connected, a separate filter at every position, each
     initialised independently (as Bartunov et al. 2018 and Ott et al. 2020 do);
   - ``local_shared``: locally connected with *dynamic weight sharing* (Pogodin,
     Mehta, Lillicrap & Latham, NeurIPS 2021): it starts from one filter copied to every
     position (their code's default, ``conv_deviation_eps=0``), trains as ``local``, and
     every ``share_every`` steps each position's filter and bias are replaced by their
     mean over positions (:meth:`LocallyConnected2d.share_weights_`). We average
     instantly; the paper reaches the same end with a Hebbian "sleep" phase;
   - ``dense``: every unit connected to the whole previous layer, same activation shapes.

2. **Steps to a target**: test accuracy every ``eval_every`` steps on the largest
   training set; the first step at which it reaches ``target_acc``.

3. **Translation**: nets trained on the digits pasted at the centre of a larger blank
   canvas (:func:`gardenpath.data.place_on_canvas`), tested with the digits moved
   sideways by every offset the canvas allows. Two readouts: ``flatten`` (the net as
   built: a linear layer on the flattened last feature map) and ``global_max`` (global
   max pooling over positions, then a linear layer).

The verdict rule is :func:`decide`. Published anchors (:data:`ANCHORS`) are on MNIST and
CIFAR-10, never on these digits; tables say so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from gardenpath.charts import SHARING_COLORS
from gardenpath.data import k_shot, load_digits_split, place_on_canvas
from gardenpath.models.local import LocallyConnected2d
from gardenpath.models.nets import digits_net, layer_specs, share_weights_

#: The four nets, in the order tables and legends show them.
NETS = ("conv", "local", "local_shared", "dense")
NET_LABELS = {
    "conv": "convolutional (shared)",
    "local": "locally connected",
    "local_shared": "locally connected + dynamic sharing",
    "dense": "dense",
}
READOUTS = ("flatten", "global_max")
OPTIMIZERS = ("adam", "sgd")
#: How the prose names each optimiser.
OPTIMIZER_NAMES = {"adam": "Adam", "sgd": "SGD with momentum 0.9"}
#: What each optimiser does to the comparison, for the prose.
OPTIMIZER_NOTES = {
    "adam": ("Adam rescales every weight's update, which hides the fact that each position "
             "of a locally connected layer receives only its own share of the gradient that "
             "a shared filter would sum"),
    "sgd": ("with SGD each position of a locally connected layer receives only its own "
            "share of the gradient that a shared filter sums over all positions, so at the "
            "same learning rate its filters move less per step"),
}
SIDE = 8  # side of a scikit-learn digit (pixels)
NUM_CLASSES = 10


# ---------------------------------------------------------------------------- anchors


@dataclass(frozen=True)
class Anchor:
    """A published accuracy pair (conv vs locally connected), with its source and data set.

    Accuracies are in percent; where a paper reports test error, accuracy is
    100 - error, and ``metric`` says so.
    """

    cite: str
    authors: str
    data_set: str
    metric: str
    conv_pct: float
    local_pct: float
    dense_pct: float | None = None
    note: str = ""

    @property
    def gap_pp(self) -> float:
        """Conv minus locally connected accuracy, percentage points."""
        return self.conv_pct - self.local_pct


#: Published numbers (ANCHORS.md), none of them on scikit-learn's digits.
ANCHORS: tuple[Anchor, ...] = (
    Anchor("ott_2020", "Ott et al. (2020)", "MNIST (28x28, 60,000 training images)",
           "best median validation accuracy", 99.31, 99.19),
    Anchor("ott_2020", "Ott et al. (2020)", "CIFAR-10 (32x32 colour, 50,000 training images)",
           "best median validation accuracy", 77.4, 73.2),
    Anchor("bartunov_2018", "Bartunov et al. (2018)", "MNIST (28x28, 60,000 training images)",
           "100 - test error, backprop", 100 - 1.01, 100 - 1.17, 100 - 1.48,
           "their dense net is a fully connected net, not shape-matched"),
    Anchor("bartunov_2018", "Bartunov et al. (2018)",
           "CIFAR-10 (32x32 colour, 50,000 training images)",
           "100 - test error, backprop", 100 - 31.87, 100 - 32.41),
)


# ---------------------------------------------------------------------------- nets


def _global_max_readout(net: nn.Sequential, channels_last: int, device: Any) -> nn.Sequential:
    """Replace the net's ``Flatten, Linear`` tail by global max pooling and a linear layer."""
    body = list(net.children())[:-2]  # drop Flatten and the Linear readout
    tail = [nn.AdaptiveMaxPool2d(1), nn.Flatten(),
            nn.Linear(channels_last, NUM_CLASSES, device=device)]
    return nn.Sequential(*body, *tail)


def build_net(kind: str, in_size: int = SIDE, channels: Sequence[int] = (16, 32),
              readout: str = "flatten", device: Any = None, seed: int = 0) -> nn.Sequential:
    """One of :data:`NETS` for one-channel images of side ``in_size``, seeded.

    ``conv``, ``local`` and ``dense`` are :func:`digits_net` as built. ``local_shared`` is
    the conv net (same seed, so the same initial filters) with every convolution turned
    into a locally connected layer holding that filter at every position
    (:meth:`LocallyConnected2d.from_conv`). ``readout="global_max"`` swaps the flatten
    readout for global max pooling over positions.
    """
    if kind not in NETS:
        raise ValueError(f"net must be one of {NETS}, got {kind!r}")
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    torch.manual_seed(seed)
    sharing = "conv" if kind == "local_shared" else kind
    net = digits_net(sharing, in_size=in_size, channels=tuple(channels), device=device)
    if kind == "local_shared":
        for spec in layer_specs(net, in_size, in_channels=1):
            idx = int(spec.name)  # digits_net is a flat Sequential: names are indices
            net[idx] = LocallyConnected2d.from_conv(net[idx], tuple(spec.in_shape[-2:]))
    if readout == "global_max":
        net = _global_max_readout(net, int(channels[-1]), device)
    return net


def count_params(kind: str, in_size: int = SIDE, channels: Sequence[int] = (16, 32),
                 readout: str = "flatten") -> int:
    """Parameters of a net (weights, biases, readout), counted on the meta device."""
    net = digits_net("local" if kind == "local_shared" else kind, in_size=in_size,
                     channels=tuple(channels), device="meta")
    if readout == "global_max":
        net = _global_max_readout(net, int(channels[-1]), "meta")
    return sum(p.numel() for p in net.parameters())


def has_local(net: nn.Module) -> bool:
    """Whether ``net`` holds a locally connected layer (so sharing applies)."""
    return any(isinstance(m, LocallyConnected2d) for m in net.modules())


# ---------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainConfig:
    """How every net is trained (the same for all four, so only connectivity differs).

    Attributes:
        num_steps: gradient steps per run.
        batch_size: images per step, capped at the training-set size; the training set
            is reshuffled every pass (epoch).
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9). Adam rescales each weight's
            step, so the per-position gradients of a locally connected layer (each a
            part of what a shared filter would sum) are not at a disadvantage.
        lr: learning rate.
        share_every: steps between dynamic weight-sharing phases (``local_shared``).
        share_at_end: end training with a sharing phase, so the tested
            ``local_shared`` net computes a convolution.
    """

    num_steps: int = 300
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 0.01
    share_every: int = 10
    share_at_end: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.num_steps < 1 or self.batch_size < 1 or self.share_every < 1:
            raise ValueError("num_steps, batch_size and share_every must be at least 1")


def make_optimizer(net: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam, or SGD with momentum 0.9, at ``cfg.lr``."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(net.parameters(), lr=cfg.lr)
    return torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9)


def share_steps(cfg: TrainConfig) -> list[int]:
    """The steps after which ``local_shared`` averages its filters.

    Every ``share_every``-th step before the last, plus the last when ``share_at_end``.
    """
    steps = list(range(cfg.share_every, cfg.num_steps, cfg.share_every))
    if cfg.share_at_end:
        steps.append(cfg.num_steps)
    return steps


@torch.no_grad()
def accuracy_pct(net: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 2048) -> float:
    """Percentage of ``x`` (N, 1, H, W) that ``net`` classifies as ``y``."""
    net.eval()
    correct = 0
    for i in range(0, len(x), chunk):
        correct += int((net(x[i:i + chunk]).argmax(1) == y[i:i + chunk]).sum())
    net.train()
    return 100.0 * correct / len(x)


def train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, seed: int = 0,
          share: bool = False, curve_on: tuple[torch.Tensor, torch.Tensor] | None = None,
          eval_every: int = 0) -> list[tuple[int, float]]:
    """Train ``net`` in place with cross-entropy; return the accuracy curve, if asked.

    Args:
        net: the net (on the device of ``x``).
        x, y: training images (N, 1, H, W) and labels (N,).
        cfg: steps, batch, optimizer, sharing schedule.
        seed: seeds the order in which examples are drawn.
        share: apply dynamic weight sharing at :func:`share_steps`.
        curve_on: images and labels on which to measure accuracy during training.
        eval_every: measure every this many steps (and before the first); 0 for never.

    Returns:
        ``[(step, accuracy %), ...]`` on ``curve_on``; empty when not asked.
    """
    gen = torch.Generator().manual_seed(seed)
    opt = make_optimizer(net, cfg)
    sharing_at = set(share_steps(cfg)) if share else set()
    n, bs = len(x), min(cfg.batch_size, len(x))
    curve: list[tuple[int, float]] = []
    if curve_on is not None and eval_every > 0:
        curve.append((0, accuracy_pct(net, *curve_on)))
    order, pos = torch.randperm(n, generator=gen), 0
    net.train()
    for step in range(1, cfg.num_steps + 1):
        if pos + bs > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + bs].to(x.device)
        pos += bs
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step in sharing_at:
            share_weights_(net)
        if curve_on is not None and eval_every > 0 and step % eval_every == 0:
            curve.append((step, accuracy_pct(net, *curve_on)))
    return curve


def steps_to_target(curve: Sequence[tuple[int, float]], target_pct: float) -> int | None:
    """First step whose accuracy is at least ``target_pct``; ``None`` if never reached."""
    for step, acc in curve:
        if acc >= target_pct:
            return int(step)
    return None


# ---------------------------------------------------------------------------- data


@dataclass
class Digits:
    """The digits split once per chapter run: flat images in [0, 1] and labels."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray

    @property
    def min_per_class(self) -> int:
        """Fewest training examples any class has (the largest k-shot possible)."""
        return int(np.bincount(self.y_train).min())


def load(test_fraction: float = 0.3, seed: int = 0) -> Digits:
    """scikit-learn's digits, split (stratified, seeded) into training and test sets."""
    return Digits(*load_digits_split(test_fraction, seed))


def images(x_flat: np.ndarray, side: int, device: Any) -> torch.Tensor:
    """Flat (N, side*side) float array to a (N, 1, side, side) tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(x_flat, dtype=np.float32)).view(
        -1, 1, side, side).to(device)  # (N, 1, side, side)


def labels(y: np.ndarray, device: Any) -> torch.Tensor:
    """Labels as an int64 tensor on ``device``."""
    return torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)


def sample(d: Digits, shots: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``shots`` examples per class (seeded), or the whole training split for ``None``."""
    if shots is None:
        return d.x_train, d.y_train
    if shots > d.min_per_class:
        raise ValueError(f"shots {shots} exceeds the smallest class in the training split "
                         f"({d.min_per_class} examples); use full_set for all of it")
    return k_shot(d.x_train, d.y_train, shots, seed)


# ---------------------------------------------------------------------------- experiments


def seeds_for(seed: int, num_seeds: int) -> list[int]:
    """Repeat ``r`` uses seed ``seed + r``: its own sample, initialisation and batch order."""
    return [seed + r for r in range(num_seeds)]


def learning_curve(d: Digits, shots: Sequence[int], full_set: bool, cfg: TrainConfig,
                   seeds: Sequence[int], channels: Sequence[int] = (16, 32),
                   nets: Sequence[str] = NETS, device: Any = "cpu", eval_every: int = 10,
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train every net on every training-set size and seed; test on the fixed test split.

    The largest set (the whole training split when ``full_set``, else the largest
    ``shots``) is also evaluated every ``eval_every`` steps, for the steps-to-target count.

    Returns:
        ``runs``: one row per (net, size, seed): ``net, shots, n_train, seed,
        accuracy_pct`` (``shots`` is ``None`` for the whole split);
        ``trajectory``: ``net, seed, step, accuracy_pct`` on the largest set.
    """
    if not shots and not full_set:
        raise ValueError("give at least one training-set size (shots) or full_set")
    sizes: list[int | None] = sorted(set(int(k) for k in shots))
    if full_set:
        sizes.append(None)
    largest = sizes[-1]
    x_te, y_te = images(d.x_test, SIDE, device), labels(d.y_test, device)
    runs, traj = [], []
    for size in sizes:
        for s in seeds:
            xs, ys = sample(d, size, s)
            x, y = images(xs, SIDE, device), labels(ys, device)
            for kind in nets:
                net = build_net(kind, SIDE, channels, device=device, seed=s)
                want_curve = size == largest
                curve = train(net, x, y, cfg, seed=s, share=kind == "local_shared",
                              curve_on=(x_te, y_te) if want_curve else None,
                              eval_every=eval_every if want_curve else 0)
                runs.append({"net": kind, "shots": size, "n_train": len(ys), "seed": s,
                             "accuracy_pct": accuracy_pct(net, x_te, y_te)})
                traj += [{"net": kind, "seed": s, "step": st, "accuracy_pct": a}
                         for st, a in curve]
    return pd.DataFrame(runs), pd.DataFrame(traj, columns=["net", "seed", "step",
                                                           "accuracy_pct"])


def canvas_offsets(canvas: int) -> tuple[int, list[int]]:
    """Training corner (row = column = centre) and every column a digit fits at."""
    if canvas < SIDE:
        raise ValueError(f"canvas {canvas} is smaller than a digit ({SIDE} pixels)")
    centre = (canvas - SIDE) // 2
    return centre, list(range(0, canvas - SIDE + 1))


def translation(d: Digits, canvas: int, readouts: Sequence[str], cfg: TrainConfig,
                seeds: Sequence[int], channels: Sequence[int] = (16, 32),
                nets: Sequence[str] = NETS, device: Any = "cpu") -> pd.DataFrame:
    """Train on the whole training split at the canvas centre; test at every column.

    Returns:
        One row per (readout, net, seed, shift): ``shift_px`` is the test column minus
        the training column (pixels, positive to the right) and ``accuracy_pct`` the
        test accuracy there.
    """
    for r in readouts:
        if r not in READOUTS:
            raise ValueError(f"readouts must be among {READOUTS}, got {r!r}")
    centre, cols = canvas_offsets(canvas)
    x = images(place_on_canvas(d.x_train, canvas, (centre, centre)), canvas, device)
    y, y_te = labels(d.y_train, device), labels(d.y_test, device)
    rows = []
    for readout in readouts:
        for s in seeds:
            for kind in nets:
                net = build_net(kind, canvas, channels, readout, device=device, seed=s)
                train(net, x, y, cfg, seed=s, share=kind == "local_shared")
                for col in cols:
                    x_te = images(place_on_canvas(d.x_test, canvas, (centre, col)), canvas,
                                  device)
                    rows.append({"readout": readout, "net": kind, "seed": s,
                                 "shift_px": col - centre,
                                 "accuracy_pct": accuracy_pct(net, x_te, y_te)})
    return pd.DataFrame(rows)


def sharing_sweep(d: Digits, canvas: int, readout: str, periods: Sequence[int],
                  cfg: TrainConfig, seeds: Sequence[int], channels: Sequence[int] = (16, 32),
                  device: Any = "cpu", done: pd.DataFrame | None = None) -> pd.DataFrame:
    """The translation test for ``local_shared`` alone, at several sharing periods.

    Args:
        done: rows of :func:`translation` already run with ``cfg`` (same seeds); the
            period ``cfg.share_every`` is taken from them instead of trained again.

    Returns:
        The rows of :func:`translation` with a ``share_every`` column (steps).
    """
    parts = []
    for period in sorted(set(int(p) for p in periods)):
        reuse = None
        if done is not None and period == cfg.share_every:
            reuse = done[(done["readout"] == readout) & (done["net"] == "local_shared")
                         & done["seed"].isin(list(seeds))]
        if reuse is not None and set(reuse["seed"]) == set(seeds):
            df = reuse.reset_index(drop=True).copy()
        else:
            df = translation(d, canvas, [readout], replace(cfg, share_every=period), seeds,
                             channels, nets=["local_shared"], device=device)
        df.insert(0, "share_every", period)
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------------- summaries


def summarise(runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean, min and max of ``accuracy_pct`` over seeds for each group in ``by``."""
    g = runs.groupby(list(by), dropna=False, sort=False)["accuracy_pct"]
    return g.agg(mean_pct="mean", min_pct="min", max_pct="max", n="count").reset_index()


def curve_means(runs: pd.DataFrame) -> dict[tuple[str, int | None], float]:
    """``{(net, shots): mean accuracy %}``; ``shots`` is ``None`` for the whole split."""
    out = {}
    for row in summarise(runs, ["net", "shots"]).itertuples():
        shots = None if pd.isna(row.shots) else int(row.shots)
        out[(row.net, shots)] = float(row.mean_pct)
    return out


def shifted_means(trans: pd.DataFrame) -> dict[tuple[str, str], float]:
    """``{(readout, net): mean accuracy %}`` over seeds and every non-zero shift."""
    moved = trans[trans["shift_px"] != 0]
    return {(r, n): float(v) for (r, n), v in
            moved.groupby(["readout", "net"])["accuracy_pct"].mean().items()}


def steps_table(traj: pd.DataFrame, target_pct: float) -> pd.DataFrame:
    """Steps to reach ``target_pct`` per (net, seed); ``None`` where never reached."""
    rows = []
    for (net, seed), g in traj.groupby(["net", "seed"], sort=False):
        curve = list(zip(g["step"], g["accuracy_pct"], strict=True))
        rows.append({"net": net, "seed": int(seed), "steps": steps_to_target(curve, target_pct)})
    return pd.DataFrame(rows, columns=["net", "seed", "steps"])


def median_steps(steps: pd.DataFrame, net: str) -> float | None:
    """Median steps to target over seeds; ``None`` unless every seed reached it."""
    vals = steps.loc[steps["net"] == net, "steps"].tolist()
    if not vals or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in vals):
        return None
    return float(np.median(vals))


# ---------------------------------------------------------------------------- verdict

CLAIM = ("Parameter sharing is a crutch for computation time: a locally connected net, "
         "wired like cortex, learns as well without it.")


def recovery(conv: float, local: float, shared: float) -> float | None:
    """Fraction of the conv-minus-local gap that dynamic sharing closes (1 = all of it).

    ``None`` when there is no gap to close (conv not above local).
    """
    gap = conv - local
    if gap <= 0:
        return None
    return (shared - local) / gap


def decide(gap_full_pp: float, gap_few_pp: float | None, gap_shift_pp: float | None,
           tolerance_pp: float) -> tuple[str, str]:
    """The verdict on :data:`CLAIM` from the measured conv-minus-local gaps (pp).

    Rule:

    - ``"not supported"`` when locally connected falls more than ``tolerance_pp``
      behind conv even on the largest training set (sharing buys accuracy outright);
    - ``"supported"`` when it is within ``tolerance_pp`` (or ahead) on the largest set,
      on the smaller sets on average, and on translated inputs (sharing buys nothing
      measurable here beyond compute);
    - ``"mixed"`` otherwise: close with enough data, but sharing buys sample efficiency
      or translation generalisation.

    A gap that was not measured (``None``) counts as no gap.
    """
    def fmt(v: float | None) -> str:
        return "not measured" if v is None else f"{v:+.1f} pp"

    numbers = (f"conv minus locally connected: {fmt(gap_full_pp)} on the largest training "
               f"set, {fmt(gap_few_pp)} on the smaller sets (mean), {fmt(gap_shift_pp)} on "
               f"shifted digits; tolerance {tolerance_pp:.1f} pp")
    if gap_full_pp > tolerance_pp:
        return "not supported", (f"Locally connected nets fall behind even with all the data "
                                 f"({numbers}).")
    bought = [name for name, gap in (("sample efficiency", gap_few_pp),
                                     ("translation generalisation", gap_shift_pp))
              if gap is not None and gap > tolerance_pp]
    if not bought:
        return "supported", (f"Locally connected nets do as well as conv, or better, on "
                             f"every test here ({numbers}).")
    return "mixed", (f"Locally connected nets come close with all the data, but sharing buys "
                     f"{' and '.join(bought)} ({numbers}).")


def key_numbers(d: Digits, runs: pd.DataFrame, traj: pd.DataFrame, trans: pd.DataFrame,
                sweep: pd.DataFrame, target_pct: float, tolerance_pp: float
                ) -> dict[str, Any]:
    """Every number the chapter states, flat where the prose glues it (verdict: :func:`decide`).

    Accuracies are mean test accuracy over seeds (%); gaps are conv minus locally
    connected (percentage points, positive when conv is ahead). The shift gap is taken
    with the readout on which conv generalises best to shifted digits.
    """
    means = curve_means(runs)
    sizes = sorted({k for _, k in means if k is not None})
    largest = None if any(k is None for _, k in means) else max(sizes)
    few = [k for k in sizes if k != largest]
    out: dict[str, Any] = {
        "n_digits": len(d.y_train) + len(d.y_test), "n_train": len(d.y_train),
        "n_test": len(d.y_test), "min_per_class": d.min_per_class,
        "largest_n_train": int(runs.loc[runs["shots"].isna() if largest is None
                                        else runs["shots"] == largest, "n_train"].iloc[0]),
        "target_pct": target_pct, "tolerance_pp": tolerance_pp,
    }
    for net in NETS:
        out[f"acc_{net}_largest"] = means[(net, largest)]
        for k in sizes:
            if k != largest:
                out[f"acc_{net}_k{k}"] = means[(net, k)]
    out["gap_full_pp"] = means[("conv", largest)] - means[("local", largest)]
    out["gap_few_pp"] = (float(np.mean([means[("conv", k)] - means[("local", k)] for k in few]))
                         if few else None)
    if few:
        out["smallest_k"] = few[0]
        out["gap_smallest_pp"] = means[("conv", few[0])] - means[("local", few[0])]
    steps = steps_table(traj, target_pct)
    for net in NETS:
        out[f"steps_{net}"] = median_steps(steps, net)
    shifted = shifted_means(trans)
    centre = {(r, n): float(v) for (r, n), v in trans[trans["shift_px"] == 0].groupby(
        ["readout", "net"])["accuracy_pct"].mean().items()}
    readouts = sorted({r for r, _ in shifted})
    for r in readouts:
        for net in NETS:
            out[f"shifted_{r}_{net}"] = shifted[(r, net)]
            out[f"centre_{r}_{net}"] = centre[(r, net)]
    if readouts:
        best = max(readouts, key=lambda r: shifted[(r, "conv")])
        out["shift_readout"] = best
        out["gap_shift_pp"] = shifted[(best, "conv")] - shifted[(best, "local")]
        out["recovery_shift"] = recovery(shifted[(best, "conv")], shifted[(best, "local")],
                                         shifted[(best, "local_shared")])
        out["max_shift_px"] = int(trans["shift_px"].max())
    else:
        out["shift_readout"], out["gap_shift_pp"], out["recovery_shift"] = "", None, None
    if len(sweep):
        moved = sweep[sweep["shift_px"] != 0].groupby("share_every")["accuracy_pct"].mean()
        out["sweep"] = [{"share_every": int(p), "shifted_pct": float(v)}
                        for p, v in moved.items()]
        out["sweep_best_period"] = int(moved.idxmax())
        out["sweep_best_pct"] = float(moved.max())
    out["curve"] = summarise(runs, ["net", "shots"]).to_dict("records")
    out["shift"] = summarise(trans, ["readout", "net", "shift_px"]).to_dict("records")
    return out


def prose_texts(numbers: dict[str, Any], num_steps: int) -> dict[str, str]:
    """Formatted strings for the prose: outcome-dependent words, and "not measured" for
    any number a parameter choice left out (so every glued name always exists).
    """
    def pct(key: str) -> str:
        v = numbers.get(key)
        return "not measured" if v is None else f"{v:.1f}%"

    def pp(key: str) -> str:
        v = numbers.get(key)
        return "not measured" if v is None else f"{v:+.1f}"

    def steps(net: str) -> str:
        v = numbers.get(f"steps_{net}")
        return f"{v:.0f}" if v is not None else f"not reached within {num_steps}"

    def ahead(gap: float | None) -> str:
        if gap is None:
            return "not compared with"
        return "ahead of" if gap > 0 else ("level with" if gap == 0 else "behind")

    rec = numbers.get("recovery_shift")
    out = {f"steps_{n}_text": steps(n) for n in NETS}
    for r in READOUTS:
        for n in NETS:
            out[f"shifted_{r}_{n}_text"] = pct(f"shifted_{r}_{n}")
            out[f"centre_{r}_{n}_text"] = pct(f"centre_{r}_{n}")
    out.update({
        "conv_vs_local_full": ahead(numbers["gap_full_pp"]),
        "conv_vs_local_few": ahead(numbers["gap_few_pp"]),
        "gap_full_abs": f"{abs(numbers['gap_full_pp']):.1f}",
        "gap_few_abs": ("no" if numbers["gap_few_pp"] is None
                        else f"{abs(numbers['gap_few_pp']):.1f}"),
        "smallest_k_text": str(numbers.get("smallest_k", "no smaller set")),
        "gap_smallest_text": pp("gap_smallest_pp"),
        "recovery_text": (
            "there is no gap between locally connected and conv on shifted digits for it "
            "to close" if rec is None else
            f"it closes {100 * rec:.0f}% of the gap between locally connected and conv on "
            "shifted digits"),
        "sweep_best_period_text": str(numbers.get("sweep_best_period", "not measured")),
        "sweep_best_pct_text": pct("sweep_best_pct"),
        "shift_readout_text": numbers.get("shift_readout") or "none",
    })
    return out


def positions(in_size: int = SIDE, channels: Sequence[int] = (16, 32)) -> list[int]:
    """Output positions of each locally connected layer (each holds its own filters)."""
    net = digits_net("local", in_size=in_size, channels=tuple(channels), device="meta")
    return [spec.out_shape[-2] * spec.out_shape[-1]
            for spec in layer_specs(net, in_size, in_channels=1)]


# ---------------------------------------------------------------------------- tables


def anchors_table(ours: dict[str, float], our_data: str, device_name: str) -> pd.DataFrame:
    """Published conv/LC/dense accuracies beside ours, one row per (source, data set)."""
    rows = [{"source": a.authors, "data set": a.data_set, "metric": a.metric,
             "conv %": a.conv_pct, "locally connected %": a.local_pct,
             "LC + dynamic sharing %": None, "dense %": a.dense_pct,
             "conv - LC (pp)": a.gap_pp, "note": a.note} for a in ANCHORS]
    rows.append({"source": "this run", "data set": our_data,
                 "metric": f"mean test accuracy over seeds, on {device_name}",
                 "conv %": ours["conv"], "locally connected %": ours["local"],
                 "LC + dynamic sharing %": ours["local_shared"], "dense %": ours["dense"],
                 "conv - LC (pp)": ours["conv"] - ours["local"],
                 "note": "dense: same layer shapes as conv"})
    return pd.DataFrame(rows)


def params_table(channels: Sequence[int], canvas: int, readouts: Sequence[str]
                 ) -> pd.DataFrame:
    """Parameter count of every net, on the 8x8 digits and on the translation canvas."""
    rows = []
    for kind in NETS:
        row: dict[str, Any] = {"net": NET_LABELS[kind],
                               "parameters, 8x8 digits": count_params(kind, SIDE, channels)}
        for r in readouts:
            row[f"parameters, {canvas}x{canvas} canvas, {r} readout"] = count_params(
                kind, canvas, channels, r)
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- timing


def step_time(kind: str, in_size: int, channels: Sequence[int], cfg: TrainConfig,
              device: Any, min_run_time_s: float = 0.2, readout: str = "flatten"
              ) -> dict[str, Any]:
    """Measured time of one training step (forward, backward, update) on random images."""
    from gardenpath.measure.timing import time_fn

    net = build_net(kind, in_size, channels, readout, device=device, seed=0)
    opt = make_optimizer(net, cfg)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(cfg.batch_size, 1, in_size, in_size, generator=gen).to(device)
    y = torch.randint(0, NUM_CLASSES, (cfg.batch_size,), generator=gen).to(device)

    def step() -> None:
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t = time_fn(step, device=device, min_run_time_s=min_run_time_s)
    return {"median_s": t.median_s, "iqr_s": t.iqr_s, "warning": t.warning}


# ---------------------------------------------------------------------------- memory


def memory_estimate(params: dict[str, Any]) -> int:
    """Bytes the chapter's largest net needs: one net is alive at a time.

    For each net on the 8x8 digits and on the canvas: parameters x 4 (weights, gradients
    and two Adam moments) x 4 bytes, plus activations for one batch of the larger of
    ``batch_size`` and the test split (about 540 images): each spatial layer's unfolded
    input (locally connected: B x fan_in x positions) and output, x 3 for the backward
    pass, float32. The data sets themselves are a few MB.
    """
    channels = tuple(params.get("channels", (16, 32)))
    canvas = int(params.get("canvas", 16))
    batch = max(int(params.get("batch_size", 64)), 540)
    readouts = list(params.get("readouts", READOUTS))
    worst = 0
    for kind in NETS:
        for size, outs in ((SIDE, ["flatten"]), (canvas, readouts)):
            for r in outs:
                n_params = count_params(kind, size, channels, r)
                net = digits_net("local" if kind == "local_shared" else kind, in_size=size,
                                 channels=channels, device="meta")
                act = 0
                for spec in layer_specs(net, size, batch_size=batch, in_channels=1):
                    b, c, h, w = spec.in_shape
                    k = spec.module.kernel_size if kind != "dense" else (1, 1)
                    k = k if isinstance(k, tuple) else (k, k)
                    act += b * c * k[0] * k[1] * h * w + math.prod(spec.out_shape)
                worst = max(worst, 16 * n_params + 3 * 4 * act)
    data = 4 * 1797 * (canvas * canvas + SIDE * SIDE) * 2
    return int(worst + data)


# ---------------------------------------------------------------------------- charts


#: Dash pattern per net: the book's conv and dense colours are close, so dense is dashed.
DASHES = {"conv": [1, 0], "local": [1, 0], "local_shared": [1, 0], "dense": [6, 3]}


def _color(nets: Sequence[str] = NETS) -> alt.Color:
    return alt.Color("label:N", title="net",
                     scale=alt.Scale(domain=[NET_LABELS[n] for n in nets],
                                     range=[SHARING_COLORS[n] for n in nets]),
                     sort=[NET_LABELS[n] for n in nets], legend=alt.Legend(labelLimit=320))


def _dash(nets: Sequence[str] = NETS) -> alt.StrokeDash:
    return alt.StrokeDash("label:N", title="net",
                          scale=alt.Scale(domain=[NET_LABELS[n] for n in nets],
                                          range=[DASHES[n] for n in nets]),
                          sort=[NET_LABELS[n] for n in nets],
                          legend=alt.Legend(labelLimit=320))


def curve_chart(runs: pd.DataFrame, n_train_full: int) -> alt.LayerChart:
    """Test accuracy against examples per class: seed points, mean line, min-max band."""
    df = runs.copy()
    per_class = n_train_full / NUM_CLASSES
    df["per_class"] = [per_class if pd.isna(s) else float(s) for s in df["shots"]]
    df["label"] = df["net"].map(NET_LABELS)
    summ = summarise(df, ["net", "label", "per_class"])
    x = alt.X("per_class:Q", title="training examples per class (log scale)",
              scale=alt.Scale(type="log", nice=False, padding=8))
    y = alt.Y("mean_pct:Q", title="test accuracy (%)", scale=alt.Scale(zero=False))
    band = alt.Chart(summ).mark_area(opacity=0.15).encode(
        x=x, y=alt.Y("min_pct:Q", title="test accuracy (%)"), y2="max_pct:Q", color=_color())
    line = alt.Chart(summ).mark_line(point=True).encode(
        x=x, y=y, color=_color(), strokeDash=_dash(),
        tooltip=["label:N", alt.Tooltip("per_class:Q", format=".1f"),
                 alt.Tooltip("mean_pct:Q", format=".1f"), alt.Tooltip("min_pct:Q", format=".1f"),
                 alt.Tooltip("max_pct:Q", format=".1f"), "n:Q"])
    dots = alt.Chart(df).mark_point(opacity=0.35, size=20).encode(
        x=x, y="accuracy_pct:Q", color=_color())
    return (band + line + dots).properties(
        title="Accuracy against training-set size (scikit-learn digits, 8x8)")


def steps_chart(traj: pd.DataFrame, target_pct: float) -> alt.LayerChart:
    """Mean test accuracy against gradient step on the largest training set, with the target."""
    df = traj.groupby(["net", "step"], sort=False)["accuracy_pct"].mean().reset_index()
    df["label"] = df["net"].map(NET_LABELS)
    line = alt.Chart(df).mark_line().encode(
        x=alt.X("step:Q", title="gradient step", scale=alt.Scale(nice=False),
                axis=alt.Axis(tickCount=6)),
        y=alt.Y("accuracy_pct:Q", title="test accuracy (%, mean over seeds)"),
        color=_color(), strokeDash=_dash(),
        tooltip=["label:N", "step:Q", alt.Tooltip("accuracy_pct:Q", format=".1f")])
    rule = alt.Chart(pd.DataFrame({"target": [target_pct]})).mark_rule(
        strokeDash=[4, 4], color="#555").encode(y="target:Q")
    return (line + rule).properties(title="Learning speed on the largest training set")


def sweep_chart(sweep: pd.DataFrame, reference: dict[str, float], readout: str
                ) -> alt.LayerChart:
    """Accuracy on shifted digits against the sharing period, conv and local as rules."""
    moved = sweep[sweep["shift_px"] != 0]
    df = moved.groupby(["share_every", "seed"])["accuracy_pct"].mean().reset_index()
    summ = df.groupby("share_every")["accuracy_pct"].agg(
        mean_pct="mean", min_pct="min", max_pct="max").reset_index()
    summ["label"] = NET_LABELS["local_shared"]
    x = alt.X("share_every:Q", title="steps between sharing phases (log scale)",
              scale=alt.Scale(type="log", nice=False, padding=8))
    y = alt.Y("mean_pct:Q", title="accuracy on shifted digits (%)",
              scale=alt.Scale(domain=[0, 100]))
    line = alt.Chart(summ).mark_line(point=True).encode(
        x=x, y=y, color=_color(),
        tooltip=["share_every:Q", alt.Tooltip("mean_pct:Q", format=".1f"),
                 alt.Tooltip("min_pct:Q", format=".1f"), alt.Tooltip("max_pct:Q", format=".1f")])
    band = alt.Chart(summ).mark_area(opacity=0.15).encode(
        x=x, y="min_pct:Q", y2="max_pct:Q", color=_color())
    refs = pd.DataFrame({"label": [NET_LABELS[k] for k in reference],
                         "mean_pct": list(reference.values())})
    rules = alt.Chart(refs).mark_rule(strokeDash=[5, 3]).encode(
        y="mean_pct:Q", color=_color(), tooltip=["label:N", alt.Tooltip("mean_pct:Q",
                                                                        format=".1f")])
    return (band + line + rules).properties(
        title=f"Dynamic sharing: how often is often enough? ({readout} readout)")


def shift_chart(trans: pd.DataFrame, canvas: int) -> alt.FacetChart:
    """Accuracy against horizontal shift (px) per net, one panel per readout."""
    df = summarise(trans, ["readout", "net", "shift_px"])
    df["label"] = df["net"].map(NET_LABELS)
    base = alt.Chart(df).encode(
        x=alt.X("shift_px:Q", title="shift from the training place (pixels)",
                axis=alt.Axis(tickMinStep=1, format="d")),
        color=_color())
    line = base.mark_line(point=True).encode(
        strokeDash=_dash(),
        y=alt.Y("mean_pct:Q", title="test accuracy (%)", scale=alt.Scale(domain=[0, 100])),
        tooltip=["label:N", "shift_px:Q", alt.Tooltip("mean_pct:Q", format=".1f"),
                 alt.Tooltip("min_pct:Q", format=".1f"), alt.Tooltip("max_pct:Q",
                                                                     format=".1f")])
    band = base.mark_area(opacity=0.15).encode(y="min_pct:Q", y2="max_pct:Q")
    return (band + line).properties(width=250, height=260).facet(
        column=alt.Column("readout:N", title="readout")).properties(
        title=f"Digits moved sideways on a {canvas}x{canvas} canvas")
