"""``gradverify check``: plan the checks, run them in killable workers, print the summary and
write the reports.

Good manners in CI: the report paths given are cleared first (a cancelled run never leaves
an earlier run's report behind), every report is written to a temporary file and renamed,
nothing is written anywhere else (Hypothesis' cache goes to a temporary directory, deleted at
the end), and SIGTERM / SIGINT stop the workers and write the reports so far, marked
incomplete, with exit status 143 / 130.

>>> import contextlib, io
>>> from gradverify.cli import main
>>> with contextlib.redirect_stdout(io.StringIO()):
...     status = main(["check", "--ops", "Square", "--properties", "shapes", "--examples",
...                    "2", "--quiet", "--jobs", "1"])
>>> status
0
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gradverify.runner import UsageError

__all__ = ["run_check_command"]


@contextlib.contextmanager
def _private_hypothesis_home() -> Iterator[None]:
    """Hypothesis caches constants of every module it sees under ``./.hypothesis``: point it
    at a temporary directory for the run (forked workers inherit it), then delete it."""
    from hypothesis import configuration
    home = tempfile.mkdtemp(prefix="gradverify-hypothesis-")
    configuration.set_hypothesis_home_dir(home)
    try:
        yield
    finally:
        configuration.set_hypothesis_home_dir(None)
        shutil.rmtree(home, ignore_errors=True)


def _clear(paths: Sequence[Path]) -> None:
    """Remove what a previous run left at this run's report paths (only those files)."""
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def run_check_command(args: argparse.Namespace) -> int:
    """Run ``gradverify check`` with parsed ``args``; the exit status."""
    from hypothesis import settings

    from gradverify import reports
    from gradverify.cli import DEFAULT_EXAMPLES, _split, _writable, import_modules
    from gradverify.console import Console
    from gradverify.properties.profiles import active_profile, register_profiles
    from gradverify.runner import PROPERTY_FACTS, RunOptions
    from gradverify.targets import (
        discover_targets,
        parse_shard,
        plan_tasks,
        select_targets,
        shard_targets,
    )
    from gradverify.workers import RunInterrupted, run_tasks, signals_interrupt

    started = time.perf_counter()
    meta = reports.run_metadata(getattr(args, "argv", None))
    shard = parse_shard(args.shard) if args.shard else None
    if args.examples is not None and args.examples < 1:
        raise UsageError("--examples must be at least 1")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.timeout < 0:
        raise UsageError("--timeout must be >= 0 (0: no limit)")
    props = _split([args.properties] if args.properties else None)
    for p in props or ():
        if p not in PROPERTY_FACTS:
            raise UsageError(f"unknown property {p!r}; choose from "
                             f"{', '.join(PROPERTY_FACTS)}")
    _writable(args.json, "--json")
    _writable(args.junit, "--junit")
    page = Path(args.report_dir) / "index.html" if args.report_dir else None
    if page is not None:
        _writable(str(page), "--report-dir")
    if not args.list:
        _clear([Path(p) for p in (args.json, args.junit, page) if p is not None])
    import_modules(args.modules)
    register_profiles()   # the chosen profile is passed explicitly: no global load
    try:
        profile = args.profile or active_profile()
    except ValueError as e:
        raise UsageError(str(e)) from e
    targets = select_targets(discover_targets(training=not args.no_training),
                             _split(args.ops))
    if shard:
        targets = shard_targets(targets, *shard)
    if args.examples is None and args.profile is None:
        args.examples = min(DEFAULT_EXAMPLES, settings.get_profile(profile).max_examples)
    examples = args.examples or settings.get_profile(profile).max_examples
    prefix = " ".join(["gradverify check", *map(shlex.quote, args.modules)])
    opts = RunOptions(seed=args.seed, profile=profile, examples=args.examples,
                      mode=args.mode, order=args.order, dtype=args.dtype,
                      properties=tuple(props) if props else None,
                      exhibits=bool(args.report_dir), reproduce=prefix, debug=args.debug)
    tasks = plan_tasks(targets, opts)
    out = Console(pretty=False if args.plain else None, quiet=args.quiet)
    if args.list:
        for t in targets:
            chosen = [p for p in t.properties if (t, p) in tasks]
            out.print(f"{t.name:<32} {', '.join(chosen) or '-':<60} {t.note or ''}".rstrip())
        return 0
    skipped = [t for t in targets if t.note]
    if not tasks:
        if shard:
            out.print(f"shard {args.shard}: nothing to check")
            return 0
        raise UsageError("no checks match the given --ops/--properties/--order/--dtype")
    jobs = args.jobs or os.cpu_count() or 1
    n_targets = len({t.name for t, _ in tasks})
    if not args.quiet:
        out.print(f"gradverify check: {len(tasks)} checks on {n_targets} ops; seed "
                  f"{args.seed}, profile {profile}, {examples} examples per check, "
                  f"{min(jobs, len(tasks))} process{'es' if min(jobs, len(tasks)) > 1 else ''}"
                  + (f", shard {args.shard}" if shard else ""))
    interrupted: RunInterrupted | None = None
    with _private_hypothesis_home(), signals_interrupt():
        try:
            with out.progress(tasks) as done:
                results = run_tasks(tasks, opts, jobs=jobs, timeout=args.timeout or None,
                                    on_done=done)
        except RunInterrupted as e:
            interrupted, results = e, e.results
            out.print(f"\ngradverify: interrupted by {e}: workers stopped; "
                      f"{len(results)} of {len(tasks)} checks finished")
    elapsed = time.perf_counter() - started
    run = {"seed": args.seed, "profile": profile, "examples": examples, "mode": args.mode,
           "order": args.order, "dtype": args.dtype, "properties": props,
           "ops": _split(args.ops), "shard": args.shard, "modules": list(args.modules),
           "training": not args.no_training, "strict": args.strict,
           "timeout": args.timeout or None}
    done_keys = {(r.target, r.check) for r in results}
    missing = [(t.name, p) for t, p in tasks if (t.name, p) not in done_keys]
    state = reports.RunState(complete=interrupted is None, interrupted_by=(
        str(interrupted) if interrupted else None), not_run=missing, meta=meta)
    grouped = _group(targets, results)
    status = reports.exit_status(grouped, args.strict)
    if interrupted is None:
        _summary(out, grouped, skipped, args, elapsed, status)
    _write_reports(out, args, grouped, skipped, run, results, elapsed, state, page)
    return interrupted.status if interrupted else status


