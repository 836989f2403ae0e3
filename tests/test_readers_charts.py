"""Charts on the page: a single or layered view takes its column's width, continuous axes
pan and zoom, and each learner or method has one colour in every figure."""

from __future__ import annotations

import altair as alt
import pandas as pd

from gardenpath import charts

DATA = pd.DataFrame({"n": [1, 2, 3], "acc": [0.5, 0.6, 0.7], "rule": ["a", "b", "c"]})


def test_a_continuous_chart_fits_its_column_and_zooms() -> None:
    spec = charts.for_page(alt.Chart(DATA).mark_line().encode(x="n:Q", y="acc:Q").to_dict())
    assert spec["width"] == "container"
    assert spec["autosize"]["contains"] == "padding"  # the legend stays inside the column
    assert {"name": "gp_zoom", "select": "interval", "bind": "scales"} in spec["params"]


def test_a_layered_chart_zooms_through_its_continuous_layer() -> None:
    base = alt.Chart(DATA)
    layered = alt.layer(base.mark_bar().encode(x="rule:N", y="acc:Q"),
                        base.mark_point().encode(x="n:Q", y="acc:Q"))
    spec = charts.for_page(layered.to_dict())
    assert spec["width"] == "container"
    assert "params" not in spec["layer"][0]
    assert spec["layer"][1]["params"][0]["bind"] == "scales"


def test_category_axes_and_concatenations_keep_their_layout() -> None:
    bars = alt.Chart(DATA).mark_bar().encode(x="rule:N", y="acc:Q")
    assert "params" not in charts.for_page(bars.to_dict())
    pair = charts.for_page(alt.hconcat(bars, bars).to_dict())
    assert "width" not in pair  # a concatenation scales down with the page's CSS instead


def test_the_page_spec_leaves_the_chart_itself_alone() -> None:
    chart = alt.Chart(DATA).mark_line().encode(x="n:Q", y="acc:Q")
    charts.for_page(chart.to_dict())
    assert "width" not in chart.to_dict() and "gp_zoom" not in charts.embed_html(
        alt.Chart(DATA).mark_bar().encode(x="rule:N", y="acc:Q").to_dict())
    assert '"width": "container"' in charts.embed_html(chart.to_dict())


def test_each_learner_has_one_colour_across_the_book() -> None:
    assert len(set(charts.COLORS.values())) == len(charts.COLORS)  # no two share one
    assert charts.color_for("backprop") == charts.COLORS["backprop"]
    assert charts.SHARING_COLORS["local"] == charts.color_for("local")
    assert charts.color_for("someone_new") == charts.color_for("someone_new")
    scale = charts.color_scale(["conv", "backprop"], {"conv": "convolutional"})
    assert scale.domain == ["convolutional", "backprop"]
    assert scale.range == [charts.color_for("conv"), charts.color_for("backprop")]
