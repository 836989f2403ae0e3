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
# # Where the essay holds
#
# The essay {cite}`rinkus_essay` argues that parameter sharing, machine parallelism, huge
# data sets and non-local learning lead deep learning away from how cortex computes. The
# chapters of this book each test one of its claims; the {doc}`ledger` lists their verdicts.
# This page reads the same results and sorts every deciding test into three groups: where
# the measurements support the essay, where they contradict it, and what this book cannot
# decide at the scale it ran, with what would decide it. Everything below is generated from
# the results files of the run that built this book.

# %% tags=["parameters"]
profile = ""  # results to read: empty for the profile this run uses [choices:  | smoke | cpu | gpu]
results_dir = ""  # folder holding the <chapter>.json results files; empty for results/<profile> [path]

# %% tags=["hide-input"]
import os
from pathlib import Path

from IPython.display import Markdown, display

from gardenpath import results
from gardenpath.chapters import ledger

tree = os.environ.get("GARDENPATH_ROOT")  # set by the pipeline; unset for a downloaded notebook
profile = profile or results.profile_name()
folder = Path(results_dir) if results_dir else results.results_folder(profile, tree)
rows = ledger.collect(Path(tree or "."), profile, folder)
text = ledger.synthesis_markdown(rows, profile)
display(Markdown(text))
