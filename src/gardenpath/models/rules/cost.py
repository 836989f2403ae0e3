"""What a learning rule's training costs, and how non-local its update is, counted the same
way for every rule (chapter "How local is learning?").

* **Locality**: from each rule's :class:`~gardenpath.models.rules.base.Locality` record,
  the non-local bytes one training example sends to the learning synapses, with and
  without the lateral (same-layer competition) values.
* **FLOPs**: counted by PyTorch's ``FlopCounterMode`` on one training step of each rule's
  own code, times the examples each stage processed; the Sparsey learner's sparse support
  is not seen by the counter, so :func:`sparsey_flops` gives it by formula.
* **Bytes**: :func:`training_bytes`, one convention for every rule: each weight-update
  step reads and writes every weight it changes once and reads its inputs, as if the
  weights lived in DRAM, at ``weight_bits`` per weight.
* **Precision**: :data:`LOWEST_PRECISION` is the narrowest number format each rule is run
  at here; :func:`accuracy_at_lowest` measures its test accuracy with its learnt weights
  and its inputs rounded to that format, and :func:`training_energy` models the training
  energy at fp32 or at that format (Horowitz's 45 nm table; modelled, not measured).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from gardenpath.constants import FP32_BYTES
from gardenpath.measure.energy import model_energy
from gardenpath.models.rules.base import Rule, SoftmaxReadout, TrainReport

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


def is_local(rule: Rule, input_dim: int, num_classes: int = 10) -> bool:
    """No error fed back, no weights transported, one phase, no weight symmetry.

    Lateral signals (competition among units of the same layer) are allowed: they are the
    non-locality that Krotov-Hopfield and Sparsey keep, and they are counted apart.
    """
    loc = rule.locality(input_dim, num_classes)
    return (loc.feedback_floats == 0 and loc.transported_floats == 0 and loc.phases == 1
            and not loc.symmetric_weights)


def locality_row(rule: Rule, input_dim: int, num_classes: int = 10) -> dict[str, Any]:
    """The rule's non-local signals per training example, from its own record.

    ``nonlocal_bytes`` counts every value a learning unit needs beyond its own inputs and
    itself (errors fed back, weights transported, lateral values), 4 bytes each;
    ``nonlocal_bytes_no_lateral`` leaves out the lateral values.
    """
    loc = rule.locality(input_dim, num_classes)
    units = learning_units(rule)
    return {
        "rule": rule.name, "signals": loc.signals,
        "feedback_floats": loc.feedback_floats, "transported_floats": loc.transported_floats,
        "lateral_floats": loc.lateral_floats, "phases": loc.phases,
        "symmetric_weights": loc.symmetric_weights,
        "nonlocal_bytes": loc.nonlocal_bytes,
        "nonlocal_bytes_no_lateral": FP32_BYTES * (loc.feedback_floats
                                                    + loc.transported_floats),
        "learning_units": units, "nonlocal_floats_per_unit": loc.nonlocal_floats / units,
        "local": is_local(rule, input_dim, num_classes),
    }


# ------------------------------------------------------------------------------ FLOPs

#: Work per unit of the Sparsey-style code selection beyond the support sum, in FLOPs:
#: normalise V (1), lambda V - phi (2), the sigmoid (about 3), times eta plus the floor (2),
#: the per-module normalisation (2, sum and divide), max for G (1). An estimate; it is
#: small beside the support, 2 FLOPs per (active input, unit) pair.
CSA_FLOPS_PER_UNIT = 11


def _count(fn: Callable[[], Any]) -> int:
    """FLOPs (2 per multiply-accumulate) that ``fn()`` runs, by ``FlopCounterMode``."""
    with FlopCounterMode(display=False) as mode:
        fn()
    return int(mode.get_total_flops())


def mlp_step_flops_per_example(rule: Rule, x: torch.Tensor, y: torch.Tensor) -> float:
    """Counted FLOPs per example of one backprop/FA minibatch: forward, loss, backward.

    For hidden sizes h_1..h_L and S = sum of the layers' in*out products, backprop needs
    2 S (forward) + 2 S (weight gradients) + 2 (S - d h_1) (input gradients, none for the
    first layer). Feedback alignment does the same arithmetic with B in place of W^T, so
    both are counted on an ``nn.Linear`` network of the rule's shape.
    """
    from gardenpath.models.rules.backprop import BackpropMLP

    net = BackpropMLP(hidden=rule.hidden, num_classes=rule.num_classes).build(x.shape[1])

    def step() -> None:
        torch.nn.functional.cross_entropy(net(x), y).backward()

    return _count(step) / len(x)


def readout_flops_per_example_epoch(feats: torch.Tensor, y: np.ndarray,
                                    num_classes: int) -> float:
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
    c = rule.num_classes
    xb, yb = x[:batch], torch.as_tensor(y[:batch], dtype=torch.int64)
    if rule.name in ("backprop", "feedback_alignment"):
        return round(mlp_step_flops_per_example(rule, xb, yb) * report.passes * n)
    if rule.name == "rbm":
        rbm = copy.deepcopy(rule.rbm)
        cd = _count(lambda: rbm.cd_step(xb)) / batch
        recon = _count(lambda: rbm.reconstruction_error(x))
        feats_flops = _count(lambda: rbm.hidden_probs(x))
        feats = rbm.hidden_probs(x)
        readout = readout_flops_per_example_epoch(feats[:batch], y[:batch], c)
        epochs = report.passes
        return round(cd * epochs * n + recon * (epochs + 1) + feats_flops
                     + readout * rule.readout_epochs * n)
    if rule.name == "krotov_hopfield":
        layer = copy.deepcopy(rule.layer)
        step = _count(lambda: layer.step(xb, 0.0)) / batch
        feats_flops = _count(lambda: rule.features(x))
        feats = rule.features(x)
        readout = readout_flops_per_example_epoch(feats[:batch], y[:batch], c)
        return round(step * report.passes * n + feats_flops
                     + readout * rule.readout_epochs * n)
    if rule.name == "sparsey":
        return sparsey_flops(rule, x)
    raise ValueError(f"no FLOP count for rule {rule.name!r}")


# ------------------------------------------------------------------------------ bytes


def _readout_bytes(features: int, n: int, readout: SoftmaxReadout, weight_bits: int) -> int:
    """Readout traffic: each step reads and writes its F*C + C weights, reads its inputs."""
    steps = readout.num_epochs * math.ceil(n / readout.batch_size)
    params = features * readout.num_classes + readout.num_classes
    return round(weight_bits / 8 * (2 * params * steps + readout.num_epochs * n * features))


def training_bytes(rule: Rule, report: TrainReport, x: torch.Tensor,
                   weight_bits: int = 32) -> int:
    """Bytes a training run must move if the weights live in DRAM (a model).

    Convention, the same for every rule: each weight-update step reads and writes every
    weight it changes once, reads any fixed matrix it needs (feedback alignment's B), and
    reads its input values once, ``weight_bits`` per value. For a minibatch rule with P
    weights, S steps, E epochs over n examples of d values: ``b/8 (2 P S + E n d)`` bytes.
    The Sparsey-style learner updates one item at a time and touches only the M active
    inputs' rows of its (N, Q*K) weights: ``b/8 (M Q K + M Q) + 4 (M + Q)`` bytes per item
    (read the rows, write the winners' weights; read the active indices, count the label
    votes); its weights are binary, so b = 1 is all it needs.
    """
    n, d = x.shape
    scale = weight_bits / 8
    if rule.name in ("backprop", "feedback_alignment"):
        params = sum(p.numel() for p in rule.net.parameters())
        fixed = sum(b.numel() for b in rule.net.buffers())  # FA's feedback matrices
        steps = report.weight_updates
        return round(scale * ((2 * params + fixed) * steps + int(report.passes) * n * d))
    if rule.name in ("rbm", "krotov_hopfield"):
        h = rule.n_hidden
        params = d * h + ((d + h) if rule.name == "rbm" else 0)
        readout_steps = rule.readout.num_epochs * math.ceil(n / rule.readout.batch_size)
        steps = report.weight_updates - readout_steps
        own = scale * (2 * params * steps + int(report.passes) * n * d)
        return round(own) + _readout_bytes(h, n, rule.readout, weight_bits)
    if rule.name == "sparsey":
        active = rule.encode(x.numpy()).sum(1).double()  # (n,) M per item
        weights = scale * (active * rule.Q * rule.K + active * rule.Q)
        per_item = weights + FP32_BYTES * (active + rule.Q)
        return int(per_item.sum())
    raise ValueError(f"no byte count for rule {rule.name!r}")


# ------------------------------------------------------------------------------ precision


@dataclass(frozen=True)
class Precision:
    """A number format a rule runs at: bits per stored weight, and its arithmetic width."""

    name: str
    weight_bits: int
    arithmetic_bits: int


FP32 = Precision("fp32", 32, 32)
BF16 = Precision("bfloat16", 16, 16)
#: The narrowest format each rule is run at here. The float rules: bfloat16 weights and
#: inputs (mixed-precision training keeps an fp32 master copy; the model counts 16-bit
#: traffic). Sparsey: its weights are 0/1 (1 bit) and its support is a count of active
#: inputs, integer adds (the 8-bit integer row of the table).
LOWEST_PRECISION: dict[str, Precision] = {
    "backprop": BF16, "feedback_alignment": BF16, "rbm": BF16, "krotov_hopfield": BF16,
    "sparsey": Precision("1-bit weights, 8-bit integer counts", 1, 8),
}


def weight_tensors(rule: Rule) -> list[torch.Tensor]:
    """The fitted rule's learnt float tensors (network, RBM, KH layer, readout)."""
    out: list[torch.Tensor] = []
    if getattr(rule, "net", None) is not None:
        out += [p.data for p in rule.net.parameters()]
    if getattr(rule, "rbm", None) is not None:
        out += [rule.rbm.W, rule.rbm.b, rule.rbm.c]
    if getattr(rule, "layer", None) is not None:
        out.append(rule.layer.W)
    readout = getattr(rule, "readout", None)
    if readout is not None and readout.W is not None:
        out += [readout.W, readout.b]
    return out


def accuracy_at_lowest(rule: Rule, X: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy with the learnt weights and the inputs rounded to the rule's lowest
    format (:data:`LOWEST_PRECISION`); the weights are restored afterwards.

    Sparsey's weights are exactly 0/1 and its inputs binary, so its accuracy at 1 bit is
    its accuracy. For the float rules the weights and inputs are rounded to bfloat16 and
    the arithmetic stays in fp32 (an emulation of bfloat16 storage, not of bfloat16 sums).
    """
    if LOWEST_PRECISION[rule.name].weight_bits == 1:
        return rule.score(X, y)
    tensors = weight_tensors(rule)
    saved = [t.clone() for t in tensors]
    try:
        for t in tensors:
            t.copy_(t.to(torch.bfloat16).to(t.dtype))
        xq = torch.as_tensor(X).to(torch.bfloat16).float().numpy()
        return rule.score(xq, y)
    finally:
        for t, s in zip(tensors, saved, strict=True):
            t.copy_(s)


def training_energy(rule: Rule, flops: int, report: TrainReport, x: torch.Tensor,
                    precision: Precision = FP32) -> float:
    """Modelled training energy (J) at ``precision``: counted FLOPs at its arithmetic width
    and :func:`training_bytes` at its weight width, Horowitz's 45 nm table, all DRAM."""
    nbytes = training_bytes(rule, report, x, precision.weight_bits)
    return model_energy(flops, nbytes, dtype_bits=precision.arithmetic_bits).energy_j
