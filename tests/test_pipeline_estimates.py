"""Memory estimates without torch: planning imports no chapter module and no torch, and the
torch-free estimates agree with the chapter modules' own."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

from gardenpath import estimates
from gardenpath.params import resolve
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


def test_estimates_grow_with_the_sizes_they_count() -> None:
    project = Project(REPO)
    resolved = resolve(declared_parameters(project), [], REPO)
    grow = {"energy": ("matmul_n", 8), "imagenet": ("time_batches", 4),
            "one_shot": ("store_sizes", 100), "local_learning": ("sparsey_K", 4),
            "parallelism": ("world_size", 4), "sharing_buys": ("train_per_class", 4),
            "sharing_moves": ("matmul_n", 64)}
    for chapter, (name, factor) in grow.items():
        base = resolved[chapter]
        value = base[name]
        bigger = [v * factor for v in value] if isinstance(value, list) else value * factor
        assert estimates.ESTIMATES[chapter]({**base, name: bigger}) > \
            estimates.ESTIMATES[chapter](base), chapter
