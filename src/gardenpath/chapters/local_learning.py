"""Chapter 6, "How local is learning?": five learning rules on one split of the digits.

The essay (Rinkus) says deep learning learns non-locally: a synapse's update needs
gradients sent back from other layers, or samples of a whole layer's state, which no
known neural mechanism supplies, and that this is what makes training long. This module
trains backprop, feedback alignment (Lillicrap et al. 2016), an RBM by contrastive
divergence (Hinton 2002) with a linear readout, Krotov & Hopfield's competing hidden
units (2019) with a linear readout, and a Sparsey-style single-presentation learner
(Rinkus 2010, 2014), all from :mod:`gardenpath.models.rules`, on the same split of
scikit-learn's 8x8 digits, and puts beside each one's test accuracy:

* how non-local its weight update is: the rule's own :class:`~gardenpath.models.rules.Locality`
  record (error values fed back, weights transported, lateral competition values,
  phases, symmetric weights), per example and per learning unit;
* what training cost: passes over the data, weight updates, measured wall time, FLOPs
  and bytes, and the energy those FLOPs and bytes would take on Horowitz's 45 nm table
  (modelled, not measured).

FLOPs are counted, not assumed: PyTorch's ``FlopCounterMode`` runs one training step of
each rule's own code (a backprop or feedback-alignment minibatch, one CD-1 step, one
Krotov-Hopfield step, one readout step) and the count per example is multiplied by the
examples each stage processed. The Sparsey learner's support is a sparse matrix product
that ``FlopCounterMode`` does not see, so its FLOPs come from :func:`sparsey_flops`.

Bytes follow one convention for every rule, :func:`training_bytes`: each weight-update
step reads and writes every weight it changes once and reads its inputs, float32 (4
bytes a value), as if the weights lived in DRAM. The networks here are small enough to
sit in cache, so the DRAM share of the modelled energy is an upper end, and the same
for every rule.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from gardenpath.measure.energy import model_energy
from gardenpath.models.rules import RULES, Rule, SoftmaxReadout, TrainReport, make_rule

FLOAT_BYTES = 4

#: The digits' pixel count (8x8) and class count.
INPUT_DIM, NUM_CLASSES = 64, 10

#: Display names, in the order the chapter lists the rules (least to most local update).
LABELS: dict[str, str] = {
    "backprop": "backprop",
    "feedback_alignment": "feedback alignment",
    "rbm": "RBM (CD-1) + readout",
    "krotov_hopfield": "Krotov-Hopfield + readout",
    "sparsey": "Sparsey-style SDR",
}

#: Work per unit of the Sparsey-style code selection beyond the support sum, in FLOPs:
#: normalise V (1), lambda V - phi (2), the sigmoid (about 3), times eta plus the floor (2),
#: the per-module normalisation (2, sum and divide), max for G (1). An estimate; it is
#: small beside the support, 2 FLOPs per (active input, unit) pair.
CSA_FLOPS_PER_UNIT = 11

#: How the tables name each source (the captions cite them).
SOURCE_NAMES = {"bartunov_2018": "Bartunov et al. 2018",
                "krotov_hopfield_2019": "Krotov & Hopfield 2019 (reproduction)"}

#: Published numbers, with their source and data set. None of them is on our digits.
ANCHORS: list[dict[str, Any]] = [
    {"source": "bartunov_2018", "rule": "backprop", "architecture": "fully connected",
     "dataset": "MNIST", "test_error_pct": 1.48},
    {"source": "bartunov_2018", "rule": "feedback alignment", "architecture": "fully connected",
     "dataset": "MNIST", "test_error_pct": 1.85},
    {"source": "bartunov_2018", "rule": "backprop", "architecture": "locally connected",
     "dataset": "MNIST", "test_error_pct": 1.17},
    {"source": "bartunov_2018", "rule": "feedback alignment",
     "architecture": "locally connected", "dataset": "MNIST", "test_error_pct": 1.26},
    {"source": "krotov_hopfield_2019", "rule": "Krotov-Hopfield + linear readout",
     "architecture": "3,000 hidden units (an independent reproduction)", "dataset": "MNIST",
     "test_error_pct": round(100 - 97.39, 2)},
]


@dataclass(frozen=True)
class Settings:
    """The chapter's knobs, from the notebook's parameters cell."""

    rules: tuple[str, ...]
    seed: int = 0
    num_seeds: int = 3
    test_fraction: float = 0.3
    train_fraction: float = 1.0
    hidden: int = 256
    num_epochs: int = 30
    rbm_hidden: int = 256
    kh_hidden: int = 400
    kh_epochs: int = 100
    readout_epochs: int = 50
    sparsey_Q: int = 48
    sparsey_K: int = 256
    sparsey_weight_bits: int = 1
    tolerance: float = 0.02

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Settings:
        """Settings from a parameters dict (unknown keys ignored); checks the rule names."""
        names = tuple(params.get("rules", LABELS))
        unknown = [n for n in names if n not in RULES]
        if unknown or not names:
            raise ValueError(f"rules must be a nonempty list from {sorted(RULES)}; "
                             f"got {list(names)}")
        fields = {k: params[k] for k in cls.__dataclass_fields__ if k in params and k != "rules"}
        return cls(rules=names, **fields)


def build_rule(name: str, s: Settings) -> Rule:
    """The rule ``name`` with the chapter's sizes and epochs."""
    if name in ("backprop", "feedback_alignment"):
        return make_rule(name, hidden=(s.hidden,), num_epochs=s.num_epochs)
    if name == "rbm":
        return make_rule(name, n_hidden=s.rbm_hidden, num_epochs=s.num_epochs,
                         readout_epochs=s.readout_epochs)
    if name == "krotov_hopfield":
        return make_rule(name, n_hidden=s.kh_hidden, num_epochs=s.kh_epochs,
                         readout_epochs=s.readout_epochs)
    if name == "sparsey":
        return make_rule(name, Q=s.sparsey_Q, K=s.sparsey_K)
    return make_rule(name)


