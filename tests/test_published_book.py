"""The real book on the smoke profile: every page offline in Chromium, provenance,
captioned figures, the ledger and the introduction's verdicts, and determinism."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browser import check_layout, check_pages, verdict_bold_shares, wheel_changes_chart
from conftest import REPO, copy_repo_tree, gp

from gardenpath.results import without_measurements

pytestmark = pytest.mark.slow

CHAPTERS = ["energy", "sharing_moves", "imagenet", "parallelism", "sharing_buys",
            "local_learning", "one_shot", "ledger"]


def recording_chapters() -> list[str]:
    """The pages that record results and glue numbers (the synthesis page only reads)."""
    return [c for c in toc_chapters() if c != "synthesis"]


def toc_chapters() -> list[str]:
    text = (REPO / "_toc.yml").read_text()
    return re.findall(r"file: book/chapters/(\w+)", text)


@pytest.fixture(scope="module")
def smoke_book(smoke_tree: Path) -> Path:
    """The smoke tree's book, built strictly (``-W -n --keep-going``)."""
    r = gp(smoke_tree, "build", "--profile", "smoke", timeout=900)
    log = r.stdout[-3000:] + r.stderr[-3000:]
    assert (smoke_tree / "book" / "_build" / "html" / "index.html").exists(), log
    assert "WARNING:" not in r.stdout + r.stderr, log
    assert r.returncode == 0, log
    return smoke_tree / "book" / "_build" / "html"


def test_toc_lists_every_chapter_notebook() -> None:
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("*.py"))
    assert sorted(toc_chapters()) == notebooks


def test_root_has_a_favicon_for_the_redirect_page(smoke_book: Path) -> None:
    # the root index.html only redirects to the introduction and declares no icon, so
    # browsers ask for /favicon.ico; a 404 there is a console error on the first page
    ico = (smoke_book / "favicon.ico").read_bytes()
    assert ico[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert 'http-equiv="Refresh"' in (smoke_book / "index.html").read_text()


def test_every_page_draws_offline_with_no_errors(smoke_book: Path, browser_exe: str) -> None:
    pages = sorted(str(p.relative_to(smoke_book)) for p in smoke_book.rglob("*.html")
                   if "_static" not in p.parts and "_sources" not in p.parts)
    assert len(pages) >= len(toc_chapters()) + 4
    problems = []
    for rep in check_pages(smoke_book, pages, browser_exe):
        if rep.console_errors or rep.foreign_requests or rep.failed_responses:
            problems.append((rep.url, rep.console_errors, rep.foreign_requests,
                             rep.failed_responses))
        if rep.charts_drawn != rep.charts:
            problems.append((rep.url, f"{rep.charts_drawn}/{rep.charts} charts drawn"))
    assert problems == []


def test_charts_fit_their_column_at_three_widths(smoke_book: Path, browser_exe: str) -> None:
    # a phone, a tablet and a laptop: no page scrolls sideways, no chart runs past its column
    pages = ["book/intro.html", *[f"book/chapters/{c}.html" for c in toc_chapters()]]
    assert check_layout(smoke_book, pages, browser_exe) == []


def test_a_chart_with_continuous_axes_zooms(smoke_book: Path, browser_exe: str) -> None:
    # the introduction promises zoom where both axes are continuous: energy's fourth chart
    # (bandwidth against working set) has numeric x and y; its first (a bar chart) has not
    page = "book/chapters/energy.html"
    assert wheel_changes_chart(smoke_book, page, browser_exe, index=3)
    assert not wheel_changes_chart(smoke_book, page, browser_exe, index=0)


def test_verdict_sentences_are_not_all_bold(smoke_book: Path, browser_exe: str) -> None:
    # myst-nb draws glued text in bold; in a verdict box only the verdict word may be
    pages = [f"book/chapters/{c}.html" for c in toc_chapters() if c != "ledger"]
    shares = verdict_bold_shares(smoke_book, pages, browser_exe)
    assert sum(len(s) for s in shares.values()) >= 5  # most chapters have a verdict box
    assert {p: s for p, s in shares.items() if any(x > 0.5 for x in s)} == {}


def test_figure_numbers_restart_on_every_chapter(smoke_book: Path) -> None:
    for chapter in ("energy", "one_shot"):
        html = (smoke_book / "book" / "chapters" / f"{chapter}.html").read_text()
        numbers = re.findall(r'<span class="caption-number">Fig\. (\d+) ', html)
        assert numbers and numbers[0] == "1", (chapter, numbers[:3])


def test_one_search_box_and_no_buttons_without_a_repository(smoke_book: Path) -> None:
    # _config.yml sets no repository URL: neither a repository nor a launch button shows
    assert "url: \"\"" in (REPO / "_config.yml").read_text()
    html = (smoke_book / "book" / "chapters" / "energy.html").read_text()
    assert html.count('class="btn search-button-field') == 1
    assert "bd-header__inner" not in html  # no empty header bar from a newer theme
    assert "mybinder.org" not in html and "launch-buttons" not in html
    assert "repository-button" not in html and "fa-github" not in html


def test_no_script_from_another_host(smoke_book: Path) -> None:
    for page in smoke_book.rglob("*.html"):
        html = page.read_text(errors="replace")
        for src in re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)", html):
            assert not re.match(r"^(https?:)?//", src), (page, src)
        for href in re.findall(r"<link[^>]*\bhref=[\"']((?:https?:)?//[^\"']+)", html):
            pytest.fail(f"{page}: stylesheet or preload from another host: {href}")


