"""Provenance: the record every result carries (commit, versions, device, params, seed, time).

A number without its provenance cannot be re-run; this module gathers what is needed to
re-run it: git commit and dirty flag, library versions, device, parameters, seed, date.
"""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

#: Libraries whose versions every record lists.
KEY_PACKAGES = (
    "torch",
    "numpy",
    "scikit-learn",
    "altair",
    "papermill",
    "jupyter-book",
    "jupytext",
)


def git_state(root: str | Path | None = None, ignore: Sequence[str] = ()) -> dict[str, Any]:
    """Return ``{"commit": sha or None, "dirty": bool or None}`` for the tree at ``root``.

    ``ignore``: paths (relative to the repository's top) whose changes do not make the tree
    dirty, such as the results files a run itself rewrites.
    """
    cwd = str(root) if root is not None else None
    exclude = [":(top)", *(f":(top,exclude){p}" for p in ignore)] if ignore else []
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *exclude],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": sha, "dirty": bool(status.strip())}


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution in ``names`` (``None`` when absent)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def now_utc() -> str:
    """The current time as an ISO-8601 UTC string, to the second."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def collect(
    params: dict[str, Any] | None = None,
    *,
    seed: int | None = None,
    device: dict[str, Any] | str | Any | None = None,
    wall_time_s: float | None = None,
    root: str | Path | None = None,
) -> dict[str, Any]:
    """Gather a provenance record as a JSON-ready dict.

    Args:
        params: the parameter values the run used.
        seed: the random seed.
        device: a description dict (from :func:`gardenpath.measure.device.describe`),
            or a device (``"cpu"``, ``"cuda"``, ``"auto"``, a ``torch.device``) to
            describe now, or ``None``.
        wall_time_s: the run's wall time, seconds.
        root: the git tree to read (default: the current directory).
    """
    if device is not None and not isinstance(device, dict):
        from gardenpath.measure.device import describe

        device = describe(device)
    return {
        "date": now_utc(),
        "git": git_state(root),
        "python": platform.python_version(),
        "packages": package_versions(),
        "device": device,
        "params": dict(params or {}),
        "seed": seed,
        "wall_time_s": wall_time_s,
    }
