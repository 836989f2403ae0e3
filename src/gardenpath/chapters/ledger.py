"""The claims ledger: every chapter's claim, deciding tests and verdict, read from results files.

The ledger runs after the other chapters (its notebook declares ``reads_results``), so its
cache key includes their results files: rebuilding any chapter rebuilds the ledger. A
chapter with no results, or whose latest run failed, is listed as such, never hidden.

The page opens with one chart of every deciding quantity against its threshold on a shared
axis (:func:`forest_chart`), then a short table (claim, verdict, one-line reason, link) with
each chapter's tests and facts folded away.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

from gardenpath import claims
from gardenpath.pipeline import Project, read_manifest
from gardenpath.results import ResultsError, load, load_file
from gardenpath.verdict import OUTCOMES, combine, plural

CLAIM = claims.OVERALL.claim

#: The overall rule, in the words the page shows; :func:`overall_verdict` is its code.
OVERALL_RULE = ("The conclusion is supported when every claim with a result is supported, "
                "not supported when every one is not supported, mixed when some are "
                "supported and others are not (a mixed chapter counts as both), and "
                "inconclusive otherwise (no claim contradicts another, but some cannot be "
                "decided at this scale).")

OUTCOME_COLORS = {"supported": "#1b7a3a", "not supported": "#b3261e", "mixed": "#9a6700",
                  "inconclusive": "#5f6368"}


@dataclass
class Entry:
    """One row of the ledger."""

    chapter: str
    title: str
    claim: str
    status: str  # "ok" | "missing" | "failed" | "corrupted"
    verdict: str | None = None
    reason: str = ""
    why: str = ""
    profile: str = ""
    device: str = ""
    note: str = ""
    tests: list[dict[str, Any]] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)


def _device_name(prov: dict[str, Any]) -> str:
    dev = prov.get("device")
    if isinstance(dev, dict):
        return str(dev.get("name") or dev.get("device") or dev.get("type") or "?")
    return str(dev or "?")


def _latest_status(root: Path, profile: str, chapter: str) -> dict[str, Any]:
    """The chapter's latest run as its manifest records it; ``{}`` when there is none, or
    it is unreadable or of the wrong shape (read as the pipeline reads it)."""
    manifest = read_manifest(Project(root).manifest_path(profile, chapter))
    return (manifest or {}).get("latest") or {}


def collect(root: str | Path, profile: str, results_dir: str | Path | None = None
            ) -> list[Entry]:
    """The ledger's rows for ``profile``: one per claim, whatever state its chapter is in.

    Results are read from ``<root>/results/<profile>/`` unless ``results_dir`` names the
    folder that holds the ``<chapter>.json`` files.
    """
    root = Path(root)
    rows = []
    for chapter, (title, claim) in claims.CLAIMS.items():
        latest = _latest_status(root, profile, chapter)
        try:
            data = _load(chapter, profile, root, results_dir)
        except ResultsError as exc:
            rows.append(Entry(chapter, title, claim, "corrupted", note=str(exc)[:200]))
            continue
        if data is None:
            note = "no results yet"
            if latest.get("status") not in (None, "ok"):
                err = latest.get("error", {})
                note = f"latest run {latest['status']}: {err.get('ename', '')}"
            rows.append(Entry(chapter, title, claim, "missing", note=note))
            continue
        prov = data.get("provenance", {})
        status, note = "ok", ""
        if data.get("verdict_basis") == "measurements":
            note = "this verdict rests on measured times: a rerun may differ"
        if latest.get("status") not in (None, "ok"):
            status = "failed"
            note = (f"latest run {latest['status']} ({latest.get('when', '?')}); "
                    "numbers from the previous good run")
        rows.append(Entry(chapter, title, claim, status, data["verdict"],
                          data.get("reason") or data.get("why", ""), data.get("why", ""),
                          prov.get("profile", profile), _device_name(prov), note,
                          list(data.get("tests", [])), list(data.get("facts", []))))
    return rows


def _load(chapter: str, profile: str, root: Path, results_dir: str | Path | None
          ) -> dict[str, Any] | None:
    if results_dir is None:
        return load(chapter, profile, root)
    path = Path(results_dir) / f"{chapter}.json"
    return load_file(path) if path.exists() else None


def tally(rows: list[Entry]) -> dict[str, int]:
    """How many claims got each verdict, and how many have none."""
    out = {v: 0 for v in OUTCOMES} | {"no result": 0}
    for r in rows:
        out[r.verdict if r.verdict else "no result"] += 1
    return out


def overall_verdict(rows: list[Entry]) -> str | None:
    """The essay's conclusion from the chapters' verdicts (see :data:`OVERALL_RULE`);
    ``None`` when no chapter has a result."""
    outcomes: list[str] = []
    for r in rows:
        if r.verdict == "mixed":
            outcomes += ["supported", "not supported"]
        elif r.verdict:
            outcomes.append(r.verdict)
    return combine(outcomes) if outcomes else None


def count_sentence(counts: dict[str, int]) -> str:
    """The tally in words, each count agreeing in number with its verb."""
    def part(n: int, words: str) -> str:
        return f"{n} {'is' if n == 1 else 'are'} {words}"

    decided = sum(counts[v] for v in OUTCOMES)
    text = (f"Of the {plural(len(claims.CLAIMS), 'claim')}, {decided} "
            f"{'has' if decided == 1 else 'have'} a result: "
            f"{part(counts['supported'], 'supported')}, "
            f"{part(counts['not supported'], 'not supported')}, "
            f"{part(counts['mixed'], 'mixed')} and "
            f"{part(counts['inconclusive'], 'inconclusive')}")
    if counts["no result"]:
        text += f"; {counts['no result']} {'has' if counts['no result'] == 1 else 'have'} none"
    return text + "."


def with_overall(rows: list[Entry], profile: str) -> list[Entry]:
    """The seven chapter rows plus the essay's conclusion, judged from them."""
    counts = tally(rows)
    verdict = overall_verdict(rows)
    reason = count_sentence(counts)
    overall = Entry("ledger", claims.OVERALL.title, claims.OVERALL.claim,
                    "ok" if verdict else "missing", verdict, reason, reason, profile, "all")
    return [*rows, overall]


