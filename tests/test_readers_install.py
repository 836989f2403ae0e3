"""The package as a reader installs it: a wheel built from the tree, installed without -e
into a fresh virtual environment, lists the parameters and runs one smoke chapter.

How the fresh environment is made, to keep it quick and offline: ``python -m venv`` from
the base interpreter, plus one ``.pth`` line that appends this test run's site-packages
(where the pinned dependencies are) to its ``sys.path``. A path appended that way has its
own ``.pth`` files ignored, so the editable install of gardenpath there is never loaded:
gardenpath comes only from the wheel, which pip installs (``--no-index``, dependencies
checked against what the declared requirements find) into the fresh site-packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GARDENPATH_", "PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """The ``bin/`` folder of a fresh venv holding gardenpath from a wheel only."""
    base = tmp_path_factory.mktemp("install")
    src = base / "source"  # build from a copy: setuptools writes egg-info beside the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "src", src / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
              "--no-index", "-w", base / "dist", src], base)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    wheel = next((base / "dist").glob("gardenpath-*.whl"))
    venv = base / "venv"
    base_python = getattr(sys, "_base_executable", None) or shutil.which("python3.11")
    r = _run([base_python, "-m", "venv", "--without-pip", venv], base)
    assert r.returncode == 0, r.stderr[-2000:]
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     base).stdout.strip())
    (site / "_gardenpath_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = _run([py, "-m", "pip", "install", "--no-index", "--disable-pip-version-check",
              wheel], base)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return venv / "bin"


def test_wheel_holds_every_compiled_source(fresh: Path) -> None:
    r = _run([fresh / "python", "-c", "import gardenpath.models as m, pathlib; "
              "print(m.__file__); print(*sorted(p.name for p in "
              "pathlib.Path(m.__file__).parent.iterdir()))"], fresh)
    assert r.returncode == 0, r.stderr
    where, files = r.stdout.splitlines()
    assert where.startswith(str(fresh.parent)), where  # from the wheel, not the checkout
    for source in sorted(p.name for p in (REPO / "src" / "gardenpath" / "models").iterdir()
                         if p.suffix in (".c", ".cpp", ".h")):
        assert source in files.split(), source


def test_installed_package_lists_params_and_runs_a_smoke_chapter(fresh: Path,
                                                                tmp_path: Path) -> None:
    tree = tmp_path / "tree"  # the book's sources without src/: nothing else to import
    for folder in ("notebooks", "params"):
        shutil.copytree(REPO / folder, tree / folder)
    for name in ("_config.yml", "_toc.yml", "requirements.txt"):
        shutil.copy2(REPO / name, tree / name)
    r = _run([fresh / "gardenpath", "params", "sharing_moves"], tree)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "kernel_size: int" in r.stdout
    r = _run([fresh / "gardenpath", "run", "--profile", "smoke", "--only", "sharing_moves"], tree)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert (tree / "results" / "smoke" / "sharing_moves.json").is_file()


def test_wheel_declares_every_pinned_runtime_requirement(fresh: Path) -> None:
    # requirements.txt pins exact versions; the package must declare each runtime one, so
    # `pip install gardenpath` alone brings what the chapters and the book import
    import re

    tools = {"pytest", "playwright", "ruff", "jupyterlab", "sphinx-book-theme",
             "pydata-sphinx-theme"}
    pinned = {re.split(r"[=<>\[ ]", line, maxsplit=1)[0].lower()
              for line in (REPO / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    r = _run([fresh / "python", "-c", "import importlib.metadata as m; "
              "print(*m.requires('gardenpath'), sep='\\n')"], fresh)
    assert r.returncode == 0, r.stderr
    declared = {re.split(r"[=<>~!; \[]", line, maxsplit=1)[0].lower()
                for line in r.stdout.splitlines() if "extra ==" not in line}
    assert pinned - tools <= declared, sorted(pinned - tools - declared)