def network(name: str, s: Settings, input_dim: int = INPUT_DIM,
            num_classes: int = NUM_CLASSES) -> str:
    """A short description of the network a rule trains, for the tables."""
    if name in ("backprop", "feedback_alignment"):
        return f"{input_dim}-{s.hidden}-{num_classes} fully connected"
    if name == "rbm":
        return f"{s.rbm_hidden} hidden units + linear readout"
    if name == "krotov_hopfield":
        return f"{s.kh_hidden} hidden units + linear readout"
    if name == "sparsey":
        return f"macrocolumn Q={s.sparsey_Q}, K={s.sparsey_K}, label votes"
    return name


# ------------------------------------------------------------------------------ locality


def learning_units(rule: Rule) -> int:
    """Units whose input synapses learn with the rule's non-local signal (not the readout).

    Backprop and feedback alignment: the hidden units (the output layer's delta rule is the
    same for every rule and is not counted); RBM and Krotov-Hopfield: their hidden units;
    Sparsey: the macrocolumn's Q*K units.
    """
    if rule.name in ("backprop", "feedback_alignment"):
        return int(sum(rule.hidden))
    if rule.name in ("rbm", "krotov_hopfield"):
        return int(rule.n_hidden)
    if rule.name == "sparsey":
        return int(rule.Q * rule.K)
    raise ValueError(f"no learning-unit count for rule {rule.name!r}")


def is_local(rule: Rule, input_dim: int = INPUT_DIM, num_classes: int = NUM_CLASSES) -> bool:
    """No error fed back, no weights transported, one phase, no weight symmetry.

    Lateral signals (competition among units of the same layer) are allowed: they are the
    non-locality that Krotov-Hopfield and Sparsey keep, and they are reported apart.
    """
    loc = rule.locality(input_dim, num_classes)
    return (loc.feedback_floats == 0 and loc.transported_floats == 0 and loc.phases == 1
            and not loc.symmetric_weights)


def locality_rows(rules: dict[str, Rule], input_dim: int = INPUT_DIM,
                  num_classes: int = NUM_CLASSES) -> list[dict[str, Any]]:
    """One row per rule: its non-local signals per example, from the rule's metadata."""
    rows = []
    for name, rule in rules.items():
        loc = rule.locality(input_dim, num_classes)
        units = learning_units(rule)
        rows.append({
            "rule": name,
            "label": LABELS.get(name, name),
            "signals": loc.signals,
            "feedback_floats": loc.feedback_floats,
            "transported_floats": loc.transported_floats,
            "lateral_floats": loc.lateral_floats,
            "phases": loc.phases,
            "symmetric_weights": loc.symmetric_weights,
            "nonlocal_bytes": loc.nonlocal_bytes,
            "learning_units": units,
            "nonlocal_floats_per_unit": loc.nonlocal_floats / units,
            "local": is_local(rule, input_dim, num_classes),
        })
    return rows


