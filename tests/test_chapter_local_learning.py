"""Chapter local_learning: the smoke run's results, the verdict's four outcomes from
constructed results, and the run's fairness rules (same inputs, same search budget)."""

import numpy as np
import pytest

from gardenpath.chapters import local_learning as ll
from gardenpath.results import VERDICTS

RULES = ["backprop", "feedback_alignment", "rbm", "krotov_hopfield", "sparsey"]


@pytest.mark.slow
def test_smoke_run_records_tests_facts_and_both_inputs(smoke_tree):
    from conftest import smoke_results

    data = smoke_results(smoke_tree, "local_learning")
    assert data["verdict"] in VERDICTS
    assert [t["name"] for t in data["tests"]] == ["gap_pixels", "gap_patches"]
    assert all(t["n"] == 2 for t in data["tests"])  # the smoke profile's seeds
    n = data["numbers"]
    for rule in RULES:
        for kind in ll.INPUTS:
            assert 0.0 <= n[f"accuracy_{rule}_{kind}"] <= 1.0
            assert 0 < n[f"energy_lowest_mj_{rule}_{kind}"] < n[f"energy_fp32_mj_{rule}_{kind}"]
            assert f"train_time_s_{rule}_{kind}" in data["measurements"]
    assert n["nonlocal_bytes_backprop"] == n["nonlocal_bytes_no_lateral_backprop"] > 0
    assert n["nonlocal_bytes_no_lateral_sparsey"] == 0 < n["nonlocal_bytes_sparsey"]
    facts = {f["name"] for f in data["facts"]}
    assert {"energy_ratio_fp32", "energy_ratio_lowest", "nonlocal_bytes_local"} <= facts


def _result(bp: dict[str, list[float]], kh: dict[str, list[float]], tol: float = 0.02):
    """A constructed result: per-seed accuracies of backprop and KH on each input."""
    runs = []
    for name, accs in (("backprop", bp), ("krotov_hopfield", kh)):
        for kind, values in accs.items():
            for s, a in enumerate(values):
                runs.append({"rule": name, "input": kind, "seed": s, "accuracy": a,
                             "accuracy_lowest": a, "passes": 1.0, "readout_passes": 0.0,
                             "weight_updates": 10, "train_time_s": 1.0, "train_flops": 1e6,
                             "train_bytes_fp32": 1e6,
                             "energy_fp32_j": 2.0 if name == "backprop" else 1.0,
                             "energy_lowest_j": 1.0 if name == "backprop" else 0.4,
                             "n_train": 100, "n_test": 50})
    loc = [{"rule": n, "nonlocal_bytes": b, "nonlocal_bytes_no_lateral": c,
            "learning_units": 10} for n, b, c in (("backprop", 800, 800),
                                                  ("krotov_hopfield", 40, 0))]
    return {"params": {"local_rule": "krotov_hopfield", "tolerance": tol, "num_seeds": 5,
                       "search_budget": 2},
            "runs": runs, "locality": loc, "n_train": 100, "n_test": 50,
            "input_dims": {"pixels": 64, "patches": 240}}


BP = [0.95, 0.96, 0.95, 0.96, 0.955]
CLOSE = [0.95, 0.955, 0.948, 0.957, 0.952]  # about 0.3 points behind, tight
FAR = [0.85, 0.86, 0.85, 0.86, 0.855]  # 10 points behind, tight
NOISY = [0.99, 0.90, 0.97, 0.91, 0.955]  # straddles the tolerance


def _verdict(pixels, patches):
    return ll.decide(_result({"pixels": BP, "patches": BP},
                             {"pixels": pixels, "patches": patches})).verdict


def test_local_learning_verdict_reaches_supported():
    assert _verdict(CLOSE, CLOSE) == "supported"


def test_local_learning_verdict_reaches_not_supported():
    assert _verdict(FAR, FAR) == "not supported"


def test_local_learning_verdict_reaches_mixed():
    assert _verdict(CLOSE, FAR) == "mixed"


def test_local_learning_verdict_reaches_inconclusive():
    assert _verdict(NOISY, CLOSE) == "inconclusive"


def test_decide_reports_energy_at_both_precisions_as_facts():
    d = ll.decide(_result({"pixels": BP, "patches": BP}, {"pixels": CLOSE, "patches": FAR}))
    facts = {f.name: f.value for f in d.facts}
    assert facts["energy_ratio_fp32"] == pytest.approx(0.5)
    assert facts["energy_ratio_lowest"] == pytest.approx(0.4)
    assert facts["nonlocal_bytes_local_no_lateral"] == 0
    gap = {t.name: t.interval for t in d.tests}["gap_patches"]
    assert gap.n == 5 and gap.value == pytest.approx(np.mean(BP) - np.mean(FAR))


def test_run_refuses_rules_without_backprop_or_the_local_rule():
    with pytest.raises(ValueError, match="backprop"):
        ll.run({"rules": ["rbm", "krotov_hopfield"], "local_rule": "krotov_hopfield"})
    with pytest.raises(ValueError, match="local rule"):
        ll.run({"rules": ["backprop", "rbm"], "local_rule": "sparsey"})


def test_search_tries_exactly_the_budget_and_keeps_the_best(monkeypatch):
    g = np.random.default_rng(0)
    x, y = g.random((80, 64)).astype(np.float32), np.arange(80) % 10
    scores = iter([0.2, 0.7, 0.4])
    monkeypatch.setattr(ll.Rule, "score", lambda self, a, b: next(scores))
    p = {"hidden": 8, "num_epochs": 1, "batch_size": 20, "validation_fraction": 0.25,
         "search_budget": 2}
    value, trials = ll.search("backprop", p, x, y, 0)
    assert [t["value"] for t in trials] == list(ll.SEARCH["backprop"][1][:2])
    assert value == ll.SEARCH["backprop"][1][1]  # the better of the two tried


def test_every_rule_sees_both_inputs_and_the_patch_code_is_binary():
    x = np.random.default_rng(0).random((3, 784)).astype(np.float32)
    code = ll.as_input(x, "patches", 2)
    assert code.shape == (3, 14 * 14 * 15) and set(np.unique(code)) <= {0.0, 1.0}
    assert ll.as_input(x, "pixels", 2) is x
