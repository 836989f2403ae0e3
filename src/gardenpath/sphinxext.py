"""A small Sphinx extension for the book's pages.

- Jupyter Book 1 always loads sphinx-thebe, which adds its settings script twice per page
  (the browser then logs "Identifier 'THEBE_JS_URL' has already been declared") and names
  a CDN address. The book does not use live code, so its pages carry none of it.
- The Binder launch button would open ``book/chapters/<chapter>.ipynb``, which the
  pipeline generates and the repository does not hold; it is pointed at the chapter's
  jupytext source, ``notebooks/<chapter>.py``, which Binder opens as a notebook.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_BINDER_PAGE = re.compile(r"(urlpath=lab/tree/)book/chapters/(\w+)\.ipynb")


def _is_thebe(asset: Any) -> bool:
    text = " ".join(str(x) for x in (getattr(asset, "filename", None) or asset,
                                      getattr(asset, "attributes", {}).get("body", "")))
    return "thebe" in text.lower()


def _drop_thebe(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if not _is_thebe(a)]


def _binder_to_source(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        fixed = _BINDER_PAGE.sub(r"\1notebooks/\2.py", text)
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("build-finished", _binder_to_source)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