# ------------------------------------------------------------------------------ FLOPs


def _count(fn: Any) -> int:
    """FLOPs (2 per multiply-accumulate) that ``fn()`` runs, by ``FlopCounterMode``."""
    with FlopCounterMode(display=False) as mode:
        fn()
    return int(mode.get_total_flops())


def mlp_step_flops_per_example(rule: Rule, x: torch.Tensor, y: torch.Tensor) -> float:
    """Counted FLOPs per example of one backprop/FA minibatch: forward, loss, backward.

    For hidden sizes h_1..h_L and S = sum of the layers' in*out products, backprop needs
    2 S (forward) + 2 S (weight gradients) + 2 (S - d h_1) (input gradients, none for the
    first layer); see the tests. Feedback alignment does the same arithmetic with B in
    place of W^T, so both are counted on an ``nn.Linear`` network of the rule's shape
    (our feedback-alignment layer also computes the first layer's unused input gradient,
    2 d h_1 FLOPs per example that the algorithm does not need; they are not counted).
    """
    from gardenpath.models.rules import BackpropMLP

    net = BackpropMLP(hidden=rule.hidden, num_classes=rule.num_classes).build(x.shape[1])

    def step() -> None:
        torch.nn.functional.cross_entropy(net(x), y).backward()

    return _count(step) / len(x)


def readout_flops_per_example_epoch(feats: torch.Tensor, y: np.ndarray,
                                    num_classes: int = NUM_CLASSES) -> float:
    """Counted FLOPs per example and epoch of the delta-rule softmax readout."""
    readout = SoftmaxReadout(num_classes, num_epochs=1, batch_size=len(feats))
    return _count(lambda: readout.fit(feats, y)) / len(feats)


def sparsey_flops(rule: Rule, x: torch.Tensor) -> int:
    """FLOPs of storing every row of ``x`` once in the Sparsey-style learner (formula).

    Per item with M active inputs: the support is a sparse product over the M active rows
    of the (N, Q*K) weights, 2 M Q K FLOPs as implemented (float multiply-accumulates,
    although the weights are 0/1); the code selection adds about
    :data:`CSA_FLOPS_PER_UNIT` per unit; the label vote adds Q.
    """
    units = rule.Q * rule.K
    active = rule.encode(x.numpy()).sum(1)  # (n,) M per item
    per_item = 2 * active * units + CSA_FLOPS_PER_UNIT * units + rule.Q
    return int(per_item.sum())


def training_flops(rule: Rule, report: TrainReport, x: torch.Tensor, y: np.ndarray) -> int:
    """FLOPs the fitted ``rule`` spent in training on ``x`` (see the module docstring)."""
    n, batch = len(x), min(len(x), 32)
    xb, yb = x[:batch], torch.as_tensor(y[:batch], dtype=torch.int64)
    if rule.name in ("backprop", "feedback_alignment"):
        return round(mlp_step_flops_per_example(rule, xb, yb) * report.passes * n)
    if rule.name == "rbm":
        rbm = copy.deepcopy(rule.rbm)
        cd = _count(lambda: rbm.cd_step(xb)) / batch
        recon = _count(lambda: rbm.reconstruction_error(x))
        feats_flops = _count(lambda: rbm.hidden_probs(x))
        feats = rbm.hidden_probs(x)
        readout = readout_flops_per_example_epoch(feats[:batch], y[:batch])
        epochs = report.passes
        return round(cd * epochs * n + recon * (epochs + 1) + feats_flops
                     + readout * rule.readout_epochs * n)
    if rule.name == "krotov_hopfield":
        layer = copy.deepcopy(rule.layer)
        step = _count(lambda: layer.step(xb, 0.0)) / batch
        feats_flops = _count(lambda: rule.features(x))
        feats = rule.features(x)
        readout = readout_flops_per_example_epoch(feats[:batch], y[:batch])
        return round(step * report.passes * n + feats_flops
                     + readout * rule.readout_epochs * n)
    if rule.name == "sparsey":
        return sparsey_flops(rule, x)
    raise ValueError(f"no FLOP count for rule {rule.name!r}")


