"""The book's chart look, and Altair output that draws with no network.

Altair's default HTML output fetches vega, vega-lite and vega-embed from a CDN, which
fails offline and inside a Jupyter Book page. Here the whole vega stack is written once
into the book's ``_static/`` (from ``vl_convert.javascript_bundle()``, wrapped so it only
sets ``window.vegaEmbed`` and friends) and every chart is emitted as an empty ``div`` plus
a ``vegaEmbed`` call on its spec. Each chart is also saved as SVG for print and reuse.

On the page a chart fits its column (a single or layered view takes the column's width;
the rest scale down with the page's CSS), and a chart whose x and y are both continuous
pans and zooms. :func:`color_for` gives each learner or method one colour in every figure.
"""

from __future__ import annotations

import html
import json
import os
import uuid
from pathlib import Path
from typing import Any

import altair as alt

#: Name of the vega bundle inside the book's static folder.
BUNDLE_NAME = "gardenpath-vega.js"

#: One size for every chart (pixels), one palette, one font.
WIDTH, HEIGHT = 520, 300
PALETTE = ["#1f5f8b", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f", "#2e4057"]
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"

#: What each learner or method is drawn in, in every figure of the book (by its code
#: name: sharing schemes, learning rules, one-shot learners). Use :func:`color_for` or
#: :func:`color_scale` rather than positions in :data:`PALETTE`.
COLORS: dict[str, str] = {
    # weight sharing: chapters 2, 3, 4 and 5
    "conv": PALETTE[0],
    "local": PALETTE[1],
    "local_shared": PALETTE[2],
    "dense": PALETTE[4],
    # learning rules (chapter 6) and one-shot learners (chapter 7): one colour per learner
    "backprop": PALETTE[6],
    "feedback_alignment": PALETTE[3],
    "rbm": PALETTE[5],
    "krotov_hopfield": "#a0522d",
    "sparsey": "#e07a5f",
    "nn_pixels": "#7f7f7f",
    "nn_code": "#9ab87a",
    "embedding_nn": "#3d405b",
}
#: Kept for the chapters that import it: the sharing schemes' part of :data:`COLORS`.
SHARING_COLORS = {k: COLORS[k] for k in ("conv", "local", "local_shared", "dense")}


def color_for(name: str) -> str:
    """The colour of learner or method ``name`` (its code name, e.g. ``"backprop"``).

    A name not in :data:`COLORS` gets a fixed colour from :data:`PALETTE` chosen by its
    characters, so it is at least the same in every figure and every run.
    """
    if name in COLORS:
        return COLORS[name]
    return PALETTE[sum(name.encode()) % len(PALETTE)]


def color_scale(names: list[str] | tuple[str, ...],
                labels: dict[str, str] | None = None) -> alt.Scale:
    """An Altair colour scale giving each of ``names`` its book-wide colour; with
    ``labels`` (code name -> shown label) the domain holds the labels the data shows."""
    domain = [labels.get(n, n) for n in names] if labels else list(names)
    return alt.Scale(domain=domain, range=[color_for(n) for n in names])


def theme() -> dict[str, Any]:
    """The gardenpath Vega-Lite config: one size, palette and font for every figure."""
    return {
        "config": {
            "view": {"continuousWidth": WIDTH, "continuousHeight": HEIGHT, "stroke": None},
            "font": FONT,
            "range": {"category": PALETTE},
            "axis": {"labelFontSize": 12, "titleFontSize": 13, "grid": True,
                     "gridColor": "#e6e6e6"},
            "legend": {"labelFontSize": 12, "titleFontSize": 13},
            "title": {"fontSize": 15, "anchor": "start"},
            "line": {"strokeWidth": 2},
            "point": {"size": 50, "filled": True},
        }
    }


def bundle_js() -> str:
    """The vega stack as one script that sets only ``window.vegaEmbed``/``vega``/``vegaLite``."""
    import vl_convert as vlc

    return "/* vega, vega-lite, vega-embed via vl-convert */\n(function () {\n" + (
        vlc.javascript_bundle() + "\n})();\n"
    )


def write_bundle(static_dir: str | Path) -> Path:
    """Write the offline vega bundle into ``static_dir`` unless an identical one is there."""
    static_dir = Path(static_dir)
    static_dir.mkdir(parents=True, exist_ok=True)
    target = static_dir / BUNDLE_NAME
    text = bundle_js()
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    return target


_CONTINUOUS = ("quantitative", "temporal")


def _continuous_xy(encoding: dict[str, Any]) -> bool:
    return all(isinstance(encoding.get(ch), dict) and encoding[ch].get("type") in _CONTINUOUS
               for ch in ("x", "y"))


def _zoom_view(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The unit view (``spec`` itself or a layer) whose x and y are continuous, or None."""
    if "mark" in spec:
        return spec if _continuous_xy(spec.get("encoding", {})) else None
    for layer in spec.get("layer", []):
        enc = {**spec.get("encoding", {}), **layer.get("encoding", {})}
        if "mark" in layer and _continuous_xy(enc):
            return layer
    return None


def for_page(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as the web page draws it: a single or layered view takes its column's
    width (its legend included), and one with continuous x and y axes pans and zooms
    (drag, wheel; double-click resets). Print and SVG keep the fixed :data:`WIDTH`."""
    spec = json.loads(json.dumps(spec))
    if not any(k in spec for k in ("hconcat", "vconcat", "concat", "facet", "repeat")):
        spec["width"] = "container"
        spec["autosize"] = {"type": "fit-x", "contains": "padding"}
    view = _zoom_view(spec)
    if view is not None:
        binds = [p for p in view.get("params", []) if p.get("bind") == "scales"]
        if not binds:
            view.setdefault("params", []).append(
                {"name": "gp_zoom", "select": "interval", "bind": "scales"})
    return spec


#: On a narrow column (a phone) legends go below the plot and long titles are cut short
#: with an ellipsis, so that a chart keeps its plot area and nothing is drawn outside it.
_NARROW_JS = (
    "var w = el.clientWidth; if (w && w < 640) { var c = spec.config = spec.config || {};"
    " c.legend = Object.assign({}, c.legend, {orient: 'bottom', direction: 'vertical',"
    " layout: {bottom: {direction: 'vertical', anchor: 'start'}}});"
    " c.title = Object.assign({}, c.title, {limit: w - 10});"
    " c.axis = Object.assign({}, c.axis, {titleLimit: w - 70}); }"
)


def embed_html(spec: dict[str, Any], div_id: str | None = None) -> str:
    """HTML for one chart: an empty div and a ``vegaEmbed`` call; ``</`` escaped in the spec."""
    div_id = div_id or f"gp-chart-{uuid.uuid4().hex[:12]}"
    spec_json = json.dumps(for_page(spec), sort_keys=True).replace("</", "<\\/")
    return (
        f'<div id="{html.escape(div_id)}" class="gp-chart"></div>\n'
        "<script>(function () {\n"
        f'  var el = document.getElementById("{div_id}");\n'
        f"  var spec = {spec_json};\n"
        f"  {_NARROW_JS}\n"
        "  if (window.vegaEmbed) {\n"
        "    window.vegaEmbed(el, spec, "
        '{"actions": false, "renderer": "svg"}).catch(function (e) {\n'
        '      el.textContent = "Chart failed to draw: " + e; });\n'
        "  } else { el.textContent = 'Chart library missing (" + BUNDLE_NAME + ")'; }\n"
        "})();</script>"
    )


def _renderer(spec: dict[str, Any], **_: Any) -> dict[str, str]:
    return {"text/html": embed_html(spec)}


def enable() -> None:
    """Register and switch on the gardenpath theme and the offline renderer."""
    alt.theme.register("gardenpath", enable=True)(theme)
    alt.renderers.register("gardenpath", _renderer)
    alt.renderers.enable("gardenpath")
    alt.data_transformers.disable_max_rows()


def figures_dir() -> Path:
    """Where this run saves its SVGs: the pipeline's staging folder, else ``./figures``."""
    stage = os.environ.get("GARDENPATH_STAGE")
    base = Path(stage) / "figures" if stage else Path("figures")
    base.mkdir(parents=True, exist_ok=True)
    return base


def save_svg(chart: alt.TopLevelMixin, name: str) -> Path:
    """Save ``chart`` as ``<name>.svg`` in :func:`figures_dir` (offline, via vl-convert)."""
    path = figures_dir() / f"{name}.svg"
    chart.save(str(path), format="svg")
    return path


class Figure:
    """A chart with a name and caption, shown as live HTML and a static SVG.

    Displaying it (the last expression of a cell, or ``glue``) emits the offline vegaEmbed
    HTML for the web book and the SVG for print builds; the SVG is also saved on disk.
    """

    def __init__(self, chart: alt.TopLevelMixin, name: str, caption: str = ""):
        self.chart = chart
        self.name = name
        self.caption = caption
        self.svg_path = save_svg(chart, name)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        spec = self.chart.to_dict()
        return {
            "text/html": embed_html(spec, f"gp-chart-{self.name}"),
            "image/svg+xml": self.svg_path.read_text(encoding="utf-8"),
        }


def figure(chart: alt.TopLevelMixin, name: str, caption: str = "") -> Figure:
    """Wrap ``chart`` as a named :class:`Figure`, saving its SVG now."""
    return Figure(chart, name, caption)