# ---------------------------------------------------------------------------- the chart


def _symlog(m: float) -> float:
    """Signed log scale for the shared axis: 0 at the threshold, ±1 at 9x past it."""
    if math.isinf(m):
        return math.copysign(2.5, m)
    return math.copysign(math.log10(1 + abs(m)), m)


def forest_table(rows: list[Entry]) -> pd.DataFrame:
    """One row per deciding test: its value and interval on the shared, normalised axis.

    The axis measures how far a quantity lies past its threshold in the essay's favour,
    relative to the threshold's size (``(value - t) / |t|``, sign flipped for a rule of the
    form "at most t"), on a signed log scale: 0 is the threshold, right supports the essay.
    """
    from gardenpath.verdict import Interval, Rule, Test

    out = []
    for r in rows:
        for t in r.tests:
            lo, hi = t["interval"]
            lo = -math.inf if lo is None else lo
            hi = math.inf if hi is None else hi
            test = Test(t["name"], t["quantity"], Interval(t["value"], lo, hi, t["n"]),
                        Rule(t["direction"], t["threshold"]))
            mlo, mhi = test.margins()
            out.append({"claim": r.title, "test": t["name"], "quantity": t["quantity"],
                        "label": f"{r.title}: {t['name']}", "outcome": t["outcome"],
                        "x": _symlog(test.margin()), "x_lo": _symlog(mlo),
                        "x_hi": _symlog(mhi), "sentence": t.get("sentence", t["rule"])})
    return pd.DataFrame(out, columns=["claim", "test", "quantity", "label", "outcome", "x",
                                      "x_lo", "x_hi", "sentence"])


def forest_chart(rows: list[Entry]) -> alt.LayerChart:
    """Each claim's deciding quantities, point and 95% interval, against their thresholds."""
    df = forest_table(rows)
    order = list(df["label"])
    color = alt.Color("outcome:N", title="test outcome",
                      scale=alt.Scale(domain=list(OUTCOME_COLORS),
                                      range=list(OUTCOME_COLORS.values())))
    y = alt.Y("label:N", sort=order, title=None)
    base = alt.Chart(df).encode(y=y, color=color,
                                tooltip=["claim", "test", "outcome", "sentence"])
    x_title = "past the threshold, in the essay's favour → (relative, signed log scale)"
    bars = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("x_lo:Q", title=x_title, scale=alt.Scale(domain=[-2.5, 2.5])), x2="x_hi:Q")
    points = base.mark_point(filled=True, size=70).encode(x="x:Q")
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(
        strokeDash=[4, 3], color="#333").encode(x="x:Q")
    return (zero + bars + points).properties(
        title="Every deciding quantity against its threshold (0: the threshold)",
        height=max(120, 22 * len(df)))


# ---------------------------------------------------------------------------- the table


def _verdict_html(r: Entry) -> str:
    e = html.escape
    if not r.verdict:
        return f"<em>{e(r.status)}</em>"
    return (f"<span class='gp-verdict' style='color:{OUTCOME_COLORS[r.verdict]};"
            f"font-weight:600'>{e(r.verdict)}</span>")


