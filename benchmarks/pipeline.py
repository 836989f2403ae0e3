"""The pipeline: a cold book build, an unchanged rebuild and a one-parameter rebuild.

All three run the real command line (``python -m gardenpath --root TREE build``) in a
scratch copy of the tree made by ``tests/conftest.py``'s ``copy_repo_tree`` (notebooks,
params, config, prose and the package source; never the working tree itself), with
``PYTHONPATH`` pointing at the copy's ``src`` so the chapters run the copied code even
while the working copy is being edited. Before the cold build the copy's
``.gardenpath/out/<profile>``, ``.gardenpath/manifests/<profile>``,
``results/<profile>`` and ``book/_build`` are removed.

1. **cold**: ``build`` from nothing; each chapter's wall time from the summary table;
2. **unchanged**: ``build`` again; goal: under 30 s;
3. **one parameter**: ``build --set <chapter>.<param>=<value>``; goal: only that
   chapter re-executes (counted from the ``[i/n] <chapter>: running`` lines on stderr and
   the summary table). Chapters that read other chapters' results (the claims ledger)
   depend on the changed chapter's results file and re-run with it; the table says so.

Wall time of each command is read once from ``time.perf_counter`` around the process;
the moment the summary table is printed splits it into the run phase (papermill) and
the book phase (publish + jupyter-book). Works with whatever chapters exist.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, env_markdown, environment, finish_environment, log, md_table
from benchmarks.common import verdict as verdict_cell

GOAL_UNCHANGED_S = 30.0
RUNNING = re.compile(r"^\[(\d+)/(\d+)\] (\S+): running \(key (\w+); (.*)\)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
COUNTS = re.compile(r"^(\d+ (ran|cached|failed|timeout|interrupted))(, \d+ \w+)*$")


def copy_tree(dest: Path) -> Path:
    """A scratch copy of the book tree via ``tests/conftest.py``'s ``copy_repo_tree``.

    ``benchmarks/results`` is copied too, because the Performance page includes its
    tables. Refuses a destination inside the working tree.
    """
    dest = dest.resolve()
    if dest == ROOT or ROOT in dest.parents:
        raise ValueError(f"{dest}: the scratch copy must be outside {ROOT}")
    spec = importlib.util.spec_from_file_location("_gardenpath_conftest",
                                                  ROOT / "tests" / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    conftest.copy_repo_tree(dest)
    results = ROOT / "benchmarks" / "results"
    if results.is_dir():
        shutil.copytree(results, dest / "benchmarks" / "results", dirs_exist_ok=True)
    return dest


def make_cold(tree: Path, profile: str) -> None:
    """Remove every output of ``profile`` from the scratch tree."""
    for rel in (f".gardenpath/out/{profile}", f".gardenpath/manifests/{profile}",
                f"results/{profile}", "book/_build"):
        shutil.rmtree(tree / rel, ignore_errors=True)


def _env(tree: Path) -> dict[str, str]:
    """The environment for the scratch tree: its own ``src`` first, no GARDENPATH_ vars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARDENPATH_")}
    env["PYTHONPATH"] = str(tree / "src") + (os.pathsep + env["PYTHONPATH"]
                                             if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def status(tree: Path, profile: str) -> dict[str, dict[str, str]]:
    """``python -m gardenpath status``: chapter -> {state, detail}."""
    out = subprocess.run([sys.executable, "-m", "gardenpath", "--root", str(tree), "status",
                          "--profile", profile], cwd=tree, env=_env(tree),
                         capture_output=True, text=True, timeout=600).stdout
    states = {}
    for line in out.splitlines():
        parts = re.split(r"\s{2,}|\s(?=fresh|stale|failed|never)", line.strip(), maxsplit=2)
        if len(parts) >= 2:
            states[parts[0].strip()] = {"state": parts[1].strip(),
                                        "detail": parts[2].strip() if len(parts) > 2 else ""}
    return states


def run_build(tree: Path, profile: str, extra: list[str], timeout_s: float) -> dict[str, Any]:
    """Run ``python -m gardenpath --root TREE build``; lines are kept with their times."""
    env = _env(tree)
    cmd = [sys.executable, "-m", "gardenpath", "--root", str(tree), "build",
           "--profile", profile, *extra]
    lines: list[tuple[float, str, str]] = []
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)

    def pump(stream: Any, name: str) -> None:
        for line in stream:
            lines.append((time.perf_counter() - start, name, ANSI.sub("", line.rstrip("\n"))))

    threads = [threading.Thread(target=pump, args=(proc.stdout, "out"), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, "err"), daemon=True)]
    for t in threads:
        t.start()
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    wall = time.perf_counter() - start
    for t in threads:
        t.join(timeout=10)
    lines.sort(key=lambda x: x[0])
    return {"command": " ".join(["python -m gardenpath --root <scratch> build", "--profile",
                                 profile, *extra]),
            "returncode": code, "wall_s": wall, **parse(lines)}


