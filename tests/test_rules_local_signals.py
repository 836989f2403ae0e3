"""Rule mechanics: feedback alignment's fixed feedback, RBM reconstruction, KH p-norm."""

import numpy as np
import pytest
import torch
from torch import nn

from gardenpath.data import load_digits_split
from gardenpath.models.rules import (
    BackpropMLP,
    FeedbackAlignmentMLP,
    KrotovHopfieldClassifier,
    RBMClassifier,
)
from gardenpath.models.rules.feedback_alignment import FeedbackAlignmentLinear
from gardenpath.models.rules.krotov_hopfield import KrotovHopfield


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(seed=0)


def test_feedback_alignment_backward_uses_the_fixed_matrix_not_the_weights():
    torch.manual_seed(0)
    fa = FeedbackAlignmentLinear(5, 3)
    lin = nn.Linear(5, 3)
    lin.load_state_dict({"weight": fa.weight.detach(), "bias": fa.bias.detach()})
    x1 = torch.randn(4, 5, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    g = torch.randn(4, 3)
    y_fa, y_bp = fa(x1), lin(x2)
    torch.testing.assert_close(y_fa, y_bp)  # same forward pass
    y_fa.backward(g)
    y_bp.backward(g)
    torch.testing.assert_close(x1.grad, g @ fa.feedback)  # error sent through B
    torch.testing.assert_close(x2.grad, g @ lin.weight)  # backprop: through W
    assert not torch.allclose(x1.grad, x2.grad)
    torch.testing.assert_close(fa.weight.grad, lin.weight.grad)  # local part is identical
    torch.testing.assert_close(fa.bias.grad, lin.bias.grad)
    assert "feedback" not in dict(fa.named_parameters())


def test_feedback_matrix_stays_fixed_and_training_differs_from_backprop(digits):
    xtr, xte, ytr, yte = digits
    fa = FeedbackAlignmentMLP(hidden=(32,), num_epochs=2)
    bp = BackpropMLP(hidden=(32,), num_epochs=2)
    fa.fit(xtr, ytr, seed=0)
    bp.fit(xtr, ytr, seed=0)
    first = fa.net[0]
    b0 = first.feedback.clone()
    fa.net.train()
    loss = nn.functional.cross_entropy(fa.net(torch.as_tensor(xtr[:8])), torch.as_tensor(ytr[:8]))
    loss.backward()
    assert torch.equal(first.feedback, b0)
    # same seed, same init; only the backward pass differs, so the weights must differ
    assert not torch.allclose(fa.net[0].weight, bp.net[0].weight)
    assert not torch.allclose(fa.net[2].weight, bp.net[2].weight)


def test_rbm_reconstruction_error_falls(digits):
    xtr, _, ytr, _ = digits
    rule = RBMClassifier(n_hidden=64, num_epochs=5, readout_epochs=1)
    report = rule.fit(xtr, ytr, seed=0)
    errors = report.extra["reconstruction_error"]
    assert len(errors) == 6
    assert errors[-1] < 0.5 * errors[0]
    assert errors[-1] < errors[1]  # still improving after the first epoch
    assert rule.rbm.W.requires_grad is False


@pytest.mark.parametrize("p", [2.0, 3.0])
def test_krotov_hopfield_winning_units_converge_to_unit_p_norm(digits, p):
    xtr = torch.as_tensor(digits[0])
    layer = KrotovHopfield(64, n_hidden=30, p=p, seed=0)
    start = layer.p_norms().clone()
    g = torch.Generator().manual_seed(0)
    epochs = 60
    for epoch in range(epochs):
        for idx in torch.randperm(len(xtr), generator=g).split(10):
            layer.step(xtr[idx], 0.02 * (1 - epoch / epochs))
    trained = layer.wins >= 1000  # units that keep winning; rarely-winning ones lag
    assert trained.sum() >= 10
    norms = layer.p_norms()[trained]
    assert torch.all((norms - 1).abs() < 0.05), norms
    assert torch.all((start[trained] - 1).abs() > 1.0)  # they started far from 1
    assert layer.W.requires_grad is False


def test_krotov_hopfield_rejects_bad_ranking():
    with pytest.raises(ValueError):
        KrotovHopfield(4, n_hidden=3, k=5)


def test_krotov_hopfield_classifier_reports_its_costs(digits):
    xtr, xte, ytr, yte = digits
    rule = KrotovHopfieldClassifier(n_hidden=40, num_epochs=3, readout_epochs=3)
    rep = rule.fit(xtr, ytr, seed=0)
    per_epoch = int(np.ceil(len(xtr) / 10))
    readout = 3 * int(np.ceil(len(xtr) / 32))
    assert rep.weight_updates == 3 * per_epoch + readout
    assert rep.presentations == 6 * len(xtr)
    assert rule.score(xte, yte) > 0.5
