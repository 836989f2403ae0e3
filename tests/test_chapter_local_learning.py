"""Chapter 6 (local_learning): the smoke run's results, and the chapter module's counts.

The FLOP counts are checked against formulas worked out by hand from each rule's shapes;
the byte model against its stated convention; the verdict against summaries built to
land in each branch.
"""

import math

import numpy as np
import pytest
import torch

from gardenpath.chapters import local_learning as ll
from gardenpath.results import VERDICTS

pytestmark = pytest.mark.slow

RULES = ["backprop", "feedback_alignment", "rbm", "krotov_hopfield", "sparsey"]


# ------------------------------------------------------------------ the real smoke run


def test_smoke_run_records_numbers_and_a_verdict(smoke_tree):
    from conftest import smoke_results

    data = smoke_results(smoke_tree, "local_learning")
    assert data["verdict"] in VERDICTS
    n = data["numbers"]
    assert n["verdict"] == data["verdict"]
    for rule in RULES:
        assert 0.0 <= n[f"accuracy_{rule}"] <= 1.0
        assert n[f"energy_mj_{rule}"] > 0 and n[f"train_gflops_{rule}"] > 0
        assert f"train_time_s_{rule}" in data["measurements"]
        assert f"train_time_s_{rule}" not in n  # readings of the machine stay apart
    # locality comes from the rules' records: backprop = FA's feedback + transported weights
    assert n["nonlocal_bytes_backprop"] == 2 * n["nonlocal_bytes_feedback_alignment"] > 0
    assert n["nonlocal_bytes_rbm"] == 0
    assert n["passes_sparsey"] == 1 and n["weight_updates_sparsey"] == n["n_train"]
    # the recorded verdict follows the rule stated in decide() from the recorded numbers
    close = n["accuracy_gap_pct"] <= n["tolerance_pct"]
    cheaper = n["best_local_energy_ratio"] < 1
    expected = ("supported" if close and cheaper else
                "not supported" if not close and not cheaper else "mixed")
    assert data["verdict"] == expected
    assert data["provenance"]["params"]["num_seeds"] == 1  # the smoke profile applied


# ------------------------------------------------------------------ FLOPs by hand


@pytest.fixture(scope="module")
def tiny():
    g = np.random.default_rng(0)
    x = g.random((40, 64)).astype(np.float32)
    y = np.arange(40) % 10
    return x, y


def test_backprop_step_flops_match_the_formula(tiny):
    x, y = tiny
    rule = ll.build_rule("backprop", ll.Settings(rules=("backprop",), hidden=16, num_epochs=1))
    rule.fit(x, y, seed=0)
    d, h, c = 64, 16, 10
    s = d * h + h * c
    per_example = 2 * s + 2 * s + 2 * (s - d * h)  # forward, weight grads, input grads
    xt, yt = torch.as_tensor(x[:8]), torch.as_tensor(y[:8])
    assert ll.mlp_step_flops_per_example(rule, xt, yt) == per_example
    fa = ll.build_rule("feedback_alignment",
                       ll.Settings(rules=("feedback_alignment",), hidden=16, num_epochs=1))
    fa.fit(x, y, seed=0)
    assert ll.mlp_step_flops_per_example(fa, xt, yt) == per_example  # same arithmetic
    report = rule.fit(x, y, seed=0)
    assert ll.training_flops(rule, report, torch.as_tensor(x), y) == per_example * 40


def test_rbm_and_kh_training_flops_match_the_formula(tiny):
    x, y = tiny
    n, v, h, c, e, r = 40, 64, 8, 10, 2, 3
    s = ll.Settings(rules=("rbm",), rbm_hidden=h, num_epochs=e, readout_epochs=r,
                    kh_hidden=h, kh_epochs=e)
    rbm = ll.build_rule("rbm", s)
    rep = rbm.fit(x, y, seed=0)
    cd = 10 * v * h  # CD-1 per example: 3 passes through W forward/back + 2 outer products
    expected = cd * e * n + 4 * n * v * h * (e + 1) + 2 * n * v * h + 4 * n * h * c * r
    assert ll.training_flops(rbm, rep, torch.as_tensor(x), y) == expected
    kh = ll.build_rule("krotov_hopfield", s)
    rep = kh.fit(x, y, seed=0)
    expected = 4 * h * v * e * n + 2 * n * h * v + 4 * n * h * c * r
    assert ll.training_flops(kh, rep, torch.as_tensor(x), y) == expected


