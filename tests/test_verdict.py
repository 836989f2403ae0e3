"""The verdict model: intervals, rules, outcomes and how a chapter's verdict combines them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gardenpath import verdict as V


def _test(name: str, lo: float, hi: float, direction: str = ">=", t: float = 1.0) -> V.Test:
    return V.Test(name, name, V.Interval((lo + hi) / 2, lo, hi, 5), V.Rule(direction, t))


def test_t_interval_matches_the_textbook_formula():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    iv = V.t_interval(x)
    half = 2.7764451051977987 * np.std(x, ddof=1) / math.sqrt(5)  # t(0.975, 4)
    assert iv.value == 3.0 and iv.n == 5
    assert iv.lo == pytest.approx(3 - half) and iv.hi == pytest.approx(3 + half)


def test_one_sample_cannot_decide():
    iv = V.t_interval([0.9])
    assert iv.lo == -math.inf and iv.hi == math.inf
    assert V.Rule(">=", 0.5).judge(iv) == "inconclusive"


def test_ratio_interval_holds_the_ratio_of_means():
    rng = np.random.default_rng(0)
    a, b = rng.normal(10, 0.5, 20), rng.normal(5, 0.25, 20)
    iv = V.ratio_interval(a, b)
    assert iv.lo < a.mean() / b.mean() < iv.hi
    assert 1.8 < iv.lo and iv.hi < 2.2


@pytest.mark.parametrize("direction,lo,hi,outcome", [
    (">=", 1.0, 2.0, "supported"), (">=", 0.1, 0.9, "not supported"),
    (">=", 0.5, 1.5, "inconclusive"), ("<=", 0.1, 1.0, "supported"),
    ("<=", 1.1, 2.0, "not supported"), ("<=", 0.5, 1.5, "inconclusive")])
def test_rule_judges_the_whole_interval(direction, lo, hi, outcome):
    assert _test("q", lo, hi, direction).outcome == outcome


@pytest.mark.parametrize("outcomes,verdict", [
    (["supported", "supported"], "supported"),
    (["not supported"], "not supported"),
    (["supported", "not supported"], "mixed"),
    (["supported", "not supported", "inconclusive"], "mixed"),
    (["supported", "inconclusive"], "inconclusive"),
    (["inconclusive"], "inconclusive")])
def test_combine(outcomes, verdict):
    assert V.combine(outcomes) == verdict


def test_combine_refuses_nothing_and_unknown_outcomes():
    with pytest.raises(ValueError):
        V.combine([])
    with pytest.raises(ValueError, match="unknown"):
        V.combine(["maybe"])


def test_decision_sentences_say_what_would_turn_it():
    d = V.Decision([_test("speed", 2.0, 3.0), _test("bytes", 0.2, 0.4, "<=", 0.5)],
                   [V.Fact("weights", "weights per layer", 1_000_000, source="architecture")])
    assert d.verdict == "supported"
    s = d.tests[0].sentence()
    assert s.startswith("supported if speed ≥ 1") and "[2, 3]" in s and "n = 5" in s
    assert d.reason() == "all 2 tests support the claim"
    box = d.box_markdown("A claim.")
    assert box.startswith("**Verdict: supported.** A claim.")
    assert "weights per layer = 1,000,000" in box and "do not vote" in box
    rec = d.as_dict()
    assert [t["outcome"] for t in rec["tests"]] == ["supported", "supported"]
    assert rec["tests"][0]["interval"] == [2.0, 3.0] and rec["facts"][0]["source"]


def test_reason_agrees_in_number_and_names_the_undecided():
    d = V.Decision([_test("a", 0.5, 1.5), _test("b", 2, 3)])
    assert d.verdict == "inconclusive"
    assert d.reason() == "cannot decide at this scale: a straddles its threshold"
    d = V.Decision([_test("a", 0.5, 1.5), _test("b", 0.2, 3)])
    assert d.reason().endswith("a; b straddle their thresholds")
    d = V.Decision([_test("a", 2, 3), _test("b", 0.1, 0.2)])
    assert d.reason() == "supported by a; contradicted by b"


def test_margins_point_the_essays_way_for_both_directions():
    assert _test("a", 2, 2).margin() == pytest.approx(1.0)
    assert _test("b", 0.5, 0.5, "<=", 1.0).margin() == pytest.approx(0.5)
    assert _test("c", 2, 2, "<=", 1.0).margin() < 0


def test_small_samples_are_named_per_profile():
    d = V.Decision([V.Test("acc", "acc", V.t_interval([1, 2, 3]), V.Rule(">=", 0)),
                    V.Test("bytes", "bytes", V.exact(3), V.Rule(">=", 0))])
    assert d.small_samples("cpu") == ["acc"] and d.small_samples("smoke") == []


def test_decision_refuses_repeated_names():
    with pytest.raises(ValueError, match="unique"):
        V.Decision([_test("a", 1, 2), _test("a", 1, 2)])


def test_a_modelled_range_says_so_and_turns_on_its_assumptions():
    t = V.Test("share", "movement share", V.span(0.4, 0.7), V.Rule(">=", 0.5))
    assert "modelled 0.4 to 0.7 over the model's assumptions" in t.sentence()
    d = V.Decision([t, _test("speed", 2, 3)])
    assert d.verdict == "inconclusive"
    assert d.reason() == "movement share turns on the model's assumptions"


def test_fmt_keeps_whole_numbers_whole():
    assert V.fmt(64.0) == "64" and V.fmt(1_000_000) == "1,000,000"
    assert V.fmt(0.4363) == "0.436" and V.fmt(2.5) == "2.5" and V.fmt(0.1004) == "0.1"


def test_from_draws_takes_the_percentiles_and_holds_the_value():
    iv = V.from_draws(0.5, list(np.linspace(0.0, 1.0, 1001)), 5)
    assert iv.lo == pytest.approx(0.025) and iv.hi == pytest.approx(0.975) and iv.n == 5
    assert V.from_draws(2.0, [0.0, 1.0], 5).hi == 2.0  # widened to hold the value
    assert V.from_draws(0.5, [], 5).lo == 0.5  # no draws, no width
