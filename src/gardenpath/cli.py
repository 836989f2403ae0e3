"""``python -m gardenpath``: run chapters, build the book, list parameters, show status.

Exit status: 0 when everything asked for succeeded; 1 when a chapter failed, the book
build reported problems, or something unexpected went wrong (one line, details in
``.gardenpath/last-error.txt``); 2 for bad input (nothing was executed or overwritten);
3 when another run holds the tree's lock; 130/143 when interrupted by SIGINT/SIGTERM.
Every error is one line of bounded length on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import signal
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from gardenpath.params import ParamError, short

#: Longest error line printed.
MAX_LINE = 400


class _Parser(argparse.ArgumentParser):
    """argparse that refuses bad options in one line (no usage block) with exit 2."""

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"^argument ([^:]+): ", r"\1 ", message)
        _say(f"error: {message} (see python -m gardenpath --help)")
        sys.exit(2)


def _positive_seconds(text: str) -> float:
    """``--timeout``: a finite number of seconds above zero (30, 30.5)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_cut(text)}: not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{_cut(text)}: must be a finite number above 0")
    return value


def _jobs(text: str) -> int:
    """``--jobs``: a whole number from 1 to 256."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_cut(text)}: not a whole number") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{_cut(text)}: must be at least 1 and at most 256")
    return value


def _cut(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m gardenpath", description=__doc__.splitlines()[0])
    p.add_argument("--root", help="the gardenpath tree (default: found from the current folder)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def run_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--profile", default="cpu", help="smoke | cpu | gpu (default cpu)")
        sp.add_argument("--params", dest="params_file", help="a YAML file of overrides")
        sp.add_argument("--set", dest="sets", action="append", default=[],
                        metavar="CHAPTER.NAME=VALUE", help="override one parameter")
        sp.add_argument("--only", action="append", default=[], metavar="CHAPTER",
                        help="run only this chapter (repeatable); runs it even if cached")
        sp.add_argument("--force", action="store_true", help="ignore the cache")
        sp.add_argument("--jobs", type=_jobs, default=1, help="chapters run at once")
        sp.add_argument("--timeout", type=_positive_seconds, default=None,
                        help="seconds a cell (and a chapter) may run")

    run_args(sub.add_parser("run", help="execute chapter notebooks with papermill"))
    b = sub.add_parser("build", help="run, then build the HTML book")
    run_args(b)
    b.add_argument("--no-strict", action="store_true", help="do not treat warnings as errors")
    b.add_argument("--builder", default="html", choices=["html", "singlehtml"],
                   help="html (default) or singlehtml: one page, charts as static SVG, for print")
    pa = sub.add_parser("params", help="list the parameters a chapter takes")
    pa.add_argument("chapter", nargs="?")
    st = sub.add_parser("status", help="fresh / stale / failed / never run, per chapter")
    st.add_argument("--profile", default="cpu")
    pub = sub.add_parser("publish", help="write the book's chapter pages (no run, no build)")
    pub.add_argument("--profile", default="cpu")
    return p


def _run(project, args) -> int:
    """Plan and execute; the caller holds the tree's lock."""
    from gardenpath import pipeline

    the_plan = pipeline.plan(project, args.profile, args.params_file, args.sets, args.only,
                             args.force)
    try:
        outcomes = pipeline.execute(project, the_plan, args.jobs, args.timeout, log=_log)
    except pipeline.Interrupted as exc:
        _log(f"interrupted by {exc.args[0]}: previous outputs kept")
        return 128 + exc.signum
    print(pipeline.summary_table(outcomes))
    failed = [o for o in outcomes if o.status not in ("ran", "cached")]
    for o in failed:
        _log(f"error: {o.chapter}: {o.note}")
    return 1 if failed else 0


def _say(msg: str) -> None:
    """One line on stderr: line breaks folded, cut to :data:`MAX_LINE` characters."""
    line = " ".join(str(msg).split())
    print(line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "...", file=sys.stderr,
          flush=True)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _params(project, chapter: str | None) -> int:
    from gardenpath.params import constraints, load_yaml_layer, suggest
    from gardenpath.pipeline import declared_parameters

    declared = declared_parameters(project)
    if chapter is not None and chapter not in declared:
        raise ParamError(f"params {short(chapter)}: unknown chapter"
                         f"{suggest(chapter, sorted(declared))}")
    profiles = {p: load_yaml_layer(project.root / "params" / f"{p}.yaml")
                for p in project.profiles()}
    for name in [chapter] if chapter else sorted(declared):
        print(f"{name} (notebooks/{name}.py)")
        for param in declared[name].values():
            sets = ", ".join(f"{p}={profiles[p][name][param.name]!r}" for p in profiles
                             if param.name in profiles[p].get(name, {}))
            shown = "".join(f" [{c}]" for c in constraints(param.constraint))
            print(f"  {param.name}: {param.type} = {param.default!r}{shown}")
            print(f"      {param.doc}" + (f"\n      profiles: {sets}" if sets else ""))
    return 0


def _build(project, args) -> int:
    """Run, publish and build the book, all under the lock."""
    from gardenpath.book import jupyter_book, publish

    code = _run(project, args)
    if code not in (0, 1):
        return code
    publish(project, args.profile)
    built = jupyter_book(project, strict=not args.no_strict, builder=args.builder)
    if built >= 128:  # interrupted: the signal's exit status
        _log(f"interrupted by {signal.Signals(built - 128).name} during jupyter-book")
        return built
    return code or (1 if built else 0)


def _project(args):
    from gardenpath.pipeline import Project

    if not args.root:
        return Project.find()
    root = Path(args.root).resolve()
    if not (root / "notebooks").is_dir() or not (root / "_config.yml").is_file():
        raise ParamError(f"--root {short(args.root)}: not a gardenpath tree "
                         "(no notebooks/ and _config.yml)")
    return Project(root)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from gardenpath.pipeline import BusyError, describe_os_error, run_lock

    project = None
    try:
        project = _project(args)
        if args.command in ("run", "build", "publish"):
            with run_lock(project):  # held through publishing and jupyter-book too
                if args.command == "run":
                    return _run(project, args)
                if args.command == "build":
                    return _build(project, args)
                from gardenpath.book import publish

                publish(project, args.profile)
                return 0
        if args.command == "params":
            return _params(project, args.chapter)
        if args.command == "status":
            from gardenpath.pipeline import status

            for name, state, detail in status(project, args.profile):
                print(f"{name:28s} {state:10s} {detail}")
            return 0
    except (ParamError, BusyError) as exc:
        _say(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except OSError as exc:
        _say(f"error: {describe_os_error(exc)}")
        _keep_traceback(project)
        return 1
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        where = _keep_traceback(project)
        _say(f"error: unexpected {type(exc).__name__}: {short(str(exc))}"
             + (f" (traceback in {where})" if where else ""))
        return 1
    return 2


def _keep_traceback(project) -> Path | None:
    """Write the current exception's traceback to ``.gardenpath/last-error.txt``."""
    if project is None:
        return None
    path = project.state_dir / "last-error.txt"
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc()[-20000:], encoding="utf-8")
        return path
    return None
