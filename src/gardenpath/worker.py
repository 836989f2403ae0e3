"""Execute one chapter notebook with papermill, in its own process.

The pipeline starts this module once per chapter (``python -m gardenpath.worker SPEC``)
in a new session, so that an interrupt or a timeout can end the worker and its kernel
together. The worker writes the executed notebook into the staging folder and, when the
notebook fails, ``error.json`` naming the cell and the error. It never touches the last
good outputs: the parent moves staged files into place only after a success.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


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
    import papermill as pm

    stage = Path(spec["stage"])
    out = stage / "out.ipynb"
    nb = jupytext.read(spec["notebook"])
    nb.metadata["kernelspec"] = nb.metadata.get("kernelspec") or KERNELSPEC
    nb.metadata.setdefault("jupytext", {})
    try:
        pm.execute_notebook(
            nb,
            str(out),
            parameters=spec["parameters"],
            kernel_name=KERNELSPEC["name"],
            language="python",
            cwd=spec["cwd"],
            progress_bar={"desc": spec["chapter"], "leave": False, "file": sys.stderr},
            execution_timeout=spec.get("timeout_s"),
            start_timeout=120,
        )
    except BaseException as exc:  # noqa: BLE001 - every failure is reported, then re-raised
        error: dict[str, Any] = {"ename": type(exc).__name__, "evalue": str(exc)[:2000]}
        if isinstance(exc, pm.PapermillExecutionError):
            error.update(ename=exc.ename, evalue=str(exc.evalue)[:2000])
        error.update(_failed_cell(out))
        if not error.get("cell") and isinstance(exc, pm.PapermillExecutionError):
            error["cell_source"] = _first_line(exc.source)
        error["traceback"] = traceback.format_exc()[-4000:]
        (stage / "error.json").write_text(json.dumps(error, indent=2), encoding="utf-8")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    return execute(spec)


if __name__ == "__main__":
    sys.exit(main())
