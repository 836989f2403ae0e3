"""``python -m benchmarks local|sdr|pipeline|all [--quick]``: run, print and store the tables.

Results go to ``benchmarks/results/<name>.md`` and ``.json`` (``--out`` elsewhere,
``--no-write`` to only print). ``--quick`` runs a small grid in well under a minute
per benchmark (the pipeline benchmark then uses the ``smoke`` profile).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from benchmarks.common import RESULTS_DIR, log, write_results
from gardenpath.measure.device import resolve_device

NAMES = ("local", "sdr", "pipeline")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("which", nargs="?", default="all", choices=(*NAMES, "all"),
                   help="which benchmark (default all)")
    p.add_argument("--quick", action="store_true", help="a small grid, for a quick check")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: 1 for local, torch's own "
                        "choice for the others)")
    p.add_argument("--device", default="auto",
                   help="auto (a GPU when there is one), cpu or cuda (local and sdr)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR,
                   help=f"where to write the tables (default {RESULTS_DIR})")
    p.add_argument("--no-write", action="store_true", help="print only, write no files")
    g = p.add_argument_group("local")
    g.add_argument("--mem-limit-gib", type=float, default=3.0,
                   help="skip a contender whose estimated memory exceeds this (default 3)")
    g.add_argument("--time-limit-s", type=float, default=2.0,
                   help="skip Keras impl. 1 where a step is estimated longer (default 2)")
    g.add_argument("--repeats", type=int, default=5,
                   help="timed blocks aimed at for slow functions (default 5)")
    g.add_argument("--rounds", type=int, default=5,
                   help="interleaved timing rounds over the contenders (default 5)")
    g = p.add_argument_group("sdr")
    g.add_argument("--max-items", type=int, default=None,
                   help="largest number of stored items (default 100000; quick 10000)")
    g = p.add_argument_group("pipeline")
    g.add_argument("--profile", default=None,
                   help="profile to build (default cpu; smoke with --quick)")
    g.add_argument("--keep", type=Path, default=None,
                   help="build in this folder and keep it (default: a temporary folder)")
    g.add_argument("--change", default=None, metavar="CHAPTER.PARAM=VALUE",
                   help="the one-parameter change (default: the fastest chapter's seed + 1)")
    g.add_argument("--jobs", type=int, default=1, help="chapters run at once (default 1)")
    return p


@contextlib.contextmanager
def address_space_cap(mem_limit_gib: float, device: str = "cpu") -> Iterator[None]:
    """Cap this process's address space at ``2 * limit + 4`` GiB while inside (a safety net).

    The machines these run on are shared: a benchmark that misjudges a contender's
    memory should fail with ``MemoryError`` rather than wake the kernel's OOM killer.
    Only the soft limit is lowered, and it is put back on exit, so the pipeline
    benchmark's chapter kernels (which inherit limits) never run under it. Not applied
    when the benchmark runs on CUDA, whose driver reserves far more address space.
    """
    try:
        import resource
    except ImportError:  # not on this platform
        resource = None
    if resource is None or resolve_device(device).type == "cuda":
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = int((2 * mem_limit_gib + 4) * 2**30)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    lower = soft == resource.RLIM_INFINITY or soft > cap
    if lower:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        if lower:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    which = NAMES if args.which == "all" else (args.which,)
    for name in which:
        if name == "local":
            from benchmarks import local

            with address_space_cap(args.mem_limit_gib, args.device):
                data = local.run(args.quick, device=args.device, mem_limit_gib=args.mem_limit_gib,
                                 time_limit_s=args.time_limit_s,
                                 repeats=args.repeats, rounds=args.rounds,
                                 threads=args.threads)
        elif name == "sdr":
            from benchmarks import sdr

            with address_space_cap(args.mem_limit_gib, args.device):
                data = sdr.run(args.quick, max_items=args.max_items, device=args.device)
        else:
            from benchmarks import pipeline

            data = pipeline.run(args.quick, profile=args.profile, keep=args.keep,
                                change=args.change, jobs=args.jobs)
        markdown = data.pop("markdown")
        print(markdown, flush=True)
        if not args.no_write:
            md, js = write_results(name, markdown, data, args.out)
            log(f"wrote {md} and {js}")
            if name == "local":
                log(f"wrote {local.chart(data, md.with_suffix('.svg'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
