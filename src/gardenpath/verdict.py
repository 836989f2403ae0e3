"""How a chapter reaches its verdict: named tests with intervals against fixed thresholds.

A *test* is a measured or trained quantity (its value, a 95% interval over seeds or timing
rounds, the number of samples) judged by a *rule* fixed in the notebook's parameters cell
before the run: the essay is supported when the quantity is at or above (or at or below) a
threshold. A test whose whole interval lies on one side of its threshold decides; one whose
interval straddles it cannot decide at this scale. A *fact* is a quantity fixed by
construction (a count that follows from the architecture, a constant from a published table):
it is shown beside the tests and never votes.

The chapter's verdict combines its tests' outcomes:

- ``supported`` / ``not supported``: every test comes out that way;
- ``mixed``: some tests support the essay and some contradict it;
- ``inconclusive``: no test contradicts another, but at least one straddles its threshold.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

OUTCOMES = ("supported", "not supported", "mixed", "inconclusive")
#: The fewest samples a trained or timed quantity needs on each profile.
MIN_SAMPLES = {"smoke": 2, "cpu": 5, "gpu": 5}
LEVEL = 0.95

Direction = Literal[">=", "<="]


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for prose: ``digits`` significant figures, thousands separated."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a" if value is None or math.isnan(value) else ("∞" if value > 0 else "-∞")
    if value == 0:
        return "0"
    if float(value).is_integer():
        return f"{value:,.0f}"
    mag = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - mag)
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class Interval:
    """A value with its 95% interval, the samples behind it and how the interval was made.

    ``method`` is ``"t"`` (Student's t over independent samples), ``"bootstrap"``,
    ``"range"`` (the span of a model's assumptions, not a sampling interval) or ``"exact"``
    (a computed quantity with no sampling error).
    """

    value: float
    lo: float
    hi: float
    n: int
    method: str = "t"

    def __post_init__(self) -> None:
        if not (self.lo <= self.value <= self.hi) and all(
                math.isfinite(v) for v in (self.lo, self.value, self.hi)):
            raise ValueError(f"interval [{self.lo}, {self.hi}] does not hold {self.value}")

    @property
    def sampled(self) -> bool:
        """Whether the interval comes from repeated samples (seeds, timing rounds)."""
        return self.method in ("t", "bootstrap")


def _t_quantile(df: int, level: float = LEVEL) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, df))


def t_interval(samples: Iterable[float], level: float = LEVEL) -> Interval:
    """Mean of independent samples with Student's t interval; one sample gives (-inf, inf)."""
    x = np.asarray([float(s) for s in samples], dtype=float)
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError("t_interval needs at least one finite sample")
    mean = float(x.mean())
    if x.size == 1:
        return Interval(mean, -math.inf, math.inf, 1, "t")
    half = _t_quantile(x.size - 1, level) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return Interval(mean, mean - half, mean + half, int(x.size), "t")


def bootstrap_interval(samples: Sequence[Sequence[float]] | Sequence[float],
                       stat: Callable[..., float] | None = None, level: float = LEVEL,
                       draws: int = 4000, seed: int = 0) -> Interval:
    """Percentile bootstrap of ``stat`` over one or several independent sample sets.

    With several sets (e.g. times of two contenders), each is resampled on its own and
    ``stat`` receives one array per set: ``stat(a, b) = a.mean() / b.mean()`` gives the
    interval of a ratio of means. With one set, ``stat`` defaults to the mean.
    """
    sets = samples if samples and isinstance(samples[0], (list, tuple, np.ndarray)) \
        else [samples]
    arrays = [np.asarray(s, dtype=float) for s in sets]
    if any(a.size == 0 or not np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("bootstrap_interval needs finite, non-empty sample sets")
    stat = stat or (lambda *a: float(np.mean(a[0])))
    value = float(stat(*arrays))
    n = min(a.size for a in arrays)
    if n < 2:
        return Interval(value, -math.inf, math.inf, n, "bootstrap")
    rng = np.random.default_rng(seed)
    boot = [stat(*[a[rng.integers(0, a.size, a.size)] for a in arrays]) for _ in range(draws)]
    return from_draws(value, boot, n, level)


def from_draws(value: float, draws: Sequence[float], n: int, level: float = LEVEL) -> Interval:
    """The percentile interval of bootstrap ``draws`` around ``value`` (widened to hold it),
    for a bootstrap a chapter runs itself over ``n`` samples; no draws give no width."""
    if len(draws) == 0:
        return Interval(float(value), float(value), float(value), n, "bootstrap")
    lo, hi = np.quantile(np.asarray(draws, dtype=float), [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(value), min(float(lo), value), max(float(hi), value), n,
                    "bootstrap")


def ratio_interval(numerator: Sequence[float], denominator: Sequence[float],
                   level: float = LEVEL, seed: int = 0) -> Interval:
    """Interval of mean(numerator) / mean(denominator), two independent sample sets."""
    return bootstrap_interval([list(numerator), list(denominator)],
                              lambda a, b: float(a.mean() / b.mean()), level, seed=seed)


def exact(value: float) -> Interval:
    """A computed quantity with no sampling error (a count, a modelled energy)."""
    return Interval(float(value), float(value), float(value), 1, "exact")


def span(low: float, high: float, value: float | None = None) -> Interval:
    """The range a quantity takes over a model's assumptions, from ``low`` to ``high``."""
    lo, hi = min(low, high), max(low, high)
    return Interval(float((lo + hi) / 2 if value is None else value), float(lo), float(hi), 2,
                    "range")


@dataclass(frozen=True)
class Rule:
    """The essay is supported when the quantity is ``direction`` ``threshold``."""

    direction: Direction
    threshold: float

    def __post_init__(self) -> None:
        if self.direction not in (">=", "<="):
            raise ValueError(f"direction must be '>=' or '<=', got {self.direction!r}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold}")

    def judge(self, iv: Interval) -> str:
        """``supported`` / ``not supported`` when the whole interval lies on one side."""
        t = self.threshold
        if self.direction == ">=":
            if iv.lo >= t:
                return "supported"
            if iv.hi < t:
                return "not supported"
        else:
            if iv.hi <= t:
                return "supported"
            if iv.lo > t:
                return "not supported"
        return "inconclusive"

    def text(self, quantity: str) -> str:
        """The rule in words: ``supported if <quantity> >= <threshold>``."""
        sign = "≥" if self.direction == ">=" else "≤"
        return f"supported if {quantity} {sign} {fmt(self.threshold)}"


@dataclass(frozen=True)
class Test:
    """One deciding quantity, its interval and the rule that judges it."""

    name: str
    quantity: str
    interval: Interval
    rule: Rule
    unit: str = ""

    @property
    def outcome(self) -> str:
        return self.rule.judge(self.interval)

    def sentence(self) -> str:
        """What would have turned it: the rule, then what was measured."""
        iv, unit = self.interval, f" {self.unit}" if self.unit else ""
        if iv.method == "exact":
            got = f"computed {fmt(iv.value)}{unit}"
        elif iv.method == "range":
            got = (f"modelled {fmt(iv.lo)} to {fmt(iv.hi)}{unit} over the model's "
                   f"assumptions (central {fmt(iv.value)})")
        else:
            got = (f"measured {fmt(iv.value)}{unit} [{fmt(iv.lo)}, {fmt(iv.hi)}] "
                   f"(n = {iv.n})")
        return f"{self.rule.text(self.quantity)}; {got}: {self.outcome}"

    def margin(self) -> float:
        """How far the value lies past the threshold in the essay's favour, relative to the
        threshold's size (negative: against the essay); for the ledger's shared axis."""
        return _relative(self.interval.value, self.rule)

    def margins(self) -> tuple[float, float]:
        """The interval's ends on the same relative axis, low end first."""
        a, b = (_relative(v, self.rule) for v in (self.interval.lo, self.interval.hi))
        return (min(a, b), max(a, b))

    def as_dict(self) -> dict[str, Any]:
        iv = self.interval
        return {"name": self.name, "quantity": self.quantity, "value": iv.value,
                "interval": [iv.lo, iv.hi], "n": iv.n, "method": iv.method,
                "rule": self.rule.text(self.quantity), "direction": self.rule.direction,
                "threshold": self.rule.threshold, "unit": self.unit,
                "outcome": self.outcome, "sentence": self.sentence()}


def _relative(value: float, rule: Rule) -> float:
    t = rule.threshold
    if not math.isfinite(value):
        return math.copysign(math.inf, value if rule.direction == ">=" else -value)
    scale = abs(t) if t != 0 else max(abs(value), 1e-12)
    m = (value - t) / scale
    return m if rule.direction == ">=" else -m


@dataclass(frozen=True)
class Fact:
    """A quantity fixed by construction or taken from a published table: shown, never votes."""

    name: str
    quantity: str
    value: Any
    unit: str = ""
    source: str = "architecture"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "quantity": self.quantity, "value": self.value,
                "unit": self.unit, "source": self.source}


def combine(outcomes: Iterable[str]) -> str:
    """The chapter's verdict from its tests' outcomes (see the module docstring)."""
    got = set(outcomes)
    if not got:
        raise ValueError("a verdict needs at least one test")
    unknown = got - {"supported", "not supported", "inconclusive"}
    if unknown:
        raise ValueError(f"unknown test outcome(s): {sorted(unknown)}")
    if got == {"supported"}:
        return "supported"
    if got == {"not supported"}:
        return "not supported"
    if {"supported", "not supported"} <= got:
        return "mixed"
    return "inconclusive"


def plural(n: int, one: str, many: str | None = None) -> str:
    """``"1 test"``, ``"2 tests"``: a count and its noun in agreement."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


@dataclass
class Decision:
    """A chapter's tests and facts, and the verdict they give."""

    tests: list[Test]
    facts: list[Fact] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.tests:
            raise ValueError("a decision needs at least one test")
        names = [t.name for t in self.tests] + [f.name for f in self.facts]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"test and fact names must be unique, repeated: {dup}")

    @property
    def verdict(self) -> str:
        return combine(t.outcome for t in self.tests)

    def reason(self) -> str:
        """One line: which tests decided and how."""
        by = {o: [t.quantity for t in self.tests if t.outcome == o]
              for o in ("supported", "not supported", "inconclusive")}
        v = self.verdict
        if len(self.tests) == 1:
            return self.tests[0].sentence()
        if v == "supported":
            return f"all {plural(len(self.tests), 'test')} support the claim"
        if v == "not supported":
            return f"all {plural(len(self.tests), 'test')} contradict the claim"
        if v == "mixed":
            return (f"supported by {'; '.join(by['supported'])}; contradicted by "
                    f"{'; '.join(by['not supported'])}")
        sampled = [t.quantity for t in self.tests
                   if t.outcome == "inconclusive" and t.interval.method != "range"]
        modelled = [t.quantity for t in self.tests
                    if t.outcome == "inconclusive" and t.interval.method == "range"]
        parts = []
        if sampled:
            verb = "straddles its threshold" if len(sampled) == 1 else \
                "straddle their thresholds"
            parts.append(f"cannot decide at this scale: {'; '.join(sampled)} {verb}")
        if modelled:
            verb = "turns" if len(modelled) == 1 else "turn"
            parts.append(f"{'; '.join(modelled)} {verb} on the model's assumptions")
        return "; ".join(parts)

    def why(self) -> str:
        """Every test's rule and measurement, one sentence each."""
        return " ".join(_capital(t.sentence()) + "." for t in self.tests)

    def small_samples(self, profile: str) -> list[str]:
        """Names of sampled tests with fewer samples than ``profile`` asks for."""
        need = MIN_SAMPLES.get(profile, 0)
        return [t.name for t in self.tests if t.interval.sampled and t.interval.n < need]

    def box_markdown(self, claim: str) -> str:
        """The verdict box: the verdict, then what would have turned each test, as Markdown."""
        lines = [f"**Verdict: {self.verdict}.** {claim}", "",
                 _capital(self.reason()) + ".", ""]
        lines += [f"- *{t.name}*: {t.sentence()}." for t in self.tests]
        if self.facts:
            lines += ["", "Facts shown beside the tests (they do not vote):", ""]
            lines += [f"- *{f.name}*: {f.quantity} = {_fact_value(f)} ({f.source})."
                      for f in self.facts]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "why": self.why(), "reason": self.reason(),
                "tests": [t.as_dict() for t in self.tests],
                "facts": [f.as_dict() for f in self.facts]}


def _fact_value(f: Fact) -> str:
    v = fmt(f.value) if isinstance(f.value, (int, float)) and not isinstance(f.value, bool) \
        else str(f.value)
    return f"{v} {f.unit}".strip()


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