# ------------------------------------------------------------------------------ bytes


def _readout_bytes(features: int, n: int, readout_epochs: int, batch_size: int = 32,
                   num_classes: int = NUM_CLASSES) -> int:
    """Readout traffic: each step reads and writes its F*C + C weights, reads its inputs."""
    steps = readout_epochs * math.ceil(n / batch_size)
    params = features * num_classes + num_classes
    return FLOAT_BYTES * (2 * params * steps + readout_epochs * n * features)


def training_bytes(rule: Rule, report: TrainReport, x: torch.Tensor,
                   sparsey_weight_bits: int = 1) -> int:
    """Bytes a training run must move if the weights live in DRAM (a model).

    Convention, the same for every rule: each weight-update step reads and writes every
    weight it changes once, reads any fixed matrix it needs (feedback alignment's B), and
    reads its input values once. For a minibatch rule with P weights, S steps, E epochs
    over n examples of d values: ``4 (2 P S + E n d)`` bytes. The Sparsey-style learner
    updates one item at a time and touches only the M active inputs' rows of its (N, Q*K)
    weights: ``b/8 (M Q K + M Q) + 4 (M + Q)`` bytes per item for b-bit weights (read
    the rows, write the winners' weights; read the active indices, count the label
    votes). Its weights are binary, so b = 1 is what the algorithm needs; our
    implementation stores them as float32 (b = 32).
    """
    n, d = x.shape
    if rule.name in ("backprop", "feedback_alignment"):
        params = sum(p.numel() for p in rule.net.parameters())
        fixed = sum(b.numel() for b in rule.net.buffers())  # FA's feedback matrices
        steps = report.weight_updates
        return FLOAT_BYTES * ((2 * params + fixed) * steps + int(report.passes) * n * d)
    if rule.name in ("rbm", "krotov_hopfield"):
        h = rule.n_hidden
        params = d * h + ((d + h) if rule.name == "rbm" else 0)
        readout_steps = rule.readout_epochs * math.ceil(n / 32)
        steps = report.weight_updates - readout_steps
        own = FLOAT_BYTES * (2 * params * steps + int(report.passes) * n * d)
        return own + _readout_bytes(h, n, rule.readout_epochs)
    if rule.name == "sparsey":
        active = rule.encode(x.numpy()).sum(1).double()  # (n,) M per item
        weights = sparsey_weight_bits / 8 * (active * rule.Q * rule.K + active * rule.Q)
        per_item = weights + FLOAT_BYTES * (active + rule.Q)
        return int(per_item.sum())
    raise ValueError(f"no byte count for rule {rule.name!r}")


# ------------------------------------------------------------------------------ experiment