def _details_html(r: Entry) -> str:
    e = html.escape
    items = [f"<li>{e(t.get('sentence') or t['rule'])}</li>" for t in r.tests]
    items += [f"<li>fact: {e(str(f['quantity']))} = {e(str(f['value']))} "
              f"{e(str(f.get('unit', '')))} ({e(str(f.get('source', '')))})</li>"
              for f in r.facts]
    extra = f"<p>{e(r.profile)} profile, {e(r.device)}</p>" if r.verdict else ""
    if not items and not extra:
        return ""
    return (f"<details><summary>tests and facts</summary><ul>{''.join(items)}</ul>"
            f"{extra}</details>")


def table_html(rows: list[Entry], linked: set[str] | frozenset[str] = frozenset()) -> str:
    """The ledger as a short HTML table (escaped): claim, verdict, one-line reason, link;
    each chapter's tests and facts folded into a details element."""
    e = html.escape
    head = ("<table class='gp-ledger'><thead><tr><th>Claim</th><th>Verdict</th>"
            "<th>Why, in one line</th><th>Chapter</th></tr></thead><tbody>")
    body = []
    for r in rows:
        chap = (f"<a href='{e(r.chapter)}.html'>{e(r.title)}</a>" if r.chapter in linked
                else e(r.title))
        note = f"<br><em>{e(r.note)}</em>" if r.note else ""
        body.append(f"<tr><td>{e(r.claim)}</td><td>{_verdict_html(r)}</td>"
                    f"<td>{e(r.reason)}{note}{_details_html(r)}</td><td>{chap}</td></tr>")
    return head + "".join(body) + "</tbody></table>"


# ---------------------------------------------------------------------------- synthesis


def samples_to_decide(test: dict[str, Any]) -> int | None:
    """About how many samples would put a straddling interval on one side of its threshold,
    at the effect measured (a t interval's half-width shrinks as 1/sqrt(n)); ``None`` when
    more samples cannot help (a model's range, an exact value, a value on the threshold)."""
    lo, hi = test["interval"]
    value, t, n = test["value"], test["threshold"], test["n"]
    if test.get("method", "t") not in ("t", "bootstrap") or lo is None or hi is None:
        return None
    gap, half = abs(value - t), (hi - lo) / 2
    if gap == 0 or not math.isfinite(half) or n < 2:
        return None
    return max(n + 1, math.ceil(n * (half / gap) ** 2))


def _what_would_decide(test: dict[str, Any]) -> str:
    need = samples_to_decide(test)
    if need is not None:
        return (f"at the effect measured, about {need:,} samples (now {test['n']}) would "
                "bring its interval to one side")
    if test.get("method") == "range":
        return ("its range comes from the model's assumptions, which straddle the "
                "threshold: measuring the assumed quantity on the machine in question "
                "would decide it")
    return "the value lies on the threshold itself"


def synthesis_markdown(rows: list[Entry], profile: str) -> str:
    """The "Where the essay holds" page, generated from the chapters' results: where the
    measurements support the essay, where they contradict it, and what this scale cannot
    decide, with what would decide it."""
    def bullet(r: Entry, t: dict[str, Any], extra: str = "") -> str:
        sentence = (t.get("sentence") or t["rule"]).replace("`", "'")
        return f"- **{r.title}**, *{t['name']}*: {sentence}.{extra}"

    by = {o: [] for o in ("supported", "not supported", "inconclusive")}
    for r in rows:
        for t in r.tests:
            if t["outcome"] in by:
                by[t["outcome"]].append((r, t))
    missing = [r for r in rows if not r.verdict]
    counts = tally(rows)
    verdict = overall_verdict(rows)
    lines = [f"On the **{profile}** profile: {count_sentence(counts)} Taken together, the "
             f"essay's conclusion is **{verdict or 'without result'}** by the ledger's "
             "rule.", ""]
    sections = [
        ("Where the measurements support the essay", by["supported"], "No test supports it "
         "on this profile."),
        ("Where they contradict it", by["not supported"], "No test contradicts it on this "
         "profile."),
    ]
    for heading, items, empty in sections:
        lines += [f"## {heading}", ""]
        lines += [bullet(r, t) for r, t in items] or [empty]
        lines.append("")
    lines += ["## What this book cannot decide at its scale", ""]
    undecided = [bullet(r, t, f" Undecided: {_what_would_decide(t)}.")
                 for r, t in by["inconclusive"]]
    undecided += [f"- **{r.title}**: no result on this profile ({r.note or r.status})."
                  for r in missing]
    lines += undecided or ["Every test on this profile decided."]
    if profile != "gpu":
        lines += ["", "The `gpu` profile runs the same chapters at paper scale (more seeds, "
                  "larger inputs, a GPU's measured energy); the reproduce page says how."]
    return "\n".join(lines) + "\n"
