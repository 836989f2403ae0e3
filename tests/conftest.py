"""Shared fixtures: throw-away gardenpath trees built from the repository's own config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def make_tree(dest: Path, notebooks: dict[str, Path], toc_chapters: list[str] | None = None,
              profiles: dict[str, str] | None = None) -> Path:
    """A gardenpath tree at ``dest``: the repo's book config with the given notebooks."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "requirements.txt"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "book", dest / "book",
                    ignore=shutil.ignore_patterns("_build", "chapters"))
    # the tree's own copy of the package source: its cache keys then do not move when
    # someone edits the working copy while the tests run
    shutil.copytree(REPO / "src" / "gardenpath", dest / "src" / "gardenpath",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "notebooks").mkdir()
    for name, src in notebooks.items():
        shutil.copy2(src, dest / "notebooks" / f"{name}.py")
    (dest / "params").mkdir()
    for profile in ("smoke", "cpu", "gpu"):
        text = (profiles or {}).get(profile, "{}\n")
        (dest / "params" / f"{profile}.yaml").write_text(text)
    chapters = list(notebooks) if toc_chapters is None else toc_chapters
    toc = ["format: jb-book", "root: book/intro", "parts:", "  - caption: About",
           "    chapters:", "      - file: book/methods", "      - file: book/reproduce",
           "      - file: book/references"]
    if chapters:
        toc += ["  - caption: Chapters", "    chapters:"]
        toc += [f"      - file: book/chapters/{c}" for c in chapters]
    (dest / "_toc.yml").write_text("\n".join(toc) + "\n")
    return dest


def gp(root: Path, *args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run the real command line, ``python -m gardenpath --root ROOT ARGS``."""
    env = dict(os.environ)
    env.pop("GARDENPATH_STAGE", None)
    return subprocess.run([sys.executable, "-m", "gardenpath", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, **kw)


@pytest.fixture
def demo_tree(tmp_path: Path) -> Path:
    """A tree with the demo chapter (parameters, chart, results) and the broken one."""
    return make_tree(tmp_path / "tree", {"demo": FIXTURES / "demo.py",
                                         "broken": FIXTURES / "broken.py"})


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser_exe() -> str:
    """Debian's chromium; a missing browser skips, except in CI where it fails."""
    exe = chromium_path()
    if exe is None:
        if os.environ.get("GARDENPATH_REQUIRE_BROWSER") or os.environ.get("CI"):
            pytest.fail("chromium is required in CI (make test installs it as root)")
        pytest.skip("no chromium on this machine")
    return exe


def copy_repo_tree(dest: Path) -> Path:
    """A copy of the repository's own book tree (notebooks, params, config, prose)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml", "requirements.txt"):
        shutil.copy2(REPO / name, dest / name)
    for folder in ("notebooks", "params", "src"):
        shutil.copytree(REPO / folder, dest / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "book", dest / "book",
                    ignore=shutil.ignore_patterns("_build", "chapters"))
    if (REPO / "benchmarks" / "results").is_dir():  # the Performance page includes them
        shutil.copytree(REPO / "benchmarks" / "results", dest / "benchmarks" / "results")
    if (REPO / "results" / "gpu").is_dir():
        shutil.copytree(REPO / "results" / "gpu", dest / "results" / "gpu")
    return dest


@pytest.fixture(scope="session")
def smoke_tree(tmp_path_factory) -> Path:
    """The real chapters, run once on the ``smoke`` profile through the CLI."""
    root = copy_repo_tree(tmp_path_factory.mktemp("smoke") / "tree")
    # GARDENPATH_TEST_ONLY=a,b runs only those chapters (a convenience while writing one)
    only = [c for c in os.environ.get("GARDENPATH_TEST_ONLY", "").split(",") if c]
    args = [a for c in only for a in ("--only", c)]
    r = gp(root, "run", "--profile", "smoke", "--jobs", "2", *args, timeout=1200)
    (root / "run.log").write_text(r.stdout + "\n" + r.stderr)
    return root


def smoke_results(root: Path, chapter: str) -> dict:
    """A chapter's smoke results file; fails with the run log when it is missing."""
    import json

    path = root / "results" / "smoke" / f"{chapter}.json"
    if not path.exists():
        log = (root / "run.log").read_text()[-4000:]
        pytest.fail(f"no results for {chapter} on smoke; run log tail:\n{log}")
    return json.loads(path.read_text())
