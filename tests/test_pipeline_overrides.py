"""Overrides show, and the cache key follows the modules a chapter imported."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import FIXTURES, gp, make_tree

pytestmark = pytest.mark.slow


def _page_text(root: Path, chapter: str = "demo") -> str:
    page = nbformat.read(root / "book" / "chapters" / f"{chapter}.ipynb", as_version=4)
    return "\n".join(c.source for c in page.cells)


def test_a_page_built_with_overrides_says_so_and_reproduces_on_a_fresh_clone(
        tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"demo": FIXTURES / "demo.py"})
    assert gp(root, "run", "--profile", "smoke").returncode == 0
    layer = tmp_path / "mine.yaml"
    layer.write_text("demo:\n  n_points: 5\n")
    r = gp(root, "run", "--profile", "smoke", "--params", str(layer), "--set",
           "demo.label=my label")
    assert r.returncode == 0, r.stderr
    # status: fresh, with the overrides named, not stale
    st = gp(root, "status", "--profile", "smoke").stdout
    assert re.search(r"^demo\s+fresh\s+.*with overrides: label='my label' \(profile: 'demo'\), "
                     r"n_points=5 \(profile: 20\)", st, re.M), st
    # the page's provenance header names them
    assert gp(root, "publish", "--profile", "smoke").returncode == 0
    text = _page_text(root)
    assert ("Provenance: how this page was computed (overrides of the smoke profile: "
            "label=&#x27;my label&#x27; (profile: &#x27;demo&#x27;), n_points=5 (profile: 20))"
            ) in text
    command = re.search(r"<th>reproduce</th><td><code>(.*?)</code>", text).group(1)
    command = command.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")
    assert command == ("python -m gardenpath run --profile smoke --only demo "
                       "--set 'demo.label=my label' --set demo.n_points=5")
    # the command works on a fresh clone (no .gardenpath, no published pages)
    clone = make_tree(tmp_path / "clone", {"demo": FIXTURES / "demo.py"})
    args = shlex.split(command)[3:]
    assert gp(clone, *args).returncode == 0
    numbers = [json.loads((t / "results/smoke/demo.json").read_text())["numbers"]
               for t in (root, clone)]
    assert numbers[0] == numbers[1] and numbers[0]["n_points"] == 5
    # a plain run says it returns to the profile's values, and the page then has none
    r = gp(root, "run", "--profile", "smoke")
    assert r.returncode == 0, r.stderr
    assert "demo: running" in r.stderr
    assert "returns to the profile's values (label: 'my label' -> 'demo', n_points: 5 -> 20)" \
        in r.stderr
    assert gp(root, "publish", "--profile", "smoke").returncode == 0
    text = _page_text(root)
    assert "overrides of the smoke profile" not in text
    assert "none: the smoke profile&#x27;s values" in text
    shutil.rmtree(clone)


def test_a_comment_in_a_module_one_chapter_imports_leaves_the_other_fresh(
        tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"demo": FIXTURES / "demo.py",
                                      "broken": FIXTURES / "broken.py"},
                     profiles={"smoke": "broken: {mode: ok}\n"})
    assert gp(root, "run", "--profile", "smoke").returncode == 0
    charts = root / "src" / "gardenpath" / "charts.py"  # demo imports it, broken nothing
    charts.write_text(charts.read_text() + "# one more comment\n")
    st = gp(root, "status", "--profile", "smoke").stdout
    assert re.search(r"^demo\s+stale\s+src changed", st, re.M), st
    assert re.search(r"^broken\s+fresh", st, re.M), st
    data = root / "src" / "gardenpath" / "data.py"  # imported by neither
    data.write_text(data.read_text() + "# a comment\n")
    charts.write_text(charts.read_text().removesuffix("# one more comment\n"))
    st = gp(root, "status", "--profile", "smoke").stdout
    assert re.search(r"^demo\s+fresh", st, re.M) and re.search(r"^broken\s+fresh", st, re.M), st
