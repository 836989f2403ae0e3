"""Publish executed chapters as book pages and build the HTML book with Jupyter Book 1.

Publishing copies each chapter's last good executed notebook into ``book/chapters/``,
adds a provenance box (every value HTML-escaped and kept on one line, so no value can
end the HTML block and turn into Markdown or a directive), download links for the source
notebook, the executed notebook and its parameter file, and, when the latest run failed,
a visible warning that the figures are from the previous good run. A chapter with no
good run, or whose executed notebook is damaged, gets a failure page instead. Jupyter
Book then renders these pages (``execute_notebooks: off``).
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import yaml

from gardenpath.pipeline import (
    Interrupted,
    Project,
    interruptible,
    overrides_text,
    read_manifest,
    reproduce_command,
)
from gardenpath.results import file_digest
from gardenpath.worker import die_with_parent

FILES = "files"  # book/chapters/files/<chapter>/: downloads for each chapter page


def title_of(notebook: Path) -> str:
    """The first ``# heading`` of a notebook's markdown, else its stem."""
    import jupytext

    for cell in jupytext.read(notebook).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.stem


def _fmt(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape(value: Any) -> str:
    """HTML-escape ``value`` and write every line break or control character as a
    character reference: the raw HTML block of a Markdown cell ends at a blank line, and
    what followed would be read as Markdown (images, headings, directives)."""
    return _LINE_BREAKS.sub(lambda m: f"&#{ord(m.group())};", html.escape(str(value)))


def provenance_html(profile: str, chapter: str, good: dict[str, Any], command: str) -> str:
    """The provenance box as one raw HTML block on one line, every value escaped. Its
    summary line says which values differ from the profile's, if any."""
    prov = good.get("provenance", {})
    git = prov.get("git", {}) or {}
    commit = (git.get("commit") or "unknown")[:12]
    if git.get("dirty"):
        commit += " (uncommitted changes)"
    device = prov.get("device") or {}
    if isinstance(device, dict) and device:
        dev = device.get("name") or device.get("cpu_model") or device.get("kind") or str(device)
    else:
        dev = good.get("parts", {}).get("device", "unknown")
    versions = ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items() if v)
    rows = [
        ("profile", profile),
        ("git commit", commit),
        ("device", str(dev)),
        ("libraries", f"python {prov.get('python', '?')}, {versions}"),
        ("date", str(good.get("finished", "?"))),
        ("wall time", f"{good.get('wall_time_s', 0):.1f} s"),
        ("cache key", str(good.get("key", "?"))),
        ("overrides", overrides_text(good) or f"none: the {profile} profile's values"),
        ("reproduce", command),
    ]
    e = escape
    body = "".join(f"<tr><th>{e(k)}</th><td><code>{e(v)}</code></td></tr>" for k, v in rows)
    params = "".join(
        f"<tr><th><code>{e(k)}</code></th><td><code>{e(_fmt(v))}</code></td></tr>"
        for k, v in sorted(good.get("params", {}).items())
    )
    summary = (f" (overrides of the {profile} profile: {overrides_text(good)})"
               if good.get("overrides") else "")
    return (
        f'<details class="gp-provenance" id="provenance-{e(chapter)}">'
        f"<summary>Provenance: how this page was computed{e(summary)}</summary>"
        f'<table class="gp-prov-table">{body}</table>'
        "<p>Parameters used:</p>"
        f'<table class="gp-prov-params">{params}</table>'
        "</details>"
    )


def _md_cell(source: str, tag: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source)
    cell.metadata["tags"] = [tag]
    return cell


def _banner(latest: dict[str, Any], has_good: bool) -> str:
    err = latest.get("error", {}) or {}
    where = f"cell {err['cell']}" if err.get("cell") else "a cell"
    what = escape(f"{err.get('ename', 'error')}: {str(err.get('evalue', ''))[:300]}")
    status = escape(str(latest.get("status", "failed")))
    when = escape(str(latest.get("when", "?")))
    kept = ("The figures and numbers below are from the <strong>previous good run</strong>, "
            "not from the latest parameters." if has_good else
            "There is no earlier good run to show.")
    return (f'<div class="admonition warning gp-failed"><p class="admonition-title">'
            f"Latest run {status}</p><p>The latest run of this chapter ({when}) {status} "
            f"in {where}: <code>{what}</code>. {kept}</p></div>")


def publish(project: Project, profile: str) -> list[str]:
    """Write every chapter's page into ``book/chapters/``; return the chapter names."""
    out = project.chapters_dir
    out.mkdir(parents=True, exist_ok=True)
    _put(out / "verdicts.md", verdict_summary(project, profile).encode())
    names = project.chapters()
    for name in names:
        manifest = read_manifest(project.manifest_path(profile, name)) or {}
        good, latest = manifest.get("good"), manifest.get("latest", {}) or {}
        files = out / FILES / name
        wanted: dict[str, bytes] = {f"{name}.py": project.notebook(name).read_bytes()}
        executed = project.out_dir(profile) / f"{name}.ipynb"
        command = reproduce_command(profile, name, (good or {}).get("overrides"))
        nb = _executed(executed, good)
        if good and nb is not None:
            # flat, one chapter: what papermill's -f reads
            wanted[f"{name}.params.yaml"] = yaml.safe_dump(
                good["params"], sort_keys=True).encode()
            wanted[f"{name}.ipynb"] = executed.read_bytes()
            figs = project.out_dir(profile) / f"{name}_files"
            for svg in sorted(figs.glob("*.svg")) if figs.exists() else []:
                wanted[svg.name] = svg.read_bytes()
            _sync(files, wanted)
            extra = [_md_cell(provenance_html(profile, name, good, command), "gp-provenance"),
                     _md_cell(_downloads(name, files), "gp-downloads")]
            if latest.get("status") not in (None, "ok"):
                extra.insert(0, _md_cell(_banner(latest, True), "gp-failed"))
            for cell in nb.cells:  # the provenance box lists the values used
                tags = cell.metadata.setdefault("tags", [])
                if "parameters" in tags:
                    tags.append("remove-cell")
                elif "injected-parameters" in tags:
                    tags.append("hide-input")
            at = 1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0
            nb.cells[at:at] = extra
        else:
            title = title_of(project.notebook(name))
            if good:
                head, text = ("Output damaged", "The executed notebook of this chapter's last "
                              "good run is missing or does not match its checksum; run the "
                              "chapter again.")
            else:
                head, text = "Not run yet", "This chapter has not been run on this profile."
            body = (_banner(latest, False) if latest.get("status") not in (None, "ok") else
                    '<div class="admonition warning gp-failed"><p class="admonition-title">'
                    f"{head}</p><p>{text}</p></div>")
            _sync(files, wanted)
            nb = nbformat.v4.new_notebook()
            nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}"), _md_cell(body, "gp-failed"),
                        _md_cell(f"Run it with:\n\n```\n{reproduce_command(profile, name)}"
                                 "\n```", "gp-downloads"),
                        _md_cell(_downloads(name, files), "gp-downloads")]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        _put(out / f"{name}.ipynb", nbformat.writes(nb).encode())
    return names


