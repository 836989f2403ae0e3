# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   gardenpath:
#     timeout_s: 120
#     reads_results: true
# ---

# %% [markdown]
# # Claims ledger
#
# Each chapter of this book tests one claim of the essay {cite}`rinkus_essay` with named
# tests: a measured or trained quantity, its 95% interval, and a threshold fixed before the
# run. This page gathers them. It is generated from the chapters' results files each time
# the book is rebuilt; a chapter that has not run, or whose latest run failed, is listed as
# such. {doc}`synthesis` says in words where the essay holds and where it does not.

# %% tags=["parameters"]
profile = ""  # results to read: empty for the profile this run uses [choices:  | smoke | cpu | gpu]
results_dir = ""  # folder holding the <chapter>.json results files; empty for results/<profile> [path]
show_gpu = True  # also list the committed GPU results (results/gpu) when there are any

# %% tags=["hide-input"]
import os
from pathlib import Path

from IPython.display import HTML, Markdown, display
from myst_nb import glue

from gardenpath import charts, results
from gardenpath.chapters import ledger
from gardenpath.pipeline import Project

charts.enable()
tree = os.environ.get("GARDENPATH_ROOT")  # set by the pipeline; unset for a downloaded notebook
root = Path(tree or ".")
profile = profile or results.profile_name()
folder = Path(results_dir) if results_dir else results.results_folder(profile, tree)
chapter_rows = ledger.collect(root, profile, folder)
rows = ledger.with_overall(chapter_rows, profile)
counts = ledger.tally(chapter_rows)
if not any(r.verdict for r in chapter_rows):
    display(Markdown(f"**No results found in `{folder}`.** Run the chapters first "
                     "(`python -m gardenpath run`), or set `results_dir` to the folder that "
                     "holds their `<chapter>.json` files."))

# %% tags=["hide-input"]
overall = rows[-1]
numbers = {f"verdict_{r.chapter}": r.verdict or r.status for r in chapter_rows}
numbers.update({f"count_{k.replace(' ', '_')}": v for k, v in counts.items()})
rec = results.record(
    claim=overall.claim,
    verdict=overall.verdict or "inconclusive",
    numbers=numbers,
    why=overall.why,
    params=results.parameters(globals(), "ledger"),
)
glue("ledger_profile", profile, display=False)
glue("ledger_counts", ledger.count_sentence(counts), display=False)
glue("ledger_overall", overall.verdict or "without result", display=False)
glue("ledger_rule", ledger.OVERALL_RULE, display=False)
glue("fig-ledger-forest", charts.figure(ledger.forest_chart(chapter_rows), "ledger-forest"),
     display=False)

# %% [markdown]
# ```{glue:figure} fig-ledger-forest
# :name: fig-ledger-forest
#
# Every test that decides a verdict, as a point (the measured value) and a bar (its 95%
# interval), placed by how far it lies past its threshold in the essay's favour: right of the
# dashed line supports the claim, left contradicts it, and a bar that crosses the line cannot
# decide at this scale. The axis is relative to each threshold, on a signed log scale, so
# that quantities in different units share it. Hover for each test's rule and measurement.
# ```
#
# On the {glue:text}`ledger_profile` profile: {glue:text}`ledger_counts` The essay's
# conclusion is **{glue:text}`ledger_overall`**. {glue:text}`ledger_rule`

# %% tags=["hide-input"]
linked = Project(root).toc_chapters() if (root / "_toc.yml").exists() else set()
display(HTML(ledger.table_html(rows, linked)))

# %% tags=["hide-input"]
gpu_rows = ledger.collect(root, "gpu") if show_gpu and profile != "gpu" else []
if any(r.verdict for r in gpu_rows):
    display(HTML("<p>At paper scale, on the GPU profile (committed results):</p>"
                 + ledger.table_html(gpu_rows, linked)))
else:
    display(HTML("<p><em>No GPU-profile results are committed yet: every verdict above "
                 "comes from the profile named above.</em></p>"))
