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
# Each chapter of this book tests one claim of the essay {cite}`rinkus_essay`. This page
# gathers them: the claim in our words, the chapter that tests it, the verdict its data
# gave, the numbers behind the verdict, and the profile and device that produced them. It is
# generated from the chapters' results files each time the book is rebuilt; a chapter that
# has not run, or whose latest run failed, is listed as such.

# %% tags=["parameters"]
profile = ""  # results to read: "" for the profile this run uses, else smoke, cpu or gpu
show_gpu = True  # also list the committed GPU results (results/gpu) when there are any

# %% tags=["hide-input"]
import os
from pathlib import Path

from IPython.display import HTML, display
from myst_nb import glue

from gardenpath import results
from gardenpath.chapters import ledger
from gardenpath.pipeline import Project

root = Path(os.environ.get("GARDENPATH_ROOT", ".."))
profile = profile or results.profile_name()
chapter_rows = ledger.collect(root, profile)
counts = ledger.tally(chapter_rows)
rows = ledger.with_overall(chapter_rows, profile)
for name, n in counts.items():
    glue(f"ledger_{name.replace(' ', '_')}", n, display=False)
glue("ledger_profile", profile, display=False)
linked = Project(root).toc_chapters() if (root / "_toc.yml").exists() else set()
display(HTML(ledger.table_html(rows, linked)))

# %% [markdown]
# On the {glue:text}`ledger_profile` profile, {glue:text}`ledger_supported` claims are
# supported by our measurements, {glue:text}`ledger_not_supported` are not,
# {glue:text}`ledger_mixed` are mixed, and {glue:text}`ledger_no_result` have no result.
# The last row judges the essay's conclusion from the others: supported only if every
# claim with a result is supported, not supported only if none is, mixed otherwise.

# %% tags=["hide-input"]
gpu_rows = ledger.collect(root, "gpu") if show_gpu and profile != "gpu" else []
if any(r.verdict for r in gpu_rows):
    display(HTML("<p>At paper scale, on the GPU profile (committed results):</p>"
                 + ledger.table_html(gpu_rows, linked)))
else:
    display(HTML("<p><em>No GPU-profile results are committed yet: every verdict above "
                 "comes from the profile named above.</em></p>"))

# %% tags=["hide-input"]
overall = rows[-1]
numbers = {f"verdict_{r.chapter}": r.verdict or r.status for r in chapter_rows}
numbers.update({f"count_{k.replace(' ', '_')}": v for k, v in counts.items()})
rec = results.record(
    claim=overall.claim,
    verdict=overall.verdict or "mixed",
    numbers=numbers,
    why=overall.why,
    params=results.parameters(globals(), "ledger"),
)