def parse(lines: list[tuple[float, str, str]]) -> dict[str, Any]:
    """Chapters run (stderr), the summary table (stdout) and the phase split."""
    running = []
    for _, stream, text in lines:
        m = RUNNING.match(text.strip())
        if stream == "err" and m:
            running.append({"chapter": m.group(3), "key": m.group(4), "reason": m.group(5)})
    chapters: list[dict[str, Any]] = []
    run_phase_s = None
    in_table = False
    for t, stream, text in lines:
        if stream != "out":
            continue
        if not in_table and text.startswith("chapter") and "result" in text:
            in_table, run_phase_s = True, t
            continue
        if in_table:
            if set(text.replace(" ", "")) <= {"-"}:
                continue
            if COUNTS.match(text.strip()):
                in_table = False
                continue
            parts = re.split(r"\s{2,}", text.strip(), maxsplit=3)
            if len(parts) >= 3:
                wall = parts[2]
                chapters.append({"chapter": parts[0], "result": parts[1],
                                 "wall_s": float(wall.split()[0]) if wall != "-" else None,
                                 "note": parts[3] if len(parts) > 3 else ""})
    tail = [text for _, _, text in lines[-15:]]
    book = [text for t, _, text in lines if run_phase_s is not None and t >= run_phase_s]
    problems = [text for text in book if "WARNING:" in text or "ERROR:" in text]
    outcome = next((text.strip() for text in reversed(book)
                    if text.strip().startswith("build ")), None)
    return {"running": running, "chapters": chapters, "run_phase_s": run_phase_s,
            "tail": tail, "sphinx_problems": problems[:20], "sphinx_outcome": outcome}


def pick_change(tree: Path, profile: str, cold: dict[str, Any]) -> str:
    """``chapter.seed=<seed + 1>`` for the chapter that ran fastest cold (not the ledger).

    Every chapter that computes anything declares ``seed``; a new seed changes its
    parameters and nothing else. Chapters that read others' results are not picked.
    """
    sys.path.insert(0, str(tree / "src"))
    from gardenpath.pipeline import Project, chapter_meta, plan

    project = Project(tree)
    the_plan = plan(project, profile)
    times = {c["chapter"]: c["wall_s"] for c in cold["chapters"] if c["wall_s"]}
    candidates = [c for c in the_plan.chapters if "seed" in c.params
                  and not chapter_meta(project.notebook(c.name)).get("reads_results")]
    if not candidates:
        raise RuntimeError("no chapter declares a seed parameter to change")
    best = min(candidates, key=lambda c: times.get(c.name, float("inf")))
    return f"{best.name}.seed={int(best.params['seed']) + 1}"


def dependents(tree: Path) -> list[str]:
    """Chapters that read other chapters' results (re-run when any results change)."""
    sys.path.insert(0, str(tree / "src"))
    from gardenpath.pipeline import Project, chapter_meta

    project = Project(tree)
    return [c for c in project.chapters()
            if chapter_meta(project.notebook(c)).get("reads_results")]


def run(quick: bool = False, *, profile: str | None = None, keep: Path | None = None,
        change: str | None = None, jobs: int = 1,
        timeout_s: float = 4 * 3600) -> dict[str, Any]:
    """Cold build, unchanged rebuild, one-parameter rebuild; returns JSON-ready results."""
    profile = profile or ("smoke" if quick else "cpu")
    env = environment("cpu")
    scratch = keep or Path(tempfile.mkdtemp(prefix="gardenpath-bench-"))
    try:
        tree = copy_tree(scratch / "tree" if keep is None else keep)
        make_cold(tree, profile)
        extra = ["--jobs", str(jobs)] if jobs != 1 else []
        log(f"pipeline: cold build of profile {profile} in {tree}")
        cold = run_build(tree, profile, extra, timeout_s)
        log(f"pipeline: cold build took {cold['wall_s']:.1f} s; unchanged rebuild")
        unchanged = run_build(tree, profile, extra, timeout_s)
        change = change or pick_change(tree, profile, cold)
        log(f"pipeline: rebuild with --set {change}")
        one = run_build(tree, profile, [*extra, "--set", change], timeout_s)
        deps = dependents(tree)
        after = status(tree, profile)
    finally:
        if keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    finish_environment(env)
    changed = change.split(".", 1)[0]
    reran = [r["chapter"] for r in one["running"]]
    others = [c for c in reran if c != changed and c not in deps]
    goals = {
        # the two goals
        "unchanged_under_30s": unchanged["returncode"] == 0 and
        unchanged["wall_s"] < GOAL_UNCHANGED_S,
        "one_param_reruns_only_that_chapter": changed in reran and not others,
        # two checks of the same cache that the goals do not cover
        "unchanged_executes_nothing": not unchanged["running"],
        "dependents_fresh_after_one_param": all(
            after.get(d, {}).get("state") == "fresh" for d in deps),
    }
    data = {"benchmark": "pipeline", "quick": quick, "profile": profile, "jobs": jobs,
            "environment": env, "change": change, "dependents": deps,
            "cold": cold, "unchanged": unchanged, "one_param": one,
            "status_after_one_param": after, "goals": goals}
    data["markdown"] = render(data)
    return data


