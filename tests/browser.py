"""Open built pages in headless Chromium, with every other host unreachable, and report."""

from __future__ import annotations

import contextlib
import functools
import http.server
import socketserver
import threading
from dataclasses import dataclass, field
from pathlib import Path

BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
    # every request that is not to the local server goes to a dead proxy
    "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",
]


@dataclass
class PageReport:
    """What one page did in the browser."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)
    charts: int = 0
    charts_drawn: int = 0
    text: str = ""


_ALL_SETTLED = """() => [...document.querySelectorAll('.gp-chart')].every(
    e => e.querySelector('svg .marks, svg.marks') || e.textContent.length > 0)"""


_DRAWN = """() => [...document.querySelectorAll('.gp-chart')].filter(
    e => e.querySelector('svg.marks, svg .marks')).length"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D102 - keep test output clean
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """Serve ``folder`` on a free loopback port; yield the base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def check_pages(html_dir: Path, pages: list[str], executable: str,
                settle_ms: int = 300) -> list[PageReport]:
    """Load each page, wait for charts, and collect errors, foreign requests and charts."""
    from playwright.sync_api import sync_playwright

    reports = []
    with serve(html_dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        try:
            for page_path in pages:
                rep = PageReport(f"{base}/{page_path}")
                ctx = browser.new_context()
                ctx.on("request", lambda r, rep=rep, base=base: None if r.url.startswith(
                    (base, "data:", "blob:", "about:")) else rep.foreign_requests.append(r.url))
                ctx.on("response", lambda r, rep=rep: rep.failed_responses.append(
                    f"{r.status} {r.url}") if r.status >= 400 else None)
                page = ctx.new_page()
                page.on("console", lambda m, rep=rep: rep.console_errors.append(m.text)
                        if m.type == "error" else None)
                page.on("pageerror", lambda e, rep=rep: rep.console_errors.append(str(e)))
                page.goto(rep.url, wait_until="load")
                try:  # every chart drawn, or failed with its message, within the deadline
                    page.wait_for_function(_ALL_SETTLED, timeout=30_000)
                except Exception:  # noqa: BLE001 - the counts below report what is missing
                    pass
                page.wait_for_timeout(settle_ms)
                rep.charts = page.locator(".gp-chart").count()
                rep.charts_drawn = page.evaluate(_DRAWN)
                rep.text = page.inner_text("body")
                reports.append(rep)
                ctx.close()
        finally:
            browser.close()
    return reports


_LAYOUT = """() => {
  const doc = document.documentElement;
  const out = {page: doc.scrollWidth - window.innerWidth, charts: []};
  for (const el of document.querySelectorAll('.gp-chart')) {
    const svg = el.querySelector('svg');
    const column = el.closest('article') || el.parentElement;
    const box = column.getBoundingClientRect();
    const pad = parseFloat(getComputedStyle(column).paddingRight) || 0;
    out.charts.push({id: el.id, drawn: !!svg,
                     right: svg ? svg.getBoundingClientRect().right : 0,
                     limit: box.right - pad});
  }
  return out;
}"""


def check_layout(html_dir: Path, pages: list[str], executable: str,
                 widths: tuple[int, ...] = (400, 820, 1280)) -> list[str]:
    """Open each page at each viewport width; return what overflows: the page wider than
    the viewport, or a chart reaching past its column (one line per problem)."""
    from playwright.sync_api import sync_playwright

    problems = []
    with serve(html_dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        try:
            for width in widths:
                ctx = browser.new_context(viewport={"width": width, "height": 900})
                page = ctx.new_page()
                for page_path in pages:
                    page.goto(f"{base}/{page_path}", wait_until="load")
                    try:
                        page.wait_for_function(_ALL_SETTLED, timeout=30_000)
                    except Exception:  # noqa: BLE001 - undrawn charts are reported below
                        pass
                    page.wait_for_timeout(200)  # container-sized charts resize once
                    got = page.evaluate(_LAYOUT)
                    if got["page"] > 0:
                        problems.append(f"{page_path} @{width}px: page {got['page']}px too wide")
                    for c in got["charts"]:
                        if not c["drawn"]:
                            problems.append(f"{page_path} @{width}px: {c['id']} not drawn")
                        elif c["right"] > c["limit"] + 1:
                            problems.append(f"{page_path} @{width}px: {c['id']} "
                                            f"{c['right'] - c['limit']:.0f}px past its column")
                ctx.close()
        finally:
            browser.close()
    return problems


_VERDICT_BOLD = """() => [...document.querySelectorAll('.admonition')]
  .filter(a => /^Verdict/.test((a.querySelector('.admonition-title') || {}).textContent || ''))
  .map(a => {
    let bold = 0, all = 0;
    const walk = document.createTreeWalker(a, NodeFilter.SHOW_TEXT);
    while (walk.nextNode()) {
      const node = walk.currentNode, el = node.parentElement;
      if (el.closest('.admonition-title')) continue;
      const n = node.textContent.trim().length;
      all += n;
      if (parseInt(getComputedStyle(el).fontWeight) >= 600) bold += n;
    }
    return all ? bold / all : 0;
  })"""


def verdict_bold_shares(html_dir: Path, pages: list[str], executable: str) -> dict[str, list]:
    """For each page, the share of each verdict box's text (title aside) drawn in bold."""
    from playwright.sync_api import sync_playwright

    shares = {}
    with serve(html_dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            for page_path in pages:
                page.goto(f"{base}/{page_path}", wait_until="load")
                shares[page_path] = page.evaluate(_VERDICT_BOLD)
        finally:
            browser.close()
    return shares


def wheel_changes_chart(html_dir: Path, page_path: str, executable: str,
                        index: int = 0) -> bool:
    """Whether a mouse-wheel turn over the page's chart number ``index`` (from 0) redraws
    it (zoom)."""
    from playwright.sync_api import sync_playwright

    with serve(html_dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/{page_path}", wait_until="load")
            page.wait_for_function(_ALL_SETTLED, timeout=30_000)
            chart = page.locator(".gp-chart").nth(index)
            chart.scroll_into_view_if_needed()
            before = chart.inner_html()
            box = chart.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 3, box["y"] + box["height"] / 2)
            page.mouse.wheel(0, -300)
            page.wait_for_timeout(300)
            return chart.inner_html() != before
        finally:
            browser.close()
