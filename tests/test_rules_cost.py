"""What a rule's training costs and how non-local its update is (models.rules.cost).

FLOP counts are checked against formulas worked out by hand from each rule's shapes; the
byte model against its stated convention, at 32 and at fewer bits per weight; the
precision helpers against what they promise (rounded weights, restored afterwards).
"""

import math

import numpy as np
import pytest
import torch

from gardenpath.models.rules import cost as rc
from gardenpath.models.rules import make_rule


@pytest.fixture(scope="module")
def tiny():
    g = np.random.default_rng(0)
    x = g.random((40, 64)).astype(np.float32)
    y = np.arange(40) % 10
    return x, y


def test_backprop_step_flops_match_the_formula(tiny):
    x, y = tiny
    rule = make_rule("backprop", hidden=(16,), num_epochs=1)
    report = rule.fit(x, y, seed=0)
    d, h, c = 64, 16, 10
    s = d * h + h * c
    per_example = 2 * s + 2 * s + 2 * (s - d * h)  # forward, weight grads, input grads
    xt, yt = torch.as_tensor(x[:8]), torch.as_tensor(y[:8])
    assert rc.mlp_step_flops_per_example(rule, xt, yt) == per_example
    fa = make_rule("feedback_alignment", hidden=(16,), num_epochs=1)
    fa.fit(x, y, seed=0)
    assert rc.mlp_step_flops_per_example(fa, xt, yt) == per_example  # same arithmetic
    assert rc.training_flops(rule, report, torch.as_tensor(x), y) == per_example * 40


def test_rbm_and_kh_training_flops_match_the_formula(tiny):
    x, y = tiny
    n, v, h, c, e, r = 40, 64, 8, 10, 2, 3
    rbm = make_rule("rbm", n_hidden=h, num_epochs=e, readout_epochs=r)
    rep = rbm.fit(x, y, seed=0)
    cd = 10 * v * h  # CD-1 per example: 3 passes through W forward/back + 2 outer products
    expected = cd * e * n + 4 * n * v * h * (e + 1) + 2 * n * v * h + 4 * n * h * c * r
    assert rc.training_flops(rbm, rep, torch.as_tensor(x), y) == expected
    kh = make_rule("krotov_hopfield", n_hidden=h, num_epochs=e, readout_epochs=r)
    rep = kh.fit(x, y, seed=0)
    expected = 4 * h * v * e * n + 2 * n * h * v + 4 * n * h * c * r
    assert rc.training_flops(kh, rep, torch.as_tensor(x), y) == expected


def test_sparsey_flops_and_bytes_follow_their_formulas(tiny):
    x, y = tiny
    rule = make_rule("sparsey", Q=4, K=8)
    rep = rule.fit(x, y, seed=0)
    m = rule.encode(x).sum(1).double()  # active inputs per item
    units = 4 * 8
    assert rc.sparsey_flops(rule, torch.as_tensor(x)) == int(
        (2 * m * units + rc.CSA_FLOPS_PER_UNIT * units + 4).sum())
    b1 = rc.training_bytes(rule, rep, torch.as_tensor(x), weight_bits=1)
    b32 = rc.training_bytes(rule, rep, torch.as_tensor(x), weight_bits=32)
    weights_1bit = float((m * units + m * 4).sum()) / 8
    other = float(4 * (m + 4).sum())
    assert b1 == pytest.approx(weights_1bit + other, abs=1)
    assert b32 == pytest.approx(32 * weights_1bit + other, abs=1)


def test_minibatch_bytes_follow_the_convention_at_any_width(tiny):
    x, y = tiny
    rule = make_rule("backprop", hidden=(16,), num_epochs=2)
    rep = rule.fit(x, y, seed=0)
    p = 64 * 16 + 16 + 16 * 10 + 10
    steps = 2 * math.ceil(40 / 32)
    assert rep.weight_updates == steps
    full = 4 * (2 * p * steps + 2 * 40 * 64)
    assert rc.training_bytes(rule, rep, torch.as_tensor(x)) == full
    assert rc.training_bytes(rule, rep, torch.as_tensor(x), weight_bits=16) == full // 2
    fa = make_rule("feedback_alignment", hidden=(16,), num_epochs=2)
    rep = fa.fit(x, y, seed=0)
    fixed = 64 * 16 + 16 * 10  # the feedback matrices B are read every step
    assert rc.training_bytes(fa, rep, torch.as_tensor(x)) == 4 * (
        (2 * p + fixed) * steps + 2 * 40 * 64)


def test_locality_rows_count_bytes_with_and_without_lateral_values():
    rows = {n: rc.locality_row(make_rule(n), 64) for n in
            ("backprop", "feedback_alignment", "rbm", "krotov_hopfield", "sparsey")}
    assert {n for n, r in rows.items() if r["local"]} == {"krotov_hopfield", "sparsey"}
    assert rows["backprop"]["nonlocal_floats_per_unit"] == 20  # 10 errors + 10 weights
    # backprop's signal has no lateral part; the local rules' is all lateral
    assert rows["backprop"]["nonlocal_bytes_no_lateral"] == rows["backprop"]["nonlocal_bytes"]
    for n in ("krotov_hopfield", "sparsey"):
        assert rows[n]["nonlocal_bytes_no_lateral"] == 0 < rows[n]["nonlocal_bytes"]
    assert rows["sparsey"]["nonlocal_bytes"] == 4 * 2 * 48 * 256


def test_accuracy_at_lowest_rounds_the_weights_and_restores_them(tiny):
    x, y = tiny
    rule = make_rule("backprop", hidden=(16,), num_epochs=2)
    rule.fit(x, y, seed=0)
    before = [t.clone() for t in rc.weight_tensors(rule)]
    seen = []
    score = rule.score
    rule.score = lambda a, b: seen.append([t.clone() for t in rc.weight_tensors(rule)]) \
        or score(a, b)
    rc.accuracy_at_lowest(rule, x, y)
    rounded = seen[0]
    for t, r in zip(before, rounded, strict=True):
        torch.testing.assert_close(r, t.to(torch.bfloat16).float())  # rounded while scored
    assert any(not torch.equal(t, r) for t, r in zip(before, rounded, strict=True))
    for t, b in zip(rc.weight_tensors(rule), before, strict=True):
        assert torch.equal(t, b)  # and restored


def test_energy_at_lowest_precision_is_below_fp32(tiny):
    x, y = tiny
    xt = torch.as_tensor(x)
    for name in ("backprop", "sparsey"):
        rule = make_rule(name)
        rep = rule.fit(x, y, seed=0)
        flops = rc.training_flops(rule, rep, xt, y)
        low = rc.training_energy(rule, flops, rep, xt, rc.LOWEST_PRECISION[name])
        assert 0 < low < rc.training_energy(rule, flops, rep, xt, rc.FP32)
