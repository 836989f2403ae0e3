"""A chapter notebook outside the pipeline: parameters from its own cell, results under
its own name, and a downloaded executed notebook that papermill runs in an empty folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, gp

from gardenpath import results

PARAMS_CELL = ('device = "auto"  # where to run [choices: auto | cpu | cuda]\n'
               "batch_size = 8  # images per step [range: 1..]\n")


@pytest.fixture
def outside(monkeypatch, tmp_path: Path) -> Path:
    """No pipeline: none of its variables set, the working folder an empty one."""
    for name in ("GARDENPATH_ROOT", "GARDENPATH_CHAPTER", "GARDENPATH_PROFILE",
                 "GARDENPATH_STAGE", "GARDENPATH_RESULTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(results, "_named_chapter", None)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_parameters_come_from_the_notebooks_own_cell(outside: Path) -> None:
    # the kernel's history: the parameters cell, papermill's injected cell, then code
    ns = {"In": ["", PARAMS_CELL, "# Parameters\nbatch_size = 2\n", "import torch"],
          "device": "cpu", "batch_size": 2, "torch": object()}
    assert results.parameters(ns, "energy") == {"device": "cpu", "batch_size": 2}


def test_parameters_outside_a_kernel_say_how_to_run(outside: Path) -> None:
    with pytest.raises(results.ResultsError, match="energy: parameters not found"):
        results.parameters({"device": "cpu"}, "energy")


def test_a_standalone_record_goes_under_the_chapters_own_name(outside: Path,
                                                              monkeypatch) -> None:
    ns = {"In": ["", PARAMS_CELL], "device": "cpu", "batch_size": 8}
    params = results.parameters(ns, "energy")
    results.record("a claim", "mixed", {"n": 1}, params=params)
    data = json.loads((outside / "results" / "interactive" / "energy.json").read_text())
    assert data["chapter"] == "energy" and data["provenance"]["params"] == params
    monkeypatch.setenv("GARDENPATH_RESULTS_DIR", str(outside / "elsewhere"))
    results.record("a claim", "mixed", {"n": 1}, params=params)
    assert (outside / "elsewhere" / "interactive" / "energy.json").is_file()


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                          cwd=REPO, capture_output=True, text=True, check=True).stdout


def downloaded(tree: Path, chapter: str) -> Path:
    """The executed notebook a reader downloads from the chapter's page."""
    r = gp(tree, "publish", "--profile", "smoke")
    assert r.returncode == 0, r.stderr[-2000:]
    return tree / "book" / "chapters" / "files" / chapter / f"{chapter}.ipynb"


@pytest.mark.slow
def test_downloaded_notebook_runs_with_papermill_in_an_empty_folder(smoke_tree: Path,
                                                                   tmp_path: Path) -> None:
    # the reader's commands, in a folder that holds only the download: the smoke values
    # (the page's parameters, flattened) with -f, one of them changed with -p
    import yaml
    from conftest import smoke_results

    notebook = downloaded(smoke_tree, "energy")
    work = tmp_path / "reader"
    work.mkdir()
    (work / "energy.ipynb").write_bytes(notebook.read_bytes())
    used = smoke_results(smoke_tree, "energy")["provenance"]["params"]
    (work / "energy.params.yaml").write_text(yaml.safe_dump(used))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARDENPATH_")}
    before = git_status()
    papermill = Path(sys.executable).with_name("papermill")
    r = subprocess.run([str(papermill), "energy.ipynb", "out.ipynb", "-f", "energy.params.yaml",
                        "-p", "batch_size", "2", "-k", "python3"],
                       cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert git_status() == before  # nothing written into the checkout
    data = json.loads((work / "results" / "interactive" / "energy.json").read_text())
    assert data["chapter"] == "energy"
    assert data["provenance"]["params"] == {**used, "batch_size": 2}
