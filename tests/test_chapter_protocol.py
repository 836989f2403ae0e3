"""Every chapter has one shape: a module exposing CLAIM, run and decide, and a notebook whose
code cells run in the same order (parameters; run; record and glue; figures with prose).

Each default lives only in the notebook's parameters cell: params/cpu.yaml repeats none.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import jupytext
import pytest
import yaml

from gardenpath import claims
from gardenpath.params import notebook_parameters

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = list(claims.CLAIMS)
CHAPTER_DIR = ROOT / "src" / "gardenpath" / "chapters"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_module_exposes_the_protocol(chapter):
    mod = importlib.import_module(f"gardenpath.chapters.{chapter}")
    assert mod.CLAIM == claims.claim(chapter)
    for name in ("run", "decide"):
        assert callable(getattr(mod, name, None)), f"{chapter}.{name} missing"
    assert not hasattr(mod, "DEFAULTS"), f"{chapter}: defaults belong in the parameters cell"
    assert not hasattr(mod, "memory_estimate"), f"{chapter}: estimates live in estimates.py"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


@pytest.mark.parametrize("path", sorted(CHAPTER_DIR.glob("*.py")), ids=lambda p: p.stem)
def test_no_chapter_module_imports_another(path):
    others = {f"gardenpath.chapters.{p.stem}" for p in CHAPTER_DIR.glob("*.py")
              if p.stem not in ("__init__", path.stem)}
    assert not _imported_modules(path) & others


def _code_cells(chapter: str) -> list:
    nb = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_notebook_cells_follow_the_chapter_shape(chapter):
    cells = _code_cells(chapter)
    assert "parameters" in cells[0].metadata.get("tags", []), "first: the parameters cell"
    assert f"chapters import {chapter} as ch" in cells[1].source
    assert "ch.run(" in cells[1].source, "second: the run"
    assert "ch.decide(" in cells[2].source and "results.record(" in cells[2].source, \
        "third: record and glue"
    later = "\n".join(c.source for c in cells[3:])
    assert "ch.run(" not in later and "results.record(" not in later


def test_cpu_profile_repeats_no_notebook_default():
    layer = yaml.safe_load((ROOT / "params" / "cpu.yaml").read_text()) or {}
    same = [f"{ch}.{name}" for ch, values in layer.items() for name, value in values.items()
            if name in (p := notebook_parameters(ROOT / "notebooks" / f"{ch}.py"))
            and p[name].default == value]
    assert not same, f"params/cpu.yaml repeats notebook defaults: {same}"


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.py")), ids=lambda p: p.stem)
def test_no_code_cell_is_swallowed_by_a_markdown_fence(path):
    # a fence nested in a fence of the same length (```{admonition} around ```{glue:md})
    # makes jupytext read the next code cells as markdown: they never run
    markers = re.findall(r"(?m)^# %%(?! \[markdown\])", path.read_text(encoding="utf-8"))
    nb = jupytext.read(path)
    assert len([c for c in nb.cells if c.cell_type == "code"]) == len(markers)
