"""A small Sphinx extension for the book: drop sphinx-thebe's scripts from every page.

Jupyter Book 1 always loads sphinx-thebe, which adds its settings script twice per page
(the browser then logs "Identifier 'THEBE_JS_URL' has already been declared") and names
a CDN address. The book does not use live code, so its pages carry none of it.
"""

from __future__ import annotations

from typing import Any


def _is_thebe(asset: Any) -> bool:
    text = " ".join(str(x) for x in (getattr(asset, "filename", None) or asset,
                                      getattr(asset, "attributes", {}).get("body", "")))
    return "thebe" in text.lower()


def _drop_thebe(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if not _is_thebe(a)]


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