@pytest.mark.parametrize("chapter", [c for c in CHAPTERS if c != "ledger"])
def test_chapter_page_has_provenance_downloads_and_a_captioned_figure(
        smoke_book: Path, chapter: str) -> None:
    if chapter not in toc_chapters():
        pytest.fail(f"{chapter} is not in _toc.yml")
    html = (smoke_book / "book" / "chapters" / f"{chapter}.html").read_text()
    assert 'class="gp-provenance"' in html
    assert "python -m gardenpath run --profile smoke" in html
    for what in (f"{chapter}.py", f"{chapter}.ipynb", f"{chapter}.params.yaml"):
        assert re.search(rf'href="[^"]*_downloads/[^"]*/{re.escape(what)}"', html), what
    assert ".svg" in html  # each figure's SVG is downloadable
    assert re.search(r'<figcaption>\s*<p><span class="caption-number">Fig\. \d+', html), \
        "no numbered figure caption"
    assert "gp-failed" not in html


def test_intro_verdicts_match_the_ledger(smoke_book: Path, smoke_tree: Path) -> None:
    ledger = json.loads((smoke_tree / "results" / "smoke" / "ledger.json").read_text())
    intro = (smoke_book / "book" / "intro.html").read_text()
    for chapter in CHAPTERS[:-1]:
        verdict = ledger["numbers"][f"verdict_{chapter}"]
        data = json.loads((smoke_tree / "results" / "smoke" / f"{chapter}.json").read_text())
        assert verdict == data["verdict"]
        pattern = rf'{chapter}\.html"[^>]*>(?:(?!</a>).)*</a>: <strong>{verdict}</strong>'
        assert re.search(pattern, intro, re.S), chapter


def test_ledger_follows_a_changed_results_file(smoke_book: Path, smoke_tree: Path) -> None:
    path = smoke_tree / "results" / "smoke" / "energy.json"
    original = path.read_bytes()
    data = json.loads(original)
    flipped = "not supported" if data["verdict"] != "not supported" else "supported"
    data["verdict"] = flipped
    data["why"] = data["reason"] = "changed by the ledger test"
    try:
        path.write_text(json.dumps(data))
        r = gp(smoke_tree, "build", "--profile", "smoke", "--only", "ledger", timeout=900)
        assert r.returncode == 0, r.stderr[-2000:]
        ledger = json.loads((smoke_tree / "results" / "smoke" / "ledger.json").read_text())
        assert ledger["numbers"]["verdict_energy"] == flipped
        page = (smoke_book / "book" / "chapters" / "ledger.html").read_text()
        assert "changed by the ledger test" in page
    finally:
        path.write_bytes(original)


