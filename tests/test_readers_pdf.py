"""``make pdf`` on the smoke tree: the PDF exists and holds every chapter's title, every
figure's caption and the text drawn in every chart, with the provenance unfolded."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from conftest import REPO

from gardenpath.book import title_of

pytestmark = pytest.mark.slow


def flat(text: str) -> str:
    """Text with ligatures unfolded and no whitespace: line breaks do not matter."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def _svg_texts(svg: Path) -> list[str]:
    texts = [html.unescape(t) for t in
             re.findall(r"<text[^>]*>([^<]+)</text>", svg.read_text(encoding="utf-8"))]
    return [t for t in texts if len(t) > 6 and not t.replace(".", "").isdigit()]


@pytest.fixture(scope="module")
def pdf_text(smoke_tree: Path, browser_exe: str, tmp_path_factory) -> str:
    """``make pdf`` run on the smoke tree; the text pdftotext reads from its PDF."""
    if shutil.which("pdftotext") is None:
        if os.environ.get("CI") or os.environ.get("GARDENPATH_REQUIRE_BROWSER"):
            pytest.fail("pdftotext is required in CI (make browser installs poppler-utils)")
        pytest.skip("no pdftotext (apt-get install poppler-utils)")
    stamp = tmp_path_factory.mktemp("pdf") / "stamp"  # the venv is there: skip its rule
    stamp.touch()
    env = {k: v for k, v in os.environ.items() if k != "GARDENPATH_STAGE"}
    r = subprocess.run(["make", "-C", str(REPO), "pdf", f"ROOT={smoke_tree}", "PROFILE=smoke",
                        f"PY={sys.executable}", f"STAMP={stamp}"],
                       capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    pdf = smoke_tree / "book" / "_build" / "pdf" / "gardenpath.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    out = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                         check=True)
    return out.stdout


def test_pdf_holds_every_chapter_title(pdf_text: str) -> None:
    chapters = re.findall(r"file: book/chapters/(\w+)", (REPO / "_toc.yml").read_text())
    text = flat(pdf_text)
    missing = [c for c in chapters if flat(title_of(REPO / "notebooks" / f"{c}.py")) not in text]
    assert chapters and missing == []


def test_pdf_holds_every_figure(pdf_text: str, smoke_tree: Path) -> None:
    single = smoke_tree / "book" / "_build" / "singlehtml"
    page = (single / "book" / "intro.html").read_text(encoding="utf-8")
    captions = re.findall(r'<span class="caption-number">(Fig\. \d+) </span>'
                          r'<span class="caption-text">(.*?)</span>', page, re.S)
    svgs = re.findall(r'<img[^>]*src="\.\./(_images/[^"]+\.svg)"', page)
    assert len(captions) >= 8 and len(svgs) >= 8
    text = flat(pdf_text)
    for number, caption in captions:
        words = html.unescape(re.sub(r"<[^>]+>", "", caption)).split()[:6]
        assert flat(" ".join(words)) in text, (number, words)
    for svg in svgs:  # each chart drawn: the words in it (titles, legends) are in the PDF
        texts = _svg_texts(single / svg)
        assert texts and any(flat(t) in text for t in texts), svg


def test_pdf_shows_the_provenance_unfolded(pdf_text: str) -> None:
    assert pdf_text.count("Parameters used:") >= 7
