"""Run chapter notebooks with papermill, cache them, and keep the last good output.

The flow of ``gardenpath run``:

1. :func:`plan` reads every notebook's ``parameters`` cell, layers the profile, the
   ``--params`` file and ``--set`` values on the defaults and checks each value. Any
   problem raises :class:`~gardenpath.params.ParamError` before a kernel starts.
2. Each selected chapter gets a cache key from what it depends on: its notebook source,
   its resolved parameters, the ``gardenpath`` modules its last run imported (the whole
   ``src/gardenpath`` tree before a first run), ``requirements.txt`` and the device kind.
   A chapter whose key matches its last good run is not run again.
3. :func:`execute` runs the rest in worker processes (``--jobs`` at once; a chapter whose
   header says ``runs_alone: true``, one that times the machine, runs with no other
   chapter beside it, so that its timings see no other chapter's load). A worker
   writes into a private staging folder; only a successful run is moved into place
   (notebook, figures, results, then the manifest), all together or, if any step fails,
   not at all, with signals held off meanwhile. A failed, interrupted or timed-out run
   leaves the last good output untouched.

Every process of a run carries its staging folder in its environment, so the pipeline
ends them by pid (the kernel included, though it starts in a session of its own), and
a run holding the tree's lock first ends any left by a killed run and removes their
staging folders (:func:`reap_stale`).
"""

from __future__ import annotations

import contextlib
import errno
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

from gardenpath import estimates
from gardenpath.params import (
    Param,
    ParamError,
    cut,
    load_yaml_layer,
    parse_set,
    read_yaml,
    resolve,
    short,
    suggest,
)
from gardenpath.results import file_digest, write_json_atomic
from gardenpath.worker import EXIT_DISK_FULL, die_with_parent, kill_ours

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