def test_sparsey_flops_and_bytes_follow_their_formulas(tiny):
    x, y = tiny
    rule = ll.build_rule("sparsey", ll.Settings(rules=("sparsey",), sparsey_Q=4, sparsey_K=8))
    rep = rule.fit(x, y, seed=0)
    m = rule.encode(x).sum(1).double()  # active inputs per item
    units = 4 * 8
    assert ll.sparsey_flops(rule, torch.as_tensor(x)) == int(
        (2 * m * units + ll.CSA_FLOPS_PER_UNIT * units + 4).sum())
    b1 = ll.training_bytes(rule, rep, torch.as_tensor(x), sparsey_weight_bits=1)
    b32 = ll.training_bytes(rule, rep, torch.as_tensor(x), sparsey_weight_bits=32)
    weights_1bit = float((m * units + m * 4).sum()) / 8
    other = float(4 * (m + 4).sum())
    assert b1 == pytest.approx(weights_1bit + other, abs=1)
    assert b32 == pytest.approx(32 * weights_1bit + other, abs=1)


def test_minibatch_bytes_follow_the_convention(tiny):
    x, y = tiny
    rule = ll.build_rule("backprop", ll.Settings(rules=("backprop",), hidden=16, num_epochs=2))
    rep = rule.fit(x, y, seed=0)
    p = 64 * 16 + 16 + 16 * 10 + 10
    steps = 2 * math.ceil(40 / 32)
    assert rep.weight_updates == steps
    assert ll.training_bytes(rule, rep, torch.as_tensor(x)) == 4 * (2 * p * steps + 2 * 40 * 64)
    fa = ll.build_rule("feedback_alignment",
                       ll.Settings(rules=("feedback_alignment",), hidden=16, num_epochs=2))
    rep = fa.fit(x, y, seed=0)
    fixed = 64 * 16 + 16 * 10  # the feedback matrices B are read every step
    assert ll.training_bytes(fa, rep, torch.as_tensor(x)) == 4 * (
        (2 * p + fixed) * steps + 2 * 40 * 64)


# ------------------------------------------------------------------ locality and verdict


def test_locality_rows_mark_only_feedback_free_one_phase_rules_local():
    s = ll.Settings(rules=tuple(RULES))
    rows = {r["rule"]: r for r in ll.locality_rows({n: ll.build_rule(n, s) for n in RULES})}
    assert {n for n, r in rows.items() if r["local"]} == {"krotov_hopfield", "sparsey"}
    assert rows["backprop"]["nonlocal_floats_per_unit"] == 20  # 10 errors + 10 weights
    assert rows["sparsey"]["learning_units"] == 48 * 256


def _summary(bp_acc, local_acc, bp_e, local_e):
    base = {"passes": 1.0, "readout_passes": 0.0, "train_flops": 1.0, "seeds": 1}
    return [{**base, "rule": "backprop", "label": "backprop", "accuracy": bp_acc,
             "energy_j": bp_e, "local": False},
            {**base, "rule": "sparsey", "label": "Sparsey-style SDR", "accuracy": local_acc,
             "energy_j": local_e, "local": True}]


@pytest.mark.parametrize("bp_acc,local_acc,bp_e,local_e,expected", [
    (0.97, 0.96, 1.0, 0.5, "supported"),
    (0.97, 0.80, 1.0, 2.0, "not supported"),
    (0.97, 0.96, 1.0, 2.0, "mixed"),
    (0.97, 0.80, 1.0, 0.5, "mixed"),
    (0.90, 0.95, 1.0, 0.5, "supported"),
])
def test_decide_covers_each_branch(bp_acc, local_acc, bp_e, local_e, expected):
    verdict, why, numbers = ll.decide(_summary(bp_acc, local_acc, bp_e, local_e), 0.02)
    assert verdict == expected
    assert numbers["accuracy_gap_pct"] == pytest.approx(100 * (bp_acc - local_acc))
    assert "Sparsey" in why and "-" not in numbers["accuracy_gap_phrase"]


def test_decide_needs_backprop_and_a_local_rule():
    s = _summary(0.9, 0.9, 1, 1)
    with pytest.raises(ValueError, match="backprop"):
        ll.decide(s[1:], 0.02)
    with pytest.raises(ValueError, match="local rule"):
        ll.decide(s[:1], 0.02)


def test_settings_refuse_unknown_rules_and_memory_grows_with_sparsey():
    with pytest.raises(ValueError, match="rules must be"):
        ll.Settings.from_params({"rules": ["backprop", "hebb"]})
    small = ll.memory_estimate({"sparsey_Q": 8, "sparsey_K": 32})
    big = ll.memory_estimate({"sparsey_Q": 48, "sparsey_K": 256})
    assert big - small == 2 * 36 * 511 * (48 * 256 - 8 * 32) * 4
