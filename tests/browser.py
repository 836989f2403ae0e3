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
