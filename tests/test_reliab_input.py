"""Bad input through the real command line, in process: refused in one bounded line with
exit 2, nothing written, never a traceback. No kernel starts here (seconds in all)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, make_tree

from gardenpath import cli, pipeline
from gardenpath.pipeline import Outcome

#: A YAML "billion laughs": 422 bytes that expand to billions of items.
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)) + "demo: {label: *i}\n"


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A demo tree with outputs in place (as after a good run), so that 'nothing written'
    is checked as 'nothing overwritten' too."""
    root = make_tree(tmp_path_factory.mktemp("input") / "t",
                     {"demo": FIXTURES / "demo.py", "reader": FIXTURES / "reader.py"})
    for rel in (".gardenpath/out/smoke/demo.ipynb", ".gardenpath/out/smoke/demo_files/a.svg",
                ".gardenpath/manifests/smoke/demo.json", "results/smoke/demo.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"{rel} before\n")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the tree except the lock, by path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "run.lock" and "__pycache__" not in p.parts}


def call(root: Path, argv: list[str], capsys) -> tuple[int, str]:
    """``python -m gardenpath --root ROOT ARGV`` in process: (exit status, stderr)."""
    capsys.readouterr()
    try:
        code = cli.main(["--root", str(root), *argv])
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


@pytest.fixture
def no_kernels(monkeypatch):
    """Accepted input does not start kernels here: execute reports each chapter ran."""
    monkeypatch.setattr(pipeline, "execute", lambda project, plan_, *a, **k: [
        Outcome(c.name, "ran") for c in plan_.chapters])


def refused(root: Path, argv: list[str], capsys, message: str) -> None:
    before = snapshot(root)
    code, err = call(root, argv, capsys)
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and len(lines[0]) <= cli.MAX_LINE, err[:2000]
    assert message in lines[0], lines[0]
    assert "Traceback" not in err
    assert snapshot(root) == before


SET_CASES = [
    ("demo.n_points=" + "9" * 400, "<an integer of about 400 digits> is out of range"),
    ("demo.n_points=" + "9" * 5000, "an integer of 5000 digits, beyond any parameter's range"),
    ("demo.slope=" + "9" * 400 + ".5", "inf is not a finite number"),
    ("demo.slope=.inf", "inf is not a finite number"),
    ("demo.slope=.nan", "nan is not a finite number"),
    ("demo.sizes=[]", "[] must not be empty"),
    ("demo.sizes=[0]", "[0] must be at least 1"),
    ("demo.methods=[a, zz]", "item 'zz' is not one of a, b, c"),
    ("reader.source=/tmp/elsewhere", "'/tmp/elsewhere' is not one of '', smoke, cpu, gpu"),
    ("demo.n_points=010", "expected int, got str '010'"),
    ("demo.n_points=1:30", "expected int, got str '1:30'"),
    ("demo.label=a&b: [*b]", "not valid YAML"),
    ("demo.label=" + "x" * 100_000, "is longer than 500 characters"),
    ('demo.label="line\\n\\n![x](http://evil.example/x.png)"', "holds a line break"),
]


@pytest.mark.parametrize("item,message", SET_CASES, ids=[c[0][:30] for c in SET_CASES])
def test_bad_set_value_is_refused_in_one_bounded_line(tree: Path, capsys, item,
                                                      message) -> None:
    refused(tree, ["run", "--profile", "smoke", "--set", item], capsys, message)


@pytest.mark.parametrize("content,message", [
    (ALIAS_BOMB.encode(), "anchors and aliases (& and *) are not allowed"),
    (b"\x00\x01\xff\xfe binary", "not a text file"),
    (b"1:\n  slope: 2\n", "the key 1 is not a name"),
    (b"demo:\n  7: 2\n", "the key 7 is not a name"),
    (b"demo:\n  label: |\n    two\n\n    {literalinclude} /etc/passwd\n", "holds a line break"),
    (b"demo:\n  n_points: 010\n", "expected int, got str '010'"),
], ids=["alias-bomb", "binary", "int-chapter-key", "int-param-key", "multiline", "yaml11"])
def test_bad_params_file_is_refused_in_one_bounded_line(tree: Path, tmp_path: Path, capsys,
                                                        content: bytes, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(content)
    refused(tree, ["run", "--profile", "smoke", "--params", str(path)], capsys, message)


def test_folder_as_params_file_is_called_a_folder(tree: Path, tmp_path: Path, capsys) -> None:
    refused(tree, ["run", "--profile", "smoke", "--params", str(tmp_path)], capsys,
            "is a folder, not a parameters file")


@pytest.mark.parametrize("option,value,message", [
    ("--timeout", "nan", "--timeout nan: must be a finite number above 0"),
    ("--timeout", "inf", "--timeout inf: must be a finite number above 0"),
    ("--timeout", "-3", "--timeout -3: must be a finite number above 0"),
    ("--jobs", "0", "--jobs 0: must be at least 1"),
    ("--jobs", "9" * 50, "must be at least 1 and at most 256"),
])
def test_bad_option_value_is_refused_in_one_line(tree: Path, capsys, option, value,
                                                 message) -> None:
    refused(tree, ["run", "--profile", "smoke", option, value], capsys, message)


def test_fractional_timeout_is_accepted(tree: Path, capsys, no_kernels) -> None:
    code, err = call(tree, ["run", "--profile", "smoke", "--timeout", "30.5"], capsys)
    assert code == 0, err


def test_manifest_of_the_wrong_shape_is_unreadable_not_a_crash(tree: Path, capsys) -> None:
    path = tree / ".gardenpath" / "manifests" / "smoke" / "demo.json"
    saved = path.read_bytes()
    try:
        for bad in ('{"good": [1, 2], "latest": "x"}', '{"good": {"parts": 3}}', "[1]",
                    '{"good": null, "latest": {"status": "failed", "error": 5}}'):
            path.write_text(bad)
            code, err = call(tree, ["status", "--profile", "smoke"], capsys)
            assert code == 0, err
            rows = pipeline.status(pipeline.Project(tree), "smoke")
            assert dict((n, d) for n, _, d in rows)["demo"] == "manifest unreadable", bad
    finally:
        path.write_bytes(saved)


# ----------------------------------------------------------------------- generated input

NAMES = ["demo.n_points", "demo.slope", "demo.label", "demo.sizes", "demo.methods",
         "demo.show_points", "demo.data_path", "reader.source", "reader.scale", "dmo.x",
         "demo.nope", "demo", ".x", "demo.", "=", ""]
ATOMS = ["0", "1", "-1", "2", "7", "1.5", "1e3", "1e400", "-0.0", ".inf", "-.inf", ".nan",
         "010", "0x10", "0o7", "1:30", "1_000", "true", "no", "yes", "null", "~", "", "''",
         "[]", "[0]", "[1, 2]", "[a, b]", "[a, zz]", "{a: 1}", "&a 1", "*a", "- x", "'a\nb'",
         '"\\n"', "\x00", "é", "<b>x</b>", "{literalinclude} /etc/passwd", "9" * 400,
         "9" * 5000, "x" * 20_000, "[" * 50, "smoke", "cpu", "/tmp", "a", "b"]
OPTIONS = [("--jobs", ["1", "2", "0", "-1", "x", "1.5", "9" * 30]),
           ("--timeout", ["1", "30.5", "0", "nan", "inf", "-1", "x", "1e9"]),
           ("--profile", ["smoke", "smok", "", "../smoke", "x" * 500]),
           ("--only", ["demo", "reader", "dmo", "", "x" * 500])]


def _generated_file(rng: random.Random, folder: Path, i: int) -> Path:
    """A parameters file: YAML of random shape, or bytes, or a folder."""
    path = folder / f"gen{i}.yaml"
    kind = rng.randrange(5)
    if kind == 0:
        return folder
    if kind == 1:
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
    elif kind == 2:
        path.write_text(ALIAS_BOMB if rng.random() < 0.5 else "- " + rng.choice(ATOMS))
    else:
        lines = []
        for _ in range(rng.randrange(1, 4)):
            chapter, _, name = rng.choice(NAMES).partition(".")
            lines.append(f"{chapter or rng.choice(ATOMS)}:\n  {name or 'x'}: {rng.choice(ATOMS)}")
        path.write_text("\n".join(lines) + "\n")
    return path


def test_generated_input_exits_0_1_or_2_in_one_line(tree: Path, tmp_path: Path, capsys,
                                                    no_kernels) -> None:
    rng = random.Random(33)
    for i in range(150):
        argv = ["run", "--profile", "smoke"]
        for _ in range(rng.randrange(1, 4)):
            what = rng.randrange(3)
            if what == 0:
                argv += ["--set", f"{rng.choice(NAMES)}={rng.choice(ATOMS)}"]
            elif what == 1:
                argv += ["--params", str(_generated_file(rng, tmp_path, i))]
            else:
                option, values = rng.choice(OPTIONS)
                argv += [option, rng.choice(values)]
        before = snapshot(tree)
        code, err = call(tree, argv, capsys)
        shown = [a[:80] for a in argv]
        assert code in (0, 1, 2), (shown, code, err[:500])
        assert "Traceback" not in err, (shown, err[:2000])
        if code == 2:
            lines = err.splitlines()
            assert len(lines) == 1 and len(lines[0]) <= cli.MAX_LINE, (shown, err[:2000])
            assert snapshot(tree) == before, shown
    shutil.rmtree(tree / ".gardenpath" / "staging", ignore_errors=True)