def modules_digest(src: Path, modules: list[str]) -> str:
    """SHA-256 over the listed module files under ``src`` (paths relative to it) and the
    C and C++ sources beside them: what a chapter that imported ``modules`` depends on."""
    files = set(modules)
    for rel in modules:
        folder = (src / rel).parent
        if folder.is_dir():
            files.update(str(p.relative_to(src)) for p in folder.iterdir()
                         if p.suffix in SOURCE_SUFFIXES[1:])
    h = hashlib.sha256()
    for rel in sorted(files):
        path = src / rel
        h.update(rel.encode() + b"\0")
        h.update(path.read_bytes() if path.is_file() else b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


def src_part(project: Project, good: dict[str, Any] | None) -> str:
    """A chapter's ``src`` key part: the modules its last good run imported, else the tree."""
    modules = (good or {}).get("modules")
    if modules is not None:
        return modules_digest(project.src_dir(), modules)
    return tree_digest(project.src_dir())


def device_kind(params: dict[str, Any]) -> str:
    """``cuda`` or ``cpu``: what a chapter will run on, from its ``device`` parameter."""
    wanted = str(params.get("device", "auto"))
    if wanted in ("cpu", "cuda"):
        return wanted
    return "cuda" if cuda_available() else "cpu"


def cuda_available() -> bool:
    """Whether torch would find a CUDA GPU, judged without importing torch (planning stays
    light): a CUDA build of torch installed, an NVIDIA device node, and devices not hidden
    by ``CUDA_VISIBLE_DEVICES``."""
    import importlib.util

    if os.environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
        return False
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    try:
        text = (Path(list(spec.submodule_search_locations)[0]) / "version.py").read_text()
    except OSError:
        return False
    build = next((line.split("=", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("cuda") and "=" in line), "None")
    return build != "None" and any(Path("/dev").glob("nvidia[0-9]*"))


def chapter_meta(path: Path) -> dict[str, Any]:
    """The ``gardenpath`` block of a notebook's jupytext header (timeout, reads_results,
    runs_alone)."""
    import jupytext

    return dict(jupytext.read(path).metadata.get("gardenpath", {}) or {})


@dataclass
class Chapter:
    """One chapter's resolved parameters, cache key parts and decision for this run."""

    name: str
    params: dict[str, Any]
    parts: dict[str, str]
    meta: dict[str, Any]
    #: name -> {"value": used, "profile": the profile's value}, for values that differ
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    profile_params: str = ""  # digest of the profile's own values for this chapter
    run: bool = False
    reason: str = ""

    @property
    def key(self) -> str:
        return _digest_text(json.dumps(self.parts, sort_keys=True))[:16]


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A chapter's manifest, or ``None`` when absent, unreadable or of the wrong shape
    (then the chapter is re-run and the manifest rewritten)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if _manifest_shape_ok(data) else None


def _manifest_shape_ok(data: Any) -> bool:
    """True when ``data`` has the fields, of the types, that the pipeline reads."""
    if not isinstance(data, dict) or not isinstance(data.get("latest", {}), dict):
        return False
    if not isinstance(data["latest"].get("error", {}) if data.get("latest") else {}, dict):
        return False
    good = data.get("good")
    if good is None:
        return True
    if not isinstance(good, dict):
        return False
    kinds = {"parts": dict, "params": dict, "provenance": dict, "key": str, "finished": str,
             "wall_time_s": (int, float), "overrides": dict, "profile_values": dict,
             "modules": list}
    return all(isinstance(good[k], t) for k, t in kinds.items() if k in good) and \
        all(k in good for k in ("parts", "params")) and \
        all(isinstance(m, str) for m in good.get("modules", []))


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
                change = ", ".join(f"{n}: {short(before.get(n))} -> {short(after.get(n))}"
                                   for n in diff[:4])
                if returns_to_profile(good, ch):
                    words.append(f"{OVERRIDES_DROPPED} ({change})")
                else:
                    words.append(f"params changed ({change})")
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


#: The reason a chapter last run with ``--set``/``--params`` runs again on a plain run.
OVERRIDES_DROPPED = "returns to the profile's values"


def returns_to_profile(good: dict[str, Any], ch: Chapter) -> bool:
    """True when ``good`` ran with overrides and ``ch`` asks for the profile's own values."""
    return bool(good.get("overrides")) and not ch.overrides and \
        good.get("profile_params") == ch.parts.get("params")


def overrides_text(good: dict[str, Any]) -> str:
    """``name=value (profile: value)`` for each override of a good run, comma-separated."""
    was = good.get("profile_values") or {}
    return ", ".join(f"{n}={short(v)} (profile: {short(was.get(n))})"
                     for n, v in sorted((good.get("overrides") or {}).items()))


def only_overrides_differ(project: Project, profile: str, ch: Chapter) -> bool:
    """True when the last good run differs from ``ch`` only by its overrides of the profile:
    ``status`` then calls the chapter fresh, with overrides."""
    good = (read_manifest(project.manifest_path(profile, ch.name)) or {}).get("good") or {}
    if not returns_to_profile(good, ch):
        return False
    as_run = Chapter(ch.name, good["params"], {**ch.parts, "params": good["parts"]["params"]},
                     ch.meta, overrides=good["overrides"])
    return staleness(project, profile, as_run) is None


# --------------------------------------------------------------------------- plan


def params_digest(params: dict[str, Any]) -> str:
    """The ``params`` key part: a digest of a chapter's resolved parameters."""
    return _digest_text(json.dumps(params, sort_keys=True))


def results_digest(project: Project, profile: str, chapter: str) -> str:
    """Digest of the results files a chapter reading them reads: every chapter's that
    does not itself read results (the ledger and the synthesis page read the chapters,
    not each other, so neither makes the other stale)."""
    return _digest_text(json.dumps(
        {o: file_digest(project.results_path(profile, o))
         for o in project.chapters()
         if o != chapter and not chapter_meta(project.notebook(o)).get("reads_results")},
        sort_keys=True))


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
        raise ParamError(f"--profile {cut(profile)}: unknown profile{suggest(profile, profiles)};"
                         f" known: {', '.join(profiles)}")
    names = project.chapters()
    for name in only:
        if name not in names:
            raise ParamError(f"--only {cut(name)}: unknown chapter{suggest(name, names)}")
    layers: list[tuple[str, dict[str, dict[str, Any]]]] = [
        (f"params/{profile}.yaml", load_yaml_layer(project.root / "params" / f"{profile}.yaml"))
    ]
    if params_file:
        layers.append((f"--params {params_file}", load_yaml_layer(params_file,
                                                                  f"--params {params_file}")))
    for item in sets:
        chapter, name, value = parse_set(item)
        layers.append((f"--set {cut(item)}", {chapter: {name: value}}))
    declared = declared_parameters(project)
    resolved = resolve(declared, layers, project.root)
    own = resolve(declared, layers[:1], project.root) if len(layers) > 1 else resolved

    requirements = file_digest(project.root / "requirements.txt") or "none"
    chapters = []
    for name in names:
        meta = chapter_meta(project.notebook(name))
        good = (read_manifest(project.manifest_path(profile, name)) or {}).get("good")
        parts = {
            "notebook": file_digest(project.notebook(name)) or "",
            "params": params_digest(resolved[name]),
            "src": src_part(project, good),
            "requirements": requirements,
            "device": device_kind(resolved[name]),
        }
        if meta.get("reads_results"):
            parts["results"] = results_digest(project, profile, name)
        overrides = {n: {"value": v, "profile": own[name][n]}
                     for n, v in resolved[name].items() if own[name][n] != v}
        chapters.append(Chapter(name, resolved[name], parts, meta, overrides,
                                params_digest(own[name])))
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
    if kind == "cuda":  # from nvidia-smi, without importing torch; unknown without it
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total",
                                  "--format=csv,noheader,nounits", "--id=0"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
            return int(float(out.split()[0]) * 2**20)
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(ch: Chapter) -> None:
    """Refuse parameters whose estimated memory exceeds the device's, before any kernel.

    The estimates live in :mod:`gardenpath.estimates` (no torch, no chapter module), one
    function per chapter taking its resolved parameters.
    """
    estimate = estimates.ESTIMATES.get(ch.name)
    if estimate is None:
        return
    try:
        need = int(estimate(ch.params))
    except (ValueError, ArithmeticError, MemoryError) as exc:
        raise ParamError(f"parameters: chapter '{ch.name}': no memory estimate for these "
                         f"values ({type(exc).__name__})") from None
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
    """Hold this tree's run lock; a second ``run`` refuses at once with :class:`BusyError`.

    Whoever holds it is the only run in this tree, so any process or staging folder of an
    earlier run is left over from a killed one: :func:`reap_stale` ends and removes them.
    """
    project.state_dir.mkdir(parents=True, exist_ok=True)
    path = project.state_dir / "run.lock"
    fh = open(path, "a+")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip()[:20] or "unknown"
        fh.close()
        raise BusyError(f"another gardenpath run is in progress in {project.root} "
                        f"(lock {path}, held by pid {holder}); wait for it to finish") from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    try:
        reap_stale(project)
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def reap_stale(project: Project) -> int:
    """End every process a killed run left (by pid, found by its staging folder) and
    remove every staging folder. Call only while holding the lock. Returns the count."""
    staging = project.state_dir / "staging"
    ended = kill_ours(staging)
    if staging.exists():
        shutil.rmtree(staging, ignore_errors=True)
    for folder in (project.state_dir / "out", project.root / "results"):
        for left in folder.glob("*/.*.prev"):  # from a commit killed half-way (kill -9);
            _remove(left)  # the manifest was not written, so the chapter runs again
    return ended


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM while outputs are moved into place, deliver them after."""
    blocked = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _remove(path: Path) -> None:
    """Remove a file, link or folder at ``path``, if any."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


#: How outputs are moved into place; a test replaces it to make one step fail.
_move = os.replace


class CommitError(OSError):
    """Outputs could not be moved into place; the previous ones were put back."""


def replace_together(moves: list[tuple[Path | None, Path]], last=None) -> None:
    """Put each ``src`` at its ``dst`` (``None``: remove ``dst``), then call ``last``; all
    of it or, when any step fails, none: what was there before is put back.

    Each old ``dst`` is first renamed beside itself (``.NAME.prev``), so undoing is a
    rename too. Raises :class:`CommitError` naming the step that failed.
    """
    done: list[tuple[Path, Path | None]] = []
    try:
        for src, dst in moves:
            dst.parent.mkdir(parents=True, exist_ok=True)
            backup = dst.with_name(f".{dst.name}.prev")
            _remove(backup)
            had = dst.exists() or dst.is_symlink()
            if had:
                _move(dst, backup)
            done.append((dst, backup if had else None))
            if src is not None:
                _move(src, dst)
        if last is not None:
            last()
    except OSError as exc:
        for dst, backup in reversed(done):
            with contextlib.suppress(OSError):
                _remove(dst)
                if backup is not None:
                    _move(backup, dst)
        raise CommitError(exc.errno, describe_os_error(exc)) from exc
    for _, backup in done:
        if backup is not None:
            with contextlib.suppress(OSError):
                _remove(backup)


def describe_os_error(exc: OSError) -> str:
    """One line for a failed file operation; a full disk is called that."""
    where = exc.filename or ""
    if exc.errno == errno.ENOSPC:
        return f"disk full (no space left on device{': ' + str(where) if where else ''})"
    what = exc.strerror or str(exc)
    return f"{type(exc).__name__}: {what}{': ' + str(where) if where else ''}"[:300]


def reproduce_command(profile: str, chapter: str, overrides: dict[str, Any] | None = None
                      ) -> str:
    """The one command that re-runs a chapter with exactly the parameters it used: the
    profile (a file in the repository) and each value that differs from it, inline."""
    import shlex

    sets = "".join(f" --set {shlex.quote(f'{chapter}.{name}={yaml_value(v)}')}"
                   for name, v in sorted((overrides or {}).items()))
    return f"python -m gardenpath run --profile {profile} --only {chapter}{sets}"


def yaml_value(value: Any) -> str:
    """``value`` as ``--set`` reads it back: plain where that reads the same, else JSON."""
    if isinstance(value, str):
        with contextlib.suppress(Exception):
            if read_yaml(value) == value and value.strip() == value and value:
                return value
    return json.dumps(value)


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
        self.proc: subprocess.Popen | None = None
        self.started = time.monotonic()
        self.timeout_s = timeout_s or float(ch.meta.get("timeout_s", DEFAULT_TIMEOUT_S))
        shutil.rmtree(self.stage, ignore_errors=True)
        (self.stage / "figures").mkdir(parents=True)
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
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        env.pop("GARDENPATH_PARAMS", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gardenpath.worker", str(self.stage / "spec.json")],
            env=env, start_new_session=True, cwd=project.root, preexec_fn=die_with_parent(),
        )

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def kill(self) -> None:
        """End the worker, its kernel and whatever they started (found by the stage)."""
        kill_ours(self.stage)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)

    def cleanup(self) -> None:
        """End what is left of this run and remove its staging folder."""
        self.kill()
        shutil.rmtree(self.stage, ignore_errors=True)


def _commit(project: Project, profile: str, job: _Job, plan_: Plan, wall: float) -> None:
    """Move a successful run's outputs into place, all together or not at all, manifest
    last, signals held. Raises :class:`CommitError` when a step fails."""
    ch = job.ch
    out_dir = project.out_dir(profile)
    results = project.results_path(profile, ch.name)
    notebook = out_dir / f"{ch.name}.ipynb"
    device = None
    staged_results = job.stage / "results.json"
    if staged_results.exists():
        with contextlib.suppress(ValueError, OSError, AttributeError, TypeError):
            device = json.loads(staged_results.read_text())["provenance"].get("device")
    modules: list[str] | None = None  # None: not recorded, the key keeps the whole tree
    with contextlib.suppress(ValueError, OSError, TypeError):
        listed = json.loads((job.stage / "modules.json").read_text())
        modules = [m for m in listed if isinstance(m, str)]
    from gardenpath.measure.provenance import collect

    prov = collect(ch.params, device=device, wall_time_s=round(wall, 3), root=project.root)
    parts = dict(ch.parts)
    if modules is not None:
        parts["src"] = modules_digest(project.src_dir(), modules)
    key = _digest_text(json.dumps(parts, sort_keys=True))[:16]
    good = {
        "key": key,
        "parts": parts,
        "params": ch.params,
        "overrides": {n: o["value"] for n, o in ch.overrides.items()},
        "profile_values": {n: o["profile"] for n, o in ch.overrides.items()},
        "profile_params": ch.profile_params,
        **({"modules": modules} if modules is not None else {}),
        "finished": prov["date"],
        "wall_time_s": round(wall, 3),
        "provenance": prov,
        "layers": plan_.layers,
        "notebook_sha256": file_digest(job.stage / "out.ipynb"),
        "results_sha256": file_digest(staged_results),
    }
    latest = {"status": "ok", "when": prov["date"], "key": key,
              "wall_time_s": round(wall, 3), "reason": ch.reason}
    manifest = {"chapter": ch.name, "profile": profile, "good": good, "latest": latest}
    with signals_held():
        replace_together(
            [(job.stage / "out.ipynb", notebook),
             (job.stage / "figures", out_dir / f"{ch.name}_files"),
             (staged_results if staged_results.exists() else None, results)],
            last=lambda: write_json_atomic(project.manifest_path(profile, ch.name), manifest))


def _record_failure(project: Project, profile: str, ch: Chapter, status: str,
                    error: dict[str, Any], wall: float, log=None) -> None:
    """Note a failed run in the manifest, keeping the last good run's entry."""
    from gardenpath.measure.provenance import now_utc

    path = project.manifest_path(profile, ch.name)
    manifest = read_manifest(path) or {"chapter": ch.name, "profile": profile, "good": None}
    manifest["latest"] = {"status": status, "when": now_utc(), "key": ch.key,
                          "wall_time_s": round(wall, 3), "reason": ch.reason,
                          "error": {k: v for k, v in error.items() if k != "traceback"}}
    with signals_held():
        try:
            write_json_atomic(path, manifest)
        except OSError as exc:
            if log is not None:
                log(f"  {ch.name}: could not record the failure ({describe_os_error(exc)})")


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived during a run."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def interruptible():
    """Turn SIGINT and SIGTERM into :class:`Interrupted` for the block's duration."""

    def on_signal(signum: int, _frame: Any) -> None:
        raise Interrupted(signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def execute(project: Project, plan_: Plan, jobs: int = 1, timeout_s: float | None = None,
            log=print) -> list[Outcome]:
    """Run the plan's stale chapters, ``jobs`` at a time; return one outcome per chapter."""
    outcomes: dict[str, Outcome] = {}
    # chapters that read others' results are decided again once those have run; they go
    # last, and the chapters that run alone after those that may run side by side
    pending = sorted((c for c in plan_.chapters if c.run or c.meta.get("reads_results")),
                     key=lambda c: (bool(c.meta.get("reads_results")),
                                    bool(c.meta.get("runs_alone"))))
    for ch in plan_.chapters:
        if ch not in pending:
            outcomes[ch.name] = Outcome(ch.name, "cached", note=f"key {ch.key}")
    running: list[_Job] = []
    total = len(plan_.to_run())
    started = 0

    try:
        with interruptible():
            while pending or running:
                # chapters that read results wait until every other chapter has finished;
                # a chapter that runs alone waits for an idle machine and keeps it
                while pending and len(running) < max(1, jobs):
                    if running and (pending[0].meta.get("reads_results")
                                    or pending[0].meta.get("runs_alone")
                                    or any(j.ch.meta.get("runs_alone") for j in running)):
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
                    try:
                        running.append(_Job(project, plan_.profile, ch, timeout_s))
                    except OSError as exc:
                        note = f"could not start: {describe_os_error(exc)}"
                        log(f"  {ch.name}: FAILED - {note}")
                        outcomes[ch.name] = Outcome(ch.name, "failed", note=note)
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
                    outcomes[job.ch.name] = _finish(project, plan_, job, code, timed_out, wall,
                                                    log)
    except Interrupted as exc:
        with signals_held():
            for job in running:
                job.kill()
                _record_failure(project, plan_.profile, job.ch, "interrupted",
                                {"ename": exc.args[0], "evalue": "run interrupted"},
                                job.elapsed(), log)
                outcomes[job.ch.name] = Outcome(job.ch.name, "interrupted", job.elapsed(),
                                                f"{exc.args[0]}: previous output kept")
                job.cleanup()
        for ch in pending:
            outcomes[ch.name] = Outcome(ch.name, "interrupted", note="not started")
        raise
    finally:
        for job in running:  # an error of ours: leave no worker or kernel behind
            job.cleanup()
    return [outcomes[c.name] for c in plan_.chapters]


def _worker_error(job: _Job, code: int | None) -> dict[str, Any]:
    """The worker's ``error.json``, or what its exit says when it wrote none."""
    with contextlib.suppress(OSError, ValueError):
        error = json.loads((job.stage / "error.json").read_text())
        if isinstance(error, dict):
            return error
    if code == EXIT_DISK_FULL or _disk_nearly_full(job.stage):
        return {"ename": "DiskFull", "evalue": f"no space left on device ({job.stage})"}
    return {"ename": "WorkerDied", "evalue": f"worker exited with status {code}"}


def _disk_nearly_full(path: Path, floor: int = 1 << 20) -> bool:
    """True when the file system holding ``path`` has less than ``floor`` bytes free."""
    try:
        st = os.statvfs(path if path.exists() else path.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < floor


def _finish(project: Project, plan_: Plan, job: _Job, code: int | None, timed_out: bool,
            wall: float, log) -> Outcome:
    ch = job.ch
    try:
        if code == 0 and (job.stage / "out.ipynb").exists():
            try:
                _commit(project, plan_.profile, job, plan_, wall)
            except CommitError as exc:
                note = f"could not put the outputs in place ({exc.strerror}); previous " \
                       "outputs kept"
                error = {"ename": "DiskFull" if exc.errno == errno.ENOSPC else "CommitError",
                         "evalue": exc.strerror}
                _record_failure(project, plan_.profile, ch, "failed", error, wall, log)
                log(f"  {ch.name}: FAILED - {note}")
                return Outcome(ch.name, "failed", wall, note, error)
            log(f"  {ch.name}: ran in {wall:.1f} s")
            return Outcome(ch.name, "ran", wall, ch.reason)
        error = _worker_error(job, code)
        status = "failed"
        if timed_out or error.get("ename") in ("CellTimeoutError", "TimeoutError"):
            status = "timeout"
            error.setdefault("ename", "Timeout")
            error.setdefault("evalue", f"no result after {job.timeout_s:.0f} s")
        _record_failure(project, plan_.profile, ch, status, error, wall, log)
        where = f"cell {error['cell']}" if error.get("cell") else "a cell"
        src = f" `{error['cell_source']}`" if error.get("cell_source") else ""
        note = (f"notebooks/{ch.name}.py {where}{src}: {error.get('ename')}: "
                f"{first_line(error.get('evalue'))}")
        log(f"  {ch.name}: {status.upper()} - {note}")
        return Outcome(ch.name, status, wall, note, error)
    finally:
        job.cleanup()


def first_line(text: Any, limit: int = 200) -> str:
    """The first line of ``text``, cut to ``limit`` characters."""
    lines = str(text or "").splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


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
    """Each chapter's state: ``fresh`` (perhaps with overrides), ``stale`` (and why),
    ``failed`` or ``never run``. A chapter reading others' results is stale while any of
    them is not fresh."""
    p = plan(project, profile)
    rows = []
    not_fresh: list[str] = []
    for ch in p.chapters:  # readers come last (plan orders them so)
        manifest = read_manifest(project.manifest_path(profile, ch.name)) or {}
        latest = manifest.get("latest", {})
        why = staleness(project, profile, ch)
        if latest.get("status") in ("failed", "timeout", "interrupted"):
            err = latest.get("error", {})
            state = latest["status"] if latest["status"] != "timeout" else "failed"
            detail = (f"{latest.get('when')}: {err.get('ename', '')}: "
                      f"{first_line(err.get('evalue'))}")
            if manifest.get("good"):
                detail += " (last good output kept)"
        elif why is None or only_overrides_differ(project, profile, ch):
            good = manifest["good"]
            state, detail = "fresh", f"key {good.get('key')}, {good.get('finished')}"
            if why is not None:
                detail += f", with overrides: {overrides_text(good)}"
        elif why == "never run":
            state, detail = "never run", ""
        else:
            state, detail = "stale", why
        if ch.meta.get("reads_results") and state == "fresh" and not_fresh:
            state, detail = "stale", f"reads results of chapters not fresh: {', '.join(not_fresh)}"
        if state != "fresh":
            not_fresh.append(ch.name)
        rows.append((ch.name, state, detail))
    return rows