def split(seed: int, test_fraction: float, train_fraction: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits split for ``seed``; ``train_fraction`` < 1 keeps a stratified head."""
    from gardenpath.data import k_shot, load_digits_split

    xtr, xte, ytr, yte = load_digits_split(test_fraction=test_fraction, seed=seed)
    if train_fraction < 1.0:
        per_class = max(1, int(np.bincount(ytr).min() * train_fraction))
        xtr, ytr = k_shot(xtr, ytr, per_class, seed=seed)
    return xtr, xte, ytr, yte


def run_rule(name: str, s: Settings, data: tuple[np.ndarray, ...], seed: int,
             time_predict: bool = True) -> dict[str, Any]:
    """Train one rule on ``data`` and return its row: accuracy, cost, locality."""
    from gardenpath.measure.timing import time_fn

    xtr, xte, ytr, yte = data
    rule = build_rule(name, s)
    report = rule.fit(xtr, ytr, seed=seed)
    acc = rule.score(xte, yte)
    x = torch.as_tensor(xtr)
    flops = training_flops(rule, report, x, ytr)
    nbytes = training_bytes(rule, report, x, s.sparsey_weight_bits)
    energy = model_energy(flops, nbytes, dtype_bits=32, time_s=report.train_time_s)
    readout_passes = float(report.extra.get("readout_passes", 0))
    row = {
        "rule": name, "label": LABELS.get(name, name), "seed": seed,
        "network": network(name, s),
        "n_train": report.n_train, "n_test": len(yte), "test_accuracy": acc,
        "passes": float(report.passes), "readout_passes": readout_passes,
        "weight_updates": report.weight_updates, "presentations": report.presentations,
        "train_time_s": report.train_time_s, "train_flops": flops, "train_bytes": nbytes,
        "energy_j": energy.energy_j,
        "energy_arithmetic_j": energy.breakdown_j["arithmetic"],
        "energy_memory_j": energy.breakdown_j["dram"] + energy.breakdown_j["sram"],
        "energy_method": energy.method,
        "nonlocal_bytes": rule.nonlocal_bytes_per_example(xtr.shape[1], NUM_CLASSES),
        "local": is_local(rule, xtr.shape[1], NUM_CLASSES),
    }
    if name == "sparsey":  # the same, with weights stored as float32 as implemented
        row["energy_j_float32"] = model_energy(flops, training_bytes(rule, report, x, 32)
                                               ).energy_j
    if time_predict:
        t = time_fn(lambda: rule.predict(xte), device="cpu", min_run_time_s=0.1)
        row["predict_s_per_example"] = t.median_s / len(xte)
    return row


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per rule: mean, min and max test accuracy over seeds; mean of every cost column."""
    out = []
    order = list(dict.fromkeys(r["rule"] for r in rows))
    for name in order:
        rs = [r for r in rows if r["rule"] == name]
        acc = np.array([r["test_accuracy"] for r in rs])
        mean = {k: float(np.mean([r[k] for r in rs]))
                for k in ("passes", "readout_passes", "weight_updates", "presentations",
                          "train_time_s", "train_flops", "train_bytes", "energy_j",
                          "energy_arithmetic_j", "energy_memory_j")}
        item = {"rule": name, "label": rs[0]["label"], "network": rs[0].get("network", ""),
                "seeds": len(rs),
                "accuracy": float(acc.mean()), "accuracy_min": float(acc.min()),
                "accuracy_max": float(acc.max()), "nonlocal_bytes": rs[0]["nonlocal_bytes"],
                "local": rs[0]["local"], **mean}
        item["memory_share"] = item["energy_memory_j"] / item["energy_j"]
        out.append(item)
    return out


def decide(summary: list[dict[str, Any]], tolerance: float) -> tuple[str, str, dict[str, Any]]:
    """The verdict, its reason, and the numbers that decide it (all deterministic).

    The measurable part of the claim: non-local learning is what makes training costly,
    so a local rule should learn as well for less. Let L be the most accurate local rule
    (no error feedback, no transported weights, one phase, no symmetric weights) and B
    backprop. Cost is the modelled training energy (counted FLOPs and modelled bytes),
    which a rerun with the same seed reproduces; measured time is reported beside it
    but does not decide, because it depends on the machine and its load.

    * ``supported``: L is within ``tolerance`` of B's accuracy at less modelled energy;
    * ``not supported``: L falls short by more than ``tolerance`` at no less energy;
    * ``mixed``: as accurate but dearer, or cheaper but less accurate.
    """
    by = {r["rule"]: r for r in summary}
    if "backprop" not in by:
        raise ValueError("the verdict compares with backprop: keep it in `rules`")
    local = [r for r in summary if r["local"]]
    if not local:
        raise ValueError("the verdict needs at least one local rule (krotov_hopfield, sparsey)")
    bp = by["backprop"]
    best = max(local, key=lambda r: r["accuracy"])
    gap = bp["accuracy"] - best["accuracy"]
    energy_ratio = best["energy_j"] / bp["energy_j"]
    flops_ratio = best["train_flops"] / bp["train_flops"]
    close, cheaper = gap <= tolerance, energy_ratio < 1
    if close and cheaper:
        verdict = "supported"
    elif not close and not cheaper:
        verdict = "not supported"
    else:
        verdict = "mixed"
    label = LABELS.get(best["rule"], best["rule"])
    numbers = {
        "best_local_rule": label,
        "best_local_accuracy": best["accuracy"],
        "backprop_accuracy": bp["accuracy"],
        "accuracy_gap_pct": 100 * gap,
        "accuracy_gap_phrase": gap_phrase(100 * gap),
        "tolerance_pct": 100 * tolerance,
        "best_local_energy_ratio": energy_ratio,
        "best_local_flops_ratio": flops_ratio,
        "best_local_passes": best["passes"] + best["readout_passes"],
        "backprop_passes": bp["passes"],
    }
    why = (f"the most accurate local rule ({label}) reaches {best['accuracy']:.3f} test "
           f"accuracy on the digits vs backprop's {bp['accuracy']:.3f}, so it "
           f"{gap_phrase(100 * gap)} (tolerance {100 * tolerance:.1f}), for "
           f"{energy_ratio:.2f}x backprop's modelled training energy "
           f"({flops_ratio:.2f}x its FLOPs)")
    return verdict, why, numbers


def run(params: dict[str, Any]) -> dict[str, Any]:
    """The whole experiment: every rule on every seed's split; rows, summary, locality."""
    s = Settings.from_params(params)
    rows = []
    for seed in range(s.seed, s.seed + s.num_seeds):
        data = split(seed, s.test_fraction, s.train_fraction)
        torch.manual_seed(seed)
        for name in s.rules:
            rows.append(run_rule(name, s, data, seed))
    rules = {name: build_rule(name, s) for name in s.rules}
    f32 = [r["energy_j_float32"] for r in rows if "energy_j_float32" in r]
    return {"settings": s, "rows": rows, "summary": summarise(rows),
            "locality": locality_rows(rules),
            "sparsey_energy_float32_j": float(np.mean(f32)) if f32 else None}


def memory_estimate(params: dict[str, Any]) -> int:
    """Bytes the chapter needs at most (the Sparsey learner's float32 weights dominate).

    Sparsey: N inputs (36 patch positions x 511 patterns for 8x8 digits) x Q x K float32,
    plus the same again for a sparse product's workspace; the other rules are a few MB;
    plus 300 MB for the interpreter, torch and the data.
    """
    q, k = int(params.get("sparsey_Q", 48)), int(params.get("sparsey_K", 256))
    sparsey = 36 * 511 * q * k * FLOAT_BYTES if "sparsey" in params.get("rules", ["sparsey"]) \
        else 0
    kh = int(params.get("kh_hidden", 400)) * INPUT_DIM * 8 * 4
    return int(2 * sparsey + kh + 300e6)


# ------------------------------------------------------------------------------ report


def flat_numbers(summary: list[dict[str, Any]], locality: list[dict[str, Any]],
                 verdict_numbers: dict[str, Any], sparsey_energy_float32_j: float | None = None
                 ) -> dict[str, Any]:
    """Every deterministic number the page quotes, by flat name (``accuracy_backprop``...)."""
    numbers: dict[str, Any] = dict(verdict_numbers)
    for r in summary:
        n = r["rule"]
        numbers.update({
            f"accuracy_{n}": r["accuracy"], f"accuracy_min_{n}": r["accuracy_min"],
            f"accuracy_max_{n}": r["accuracy_max"], f"error_pct_{n}": 100 * (1 - r["accuracy"]),
            f"passes_{n}": r["passes"], f"readout_passes_{n}": r["readout_passes"],
            f"weight_updates_{n}": r["weight_updates"],
            f"presentations_{n}": r["presentations"], f"train_gflops_{n}": r["train_flops"] / 1e9,
            f"train_mbytes_{n}": r["train_bytes"] / 1e6, f"energy_mj_{n}": 1e3 * r["energy_j"],
            f"memory_share_pct_{n}": 100 * r["memory_share"],
        })
    for r in locality:
        n = r["rule"]
        numbers.update({f"nonlocal_bytes_{n}": r["nonlocal_bytes"],
                        f"nonlocal_floats_per_unit_{n}": r["nonlocal_floats_per_unit"],
                        f"learning_units_{n}": r["learning_units"]})
    if summary:
        numbers["seeds"] = summary[0]["seeds"]
        shares = [100 * r["memory_share"] for r in summary]
        numbers["memory_share_pct_min"], numbers["memory_share_pct_max"] = min(shares), max(shares)
    if sparsey_energy_float32_j is not None:
        numbers["energy_mj_sparsey_float32"] = 1e3 * sparsey_energy_float32_j
    return numbers


def measurements(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Machine readings: training and prediction time per rule (median over seeds)."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["rule"] for r in rows):
        rs = [r for r in rows if r["rule"] == name]
        out[f"train_time_s_{name}"] = float(np.median([r["train_time_s"] for r in rs]))
        out[f"train_time_s_min_{name}"] = float(min(r["train_time_s"] for r in rs))
        out[f"train_time_s_max_{name}"] = float(max(r["train_time_s"] for r in rs))
        if "predict_s_per_example" in rs[0]:
            out[f"predict_us_per_example_{name}"] = 1e6 * float(
                np.median([r["predict_s_per_example"] for r in rs]))
    return out


def locality_table(locality: list[dict[str, Any]]) -> Any:
    """The non-locality table (a pandas Styler) for the page."""
    import pandas as pd

    df = pd.DataFrame([{
        "rule": r["label"],
        "error values fed back": r["feedback_floats"],
        "weights transported": r["transported_floats"],
        "lateral values": r["lateral_floats"],
        "phases": r["phases"],
        "symmetric weights": "yes" if r["symmetric_weights"] else "no",
        "non-local bytes / example": r["nonlocal_bytes"],
        "learning units": r["learning_units"],
        "non-local values / unit": r["nonlocal_floats_per_unit"],
        "local (no feedback, 1 phase)": "yes" if r["local"] else "no",
    } for r in locality])
    return (df.style.hide(axis="index")
            .format({"non-local values / unit": "{:.1f}", "non-local bytes / example": "{:,}",
                     "error values fed back": "{:,}", "weights transported": "{:,}",
                     "lateral values": "{:,}", "learning units": "{:,}"}))


def cost_table(summary: list[dict[str, Any]], times: dict[str, Any]) -> Any:
    """Accuracy and training cost per rule (a pandas Styler)."""
    import pandas as pd

    df = pd.DataFrame([{
        "rule": r["label"],
        "test accuracy (mean)": r["accuracy"],
        "min-max over seeds": f"{r['accuracy_min']:.3f}-{r['accuracy_max']:.3f}",
        "passes (+ readout)": (f"{r['passes']:g} + {r['readout_passes']:g}"
                               if r["readout_passes"] else f"{r['passes']:g}"),
        "weight updates": r["weight_updates"],
        "examples shown": r["presentations"],
        "training GFLOP": r["train_flops"] / 1e9,
        "training MB moved (model)": r["train_bytes"] / 1e6,
        "energy mJ (modelled, Horowitz 45 nm)": 1e3 * r["energy_j"],
        "share from moving data": r["memory_share"],
        "training time s (measured)": times.get(f"train_time_s_{r['rule']}"),
    } for r in summary])
    return (df.style.hide(axis="index")
            .format({"test accuracy (mean)": "{:.3f}", "weight updates": "{:,.0f}",
                     "examples shown": "{:,.0f}", "training GFLOP": "{:.2f}",
                     "training MB moved (model)": "{:,.0f}",
                     "energy mJ (modelled, Horowitz 45 nm)": "{:.1f}",
                     "share from moving data": "{:.0%}", "training time s (measured)": "{:.2f}"}))


def anchor_table(summary: list[dict[str, Any]]) -> Any:
    """Published test errors (MNIST) beside ours (scikit-learn digits), one row each."""
    import pandas as pd

    rows = [{"source": SOURCE_NAMES[a["source"]], "rule": a["rule"], "network": a["architecture"],
             "data set": a["dataset"], "test error %": a["test_error_pct"]} for a in ANCHORS]
    for r in summary:
        rows.append({"source": "this chapter", "rule": r["label"],
                     "network": r.get("network", ""), "data set": "sklearn digits (8x8)",
                     "test error %": 100 * (1 - r["accuracy"])})
    return pd.DataFrame(rows).style.hide(axis="index").format({"test error %": "{:.2f}"})


def accuracy_locality_chart(summary: list[dict[str, Any]]) -> Any:
    """Test accuracy against non-local bytes per example (symlog axis: the RBM's is 0)."""
    import altair as alt
    import pandas as pd

    df = pd.DataFrame([{"rule": r["label"], "nonlocal_bytes": r["nonlocal_bytes"],
                        "accuracy": r["accuracy"], "lo": r["accuracy_min"],
                        "hi": r["accuracy_max"],
                        "update": "local (no feedback, one phase)" if r["local"]
                        else "error feedback or two phases"} for r in summary])
    top = 10 ** math.ceil(math.log10(2 * max(1, int(df["nonlocal_bytes"].max()))))
    x = alt.X("nonlocal_bytes:Q", scale=alt.Scale(type="symlog", constant=1, domain=[-1, top]),
              axis=alt.Axis(values=[0, 10, 100, 1000, 10000, 100000, 1000000], format=",d"),
              title="non-local signal per training example (bytes, float32; symlog axis)")
    base = alt.Chart(df)
    points = base.mark_point(size=120, filled=True).encode(
        x=x, y=alt.Y("accuracy:Q", scale=alt.Scale(zero=False, padding=12),
                     title="test accuracy (digits)"),
        color=alt.Color("rule:N", sort=None, title="rule", legend=alt.Legend(labelLimit=260)),
        shape=alt.Shape("update:N", title="weight update", legend=alt.Legend(labelLimit=260)),
        tooltip=["rule", "nonlocal_bytes", alt.Tooltip("accuracy:Q", format=".3f")])
    bars = base.mark_rule().encode(x=x, y="lo:Q", y2="hi:Q",
                                   color=alt.Color("rule:N", sort=None))
    return (bars + points).properties(
        title="Accuracy against how much non-local signal each update needs")


def accuracy_energy_chart(summary: list[dict[str, Any]]) -> Any:
    """Test accuracy against modelled training energy (log axis)."""
    import altair as alt
    import pandas as pd

    df = pd.DataFrame([{"rule": r["label"], "energy_mj": 1e3 * r["energy_j"],
                        "accuracy": r["accuracy"], "lo": r["accuracy_min"],
                        "hi": r["accuracy_max"], "passes": r["passes"] + r["readout_passes"],
                        "updates": r["weight_updates"]} for r in summary])
    x = alt.X("energy_mj:Q", scale=alt.Scale(type="log", padding=12),
              title="training energy, mJ (modelled: Horowitz 45 nm; log axis)")
    base = alt.Chart(df)
    points = base.mark_point(size=120, filled=True).encode(
        x=x, y=alt.Y("accuracy:Q", scale=alt.Scale(zero=False, padding=12),
                     title="test accuracy (digits)"),
        color=alt.Color("rule:N", sort=None, title="rule", legend=alt.Legend(labelLimit=260)),
        tooltip=["rule", alt.Tooltip("energy_mj:Q", format=".2f"), "passes", "updates",
                 alt.Tooltip("accuracy:Q", format=".3f")])
    bars = base.mark_rule().encode(x=x, y="lo:Q", y2="hi:Q",
                                   color=alt.Color("rule:N", sort=None))
    return (bars + points).properties(title="Accuracy against modelled training energy")


def anchor_numbers() -> dict[str, float]:
    """The published test errors, by flat name, for the page's prose (they are citations)."""
    keys = ["anchor_bp_fc", "anchor_fa_fc", "anchor_bp_lc", "anchor_fa_lc", "anchor_kh"]
    return {k: a["test_error_pct"] for k, a in zip(keys, ANCHORS, strict=True)}


def gap_phrase(gap_points: float) -> str:
    """``"gives up 1.2 points of accuracy"`` or ``"gains 0.4 points"`` (never a negative)."""
    if gap_points >= 0:
        return f"gives up {gap_points:.1f} points of accuracy"
    return f"gains {-gap_points:.1f} points of accuracy"


def local_sentence(summary: list[dict[str, Any]], tolerance: float) -> str:
    """One clause per local rule: accuracy given up and modelled energy, against backprop."""
    by = {r["rule"]: r for r in summary}
    bp = by.get("backprop")
    if bp is None:
        return ""
    parts = []
    for r in summary:
        if not r["local"]:
            continue
        gap = 100 * (bp["accuracy"] - r["accuracy"])
        within = "within" if gap <= 100 * tolerance else "outside"
        ratio = r["energy_j"] / bp["energy_j"]
        passes = r["passes"] + r["readout_passes"]
        parts.append(f"{r['label']} {gap_phrase(gap)} ({within} the tolerance) for "
                     f"{ratio:.2f} times backprop's modelled energy, in {passes:g} "
                     f"pass{'' if passes == 1 else 'es'} over the data")
    return "; ".join(parts) + "." if parts else ""
