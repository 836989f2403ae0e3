"""Run chapter notebooks with papermill, cache them, and keep the last good output.

The flow of ``gardenpath run``:

1. :func:`plan` reads every notebook's ``parameters`` cell, layers the profile, the
   ``--params`` file and ``--set`` values on the defaults and checks each value. Any
   problem raises :class:`~gardenpath.params.ParamError` before a kernel starts.
2. Each selected chapter gets a cache key from what it depends on: its notebook source,
   its resolved parameters, the ``src/gardenpath`` tree, ``requirements.txt`` and the
   device kind. A chapter whose key matches its last good run is not run again.
3. :func:`execute` runs the rest in worker processes (``--jobs`` at once). A worker
   writes into a private staging folder; only a successful run is moved into place
   (notebook, figures, results, then the manifest), with signals held off meanwhile. A
   failed, interrupted or timed-out run leaves the last good output untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gardenpath.params import Param, ParamError, load_yaml_layer, parse_set, resolve, suggest
from gardenpath.results import file_digest, write_json_atomic

STATE = ".gardenpath"
DEFAULT_TIMEOUT_S = 3600
#: The dependencies of a chapter's cache key, in the order reasons are reported.
KEY_PARTS = ("notebook", "params", "src", "requirements", "device", "results")


class BusyError(RuntimeError):
    """Another ``gardenpath run`` holds this tree's lock."""

    exit_code = 3


@dataclass
class Project:
    """A gardenpath tree: notebooks, profiles, book sources and run state under ``root``."""

    root: Path

    @classmethod
    def find(cls, start: str | Path | None = None) -> Project:
        """The nearest folder at or above ``start`` holding ``notebooks/`` and ``_config.yml``."""
        here = Path(start or os.getcwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / "notebooks").is_dir() and (folder / "_config.yml").is_file():
                return cls(folder)
        raise ParamError(f"{here}: not inside a gardenpath tree (no notebooks/ and _config.yml)")

    @property
    def notebooks_dir(self) -> Path:
        return self.root / "notebooks"

    @property
    def state_dir(self) -> Path:
        return self.root / STATE

    @property
    def chapters_dir(self) -> Path:
        """Where the book's pages for chapters are published."""
        return self.root / "book" / "chapters"

    def chapters(self) -> list[str]:
        """Chapter names: the stems of ``notebooks/*.py``, in name order."""
        return sorted(p.stem for p in self.notebooks_dir.glob("*.py") if not p.stem.startswith("_"))

    def notebook(self, chapter: str) -> Path:
        return self.notebooks_dir / f"{chapter}.py"

    def toc_chapters(self) -> set[str]:
        """Chapters whose pages ``_toc.yml`` lists (only those can be linked to)."""
        text = (self.root / "_toc.yml").read_text(encoding="utf-8")
        return {line.split("book/chapters/", 1)[1].strip().strip("'\"")
                for line in text.splitlines() if "file: book/chapters/" in line}

    def profiles(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "params").glob("*.yaml"))

    def src_dir(self) -> Path:
        """The package source the chapters import: the tree's own, else the installed one."""
        own = self.root / "src" / "gardenpath"
        if own.is_dir():
            return own
        import gardenpath

        return Path(gardenpath.__file__).parent

    def out_dir(self, profile: str) -> Path:
        return self.state_dir / "out" / profile

    def manifest_path(self, profile: str, chapter: str) -> Path:
        return self.state_dir / "manifests" / profile / f"{chapter}.json"

    def results_path(self, profile: str, chapter: str) -> Path:
        return self.root / "results" / profile / f"{chapter}.json"


# --------------------------------------------------------------------------- keys


def _digest_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: File types whose bytes enter a chapter's cache key (see :func:`tree_digest`).
SOURCE_SUFFIXES = (".py", ".c", ".cpp")


