"""Faults and bad input through the real CLI: nothing lost, everything reported."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from conftest import gp
from test_pipeline import snapshot

pytestmark = pytest.mark.slow


def test_params_file_with_unknown_chapter_is_refused(demo_tree: Path, tmp_path: Path) -> None:
    layer = tmp_path / "p.yaml"
    layer.write_text("dmeo:\n  slope: 2\n")
    r = gp(demo_tree, "run", "--profile", "smoke", "--params", str(layer))
    assert r.returncode == 2
    assert f"--params {layer}: unknown chapter 'dmeo' (did you mean 'demo'?)" in r.stderr
    assert not (demo_tree / ".gardenpath" / "out").exists()


def test_params_file_of_the_wrong_shape_is_refused(demo_tree: Path, tmp_path: Path) -> None:
    layer = tmp_path / "p.yaml"
    layer.write_text("- demo\n- slope\n")
    r = gp(demo_tree, "run", "--profile", "smoke", "--params", str(layer))
    assert r.returncode == 2 and "expected a mapping of chapter" in r.stderr


def test_memory_need_beyond_the_device_is_refused_with_the_estimate(
        demo_tree: Path, monkeypatch, capsys) -> None:
    from gardenpath import cli

    fake = types.ModuleType("gardenpath.chapters.demo")
    fake.memory_estimate = lambda params: params["n_points"] * 2**40  # 1 TiB per point
    monkeypatch.setitem(sys.modules, "gardenpath.chapters.demo", fake)
    code = cli.main(["--root", str(demo_tree), "run", "--profile", "smoke", "--only", "demo"])
    err = capsys.readouterr().err
    assert code == 2
    assert "chapter 'demo' would need about 20480.0 GiB on cpu" in err
    assert "GiB is available" in err
    assert not (demo_tree / ".gardenpath" / "out").exists()


def test_kernel_that_dies_mid_chapter_is_reported(demo_tree: Path) -> None:
    assert gp(demo_tree, "run", "--profile", "smoke", "--set", "broken.mode=ok").returncode == 0
    good = snapshot(demo_tree)
    r = gp(demo_tree, "run", "--profile", "smoke", "--set", "broken.mode=exit")
    assert r.returncode == 1
    assert "broken" in r.stderr and "DeadKernelError" in r.stderr
    after = snapshot(demo_tree)
    assert after[".gardenpath/out/smoke/broken.ipynb"] == good[".gardenpath/out/smoke/broken.ipynb"]
    assert after["results/smoke/demo.json"] == good["results/smoke/demo.json"]  # untouched
    latest = json.loads(after[".gardenpath/manifests/smoke/broken.json"])["latest"]
    assert latest["status"] == "failed" and latest["error"]["ename"] == "DeadKernelError"


def test_cell_that_hangs_past_the_timeout_is_stopped(demo_tree: Path) -> None:
    r = gp(demo_tree, "run", "--profile", "smoke", "--only", "broken", "--set",
           "broken.mode=hang", "--timeout", "4", timeout=120)
    assert r.returncode == 1
    assert "TIMEOUT" in r.stderr and "timeout" in r.stdout
    latest = json.loads((demo_tree / ".gardenpath/manifests/smoke/broken.json").read_text())
    assert latest["latest"]["status"] == "timeout"
    assert not list((demo_tree / ".gardenpath" / "staging" / "smoke").glob("broken.*"))


@pytest.mark.parametrize("target,damage,reason", [
    ("results/smoke/demo.json", lambda b: b[: len(b) // 2], "results corrupted"),
    ("results/smoke/demo.json", None, "results missing"),
    (".gardenpath/out/smoke/demo.ipynb", lambda b: b[:100], "output corrupted"),
    (".gardenpath/manifests/smoke/demo.json", lambda b: b[:10], "manifest unreadable"),
], ids=["truncated-results", "deleted-results", "truncated-notebook", "truncated-manifest"])
def test_damaged_cache_or_results_are_detected_and_rerun(demo_tree: Path, target, damage,
                                                         reason) -> None:
    assert gp(demo_tree, "run", "--profile", "smoke", "--only", "demo").returncode == 0
    path = demo_tree / target
    if damage is None:
        path.unlink()
    else:
        path.write_bytes(damage(path.read_bytes()))
    st = gp(demo_tree, "status", "--profile", "smoke")
    assert "demo" in st.stdout and reason in st.stdout, st.stdout
    r = gp(demo_tree, "run", "--profile", "smoke", "--set", "broken.mode=ok")
    assert r.returncode == 0, r.stderr
    assert "demo: running" in r.stderr and reason in r.stderr
    assert json.loads((demo_tree / "results/smoke/demo.json").read_text())["verdict"]