def _executed(path: Path, good: dict[str, Any] | None) -> nbformat.NotebookNode | None:
    """The executed notebook of a good run, or ``None`` when absent, damaged (checksum)
    or unreadable."""
    if not good or file_digest(path) != good.get("notebook_sha256"):
        return None
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError, nbformat.reader.NotJSONError):
        return None


def _put(path: Path, data: bytes) -> None:
    """Write ``data`` atomically, and not at all when the file already holds it.

    Leaving unchanged pages untouched keeps their modification times, so Sphinx's
    incremental build re-renders only what changed.
    """
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _sync(folder: Path, wanted: dict[str, bytes]) -> None:
    """Make ``folder`` hold exactly ``wanted`` (name -> bytes), touching only what differs."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.name not in wanted:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    for fname, data in wanted.items():
        _put(folder / fname, data)


def verdict_summary(project: Project, profile: str) -> str:
    """The introduction's list of verdicts, taken from the claims ledger's results file."""
    from gardenpath.claims import CLAIMS, OVERALL
    from gardenpath.results import ResultsError, load
    from gardenpath.verdict import OUTCOMES

    try:
        data = load("ledger", profile, project.root)
    except ResultsError as exc:
        return f"*The claims ledger's results file is unreadable ({exc}).*\n"
    if data is None:
        return f"*The claims ledger has not run on the {profile} profile yet.*\n"
    have = project.toc_chapters()
    lines = []
    for chapter, (title, claim) in [*CLAIMS.items(), ("ledger", OVERALL)]:
        nums = data["numbers"]
        decided = sum(nums.get(f"count_{v}", 0)
                      for v in ("supported", "not_supported", "mixed", "inconclusive"))
        if chapter == "ledger":
            verdict = data["verdict"] if decided else "no result"
        else:
            verdict = nums.get(f"verdict_{chapter}", "missing")
        shown = f"**{verdict}**" if verdict in OUTCOMES else \
            f"*{verdict}*"
        name = f"[{title}](chapters/{chapter}.ipynb)" if chapter in have else title
        lines.append(f"- {name}: {shown}. {claim}")
    if "synthesis" in have:
        lines.append("\n[Where the essay holds](chapters/synthesis.ipynb) sorts every deciding "
                     "test: where the measurements support the essay, where they contradict "
                     "it, and what this book cannot decide at its scale.")
    return (f"Verdicts on the **{profile}** profile, from the claims ledger:\n\n"
            + "\n".join(lines) + "\n")


def _downloads(name: str, files: Path) -> str:
    links = [f"{{download}}`source notebook <{FILES}/{name}/{name}.py>`"]
    if (files / f"{name}.ipynb").exists():
        links.append(f"{{download}}`executed notebook <{FILES}/{name}/{name}.ipynb>`")
    if (files / f"{name}.params.yaml").exists():
        links.append(f"{{download}}`parameters <{FILES}/{name}/{name}.params.yaml>`")
    svgs = sorted(p.name for p in files.glob("*.svg"))
    links += [f"{{download}}`{s} <{FILES}/{name}/{s}>`" for s in svgs]
    return "**Downloads:** " + " · ".join(links)


def write_mathjax(static_dir: Path) -> Path:
    """Copy MathJax's self-contained SVG build into the book, so math renders offline."""
    import mathjax  # the django-static-mathjax distribution: MathJax's files only

    src = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5" / "tex-svg.js"
    target = static_dir / "mathjax" / "tex-svg.js"
    _put(target, src.read_bytes())
    return target


def jupyter_book(project: Project, strict: bool = True, builder: str = "html") -> int:
    """Run ``jupyter-book build`` on the tree; output goes to ``book/_build``."""
    from gardenpath.charts import write_bundle

    write_bundle(project.root / "book" / "_static")
    write_mathjax(project.root / "book" / "_static")
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(project.root),
           "--path-output", str(project.root / "book"), "--builder", builder]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    # its own session, ended with us: SIGINT/SIGTERM or our death stops it writing
    proc = subprocess.Popen(cmd, cwd=project.root, start_new_session=True,
                            preexec_fn=die_with_parent())
    try:
        with interruptible():
            return proc.wait()
    except Interrupted as exc:
        _stop(proc)
        return 128 + exc.signum
    finally:
        if proc.poll() is None:
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """End ``proc``'s process group: SIGTERM, then SIGKILL after 10 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue
