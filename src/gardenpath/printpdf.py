"""``python -m gardenpath.printpdf``: print the single-page build to a PDF (``make pdf``).

The page (``book/_build/singlehtml/book/intro.html``) shows every chart as its static SVG;
headless Chromium opens it with no network, waits for the math, unfolds the provenance
boxes and prints with the book's print CSS (a new page before each chapter). It refuses
to print a page with an image that did not load, so a broken path fails the build.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

PAGE = Path("book/_build/singlehtml/book/intro.html")
PDF = Path("book/_build/pdf/gardenpath.pdf")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--proxy-server=http://127.0.0.1:9"]

_BROKEN_IMAGES = """() => [...document.images].filter(
    i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'))"""

_MATH_DONE = """() => !window.MathJax || !window.MathJax.startup
    || !window.MathJax.startup.promise ? true
    : window.MathJax.startup.promise.then(() => true)"""


def chromium() -> str | None:
    """Debian's chromium (as the page tests use), else another Chromium on the PATH."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def print_pdf(page: Path, pdf: Path, executable: str) -> list[str]:
    """Print ``page`` to ``pdf``; return the images that did not load (then nothing is
    written)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        try:
            tab = browser.new_page()
            tab.goto(page.resolve().as_uri(), wait_until="load")
            tab.evaluate(_MATH_DONE)
            broken = tab.evaluate(_BROKEN_IMAGES)
            if broken:
                return broken
            tab.evaluate("() => document.querySelectorAll('details.gp-provenance')"
                         ".forEach(d => { d.open = true; })")
            tab.emulate_media(media="print")
            pdf.parent.mkdir(parents=True, exist_ok=True)
            tab.pdf(path=str(pdf), format="A4", print_background=True, outline=True,
                    margin={"top": "15mm", "bottom": "15mm", "left": "14mm", "right": "14mm"})
        finally:
            browser.close()
    return []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gardenpath.printpdf", description=__doc__)
    p.add_argument("--root", default=".", help="the gardenpath tree (default: here)")
    args = p.parse_args(argv)
    root = Path(args.root)
    page, pdf = root / PAGE, root / PDF
    if not page.exists():
        print(f"error: {page} not found: build it with --builder singlehtml", file=sys.stderr)
        return 1
    exe = chromium()
    if exe is None:
        print("error: no chromium found (make browser installs it as root)", file=sys.stderr)
        return 1
    broken = print_pdf(page, pdf, exe)
    if broken:
        print(f"error: {len(broken)} images did not load, e.g. {broken[0]}", file=sys.stderr)
        return 1
    print(f"wrote {pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
