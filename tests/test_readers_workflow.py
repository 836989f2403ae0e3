"""The Pages workflow: the recipe of a new machine (make test, then make book) on CPU torch,
pip and chapter caches, and a deploy that needs the build to have succeeded."""

from __future__ import annotations

import yaml
from conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "book.yml"


def test_pages_workflow_tests_then_builds_then_deploys() -> None:
    flow = yaml.safe_load(WORKFLOW.read_text())
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    runs = [s["run"] for s in build["steps"] if "run" in s]
    test = next(i for i, r in enumerate(runs) if r.startswith("make test"))
    book = next(i for i, r in enumerate(runs) if r.startswith("make book"))
    assert test < book
    assert not any("pip install" in r for r in runs)  # no install beside the Makefile's
    assert "download.pytorch.org/whl/cpu" in build["env"]["PIP_EXTRA_INDEX_URL"]
    setup = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/setup-py"))
    assert setup["with"]["cache"] == "pip"
    cache = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/cache"))
    assert ".gardenpath" in cache["with"]["path"]
    assert deploy["needs"] == "build"


def test_cpu_index_only_in_the_workflow() -> None:
    # tests and the Makefile install from the pins alone; the CPU index is the runner's
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        assert "download.pytorch.org" not in (REPO / name).read_text(), name
