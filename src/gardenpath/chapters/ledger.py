"""The claims ledger: every chapter's claim, key numbers and verdict, read from results files.

The ledger runs after the other chapters (its notebook declares ``reads_results``), so its
cache key includes their results files: rebuilding any chapter rebuilds the ledger. A
chapter with no results, or whose latest run failed, is listed as such, never hidden.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gardenpath.results import ResultsError, load

#: The essay's claims in our words, in book order: chapter -> (title, claim).
CLAIMS: dict[str, tuple[str, str]] = {
    "energy": ("Where the energy goes",
               "Moving data, not arithmetic, costs most of a computer's energy."),
    "sharing_moves": ("What sharing moves",
                      "Tied weights force a layer to move much more data than untied ones."),
    "imagenet": ("ImageNet without sharing",
                 "Without sharing, training a standard ImageNet network becomes impractical."),
    "parallelism": ("Machine parallelism",
                    "Parallel training of shared weights needs heavy gradient communication."),
    "sharing_buys": ("What sharing buys",
                     "Networks without sharing still learn, so sharing is a computational "
                     "crutch rather than a requirement."),
    "local_learning": ("How local is learning?",
                       "Deep learning's rules need non-local signals, and local rules can "
                       "learn as well."),
    "one_shot": ("Learning in one shot",
                 "A sparse distributed code learns in one presentation and stores and "
                 "retrieves in fixed time."),
}


@dataclass
class Entry:
    """One row of the ledger."""

    chapter: str
    title: str
    claim: str
    status: str  # "ok" | "missing" | "failed" | "corrupted"
    verdict: str | None = None
    why: str = ""
    profile: str = ""
    device: str = ""
    note: str = ""


def _device_name(prov: dict[str, Any]) -> str:
    dev = prov.get("device")
    if isinstance(dev, dict):
        return str(dev.get("name") or dev.get("device") or dev.get("type") or "?")
    return str(dev or "?")


def _latest_status(root: Path, profile: str, chapter: str) -> dict[str, Any]:
    path = root / ".gardenpath" / "manifests" / profile / f"{chapter}.json"
    try:
        return json.loads(path.read_text()).get("latest", {}) or {}
    except (OSError, ValueError):
        return {}


def collect(root: str | Path, profile: str) -> list[Entry]:
    """The ledger's rows for ``profile``: one per claim, whatever state its chapter is in."""
    root = Path(root)
    rows = []
    for chapter, (title, claim) in CLAIMS.items():
        latest = _latest_status(root, profile, chapter)
        try:
            data = load(chapter, profile, root)
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
        status = "ok"
        note = ""
        if data.get("verdict_basis") == "measurements":
            note = "this verdict rests on measured times: a rerun may differ"
        if latest.get("status") not in (None, "ok"):
            status = "failed"
            note = (f"latest run {latest['status']} ({latest.get('when', '?')}); "
                    "numbers from the previous good run")
        rows.append(Entry(chapter, title, data.get("claim") or claim, status,
                          data["verdict"], data.get("why", ""), prov.get("profile", profile),
                          _device_name(prov), note))
    return rows


#: The eighth claim: the essay's conclusion, judged from the other seven.
OVERALL = ("Claims ledger",
           "Taken together: reliance on sharing, parallelism and non-local learning leads "
           "deep learning away from how cortex computes.")


def overall_verdict(counts: dict[str, int]) -> str:
    """Supported only if every decided claim is; not supported only if none is; else mixed."""
    decided = sum(counts[v] for v in ("supported", "not supported", "mixed"))
    if decided and counts["supported"] == decided:
        return "supported"
    if decided and counts["not supported"] == decided:
        return "not supported"
    return "mixed"


def with_overall(rows: list[Entry], profile: str) -> list[Entry]:
    """The seven chapter rows plus the essay's conclusion, judged from them."""
    counts = tally(rows)
    decided = sum(counts[v] for v in ("supported", "not supported", "mixed"))
    why = (f"{counts['supported']} of {decided} claims with results supported, "
           f"{counts['mixed']} mixed, {counts['not supported']} not supported, "
           f"{counts['no result']} without result")
    overall = Entry("ledger", OVERALL[0], OVERALL[1], "ok" if decided else "missing",
                    overall_verdict(counts) if decided else None, why, profile, "all")
    return [*rows, overall]


def tally(rows: list[Entry]) -> dict[str, int]:
    """How many claims got each verdict, and how many have none."""
    out = {"supported": 0, "not supported": 0, "mixed": 0, "no result": 0}
    for r in rows:
        out[r.verdict if r.verdict else "no result"] += 1
    return out


VERDICT_STYLE = {"supported": "#1b7a3a", "not supported": "#b3261e", "mixed": "#9a6700"}


def table_html(rows: list[Entry], linked: set[str] | frozenset[str] = frozenset()) -> str:
    """The ledger as an HTML table (escaped), linking the chapters in ``linked``."""
    e = html.escape
    head = ("<table class='gp-ledger'><thead><tr><th>Claim</th><th>Chapter</th>"
            "<th>Verdict</th><th>Key numbers</th><th>Profile / device</th></tr></thead><tbody>")
    body = []
    for r in rows:
        chap = (f"<a href='{e(r.chapter)}.html'>{e(r.title)}</a>" if r.chapter in linked
                else e(r.title))
        verdict = (f"<strong style='color:{VERDICT_STYLE[r.verdict]}'>{e(r.verdict)}</strong>"
                   if r.verdict else f"<em>{e(r.status)}</em>")
        why = e(r.why) + (f"<br><em>{e(r.note)}</em>" if r.note else "")
        where = f"{e(r.profile)} / {e(r.device)}" if r.verdict else "-"
        body.append(f"<tr><td>{e(r.claim)}</td><td>{chap}</td><td>{verdict}</td>"
                    f"<td>{why}</td><td>{where}</td></tr>")
    return head + "".join(body) + "</tbody></table>"


