"""Five learning rules on one data interface, for chapter 6 ("how local is learning?").

Each rule is a :class:`~gardenpath.models.rules.base.Rule`: ``fit(X, y, *, seed)
-> TrainReport``, ``predict(X)``, ``score(X, y)``, and ``locality(input_dim,
num_classes)`` / ``nonlocal_bytes_per_example(...)`` describing the signals a
weight update needs beyond its two neurons (class attribute ``signals``).

================================  =========================================  ===============
rule                              weight update uses                         module
================================  =========================================  ===============
backprop                          error via W^T (weight transport), 2 phases  ``backprop``
feedback alignment                error via fixed random B, 2 phases          ``feedback_alignment``
RBM (CD-1) + readout              own two units, data and recon phases        ``rbm``
Krotov-Hopfield + readout         own input/current + rank (competition)      ``krotov_hopfield``
Sparsey-style SDR + label votes   co-activity, per-CM choice, familiarity G   ``sparsey``
================================  =========================================  ===============

``python -m gardenpath.models.rules`` trains each on the digits and prints its
held-out accuracy, passes, weight updates and time.
"""

from gardenpath.models.rules.backprop import BackpropMLP
from gardenpath.models.rules.base import Locality, Rule, SoftmaxReadout, TrainReport
from gardenpath.models.rules.feedback_alignment import FeedbackAlignmentMLP
from gardenpath.models.rules.krotov_hopfield import KrotovHopfieldClassifier
from gardenpath.models.rules.rbm import RBMClassifier
from gardenpath.models.rules.sparsey import SparseyClassifier

RULES: dict[str, type[Rule]] = {
    "backprop": BackpropMLP,
    "feedback_alignment": FeedbackAlignmentMLP,
    "rbm": RBMClassifier,
    "krotov_hopfield": KrotovHopfieldClassifier,
    "sparsey": SparseyClassifier,
}


def make_rule(name: str, **kwargs: object) -> Rule:
    """A rule by name with its defaults, overridden by ``kwargs``."""
    if name not in RULES:
        raise ValueError(f"unknown rule {name!r}; choose from {sorted(RULES)}")
    return RULES[name](**kwargs)


__all__ = ["RULES", "BackpropMLP", "FeedbackAlignmentMLP", "KrotovHopfieldClassifier", "Locality",
           "RBMClassifier", "Rule", "SoftmaxReadout", "SparseyClassifier", "TrainReport",
           "make_rule"]
