"""measure.provenance: the record carries commit, versions, device, params, seed, date."""

from __future__ import annotations

import datetime as dt
import subprocess

import torch

from gardenpath.measure.provenance import collect, git_state, package_versions


def test_record_fields(tmp_path):
    rec = collect({"lr": 0.1}, seed=7, device="cpu", wall_time_s=1.5)
    assert rec["params"] == {"lr": 0.1} and rec["seed"] == 7 and rec["wall_time_s"] == 1.5
    assert rec["device"]["type"] == "cpu" and rec["device"]["torch"] == torch.__version__
    assert rec["packages"]["torch"] == torch.__version__
    assert dt.datetime.fromisoformat(rec["date"]).tzinfo is not None
    given = {"type": "cpu", "name": "given"}
    assert collect(device=given)["device"] == given


def test_git_state_of_a_fresh_repo(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True,  # noqa: E731
                                    capture_output=True)
    run("init", "-q")
    (tmp_path / "f.txt").write_text("a")
    run("add", "f.txt")
    run("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x")
    clean = git_state(tmp_path)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False
    (tmp_path / "f.txt").write_text("b")
    assert git_state(tmp_path)["dirty"] is True


def test_git_state_ignores_the_paths_it_is_told_to(tmp_path):
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True,  # noqa: E731
                                    capture_output=True)
    run("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("a")
    (tmp_path / "results" / "r.md").write_text("a")
    run("add", ".")
    run("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x")
    (tmp_path / "results" / "r.md").write_text("b")  # a run rewrote its results
    assert git_state(tmp_path)["dirty"] is True
    assert git_state(tmp_path, ignore=("results",))["dirty"] is False
    # asked from a subfolder, the paths are still the repository's
    assert git_state(tmp_path / "results", ignore=("results",))["dirty"] is False
    (tmp_path / "code.py").write_text("b")
    assert git_state(tmp_path, ignore=("results",))["dirty"] is True


def test_missing_package_is_none():
    assert package_versions(("surely-not-installed-gp",)) == {"surely-not-installed-gp": None}
