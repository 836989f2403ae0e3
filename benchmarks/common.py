"""What every benchmark shares: the run's record, timing policy, tables and result files.

A benchmark returns its rows and a markdown rendering; :func:`write_results` stores both
under ``benchmarks/results/`` next to the record from :func:`environment` (machine,
date, commit, threads, load average before and after), so a table is never separated
from the conditions it was measured under.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from gardenpath.measure.device import describe
from gardenpath.measure.provenance import git_state, now_utc, package_versions
from gardenpath.measure.timing import IQR_GROSS_WARN, IQR_WARN, Timing, time_fn

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (``None`` where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def environment(device: torch.device | str = "cpu") -> dict[str, Any]:
    """The record a results file carries: machine, software, commit, date, load, threads.

    ``git.dirty`` is true when tracked files differ from the commit (other people's
    edits in progress included), so the commit alone may not reproduce the code run. The
    results files do not count: a run rewrites them, and ``make bench`` runs the
    benchmarks one after another.
    """
    return {
        "date": now_utc(),
        "git": git_state(ROOT, ignore=(RESULTS_DIR.relative_to(ROOT).as_posix(),)),
        "device": describe(device),
        "packages": package_versions(("torch", "numpy", "scikit-learn", "papermill",
                                      "jupyter-book")),
        "python": sys.version.split()[0],
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_start": load_average(),
        "command": " ".join(["python -m benchmarks", *sys.argv[1:]]),
    }


def finish_environment(env: dict[str, Any]) -> dict[str, Any]:
    """Add the end time and the load average at the end of the run to ``env``."""
    env["date_end"] = now_utc()
    env["load_average_end"] = load_average()
    return env


def probe_time(fn: Callable[[], Any], *, device: torch.device | str = "cpu") -> float:
    """A rough time per call of ``fn`` (one ``time_fn`` block, no warm-up), seconds."""
    return time_fn(fn, device=device, warmup=0, min_run_time_s=0.0).median_s


def combine(parts: list[Timing]) -> dict[str, Any]:
    """Pool the raw repeats of several :class:`Timing` of the same function.

    Median and interquartile range are recomputed over every repeat, as
    ``torch.utils.benchmark.Measurement`` computes them (linear-interpolated quantiles);
    the warning thresholds are :mod:`gardenpath.measure.timing`'s.
    """
    raw = sorted(t for p in parts for t in p.raw_s)
    q = torch.tensor(raw, dtype=torch.float64)
    median = float(q.quantile(0.5))
    iqr = float(q.quantile(0.75) - q.quantile(0.25))
    rel = iqr / median if median > 0 else math.inf
    notes = []
    if len(raw) < 4:
        notes.append(f"only {len(raw)} repeat(s): the spread is not reliable")
    if rel > IQR_GROSS_WARN:
        notes.append(f"IQR is {100 * rel:.0f}% of the median: strong outside interference")
    elif rel > IQR_WARN:
        notes.append(f"IQR is {100 * rel:.0f}% of the median: noisy machine")
    return {
        "median_s": median,
        "iqr_s": iqr,
        "mean_s": float(q.mean()),
        "raw_s": raw,
        "repeats": len(raw),
        "rounds": len(parts),
        "number_per_run": [p.number_per_run for p in parts],
        "warning": "; ".join(notes) or None,
        "device": parts[0].device,
        "num_threads": parts[0].num_threads,
        "method": f"{parts[0].method}; {len(parts)} interleaved rounds pooled",
    }


def interleaved_timings(fns: dict[str, Callable[[], Any]], *,
                        device: torch.device | str = "cpu", rounds: int = 3,
                        repeats: int = 5, min_run_time_s: float = 0.2,
                        max_run_time_s: float = 20.0) -> dict[str, dict[str, Any]]:
    """Time several functions in interleaved rounds with ``time_fn``; pool each one's repeats.

    On a machine shared with other work the load changes from second to second; timing
    contender A fully and then contender B would charge a burst of load to one of them.
    So each round times every function once (the order rotating between rounds), and a
    function's median and IQR come from its repeats of all rounds (:func:`combine`).

    A first un-warmed block per function estimates its time per call ``t``; each round
    then runs it for ``max(min_run_time_s, repeats * t) / rounds`` seconds (the total
    capped at ``max_run_time_s``), so fast functions get many blocks and slow ones about
    ``repeats``. The functions should already have been called once (warm-up).
    """
    names = list(fns)
    est = {n: probe_time(fns[n], device=device) for n in names}
    parts: dict[str, list[Timing]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            budget = min(max(min_run_time_s, repeats * est[n]), max_run_time_s) / rounds
            parts[n].append(time_fn(fns[n], device=device, warmup=0, min_run_time_s=budget))
    return {n: combine(parts[n]) for n in names}


# --------------------------------------------------------------------------- formatting


def fmt_time(seconds: float | None) -> str:
    """``1.23 ms``-style text with three significant figures (a difference may be
    negative: ``-80.4 µs``); ``-`` for ``None``."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 0:
        return "-" + fmt_time(-seconds)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


