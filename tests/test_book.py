"""The built book: a strict jupyter-book build, and its pages in a real headless browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from browser import check_pages
from conftest import FIXTURES, gp, make_tree

from gardenpath.params import notebook_parameters

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A tree with the demo chapter, run on smoke and built with ``-W -n --keep-going``."""
    root = make_tree(tmp_path_factory.mktemp("book") / "t", {"demo": FIXTURES / "demo.py"},
                     profiles={"smoke": "demo:\n  label: '<script>alert(1)</script>'\n"})
    r = gp(root, "build", "--profile", "smoke", timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "WARNING:" not in r.stdout + r.stderr, r.stdout[-3000:]
    return root


def test_build_writes_index_and_chapter_page(built: Path) -> None:
    html = built / "book" / "_build" / "html"
    assert (html / "index.html").exists()
    page = (html / "book" / "chapters" / "demo.html").read_text()
    assert 'class="gp-chart"' in page and "gp-provenance" in page
    assert "The points sum to" in page and "285.0" in page  # glued, from the run
    svg = html / "_downloads"
    assert any(svg.rglob("demo-line.svg")) and any(svg.rglob("demo.ipynb"))
    assert any(svg.rglob("demo.params.yaml")) and any(svg.rglob("demo.py"))
    # flat, one chapter, as papermill -f reads it: parameter names at the top level
    (params_file,) = svg.rglob("demo.params.yaml")
    flat = yaml.safe_load(params_file.read_text())
    assert "demo" not in flat and set(flat) == set(notebook_parameters(
        built / "notebooks" / "demo.py"))


def test_provenance_escapes_parameter_html(built: Path) -> None:
    page = (built / "book" / "_build" / "html" / "book" / "chapters" / "demo.html").read_text()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_pages_draw_offline_without_errors(built: Path, browser_exe: str) -> None:
    html = built / "book" / "_build" / "html"
    pages = ["index.html", "book/intro.html", "book/methods.html", "book/reproduce.html",
             "book/chapters/demo.html"]
    reports = check_pages(html, pages, browser_exe)
    for rep in reports:
        assert rep.console_errors == [], (rep.url, rep.console_errors)
        assert rep.foreign_requests == [], (rep.url, rep.foreign_requests)
        assert rep.failed_responses == [], (rep.url, rep.failed_responses)
        assert rep.charts_drawn == rep.charts, (rep.url, rep.charts, rep.charts_drawn)
    methods = (html / "book" / "methods.html").read_text()
    assert "_static/mathjax/tex-svg.js" in methods
    assert not re.search(r"<script[^>]*src=\"(https?:)?//", methods)  # nothing from a host
    demo = reports[-1]
    assert demo.charts == 1 and demo.charts_drawn == 1
    assert "Provenance" in demo.text


def test_results_file_carries_numbers_verdict_and_provenance(built: Path) -> None:
    data = json.loads((built / "results" / "smoke" / "demo.json").read_text())
    assert data["verdict"] == "supported"
    assert data["numbers"]["total"] == 285.0
    assert data["provenance"]["profile"] == "smoke"
    assert data["provenance"]["packages"]["torch"]
