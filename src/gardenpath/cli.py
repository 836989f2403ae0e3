"""``python -m gardenpath``: run chapters, build the book, list parameters, show status.

Exit status: 0 when everything asked for succeeded; 1 when a chapter failed or the book
build reported problems; 2 for bad input (nothing was executed or overwritten); 3 when
another run holds the tree's lock; 130/143 when interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys

from gardenpath.params import ParamError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gardenpath", description=__doc__.splitlines()[0])
    p.add_argument("--root", help="the gardenpath tree (default: found from the current folder)")
    sub = p.add_subparsers(dest="command", required=True)

    def run_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--profile", default="cpu", help="smoke | cpu | gpu (default cpu)")
        sp.add_argument("--params", dest="params_file", help="a YAML file of overrides")
        sp.add_argument("--set", dest="sets", action="append", default=[],
                        metavar="CHAPTER.NAME=VALUE", help="override one parameter")
        sp.add_argument("--only", action="append", default=[], metavar="CHAPTER",
                        help="run only this chapter (repeatable); runs it even if cached")
        sp.add_argument("--force", action="store_true", help="ignore the cache")
        sp.add_argument("--jobs", type=int, default=1, help="chapters run at once")
        sp.add_argument("--timeout", type=float, default=None,
                        help="seconds a cell (and a chapter) may run")

    run_args(sub.add_parser("run", help="execute chapter notebooks with papermill"))
    b = sub.add_parser("build", help="run, then build the HTML book")
    run_args(b)
    b.add_argument("--no-strict", action="store_true", help="do not treat warnings as errors")
    b.add_argument("--builder", default="html",
                   help="html (default) or singlehtml: one page, charts as static SVG, for print")
    pa = sub.add_parser("params", help="list the parameters a chapter takes")
    pa.add_argument("chapter", nargs="?")
    st = sub.add_parser("status", help="fresh / stale / failed / never run, per chapter")
    st.add_argument("--profile", default="cpu")
    pub = sub.add_parser("publish", help="write the book's chapter pages (no run, no build)")
    pub.add_argument("--profile", default="cpu")
    return p


def _run(project, args) -> int:
    from gardenpath import pipeline

    the_plan = pipeline.plan(project, args.profile, args.params_file, args.sets, args.only,
                             args.force)
    if args.jobs < 1:
        raise ParamError(f"--jobs {args.jobs}: must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise ParamError(f"--timeout {args.timeout}: must be positive")
    log = _log
    with pipeline.run_lock(project):
        try:
            outcomes = pipeline.execute(project, the_plan, args.jobs, args.timeout, log=log)
        except pipeline.Interrupted as exc:
            log(f"interrupted by {exc.args[0]}: previous outputs kept")
            return 128 + exc.signum
    print(pipeline.summary_table(outcomes))
    failed = [o for o in outcomes if o.status not in ("ran", "cached")]
    for o in failed:
        log(f"error: {o.chapter}: {o.note}")
    return 1 if failed else 0


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _params(project, chapter: str | None) -> int:
    from gardenpath.params import load_yaml_layer, suggest
    from gardenpath.pipeline import declared_parameters

    declared = declared_parameters(project)
    if chapter is not None and chapter not in declared:
        raise ParamError(f"params {chapter}: unknown chapter{suggest(chapter, sorted(declared))}")
    profiles = {p: load_yaml_layer(project.root / "params" / f"{p}.yaml")
                for p in project.profiles()}
    for name in [chapter] if chapter else sorted(declared):
        print(f"{name} (notebooks/{name}.py)")
        for param in declared[name].values():
            sets = ", ".join(f"{p}={profiles[p][name][param.name]!r}" for p in profiles
                             if param.name in profiles[p].get(name, {}))
            constraint = f" [{param.constraint}]" if param.constraint else ""
            print(f"  {param.name}: {param.type} = {param.default!r}{constraint}")
            print(f"      {param.doc}" + (f"\n      profiles: {sets}" if sets else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from gardenpath.pipeline import BusyError, Project

    try:
        project = Project(__import__("pathlib").Path(args.root).resolve()) if args.root \
            else Project.find()
        if args.command == "run":
            return _run(project, args)
        if args.command == "build":
            code = _run(project, args)
            if code not in (0, 1):
                return code
            from gardenpath.book import jupyter_book, publish

            publish(project, args.profile)
            built = jupyter_book(project, strict=not args.no_strict, builder=args.builder)
            return code or (1 if built else 0)
        if args.command == "publish":
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
    except ParamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    return 2
