"""Faults and bad input through the real CLI: nothing lost, everything reported."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from conftest import FIXTURES, gp, make_tree
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
    from gardenpath import cli, estimates

    monkeypatch.setitem(estimates.ESTIMATES, "demo",
                        lambda params: params["n_points"] * 2**40)  # 1 TiB per point
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


# ------------------------------------------------------------- outputs: all or nothing


def _tree_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("fail_at", [0, 1, 2, 3], ids=["notebook", "figures", "results",
                                                        "manifest"])
def test_outputs_are_replaced_all_together_or_not_at_all(tmp_path: Path, monkeypatch,
                                                          fail_at: int) -> None:
    from gardenpath import pipeline

    old, new = tmp_path / "old", tmp_path / "new"
    for base, tag in ((old, "old"), (new, "new")):
        (base / "figs").mkdir(parents=True)
        (base / "nb.ipynb").write_text(tag)
        (base / "figs" / "a.svg").write_text(tag)
        (base / "res.json").write_text(tag)
    (old / "manifest.json").write_text("old")
    before = _tree_files(old)
    real, placed = pipeline._move, []

    def move(src, dst):  # the (fail_at + 1)-th new output refuses to go into place
        if Path(src).parent in (new, new / "figs") or Path(src) == new / "figs":
            placed.append(dst)
            if len(placed) == fail_at + 1:
                raise PermissionError(13, "Permission denied", str(dst))
        real(src, dst)

    def manifest():
        if fail_at == 3:
            raise OSError(28, "No space left on device", str(old / "manifest.json"))
        (old / "manifest.json").write_text("new")

    monkeypatch.setattr(pipeline, "_move", move)
    with pytest.raises(pipeline.CommitError) as err:
        pipeline.replace_together([(new / "nb.ipynb", old / "nb.ipynb"),
                                   (new / "figs", old / "figs"),
                                   (new / "res.json", old / "res.json")], last=manifest)
    assert _tree_files(old) == before  # every old file back, nothing new, no .prev left
    if fail_at == 3:
        assert "disk full" in str(err.value)
    else:
        assert "Permission denied" in str(err.value)


def test_a_failed_move_keeps_every_output_and_reports_one_line(demo_tree: Path, monkeypatch,
                                                               capsys) -> None:
    from gardenpath import cli, pipeline

    argv = ["--root", str(demo_tree), "run", "--profile", "smoke", "--jobs", "2",
            "--set", "broken.mode=ok"]
    assert cli.main(argv) == 0
    good = snapshot(demo_tree)
    results_dir = demo_tree / "results" / "smoke"
    real = pipeline._move

    def move(src, dst):  # results/ refuses new entries, as a read-only folder would
        if Path(src).name == "results.json" and Path(dst).parent == results_dir:
            raise PermissionError(13, "Permission denied", str(dst))
        real(src, dst)

    monkeypatch.setattr(pipeline, "_move", move)
    capsys.readouterr()
    code = cli.main([*argv, "--force", "--set", "demo.label=new"])
    err = capsys.readouterr().err
    assert code == 1
    assert "demo: FAILED - could not put the outputs in place (PermissionError" in err
    assert "Traceback" not in err
    after = snapshot(demo_tree)
    for path in good:
        if path != ".gardenpath/manifests/smoke/demo.json" and "broken" not in path:
            assert after[path] == good[path], path
    manifest = json.loads(after[".gardenpath/manifests/smoke/demo.json"])
    assert manifest["good"] == json.loads(good[".gardenpath/manifests/smoke/demo.json"])["good"]
    assert manifest["latest"]["status"] == "failed"
    st = gp(demo_tree, "status", "--profile", "smoke")
    assert "corrupted" not in st.stdout
    # the other job (broken, --jobs 2) left no worker, kernel or staging folder
    assert _our_processes(demo_tree) == []
    assert not list((demo_tree / ".gardenpath" / "staging" / "smoke").iterdir())
    assert not list(demo_tree.rglob(".*.prev"))


# ------------------------------------------------------------------ processes, locks


def _our_processes(root: Path) -> list[int]:
    from gardenpath.worker import our_processes

    return our_processes(root / ".gardenpath" / "staging")


def _wait(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _start_hanging_run(root: Path, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gardenpath", "--root", str(root), "run", "--profile", "smoke",
         "--only", "broken", "--set", "broken.mode=hang", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staging = root / ".gardenpath" / "staging" / "smoke"
    # worker and kernel both up: the kernel has run cells (out.ipynb written)
    assert _wait(lambda: any(staging.glob("broken.*/out.ipynb"))
                 and len(_our_processes(root)) >= 2), "the hanging run did not start"
    return proc


def test_kill_9_of_the_cli_leaves_no_worker_or_kernel(demo_tree: Path) -> None:
    proc = _start_hanging_run(demo_tree)
    assert len(_our_processes(demo_tree)) >= 2  # worker and kernel
    proc.kill()
    proc.wait()
    # the worker dies with the CLI and takes its kernel with it
    assert _wait(lambda: _our_processes(demo_tree) == [], 15), _our_processes(demo_tree)
    # the next run removes the staging folder the killed one left
    assert gp(demo_tree, "run", "--profile", "smoke", "--only", "demo").returncode == 0
    assert not list((demo_tree / ".gardenpath" / "staging").rglob("broken.*"))


def test_next_run_ends_a_kernel_orphaned_by_kill_9(demo_tree: Path) -> None:
    proc = _start_hanging_run(demo_tree)
    pids = _our_processes(demo_tree)
    for pid in [proc.pid, *pids]:  # CLI and worker at once: the kernel is orphaned
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    # the kernel starts in a session of its own, so killing the worker's group misses it;
    # the next run finds it by its staging folder and ends it by pid
    r = gp(demo_tree, "run", "--profile", "smoke", "--only", "demo")
    assert r.returncode == 0, r.stderr
    assert _our_processes(demo_tree) == []
    assert not list((demo_tree / ".gardenpath" / "staging").rglob("broken.*"))


def test_lock_is_held_through_jupyter_book_and_sigterm_stops_it(demo_tree: Path) -> None:
    from gardenpath.pipeline import Project, run_lock

    with run_lock(Project(demo_tree)):  # publish and build take the lock too
        assert gp(demo_tree, "publish", "--profile", "smoke").returncode == 3
    proc = subprocess.Popen(
        [sys.executable, "-m", "gardenpath", "--root", str(demo_tree), "build", "--profile",
         "smoke", "--only", "demo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def book_pids() -> list[int]:
        found = []
        for p in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):
                cmd = p.read_bytes().split(b"\0")
                if any(b"jupyter-book" in c for c in cmd) and str(demo_tree).encode() in cmd:
                    found.append(int(p.parent.name))
        return found

    assert _wait(book_pids, 120), "jupyter-book did not start"
    busy = gp(demo_tree, "run", "--profile", "smoke")
    assert busy.returncode == 3 and "in progress" in busy.stderr
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert book_pids() == []  # stopped, not left writing book/_build


# ------------------------------------------------------------------ damaged state, disk


def test_truncated_executed_notebook_gets_a_damaged_page_not_a_crash(demo_tree: Path) -> None:
    assert gp(demo_tree, "run", "--profile", "smoke", "--only", "demo").returncode == 0
    nb = demo_tree / ".gardenpath/out/smoke/demo.ipynb"
    nb.write_bytes(nb.read_bytes()[:100])
    r = gp(demo_tree, "publish", "--profile", "smoke")
    assert r.returncode == 0, r.stderr
    page = (demo_tree / "book/chapters/demo.ipynb").read_text()
    assert "Output damaged" in page and "run the chapter again" in page


def test_full_disk_is_reported_as_such(tmp_path: Path, monkeypatch) -> None:
    import papermill

    from gardenpath import pipeline, worker

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "out.ipynb"))

    # the notebook cannot be written, nor then error.json: the worker says why by its exit
    monkeypatch.setattr(papermill, "execute_notebook", no_space)
    monkeypatch.setattr(Path, "write_text", no_space)
    spec = {"chapter": "broken", "notebook": str(FIXTURES / "broken.py"), "parameters": {},
            "stage": str(tmp_path), "cwd": str(tmp_path), "timeout_s": 30}
    code = worker.execute(spec)
    assert code == worker.EXIT_DISK_FULL
    error = pipeline._worker_error(types.SimpleNamespace(stage=tmp_path), code)
    assert error["ename"] == "DiskFull" and "no space left" in error["evalue"]
    # where error.json could be written, it names the full disk too
    monkeypatch.undo()
    monkeypatch.setattr(papermill, "execute_notebook", no_space)
    assert worker.execute(spec) == 1
    assert json.loads((tmp_path / "error.json").read_text())["ename"] == "DiskFull"


def test_status_calls_a_reader_stale_while_a_chapter_it_reads_is(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"demo": FIXTURES / "demo.py",
                                      "reader": FIXTURES / "reader.py"})
    assert gp(root, "run", "--profile", "smoke").returncode == 0
    (root / "params" / "smoke.yaml").write_text("demo: {n_points: 5}\n")
    st = gp(root, "status", "--profile", "smoke").stdout
    assert re.search(r"^demo\s+stale", st, re.M), st
    assert re.search(r"^reader\s+stale\s+reads results of chapters not fresh: demo", st,
                     re.M), st


# ------------------------------------------------------------------------ injection


def test_no_value_can_end_the_provenance_block(tmp_path: Path) -> None:
    """Whatever a manifest holds (an old one, a hand-edited one), the box stays one HTML
    block: no image, heading or directive reaches the page's Markdown."""
    from markdown_it import MarkdownIt

    from gardenpath.book import provenance_html

    evil = ("x\n\n![t](http://evil.example/t.png)\n\n# Heading\n\n"
            "```{literalinclude} /etc/passwd\n```\r\n\r\n<script>alert(1)</script>\u2028")
    good = {"params": {"label": evil}, "overrides": {"label": evil},
            "profile_values": {"label": "demo"}, "provenance": {"device": {"name": evil}},
            "finished": evil, "key": evil}
    box = provenance_html("smoke", "demo", good, f"python -m gardenpath run {evil}")
    assert "\n" not in box and "\r" not in box and "\u2028" not in box
    tokens = MarkdownIt("commonmark").parse(box)
    assert [t.type for t in tokens] == ["html_block"]
    assert "<script>" not in box and "&lt;script&gt;" in box
