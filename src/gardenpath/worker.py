"""Execute one chapter notebook with papermill, in its own process.

The pipeline starts this module once per chapter (``python -m gardenpath.worker SPEC``)
in a new session, so that an interrupt or a timeout can end the worker and its kernel
together. The worker writes the executed notebook into the staging folder and, when the
notebook fails, ``error.json`` naming the cell and the error. It never touches the last
good outputs: the parent moves staged files into place only after a success.

Every process of a run (this worker, its kernel, whatever the kernel starts) carries
``GARDENPATH_STAGE`` in its environment; :func:`our_processes` finds them by it, so they
can be ended by pid even though the kernel starts in a session of its own. The worker
dies with the pipeline (``PR_SET_PDEATHSIG``): if the pipeline is killed, the worker
gets SIGTERM and ends its kernel before it exits.

The worker also records which ``gardenpath`` modules the kernel imported
(``modules.json``): the chapter's cache key covers those files and no others.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import math
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
STAGE_VAR = "GARDENPATH_STAGE"
#: Exit status of a worker that could not write to its staging folder: the disk is full.
EXIT_DISK_FULL = errno.ENOSPC
#: Tag of the cell appended to the notebook to list the modules it imported.
MODULES_TAG = "gp-modules"
MODULES_CELL = f"""\
import json as _j, os as _o, sys as _s
_pkg = _s.modules.get("gardenpath")
_root = _o.path.dirname(_pkg.__file__) if _pkg else ""
_files = sorted({{_o.path.relpath(m.__file__, _root) for n, m in list(_s.modules.items())
                 if _pkg and (n == "gardenpath" or n.startswith("gardenpath."))
                 and getattr(m, "__file__", None)}})
with open(_o.path.join(_o.environ["{STAGE_VAR}"], "modules.json"), "w") as _f:
    _j.dump(_files, _f)
"""


def our_processes(stage_prefix: str | Path) -> list[int]:
    """Pids of the processes whose ``GARDENPATH_STAGE`` is ``stage_prefix`` or lies below it.

    Read from ``/proc/<pid>/environ``, which names a process for good: a pid reused by
    another program does not carry the marker. The caller itself is left out.
    """
    exact = f"{STAGE_VAR}={os.fspath(stage_prefix)}".encode()
    below = exact.rstrip(b"/") + b"/"
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        if any(var == exact or var.startswith(below) for var in env.split(b"\0")):
            found.append(int(entry.name))
    return found


def kill_ours(stage_prefix: str | Path, wait_s: float = 5.0) -> int:
    """SIGKILL every process of ours under ``stage_prefix``; return how many there were."""
    seen: set[int] = set()
    deadline = time.monotonic() + wait_s
    while True:
        pids = our_processes(stage_prefix)
        live = [p for p in pids if not _zombie(p)]
        if not live or time.monotonic() > deadline:
            return len(seen)
        for pid in live:
            seen.add(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _zombie(pid: int) -> bool:
    """True for a process that has exited and waits only to be reaped (or is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def die_with_parent(sig: int = signal.SIGTERM):
    """A ``preexec_fn``: the child gets ``sig`` when the process that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def setup() -> None:
        libc.prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took hold
            os._exit(1)

    return setup


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:120]
    return ""


def _failed_cell(nb_path: Path) -> dict[str, Any]:
    """Find the cell that failed (or was running) in a partially executed notebook."""
    import nbformat

    if not nb_path.exists():
        return {}
    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception:  # noqa: BLE001 - a half-written notebook tells us nothing more
        return {}
    index = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("papermill", {})
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" not in tags:
            index += 1
        if meta.get("exception") or meta.get("status") in ("running", "failed"):
            return {"cell": index, "cell_source": _first_line(cell.source)}
    return {}


def execute(spec: dict[str, Any]) -> int:
    """Run the notebook described by ``spec``; return the process exit status."""
    import jupytext
    import nbformat
    import papermill as pm

    stage = Path(spec["stage"])
    out = stage / "out.ipynb"
    nb = jupytext.read(spec["notebook"])
    nb.metadata["kernelspec"] = nb.metadata.get("kernelspec") or KERNELSPEC
    nb.metadata.setdefault("jupytext", {})
    modules = nbformat.v4.new_code_cell(MODULES_CELL)
    modules.metadata["tags"] = [MODULES_TAG]
    nb.cells.append(modules)
    timeout = spec.get("timeout_s")
    try:
        pm.execute_notebook(
            nb,
            str(out),
            parameters=spec["parameters"],
            kernel_name=KERNELSPEC["name"],
            language="python",
            cwd=spec["cwd"],
            progress_bar={"desc": spec["chapter"], "leave": False, "file": sys.stderr},
            # papermill and nbclient take whole seconds
            execution_timeout=math.ceil(timeout) if timeout else None,
            start_timeout=120,
        )
        _drop_modules_cell(out)
    except BaseException as exc:  # noqa: BLE001 - every failure is reported, then re-raised
        error: dict[str, Any] = {"ename": type(exc).__name__, "evalue": str(exc)[:2000]}
        if isinstance(exc, pm.PapermillExecutionError):
            error.update(ename=exc.ename, evalue=str(exc.evalue)[:2000])
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            error.update(ename="DiskFull", evalue=f"no space left on device ({exc.filename})")
        error.update(_failed_cell(out))
        if not error.get("cell") and isinstance(exc, pm.PapermillExecutionError):
            error["cell_source"] = _first_line(exc.source)
        error["traceback"] = traceback.format_exc()[-4000:]
        try:
            (stage / "error.json").write_text(json.dumps(error, indent=2), encoding="utf-8")
        except OSError as werr:
            print(f"worker: cannot write error.json: {werr}", file=sys.stderr)
            return EXIT_DISK_FULL if werr.errno == errno.ENOSPC else 1
        return 1
    return 0


def _drop_modules_cell(path: Path) -> None:
    """Remove the appended module-listing cell from the executed notebook."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if MODULES_TAG not in c.metadata.get("tags", [])]
    tmp = path.with_name(f".{path.name}.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)


def _end_kernel_and_exit(signum: int, _frame: Any) -> None:
    """On SIGTERM (from the pipeline, or from Linux when the pipeline dies): end
    every process of this run, the kernel included, then exit."""
    kill_ours(os.environ.get(STAGE_VAR, "/nonexistent"), wait_s=2.0)
    os._exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _end_kernel_and_exit)
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    return execute(spec)


if __name__ == "__main__":
    sys.exit(main())