def fmt_timing(t: dict[str, Any] | None) -> str:
    """``median (IQR ...)`` of a :meth:`Timing.as_dict`; ``-`` when absent."""
    if not t:
        return "-"
    return f"{fmt_time(t['median_s'])} (IQR {fmt_time(t['iqr_s'])})"


def fmt_bytes(n: float | None) -> str:
    """Bytes as KiB / MiB / GiB with three significant figures."""
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"


def fmt_ratio(x: float | None) -> str:
    """A ratio as ``12.3x``, ``1,570x`` from a thousand on (``-`` for ``None``)."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:,.0f}x" if abs(x) >= 1000 else f"{x:.3g}x"


def verdict(ok: bool | None, detail: str = "") -> str:
    """``PASS`` / ``MISS`` (with an optional detail, e.g. by how much) / ``n/a``."""
    if ok is None:
        return "n/a" + (f" ({detail})" if detail else "")
    word = "PASS" if ok else "**MISS**"
    return f"{word} ({detail})" if detail else word


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub/MyST pipe table; ``|`` inside cells is escaped."""
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def env_markdown(env: dict[str, Any]) -> str:
    """The conditions of a run as a short bullet list (machine, commit, date, load)."""
    dev = env.get("device", {})
    host = dev.get("host", dev)
    name = dev.get("name") or "unknown device"
    cores = host.get("cores_usable") or host.get("cores_logical")
    isa = f", {dev['vector_isa']}" if dev.get("vector_isa") else ""  # CPU runs only
    mem = host.get("memory_total_bytes")
    git = env.get("git", {})
    commit = (git.get("commit") or "unknown")[:12]
    if git.get("dirty"):
        commit += " (tracked files modified)"
    la0, la1 = env.get("load_average_start"), env.get("load_average_end")
    load = (f"{la0[0]:.2f} at the start, {la1[0]:.2f} at the end (1-minute load average on "
            f"{env.get('cpu_count')} logical CPUs)" if la0 and la1 else "not available")
    pk = env.get("packages", {})
    return "\n".join([
        f"- **Machine:** {name} ({dev.get('device', '?')}{isa}), {cores} usable cores, "
        f"{fmt_bytes(mem)} memory; torch {pk.get('torch')}, "
        f"{env.get('torch_threads')} intra-op thread(s)",
        f"- **Run:** {env.get('date')} to {env.get('date_end', '?')}, commit `{commit}`, "
        f"`{env.get('command')}`",
        f"- **Load:** {load}",
    ])


def write_results(name: str, markdown: str, data: dict[str, Any],
                  out_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """Write ``<name>.md`` and ``<name>.json`` under ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = out_dir / f"{name}.md", out_dir / f"{name}.json"
    md_path.write_text(markdown.rstrip() + "\n", encoding="utf-8")
    json_path.write_text(json.dumps(data, indent=1, sort_keys=False, default=str) + "\n",
                         encoding="utf-8")
    return md_path, json_path


def log(msg: str) -> None:
    """Progress on stderr (stdout carries the tables)."""
    print(msg, file=sys.stderr, flush=True)
