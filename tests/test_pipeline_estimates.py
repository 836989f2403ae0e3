"""Memory estimates without torch: planning imports no chapter module and no torch, and the
torch-free estimates agree with the chapter modules' own."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
from conftest import REPO

from gardenpath import estimates
from gardenpath.params import load_yaml_layer, resolve
from gardenpath.pipeline import Project, declared_parameters

PLAN_AND_CHECK = """
import json, sys
from pathlib import Path
from gardenpath.pipeline import Project, check_memory, plan
p = plan(Project(Path(sys.argv[1])), "cpu", force=True)
for ch in p.chapters:
    check_memory(ch)
print(json.dumps({"chapters": [c.name for c in p.chapters],
                  "loaded": sorted(m for m in sys.modules
                                   if m == "torch" or m.startswith("gardenpath.chapters"))}))
"""


def test_planning_loads_no_chapter_module_and_no_torch() -> None:
    r = subprocess.run([sys.executable, "-c", PLAN_AND_CHECK, str(REPO)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert set(estimates.ESTIMATES) <= set(out["chapters"])
    assert out["loaded"] == []


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_estimates_equal_the_chapter_modules_own(profile: str) -> None:
    project = Project(REPO)
    layer = load_yaml_layer(REPO / "params" / f"{profile}.yaml")
    resolved = resolve(declared_parameters(project), [(profile, layer)], REPO)
    compared = 0
    for chapter, estimate in estimates.ESTIMATES.items():
        old = getattr(importlib.import_module(f"gardenpath.chapters.{chapter}"),
                      "memory_estimate", None)
        if old is None:  # the chapter's own copy was retired
            continue
        assert estimate(resolved[chapter]) == old(resolved[chapter]), chapter
        compared += 1
    if not compared:
        pytest.skip("no chapter module keeps its own memory_estimate any more")


def test_estimates_grow_with_the_sizes_they_count() -> None:
    project = Project(REPO)
    resolved = resolve(declared_parameters(project), [], REPO)
    grow = {"energy": ("matmul_n", 8), "imagenet": ("time_batches", 4),
            "one_shot": ("store_sizes", 100), "local_learning": ("sparsey_K", 4),
            "parallelism": ("world_size", 4), "sharing_buys": ("canvas", 4),
            "sharing_moves": ("matmul_n", 64)}
    for chapter, (name, factor) in grow.items():
        base = resolved[chapter]
        value = base[name]
        bigger = [v * factor for v in value] if isinstance(value, list) else value * factor
        assert estimates.ESTIMATES[chapter]({**base, name: bigger}) > \
            estimates.ESTIMATES[chapter](base), chapter
