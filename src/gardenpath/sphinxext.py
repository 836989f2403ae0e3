"""A small Sphinx extension for the book's pages.

- Jupyter Book 1 always loads sphinx-thebe, which adds its settings script twice per page
  (the browser then logs "Identifier 'THEBE_JS_URL' has already been declared") and names
  a CDN address. The book does not use live code, so its pages carry none of it.
- The Binder launch button would open ``book/chapters/<chapter>.ipynb``, which the
  pipeline generates and the repository does not hold; it is pointed at the chapter's
  jupytext source, ``notebooks/<chapter>.py``, which Binder opens as a notebook.
- The repository URL is one setting (``repository: url`` in ``_config.yml``): with it the
  pages show the repository and Binder buttons; without it neither, since both would
  lead nowhere.
- The single-page build (``make pdf``) writes its page at ``book/intro.html`` but links its
  styles, images and downloads as if it sat at the top: they are pointed one level up.
- Figure numbers restart on every page (Fig. 1, 2, ... per chapter) instead of running
  across the book.
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


def _buttons_follow_the_repository(app: Any, config: Any) -> None:
    """Repository and launch buttons when ``repository.url`` is set, none otherwise."""
    options = config.html_theme_options
    has_url = bool(str(options.get("repository_url") or "").strip())
    options["use_repository_button"] = has_url
    if not has_url:
        options.pop("repository_url", None)
        options["launch_buttons"] = {}
        for key in ("use_issues_button", "use_edit_page_button", "use_source_button"):
            options[key] = False


def _figures_per_page(app: Any, env: Any) -> list[str]:
    """Number each page's figures (and tables, code blocks) from 1, in page order."""
    changed = []
    for docname, by_type in env.toc_fignumbers.items():
        renumbered = {}
        for figtype, numbers in by_type.items():
            ordered = sorted(numbers, key=lambda ident: numbers[ident])
            renumbered[figtype] = {ident: (i,) for i, ident in enumerate(ordered, start=1)}
        if renumbered != by_type:
            env.toc_fignumbers[docname] = renumbered
            changed.append(docname)
    return changed


_TOP_LEVEL = re.compile(r'((?:href|src)=")(?=(?:_static|_images|_downloads|_sources)/'
                        r'|(?:genindex|search|index)\.html|objects\.inv)')


def _single_page_paths(app: Any, exception: Exception | None) -> None:
    """Make the single page's links relative to where it is written, not to the top."""
    if exception is not None or app.builder.name != "singlehtml":
        return
    root_doc = app.config.root_doc
    page = Path(app.outdir) / f"{root_doc}.html"
    depth = root_doc.count("/")
    if depth == 0 or not page.exists():
        return
    up = "../" * depth
    text = page.read_text(encoding="utf-8")
    fixed = _TOP_LEVEL.sub(rf"\1{up}", text)
    fixed = fixed.replace(f'href="{root_doc}.html#', 'href="#')
    fixed = fixed.replace(f'href="{root_doc}.html"', 'href="#"')
    fixed = fixed.replace('data-content_root="./"', f'data-content_root="{up}"')
    if fixed != text:
        page.write_text(fixed, encoding="utf-8")


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _buttons_follow_the_repository)
    app.connect("env-get-updated", _figures_per_page, priority=900)
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("build-finished", _binder_to_source)
    app.connect("build-finished", _single_page_paths)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