def _group(targets: Sequence[Any], results: Sequence[Any]) -> list[Any]:
    from gradverify.runner import group_results
    return group_results(targets, results)


def _write_reports(out: Any, args: argparse.Namespace, grouped: Sequence[Any],
                   skipped: Sequence[Any], run: dict[str, Any], results: Sequence[Any],
                   elapsed: float, state: Any, page: Path | None) -> None:
    from gradverify import reports
    if args.json:
        timings = None if not args.timings else {
            "total_seconds": round(elapsed, 3),
            "checks": {f"{c.target}[{c.check}]": round(c.time, 4) for c in results}}
        reports.write_json(args.json, reports.json_document(grouped, skipped, run, timings,
                                                            state))
        out.print(f"JSON report: {args.json}")
    if args.junit:
        reports.write_junit(args.junit, grouped, run, args.strict, state)
        out.print(f"JUnit report: {args.junit}")
    if page is not None:
        from gradverify.html import write_report
        write_report(page.parent, grouped, run, state)
        out.print(f"HTML report: {page}")


def _summary(out: Any, grouped: Sequence[Any], skipped: Sequence[Any],
             args: argparse.Namespace, elapsed: float, status: int) -> None:
    from gradverify.harness.report import FAIL, INCONCLUSIVE
    out.table(grouped)
    checks = [c for r in grouped for c in r.checks]
    failed = [c for c in checks if c.verdict == FAIL]
    unsure = [c for c in checks if c.verdict == INCONCLUSIVE]
    if skipped and not args.quiet:
        ops = [t.name for t in skipped if t.kind == "op"]
        if ops:
            out.print(f"\nmetadata only ({len(ops)}): " + "; ".join(ops)
                      + " — no other op-level properties (sources, state, random)")
        for t in skipped:
            if t.kind != "op":
                out.print(f"  {t.name}: {t.note}")
    if unsure:
        how = "failing: --strict" if args.strict else "not failing; --strict fails on them"
        out.print(f"\ninconclusive ({len(unsure)}, {how}):")
        for c in unsure:
            first = (c.message or "").splitlines()[0] if c.message else ""
            out.print(f"  {c.target}[{c.check}]: "
                      + (first if len(first) <= 150 else first[:149] + "…"))
            if args.strict:
                out.print(f"      reproduce: {c.reproduce}")
    if failed:
        out.print(f"\nfailures ({len(failed)}):")
        limit = 60 if args.debug else 14
        for c in failed:
            lines = (c.message or "FAIL").splitlines()
            out.print(f"  FAIL {c.target}[{c.check}]")
            for line in lines[:limit]:
                out.print(f"      {line}")
            if len(lines) > limit:
                out.print(f"      ... ({len(lines) - limit} more lines in --json/--junit)")
            out.print(f"      reproduce: {c.reproduce}")
    verdict = "PASS" if status == 0 else "FAIL"
    out.print(f"\n{verdict}: {len(checks)} checks, {len(failed)} failed, {len(unsure)} "
              f"inconclusive; seed {args.seed}; {elapsed:.1f} s (exit status {status})")
    sys.stdout.flush()
