"""Chapter 3 (imagenet): counts, the verdict's four outcomes, the smoke run's results file."""

from __future__ import annotations

import pytest
from conftest import smoke_results

from gardenpath.chapters import imagenet as ch
from gardenpath.results import VERDICTS
from gardenpath.verdict import combine

PARAMS = {"ratio_threshold": 2.0, "share_threshold": 0.5}


def _result(shares: dict[str, tuple[float, float, float]]) -> dict:
    """A constructed result: each net's sweep share (value, lo, hi) and real counts."""
    counts = {f"{n}/{s}": ch.count(n, s, 8, 64) for n in ch.NETS for s in ch.SHARINGS}
    return {"params": PARAMS, "counts": counts,
            "share": {n: {"value": v, "lo": lo, "hi": hi, "n": 5}
                      for n, (v, lo, hi) in shares.items()}}


def test_imagenet_verdict_reaches_supported():
    d = ch.decide(_result({"resnet18": (0.9, 0.8, 0.95), "alexnet_like": (0.7, 0.6, 0.8)}))
    assert d.verdict == "supported"


def test_imagenet_verdict_reaches_not_supported():
    d = ch.decide(_result({"resnet18": (0.2, 0.1, 0.3), "alexnet_like": (0.0, 0.0, 0.1)}))
    assert d.verdict == "not supported"


def test_imagenet_verdict_reaches_mixed():
    d = ch.decide(_result({"resnet18": (0.9, 0.8, 0.95), "alexnet_like": (0.1, 0.0, 0.2)}))
    assert d.verdict == "mixed"


def test_imagenet_verdict_reaches_inconclusive():
    d = ch.decide(_result({"resnet18": (0.5, 0.3, 0.7), "alexnet_like": (0.9, 0.8, 1.0)}))
    assert d.verdict == "inconclusive"


def test_counts_are_facts_that_do_not_vote():
    d = ch.decide(_result({"resnet18": (0.9, 0.8, 0.95), "alexnet_like": (0.7, 0.6, 0.8)}))
    facts = {f.name: f.value for f in d.facts}
    conv, local = ch.count("resnet18", "conv", 8, 64), ch.count("resnet18", "local", 8, 64)
    assert facts["resnet18 MACs"] == conv["macs_per_image"] == local["macs_per_image"]
    assert [t.name for t in d.tests] == ["resnet18 sweep", "alexnet_like sweep"]


@pytest.mark.slow
def test_resnet18_counts_at_224():
    conv, local = ch.count("resnet18", "conv", 64, 224), ch.count("resnet18", "local", 64, 224)
    assert conv["spatial_weights"] == 11_166_912
    assert local["spatial_weights"] == 1_813_561_344
    assert conv["parameters"] == 11_689_512  # torchvision's resnet18()
    assert conv["macs_per_image"] == local["macs_per_image"]
    assert local["sgd_bytes"] == 12 * local["parameters"]  # weights, grads, momentum
    assert local["adam_bytes"] == 16 * local["parameters"]


@pytest.mark.slow
def test_smoke_results(smoke_tree):
    res = smoke_results(smoke_tree, "imagenet")
    assert res["verdict"] in VERDICTS
    m = res["measurements"]
    for key in ("sweep_share_pass", "fit_fallbacks", "e2e_model_over_measured",
                "strip_over_whole"):
        assert key in m
    assert 0 <= m["sweep_share_pass"] <= 1 and m["e2e_model_over_measured"] > 0
    assert [t["name"] for t in res["tests"]] == ["resnet18 sweep", "alexnet_like sweep"]
    assert all(t["n"] >= 2 for t in res["tests"])
    assert res["verdict"] == combine(t["outcome"] for t in res["tests"])


def test_run_refuses_fewer_than_four_batch_sizes():
    with pytest.raises(ValueError, match="at least 4"):
        ch.run({"time_batches": [8, 16, 16, 64], "threads": 1}, None)
