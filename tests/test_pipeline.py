"""The pipeline end to end: real papermill runs of fixture notebooks through the CLI."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import FIXTURES, gp, make_tree

pytestmark = pytest.mark.slow


def results(root: Path, chapter: str = "demo", profile: str = "smoke") -> dict:
    return json.loads((root / "results" / profile / f"{chapter}.json").read_text())


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file the runs write (outputs, results, manifests), by path."""
    out = {}
    for base in (root / ".gardenpath" / "out", root / ".gardenpath" / "manifests",
                 root / "results"):
        for p in sorted(base.rglob("*")) if base.exists() else []:
            if p.is_file():
                out[str(p.relative_to(root))] = p.read_bytes()
    return out


def test_parameters_layer_profile_then_file_then_set(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"demo": FIXTURES / "demo.py"},
                     profiles={"smoke": "demo:\n  n_points: 5\n  slope: 3.0\n  label: prof\n"})
    layer = tmp_path / "mine.yaml"
    layer.write_text("demo:\n  slope: 2\n  label: file\n")
    r = gp(root, "run", "--profile", "smoke", "--params", str(layer), "--set", "demo.label=cli")
    assert r.returncode == 0, r.stderr
    nums = results(root)["numbers"]
    assert nums["n_points"] == 5  # from the profile
    assert nums["slope"] == 2.0  # the file overrides the profile; int accepted for float
    assert nums["total"] == sum(2.0 * i for i in range(5))
    nb = nbformat.read(root / ".gardenpath" / "out" / "smoke" / "demo.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert 'label = "cli"' in injected[0].source  # --set overrides both
    assert (root / ".gardenpath" / "out" / "smoke" / "demo_files" / "demo-line.svg").exists()


BAD_INPUTS = [
    (["--profile", "smok"], "unknown profile (did you mean 'smoke'?)"),
    (["--only", "dmo"], "--only dmo: unknown chapter (did you mean 'demo'?)"),
    (["--set", "dmo.slope=2"], "unknown chapter 'dmo' (did you mean 'demo'?)"),
    (["--set", "demo.slop=2"], "chapter 'demo' has no parameter 'slop' (did you mean 'slope'?)"),
    (["--set", "demo.n_points=many"], "parameter 'n_points': expected int, got str"),
    (["--set", "demo.show_points=1"], "parameter 'show_points': expected bool, got int"),
    (["--set", "demo.sizes=3"], "parameter 'sizes': expected list, got int"),
    (["--set", "demo.sizes=[]"], "parameter 'sizes': [] must not be empty"),
    (["--set", "demo.slope=-1"], "parameter 'slope': -1.0 must be > 0"),
    (["--set", "demo.n_points=1"], "parameter 'n_points': 1 must be at least 2"),
    (["--set", "demo.slope"], "--set demo.slope: expected CHAPTER.NAME=VALUE (no '=')"),
    (["--set", "demo.data_path=/no/such/dir"], "parameter 'data_path': '/no/such/dir' does "
                                               "not exist"),
    (["--params", "/no/such.yaml"], "--params /no/such.yaml: no such parameters file"),
    (["--jobs", "0"], "--jobs 0: must be at least 1"),
    (["--timeout", "nan"], "--timeout nan: must be a finite number above 0"),
    (["--set", "demo.slope=.inf"], "parameter 'slope': inf is not a finite number"),
    (["--set", 'demo.label="a\\nb"'], "parameter 'label': 'a\\nb' holds a line break"),
]


@pytest.fixture(scope="module")
def ran_tree(tmp_path_factory) -> Path:
    """A demo tree after one good run: outputs, results and manifests in place."""
    root = make_tree(tmp_path_factory.mktemp("ran") / "t", {"demo": FIXTURES / "demo.py",
                                                            "broken": FIXTURES / "broken.py"})
    assert gp(root, "run", "--profile", "smoke", "--only", "demo").returncode == 0
    return root


@pytest.mark.parametrize("args,message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_refused_before_any_kernel(ran_tree: Path, args, message) -> None:
    demo_tree = ran_tree
    before = snapshot(demo_tree)
    assert "results/smoke/demo.json" in before  # so "unchanged" means "not overwritten"
    r = gp(demo_tree, "run", "--profile", "smoke", *args) if args[0] != "--profile" else \
        gp(demo_tree, "run", *args)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert snapshot(demo_tree) == before
    assert not (demo_tree / ".gardenpath" / "staging").exists() or not any(
        (demo_tree / ".gardenpath" / "staging").rglob("*.ipynb"))


def test_malformed_yaml_names_file_and_line(demo_tree: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("demo:\n  slope: [1, 2\n")
    r = gp(demo_tree, "run", "--profile", "smoke", "--params", str(bad))
    assert r.returncode == 2
    assert f"--params {bad}: malformed YAML at line" in r.stderr
    (demo_tree / "params" / "smoke.yaml").write_text("demo: {slope: 1\n")
    r = gp(demo_tree, "run", "--profile", "smoke")
    assert r.returncode == 2 and "params/smoke.yaml: malformed YAML" in r.stderr
    (demo_tree / "params" / "smoke.yaml").write_text("demo:\n  nope: 1\n")
    r = gp(demo_tree, "run", "--profile", "smoke")
    assert r.returncode == 2
    assert "params/smoke.yaml: chapter 'demo' has no parameter 'nope'" in r.stderr
    assert not (demo_tree / ".gardenpath" / "out").exists()


def _run_demo(root: Path, *extra: str) -> str:
    r = gp(root, "run", "--profile", "smoke", "--only", "demo", *extra) if "--only" in extra \
        else gp(root, "run", "--profile", "smoke", *extra)
    assert r.returncode == 0, r.stderr
    return r.stdout + r.stderr


def test_cache_hits_and_each_dependency_misses(tmp_path: Path, monkeypatch) -> None:
    root = make_tree(tmp_path / "t", {"demo": FIXTURES / "demo.py"})
    (root / "src" / "gardenpath" / "extra.py").write_text("X = 1\n")
    out = _run_demo(root)
    assert "demo: running" in out and "never run" in out
    out = _run_demo(root)
    assert "demo: running" not in out and "cached" in out

    def miss(change, reason: str) -> None:
        change()
        text = _run_demo(root)
        assert "demo: running" in text and reason in text, text
        again = _run_demo(root)
        assert "demo: running" not in again, again

    nb = root / "notebooks" / "demo.py"
    miss(lambda: nb.write_text(nb.read_text() + "\n# %%\nprint('edited')\n"), "notebook changed")
    miss(lambda: (root / "params" / "smoke.yaml").write_text("demo: {n_points: 7}\n"),
         "params changed (n_points: 20 -> 7)")
    # the key covers the modules the chapter imported, not the whole tree
    (root / "src" / "gardenpath" / "extra.py").write_text("X = 2  # not imported by demo\n")
    assert "demo: running" not in _run_demo(root)
    imported = json.loads((root / ".gardenpath/manifests/smoke/demo.json").read_text())
    assert "charts.py" in imported["good"]["modules"]
    assert "extra.py" not in imported["good"]["modules"]
    charts = root / "src" / "gardenpath" / "charts.py"
    miss(lambda: charts.write_text(charts.read_text() + "# a comment\n"), "src changed")
    miss(lambda: (root / "requirements.txt").write_text("numpy\n"), "requirements changed")
    # --force and --only override the cache
    assert "demo: running" in _run_demo(root, "--force")
    assert "demo: running" in _run_demo(root, "--only", "demo")


def test_device_kind_is_part_of_the_key(tmp_path: Path, monkeypatch, capsys) -> None:
    from gardenpath import cli, pipeline

    root = make_tree(tmp_path / "t", {"demo": FIXTURES / "demo.py"})
    assert cli.main(["--root", str(root), "run", "--profile", "smoke"]) == 0
    monkeypatch.setattr(pipeline, "device_kind", lambda params: "cuda")
    capsys.readouterr()
    assert cli.main(["--root", str(root), "run", "--profile", "smoke"]) == 0
    assert "device changed (cpu -> cuda)" in capsys.readouterr().err


def test_failing_chapter_keeps_last_good_output(demo_tree: Path) -> None:
    r = gp(demo_tree, "run", "--profile", "smoke", "--set", "broken.mode=ok")
    assert r.returncode == 0, r.stderr
    good = snapshot(demo_tree)
    r = gp(demo_tree, "run", "--profile", "smoke", "--set", "demo.crash=true",
           "--set", "demo.label=relabelled")
    assert r.returncode == 1
    assert "demo" in r.stderr and "RuntimeError: crash requested" in r.stderr
    assert "broken" in r.stdout and "failed" in r.stdout  # summary table: broken raises
    after = snapshot(demo_tree)
    for path in ("results/smoke/demo.json", ".gardenpath/out/smoke/demo.ipynb",
                 ".gardenpath/out/smoke/demo_files/demo-line.svg"):
        assert after[path] == good[path], path
    manifest = json.loads(after[".gardenpath/manifests/smoke/demo.json"])
    assert manifest["latest"]["status"] == "failed"
    assert manifest["latest"]["error"]["ename"] == "RuntimeError"
    assert manifest["good"]["params"]["crash"] is False
    st = gp(demo_tree, "status", "--profile", "smoke")
    assert "failed" in st.stdout and "last good output kept" in st.stdout
    # the published page keeps the good figures and says the latest run failed
    assert gp(demo_tree, "publish", "--profile", "smoke").returncode == 0
    page = nbformat.read(demo_tree / "book" / "chapters" / "demo.ipynb", as_version=4)
    text = "\n".join(c.source for c in page.cells)
    assert "Latest run failed" in text and "previous good run" in text
    # the chart on the page is the good run's (title "demo: ..."), not the failed run's
    outputs = json.dumps([c.get("outputs", []) for c in page.cells if c.cell_type == "code"])
    assert "gp-chart" in outputs and "demo: y = 1.5 x" in outputs
    assert "relabelled" not in outputs
    good_nb = json.loads(good[".gardenpath/out/smoke/demo.ipynb"])
    good_outputs = json.dumps([c.get("outputs", []) for c in good_nb["cells"]
                               if c["cell_type"] == "code"])
    assert outputs == good_outputs
    # a chapter with no good run gets a clear failure page
    broken = nbformat.read(demo_tree / "book" / "chapters" / "broken.ipynb", as_version=4)
    assert "ValueError" in "\n".join(c.source for c in broken.cells)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_outputs_and_cache_consistent(demo_tree: Path, sig) -> None:
    r = gp(demo_tree, "run", "--profile", "smoke", "--set", "broken.mode=ok")
    assert r.returncode == 0, r.stderr
    good = snapshot(demo_tree)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gardenpath", "--root", str(demo_tree), "run", "--profile",
         "smoke", "--force", "--set", "broken.mode=hang"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staging = demo_tree / ".gardenpath" / "staging" / "smoke"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the hanging cell is running
        if any(staging.glob("broken.*/out.ipynb")):
            break
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert "interrupted" in err
    after = snapshot(demo_tree)
    changed = {p for p in after if after[p] != good.get(p)}
    assert changed <= {".gardenpath/manifests/smoke/broken.json"}, changed
    assert json.loads(after[".gardenpath/manifests/smoke/broken.json"])["latest"]["status"] \
        == "interrupted"
    assert not list(staging.glob("broken.*"))
    # the next run sees the interruption and runs the chapter again; demo stays cached
    r = gp(demo_tree, "run", "--profile", "smoke", "--set", "broken.mode=ok")
    assert r.returncode == 0, r.stderr
    assert "broken: running" in r.stderr and "last run interrupted" in r.stderr
    assert "demo: running" not in r.stderr


def test_params_and_status_commands(demo_tree: Path) -> None:
    r = gp(demo_tree, "params", "demo")
    assert r.returncode == 0
    assert "slope: float = 1.5 [range: >0]" in r.stdout
    assert "slope of the line (units per step)" in r.stdout
    r = gp(demo_tree, "status", "--profile", "smoke")
    assert "never run" in r.stdout
    assert gp(demo_tree, "params", "dmo").returncode == 2


def test_second_run_refuses_while_first_holds_the_lock(demo_tree: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gardenpath", "--root", str(demo_tree), "run", "--profile",
         "smoke", "--only", "broken", "--set", "broken.mode=ok", "--set", "broken.wait_s=6"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = demo_tree / ".gardenpath" / "run.lock"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
        time.sleep(0.1)
    r = gp(demo_tree, "run", "--profile", "smoke")
    assert r.returncode == 3
    assert "another gardenpath run is in progress" in r.stderr
    assert proc.wait(timeout=120) == 0
    shutil.rmtree(demo_tree / ".gardenpath" / "staging", ignore_errors=True)


def test_a_chapter_reading_results_follows_them_within_one_run(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"demo": FIXTURES / "demo.py",
                                      "reader": FIXTURES / "reader.py"})
    first = _run_demo(root)
    assert "demo: running" in first and "reader: running" in first
    again = _run_demo(root)
    assert "running" not in again, again  # nothing changed: both cached
    changed = _run_demo(root, "--set", "demo.n_points=5")
    assert "demo: running" in changed and "reader: running" in changed
    assert "results changed" in changed
    reader = json.loads((root / "results" / "smoke" / "reader.json").read_text())
    assert reader["numbers"]["demo_total"] == sum(1.5 * i for i in range(5))
    st = gp(root, "status", "--profile", "smoke")
    assert re.search(r"^reader\s+fresh", st.stdout, re.M), st.stdout


def test_a_chapter_that_runs_alone_has_the_machine_to_itself(tmp_path: Path) -> None:
    alone = tmp_path / "alone.py"
    alone.write_text((FIXTURES / "clock.py").read_text().replace(
        "#     timeout_s: 60\n", "#     timeout_s: 60\n#     runs_alone: true\n"))
    root = make_tree(tmp_path / "t", {"a_timed": alone, "b_clock": FIXTURES / "clock.py",
                                      "c_clock": FIXTURES / "clock.py"})
    r = gp(root, "run", "--profile", "smoke", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    span = {c: (results(root, c)["numbers"]["start"], results(root, c)["numbers"]["end"])
            for c in ("a_timed", "b_clock", "c_clock")}

    def overlap(x: str, y: str) -> bool:
        return span[x][0] < span[y][1] and span[y][0] < span[x][1]

    assert overlap("b_clock", "c_clock")  # the others do run side by side
    assert not overlap("a_timed", "b_clock") and not overlap("a_timed", "c_clock"), span