def tree_digest(folder: Path) -> str:
    """SHA-256 over the relative paths and bytes of the source files under ``folder``.

    Source: ``*.py``, ``*.c`` and ``*.cpp`` (the locally connected layer's CPU kernel and
    its C++ autograd operator), so a change to any of them re-runs the chapters that use it.
    """
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.suffix not in SOURCE_SUFFIXES or "__pycache__" in path.parts:
            continue
        h.update(str(path.relative_to(folder)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def device_kind(params: dict[str, Any]) -> str:
    """``cuda`` or ``cpu``: what a chapter will run on, from its ``device`` parameter."""
    wanted = str(params.get("device", "auto"))
    if wanted in ("cpu", "cuda"):
        return wanted
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def chapter_meta(path: Path) -> dict[str, Any]:
    """The ``gardenpath`` block of a notebook's jupytext header (timeout, reads_results)."""
    import jupytext

    return dict(jupytext.read(path).metadata.get("gardenpath", {}) or {})


@dataclass
class Chapter:
    """One chapter's resolved parameters, cache key parts and decision for this run."""

    name: str
    params: dict[str, Any]
    parts: dict[str, str]
    meta: dict[str, Any]
    run: bool = False
    reason: str = ""

    @property
    def key(self) -> str:
        return _digest_text(json.dumps(self.parts, sort_keys=True))[:16]


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A chapter's manifest, or ``None`` when absent or unreadable (then it is re-run)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def staleness(project: Project, profile: str, ch: Chapter) -> str | None:
    """Why ``ch`` must run again (a short reason), or ``None`` when its last good run holds."""
    manifest = read_manifest(project.manifest_path(profile, ch.name))
    if manifest is None:
        if project.manifest_path(profile, ch.name).exists():
            return "manifest unreadable"
        return "never run"
    good = manifest.get("good")
    if not good:
        return "no good run yet"
    old = good.get("parts", {})
    changed = [p for p in KEY_PARTS if old.get(p) != ch.parts.get(p)]
    if changed:
        words = []
        for part in changed:
            if part == "params":
                before, after = good.get("params", {}), ch.params
                keys = sorted(set(before) | set(after))
                diff = [n for n in keys if before.get(n) != after.get(n)]
                words.append("params changed (" + ", ".join(
                    f"{n}: {before.get(n)!r} -> {after.get(n)!r}" for n in diff[:4]) + ")")
            elif part == "device":
                words.append(f"device changed ({old.get('device')} -> {ch.parts['device']})")
            else:
                words.append(f"{part} changed")
        return "; ".join(words)
    out = project.out_dir(profile) / f"{ch.name}.ipynb"
    if file_digest(out) != good.get("notebook_sha256"):
        return "output missing" if not out.exists() else "output corrupted (checksum mismatch)"
    res = project.results_path(profile, ch.name)
    if file_digest(res) != good.get("results_sha256"):
        return "results missing" if not res.exists() else "results corrupted (checksum mismatch)"
    latest = manifest.get("latest", {})
    if latest.get("status") not in (None, "ok"):
        return f"last run {latest.get('status')}"
    return None


# --------------------------------------------------------------------------- plan


def results_digest(project: Project, profile: str, chapter: str) -> str:
    """Digest of every other chapter's results file: the key part of a chapter reading them."""
    return _digest_text(json.dumps(
        {o: file_digest(project.results_path(profile, o))
         for o in project.chapters() if o != chapter}, sort_keys=True))


@dataclass
class Plan:
    """What a run will do: profile, the chapters it covers, and each one's decision."""

    profile: str
    chapters: list[Chapter]
    layers: list[str] = field(default_factory=list)
    forced: bool = False

    def to_run(self) -> list[Chapter]:
        return [c for c in self.chapters if c.run]


def declared_parameters(project: Project) -> dict[str, dict[str, Param]]:
    """Every chapter's declared parameters, read from its notebook."""
    from gardenpath.params import notebook_parameters

    return {ch: notebook_parameters(project.notebook(ch)) for ch in project.chapters()}


def plan(
    project: Project,
    profile: str = "cpu",
    params_file: str | None = None,
    sets: list[str] | tuple[str, ...] = (),
    only: list[str] | tuple[str, ...] = (),
    force: bool = False,
) -> Plan:
    """Resolve and check parameters, compute keys and decide what runs. Raises ParamError."""
    profiles = project.profiles()
    if profile not in profiles:
        raise ParamError(f"--profile {profile}: unknown profile{suggest(profile, profiles)};"
                         f" known: {', '.join(profiles)}")
    names = project.chapters()
    for name in only:
        if name not in names:
            raise ParamError(f"--only {name}: unknown chapter{suggest(name, names)}")
    layers: list[tuple[str, dict[str, dict[str, Any]]]] = [
        (f"params/{profile}.yaml", load_yaml_layer(project.root / "params" / f"{profile}.yaml"))
    ]
    if params_file:
        layers.append((f"--params {params_file}", load_yaml_layer(params_file,
                                                                  f"--params {params_file}")))
    for item in sets:
        chapter, name, value = parse_set(item)
        layers.append((f"--set {item}", {chapter: {name: value}}))
    resolved = resolve(declared_parameters(project), layers, project.root)

    common = {
        "src": tree_digest(project.src_dir()),
        "requirements": file_digest(project.root / "requirements.txt") or "none",
    }
    chapters = []
    for name in names:
        meta = chapter_meta(project.notebook(name))
        parts = {
            "notebook": file_digest(project.notebook(name)) or "",
            "params": _digest_text(json.dumps(resolved[name], sort_keys=True)),
            **common,
            "device": device_kind(resolved[name]),
        }
        if meta.get("reads_results"):
            parts["results"] = results_digest(project, profile, name)
        chapters.append(Chapter(name, resolved[name], parts, meta))
    # chapters that read others' results run last, after those results exist
    chapters.sort(key=lambda c: bool(c.meta.get("reads_results")))
    selected = [c for c in chapters if not only or c.name in only]
    for ch in selected:
        if force:
            ch.run, ch.reason = True, "--force"
        elif only:
            ch.run, ch.reason = True, "--only"
        else:
            why = staleness(project, profile, ch)
            ch.run, ch.reason = why is not None, why or "cached"
    for ch in selected:
        if ch.run:
            check_memory(ch)
    return Plan(profile, selected, [w for w, _ in layers], forced=force or bool(only))


def available_memory_bytes(kind: str) -> int | None:
    """Memory a chapter may use: the GPU's total on ``cuda``, else the host's MemAvailable."""
    if kind == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(ch: Chapter) -> None:
    """Refuse parameters whose estimated memory exceeds the device's, before any kernel.

    A chapter opts in by defining ``memory_estimate(params) -> int`` (bytes) in
    ``gardenpath.chapters.<chapter>``.
    """
    import importlib

    try:
        module = importlib.import_module(f"gardenpath.chapters.{ch.name}")
    except ModuleNotFoundError:
        return
    estimate = getattr(module, "memory_estimate", None)
    if estimate is None:
        return
    need = int(estimate(ch.params))
    have = available_memory_bytes(ch.parts["device"])
    if have is not None and need > have:
        gib = 1024**3
        raise ParamError(
            f"parameters: chapter '{ch.name}' would need about {need / gib:.1f} GiB on "
            f"{ch.parts['device']} but {have / gib:.1f} GiB is available; "
            "use smaller sizes or a bigger device")


# --------------------------------------------------------------------------- run


@contextlib.contextmanager
def run_lock(project: Project):
    """Hold this tree's run lock; a second ``run`` refuses at once with :class:`BusyError`."""
    project.state_dir.mkdir(parents=True, exist_ok=True)
    path = project.state_dir / "run.lock"
    fh = open(path, "a+")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise BusyError(f"another gardenpath run is in progress in {project.root} "
                        f"(lock {path}, held by pid {holder}); wait for it to finish") from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM while outputs are moved into place, deliver them after."""
    blocked = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _replace_dir(src: Path, dst: Path) -> None:
    """Put folder ``src`` at ``dst``, dropping what was there."""
    trash = dst.with_name(dst.name + ".old")
    shutil.rmtree(trash, ignore_errors=True)
    if dst.exists():
        os.replace(dst, trash)
    if src.exists():
        os.replace(src, dst)
    shutil.rmtree(trash, ignore_errors=True)


def reproduce_command(profile: str, chapter: str, params_file: str) -> str:
    """The one command that re-runs a chapter with exactly the parameters it used."""
    return f"python -m gardenpath run --profile {profile} --params {params_file} --only {chapter}"


@dataclass
class Outcome:
    """What happened to one chapter in a run, for the summary table."""

    chapter: str
    status: str  # ran | cached | failed | interrupted | timeout
    wall_time_s: float = 0.0
    note: str = ""
    error: dict[str, Any] = field(default_factory=dict)


class _Job:
    def __init__(self, project: Project, profile: str, ch: Chapter, timeout_s: float | None):
        self.ch = ch
        self.stage = project.state_dir / "staging" / profile / f"{ch.name}.{os.getpid()}"
        shutil.rmtree(self.stage, ignore_errors=True)
        (self.stage / "figures").mkdir(parents=True)
        self.timeout_s = timeout_s or float(ch.meta.get("timeout_s", DEFAULT_TIMEOUT_S))
        spec = {
            "chapter": ch.name,
            "notebook": str(project.notebook(ch.name)),
            "parameters": ch.params,
            "stage": str(self.stage),
            "cwd": str(project.root),
            "timeout_s": self.timeout_s,
        }
        (self.stage / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        env = dict(os.environ)
        env.update(
            GARDENPATH_CHAPTER=ch.name,
            GARDENPATH_PROFILE=profile,
            GARDENPATH_STAGE=str(self.stage),
            GARDENPATH_ROOT=str(project.root),
            GARDENPATH_PARAMS=json.dumps(ch.params),
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gardenpath.worker", str(self.stage / "spec.json")],
            env=env, start_new_session=True, cwd=project.root,
        )

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def kill(self) -> None:
        """End the worker and its kernel (the whole process group)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue

    def cleanup(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # a kernel left behind
        shutil.rmtree(self.stage, ignore_errors=True)


def _commit(project: Project, profile: str, job: _Job, plan_: Plan, wall: float) -> None:
    """Move a successful run's outputs into place, manifest last, signals held."""
    ch = job.ch
    out_dir = project.out_dir(profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = project.results_path(profile, ch.name)
    device = None
    staged_results = job.stage / "results.json"
    if staged_results.exists():
        with contextlib.suppress(ValueError, OSError):
            device = json.loads(staged_results.read_text())["provenance"].get("device")
    from gardenpath.measure.provenance import collect

    prov = collect(ch.params, device=device, wall_time_s=round(wall, 3), root=project.root)
    manifest_path = project.manifest_path(profile, ch.name)
    with signals_held():
        os.replace(job.stage / "out.ipynb", out_dir / f"{ch.name}.ipynb")
        _replace_dir(job.stage / "figures", out_dir / f"{ch.name}_files")
        if staged_results.exists():
            results.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged_results, results)
        elif results.exists():
            results.unlink()
        good = {
            "key": ch.key,
            "parts": ch.parts,
            "params": ch.params,
            "finished": prov["date"],
            "wall_time_s": round(wall, 3),
            "provenance": prov,
            "layers": plan_.layers,
            "notebook_sha256": file_digest(out_dir / f"{ch.name}.ipynb"),
            "results_sha256": file_digest(results),
        }
        latest = {"status": "ok", "when": prov["date"], "key": ch.key,
                  "wall_time_s": round(wall, 3), "reason": ch.reason}
        write_json_atomic(manifest_path, {"chapter": ch.name, "profile": profile,
                                          "good": good, "latest": latest})


def _record_failure(project: Project, profile: str, ch: Chapter, status: str,
                    error: dict[str, Any], wall: float) -> None:
    """Note a failed run in the manifest, keeping the last good run's entry."""
    from gardenpath.measure.provenance import now_utc

    path = project.manifest_path(profile, ch.name)
    manifest = read_manifest(path) or {"chapter": ch.name, "profile": profile, "good": None}
    manifest["latest"] = {"status": status, "when": now_utc(), "key": ch.key,
                          "wall_time_s": round(wall, 3), "reason": ch.reason,
                          "error": {k: v for k, v in error.items() if k != "traceback"}}
    with signals_held():
        write_json_atomic(path, manifest)


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived during a run."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def execute(project: Project, plan_: Plan, jobs: int = 1, timeout_s: float | None = None,
            log=print) -> list[Outcome]:
    """Run the plan's stale chapters, ``jobs`` at a time; return one outcome per chapter."""
    outcomes: dict[str, Outcome] = {}
    # chapters that read others' results are decided again once those have run
    pending = [c for c in plan_.chapters if c.run or c.meta.get("reads_results")]
    for ch in plan_.chapters:
        if ch not in pending:
            outcomes[ch.name] = Outcome(ch.name, "cached", note=f"key {ch.key}")
    running: list[_Job] = []
    total = len(plan_.to_run())
    started = 0

    def on_signal(signum: int, _frame: Any) -> None:
        raise Interrupted(signum)

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while pending or running:
            # chapters that read results wait until every other chapter has finished
            while pending and len(running) < max(1, jobs):
                if pending[0].meta.get("reads_results") and running:
                    break
                ch = pending.pop(0)
                if ch.meta.get("reads_results"):
                    ch.parts["results"] = results_digest(project, plan_.profile, ch.name)
                    if not plan_.forced:
                        why = staleness(project, plan_.profile, ch)
                        ch.run, ch.reason = why is not None, why or "cached"
                    if not ch.run:
                        outcomes[ch.name] = Outcome(ch.name, "cached", note=f"key {ch.key}")
                        continue
                started += 1
                log(f"[{started}/{max(total, started)}] {ch.name}: running "
                    f"(key {ch.key}; {ch.reason})")
                running.append(_Job(project, plan_.profile, ch, timeout_s))
            time.sleep(0.1)
            for job in list(running):
                code = job.proc.poll()
                timed_out = code is None and job.elapsed() > job.timeout_s + 60
                if code is None and not timed_out:
                    continue
                if timed_out:
                    job.kill()
                running.remove(job)
                wall = job.elapsed()
                outcomes[job.ch.name] = _finish(project, plan_, job, code, timed_out, wall, log)
    except Interrupted as exc:
        for job in running:
            job.kill()
            _record_failure(project, plan_.profile, job.ch, "interrupted",
                            {"ename": exc.args[0], "evalue": "run interrupted"}, job.elapsed())
            outcomes[job.ch.name] = Outcome(job.ch.name, "interrupted", job.elapsed(),
                                            f"{exc.args[0]}: previous output kept")
            job.cleanup()
        for ch in pending:
            outcomes[ch.name] = Outcome(ch.name, "interrupted", note="not started")
        raise
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    return [outcomes[c.name] for c in plan_.chapters]


def _finish(project: Project, plan_: Plan, job: _Job, code: int | None, timed_out: bool,
            wall: float, log) -> Outcome:
    ch = job.ch
    try:
        if code == 0 and (job.stage / "out.ipynb").exists():
            _commit(project, plan_.profile, job, plan_, wall)
            log(f"  {ch.name}: ran in {wall:.1f} s")
            return Outcome(ch.name, "ran", wall, ch.reason)
        error: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            error = json.loads((job.stage / "error.json").read_text())
        status = "failed"
        if timed_out or error.get("ename") in ("CellTimeoutError", "TimeoutError"):
            status = "timeout"
            error.setdefault("ename", "Timeout")
            error.setdefault("evalue", f"no result after {job.timeout_s:.0f} s")
        elif not error:
            error = {"ename": "WorkerDied", "evalue": f"worker exited with status {code}"}
        _record_failure(project, plan_.profile, ch, status, error, wall)
        where = f"cell {error['cell']}" if error.get("cell") else "a cell"
        src = f" `{error['cell_source']}`" if error.get("cell_source") else ""
        note = (f"notebooks/{ch.name}.py {where}{src}: {error.get('ename')}: "
                f"{str(error.get('evalue', '')).splitlines()[0] if error.get('evalue') else ''}")
        log(f"  {ch.name}: {status.upper()} - {note}")
        return Outcome(ch.name, status, wall, note, error)
    finally:
        job.cleanup()


def summary_table(outcomes: list[Outcome]) -> str:
    """A plain-text table: chapter, ran/cached/failed, wall time, note."""
    rows = [("chapter", "result", "wall time", "note")]
    for o in outcomes:
        rows.append((o.chapter, o.status, f"{o.wall_time_s:.1f} s" if o.wall_time_s else "-",
                     o.note))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(r[j].ljust(widths[j]) for j in range(3)) + "  " + r[3])
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    counts = {s: sum(o.status == s for o in outcomes) for s in
              ("ran", "cached", "failed", "timeout", "interrupted")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return "\n".join(lines)


def status(project: Project, profile: str = "cpu") -> list[tuple[str, str, str]]:
    """Each chapter's state: ``fresh``, ``stale`` (and why), ``failed`` or ``never run``."""
    p = plan(project, profile)
    rows = []
    for ch in p.chapters:
        manifest = read_manifest(project.manifest_path(profile, ch.name)) or {}
        latest = manifest.get("latest", {})
        why = staleness(project, profile, ch)
        if latest.get("status") in ("failed", "timeout", "interrupted"):
            err = latest.get("error", {})
            state = latest["status"] if latest["status"] != "timeout" else "failed"
            detail = (f"{latest.get('when')}: {err.get('ename', '')}: "
                      f"{str(err.get('evalue', '')).splitlines()[0] if err.get('evalue') else ''}")
            if manifest.get("good"):
                detail += " (last good output kept)"
        elif why is None:
            state, detail = "fresh", f"key {ch.key}, {manifest['good']['finished']}"
        elif why == "never run":
            state, detail = "never run", ""
        else:
            state, detail = "stale", why
        rows.append((ch.name, state, detail))
    return rows