def _fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} s"


def render(data: dict[str, Any]) -> str:
    """Markdown: conditions, the three builds, per-chapter cold times, goals."""
    cold, unch, one = data["cold"], data["unchanged"], data["one_param"]
    g = data["goals"]
    changed = data["change"].split(".", 1)[0]
    builds = []
    for name, b in (("cold", cold), ("unchanged", unch), (f"--set {data['change']}", one)):
        run_s = b["run_phase_s"]
        book_s = b["wall_s"] - run_s if run_s is not None else None
        reran = ", ".join(r["chapter"] for r in b["running"]) or "none"
        builds.append([name, _fmt_s(b["wall_s"]), _fmt_s(run_s), _fmt_s(book_s), reran,
                       "ok" if b["returncode"] == 0 else f"exit {b['returncode']}"])
    reran = [r["chapter"] for r in one["running"]]
    extra = [c for c in reran if c != changed]
    one_detail = (f"re-ran {', '.join(reran) or 'nothing'}"
                  + (f"; {', '.join(extra)} read(s) the changed chapter's results"
                     if extra and all(c in data["dependents"] for c in extra) else ""))
    unch_detail = f"{unch['wall_s']:.1f} s"
    if not g["unchanged_under_30s"]:
        unch_detail += f", {unch['wall_s'] / GOAL_UNCHANGED_S:.2g}x the goal"
    ran_unch = [f"{r['chapter']} ({r['reason']})" for r in unch["running"]]
    after = data["status_after_one_param"]
    deps_detail = ", ".join(f"{d}: {after.get(d, {}).get('state', '?')}"
                            + (f" ({after[d]['detail']})" if after.get(d, {}).get("detail")
                               and after[d]["state"] != "fresh" else "")
                            for d in data["dependents"]) or "no chapter reads results"
    goal_cells = {
        "cold": "-",
        "unchanged": "; ".join([
            f"under {GOAL_UNCHANGED_S:g} s: "
            + verdict_cell(g["unchanged_under_30s"], unch_detail),
            "executes no chapter: " + verdict_cell(
                g["unchanged_executes_nothing"],
                "executed " + ", ".join(ran_unch) if ran_unch else "")]),
        "one": "; ".join([
            f"executes only `{changed}`: "
            + verdict_cell(g["one_param_reruns_only_that_chapter"], one_detail),
            "readers of results fresh: "
            + verdict_cell(g["dependents_fresh_after_one_param"], deps_detail)]),
    }
    for row, key in zip(builds, ("cold", "unchanged", "one"), strict=True):
        row.insert(5, goal_cells[key])
    per_text = ", ".join(f"{c['chapter']} {_fmt_s(c['wall_s'])}"
                         + ("" if c["result"] == "ran" else f" ({c['result']})")
                         for c in cold["chapters"])
    problems = cold.get("sphinx_problems") or []
    return "\n\n".join([
        "## Pipeline: build, rebuild, change one parameter",
        env_markdown(data["environment"]),
        f"- **Profile:** `{data['profile']}`, `--jobs {data['jobs']}`; a scratch copy of the "
        "tree (`tests/conftest.py` `copy_repo_tree`), outputs removed before the cold build",
        "Run phase: from the command's start to its summary table (papermill); book "
        "phase: the rest (publishing pages and `jupyter-book build -W -n`). Goals and "
        "checks (PASS or MISS) on the rows they judge.",
        md_table(["build", "wall time", "run phase", "book phase", "chapters executed",
                  "goals and checks", "result"], builds),
        f"Cold build, per chapter: {per_text}. Sphinx (cold build): "
        f"{(cold.get('sphinx_outcome') or 'no outcome line').rstrip('.')}"
        + (f"; {len(problems)} warning/error line(s), the first: `{problems[0][:200]}`"
           if problems else "; no warnings."),
    ]) + "\n"