def test_two_smoke_runs_from_clean_agree_except_measurements(smoke_tree: Path,
                                                             tmp_path: Path) -> None:
    again = copy_repo_tree(tmp_path / "again")
    r = gp(again, "run", "--profile", "smoke", "--jobs", "2", timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    for chapter in CHAPTERS[:-1]:
        first = json.loads((smoke_tree / "results" / "smoke" / f"{chapter}.json").read_text())
        second = json.loads((again / "results" / "smoke" / f"{chapter}.json").read_text())
        assert without_measurements(first) == without_measurements(second), chapter


def test_every_chapter_records_each_parameter_it_ran_with(smoke_tree: Path) -> None:
    # the values the pipeline resolved for smoke, as `gardenpath params` reports them,
    # must be exactly the provenance's params (results.parameters reads the notebook)
    from conftest import smoke_results

    from gardenpath.params import notebook_parameters

    for chapter in recording_chapters():
        recorded = smoke_results(smoke_tree, chapter)["provenance"]["params"]
        declared = notebook_parameters(REPO / "notebooks" / f"{chapter}.py")
        assert set(recorded) == set(declared), chapter
        for name, value in yaml_profile_values(chapter).items():
            assert recorded[name] == value, (chapter, name)


def yaml_profile_values(chapter: str) -> dict:
    import yaml

    return (yaml.safe_load((REPO / "params" / "smoke.yaml").read_text()) or {}).get(chapter, {})


def test_parameters_of_a_notebook_must_all_be_defined(monkeypatch) -> None:
    from gardenpath.results import ResultsError, parameters

    monkeypatch.setenv("GARDENPATH_ROOT", str(REPO))  # as under the pipeline

    with pytest.raises(ResultsError, match="energy: parameters not defined yet: .*seed"):
        parameters({"device": "cpu"}, "energy")


def test_every_chapter_quotes_only_names_it_glued(smoke_tree: Path) -> None:
    import nbformat

    for chapter in recording_chapters():
        nb = nbformat.read(smoke_tree / ".gardenpath" / "out" / "smoke" / f"{chapter}.ipynb",
                           as_version=4)
        glued = {out.get("metadata", {}).get("scrapbook", {}).get("name")
                 for cell in nb.cells for out in cell.get("outputs", [])}
        quoted = set()
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                quoted |= set(re.findall(r"\{glue:(?:text|md)\}`([A-Za-z0-9_]+)", cell.source))
                quoted |= set(re.findall(r"\{glue:figure\} ([A-Za-z0-9_-]+)", cell.source))
        assert quoted and quoted <= glued, (chapter, sorted(quoted - glued))


def test_ledger_opens_with_the_forest_plot_and_links_the_synthesis(
        smoke_book: Path, browser_exe: str) -> None:
    ledger_html = (smoke_book / "book" / "chapters" / "ledger.html").read_text()
    # the chart comes before the table, and the table folds each chapter's tests away
    assert ledger_html.index("gp-chart") < ledger_html.index("gp-ledger")
    assert "<details>" in ledger_html
    (rep,) = check_pages(smoke_book, ["book/chapters/ledger.html"], browser_exe)
    assert rep.charts >= 1 and rep.charts_drawn == rep.charts
    assert "against its threshold" in rep.text
    synthesis = (smoke_book / "book" / "chapters" / "synthesis.html").read_text()
    for heading in ("Where the measurements support the essay", "Where they contradict it",
                    "What this book cannot decide at its scale"):
        assert heading in synthesis
    assert "chapters/synthesis.html" in (smoke_book / "book" / "intro.html").read_text()
