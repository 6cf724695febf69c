"""``gradverify``: argument parsing and dispatch.

- ``gradverify check [MODULE ...]``: every registered op (plus those the named modules or
  files register) through the generated properties, and the training-step properties;
- ``gradverify explain FILE.py``: which variables the script's train op updates, how, and
  along which paths from the loss;
- ``gradverify audit FILE.py``: run training steps under ``audit_step``.

Exit status: 0 all passed (INCONCLUSIVE counted, not failing unless ``--strict``), 1 a check
failed, 2 usage error (unknown op, bad ``--shard``, a module that cannot be imported): a
one-line message, the traceback only with ``--debug``.

>>> main(["check", "--ops", "Nope"])
2
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradverify.runner import UsageError

__all__ = ["main", "build_parser", "import_modules", "DEFAULT_EXAMPLES"]

# Examples per property when neither --examples nor --profile is given: a plain
# `gradverify check` (~400 checks) stays a quick gate. --profile uses the profile's count.
DEFAULT_EXAMPLES = 20


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    """The ``gradverify`` argument parser (subcommands ``check``, ``explain``, ``audit``)."""
    parser = _Parser(prog="gradverify", description="Gradient verification for the engine's "
                     "ops and TF1-style training scripts.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", help="check every registered op and the training steps",
                           description="Put every registered op (built-in, plus those the "
                           "named modules or .py files register) through the generated "
                           "properties, and the training-step properties.")
    check.add_argument("modules", nargs="*", metavar="MODULE",
                       help="module names or .py files to import first (they register ops)")
    check.add_argument("--ops", action="append", metavar="NAMES",
                       help="comma-separated op names or patterns (Reduce*, train:*)")
    check.add_argument("--properties", metavar="NAMES",
                       help="comma-separated properties: shapes, forward, gradient, "
                       "gradient_order2, gradient_float32, no_gradient, train_step, "
                       "train_no_gradient, composite")
    check.add_argument("--mode", choices=("full", "fast", "auto"),
                       help="gradient check mode (default: drawn, full or fast)")
    check.add_argument("--order", type=int, choices=(1, 2),
                       help="only the gradient properties of this derivative order")
    check.add_argument("--dtype", choices=("float32", "float64"),
                       help="only the gradient properties in this dtype")
    check.add_argument("--examples", type=int, metavar="N",
                       help="examples per property (default: the --profile's max_examples "
                       f"when --profile is given, else {DEFAULT_EXAMPLES})")
    check.add_argument("--seed", type=int, default=0, metavar="S",
                       help="seed of every property's examples (default 0)")
    check.add_argument("--profile", choices=("dev", "ci", "thorough"),
                       help="Hypothesis profile (default: ci when CI is set, else dev)")
    check.add_argument("--json", metavar="FILE", help="write the JSON report")
    check.add_argument("--timings", action="store_true",
                       help="add a 'timings' field to the JSON report (not reproducible)")
    check.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    check.add_argument("--report-dir", metavar="DIR",
                       help="write an HTML page (index.html) with failing/inconclusive cases")
    check.add_argument("--shard", metavar="K/N", help="run only shard K of N (1-based)")
    check.add_argument("--jobs", type=int, metavar="N",
                       help="processes (default: the number of CPUs)")
    check.add_argument("--strict", action="store_true", help="INCONCLUSIVE fails the run")
    check.add_argument("--no-training", action="store_true",
                       help="skip the train:* and composite properties")
    check.add_argument("--list", action="store_true",
                       help="list the selected targets and their properties, then exit")
    check.add_argument("--plain", action="store_true",
                       help="plain lines even on a terminal (no rich progress)")
    check.add_argument("--quiet", action="store_true", help="only the summary")
    check.add_argument("--debug", action="store_true", help="tracebacks on errors")
    check.set_defaults(func=cmd_check)

    for name, helptext in (("explain", "which variables a training script updates, how, "
                            "and through which paths"),
                           ("audit", "run training steps of a script under audit_step")):
        p = sub.add_parser(name, help=helptext, description=helptext + ". The script is "
                           "run (not as __main__) and read by the protocol in "
                           "gradverify.explain.")
        p.add_argument("script", metavar="FILE.py")
        p.add_argument("--debug", action="store_true", help="tracebacks on errors")
        if name == "explain":
            p.add_argument("--dot", metavar="FILE",
                           help="write the graph as Graphviz DOT, updated variables "
                           "highlighted")
            p.set_defaults(func=cmd_explain)
        else:
            p.add_argument("--steps", type=int, default=3, metavar="N",
                           help="training steps to audit (default 3)")
            p.add_argument("--strict", action="store_true",
                           help="INCONCLUSIVE fails the run")
            p.set_defaults(func=cmd_audit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    >>> main(["check", "--shard", "3/2"])
    2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except UsageError as e:
        print(f"gradverify: error: {e}", file=sys.stderr)
        if debug:
            traceback.print_exception(e.__cause__ or e, file=sys.stderr)
        return 2
    except SystemExit as e:   # --help
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    except KeyboardInterrupt:
        print("gradverify: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # `gradverify check --list | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as e:  # noqa: BLE001 - an internal error: one line, exit 2
        print(f"gradverify: internal error: {type(e).__name__}: {e}"
              + ("" if debug else " (--debug shows the traceback)"), file=sys.stderr)
        if debug:
            traceback.print_exception(e, file=sys.stderr)
        return 2


# -- modules -----------------------------------------------------------------------------------
def import_modules(specs: Sequence[str]) -> list[str]:
    """Import each module name or ``.py`` file (files by path, their directory put on
    ``sys.path`` for their own imports); UsageError on any failure. Returns module names."""
    import importlib
    import importlib.util
    # Console scripts do not put the cwd on sys.path; appended, it never shadows an
    # installed module, while a user module named on the command line still imports.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    names = []
    for spec in specs:
        path = Path(spec)
        is_file = spec.endswith(".py") or os.sep in spec
        try:
            if is_file:
                if not path.is_file():
                    raise UsageError(f"cannot import {spec}: no such file")
                name = f"gradverify_user_{path.stem}"
                sys.path.insert(0, str(path.resolve().parent))
                loader_spec = importlib.util.spec_from_file_location(name, path.resolve())
                module = importlib.util.module_from_spec(loader_spec)
                sys.modules[name] = module
                try:
                    loader_spec.loader.exec_module(module)
                except BaseException:
                    sys.modules.pop(name, None)
                    raise
            else:
                name = importlib.import_module(spec).__name__
        except UsageError:
            raise
        except (Exception, SystemExit) as e:
            raise UsageError(f"cannot import {spec}: {type(e).__name__}: {e}") from e
        names.append(name)
    return names


def _split(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _writable(path: str | None, what: str) -> None:
    """Create the parent directory of an output file; UsageError when that fails."""
    if path is None:
        return
    parent = Path(path).resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{what} {path}: cannot create {parent}: {e.strerror}") from e
    if Path(path).is_dir():
        raise UsageError(f"{what} {path}: is a directory")


# -- check -----------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    """``gradverify check``: see the module docstring."""
    from hypothesis import settings

    from gradverify import reports
    from gradverify.console import Console
    from gradverify.properties.profiles import active_profile, register_profiles
    from gradverify.runner import (
        PROPERTY_FACTS,
        RunOptions,
        discover_targets,
        group_results,
        parse_shard,
        plan_tasks,
        run_tasks,
        select_targets,
        shard_targets,
    )

    started = time.perf_counter()
    shard = parse_shard(args.shard) if args.shard else None
    if args.examples is not None and args.examples < 1:
        raise UsageError("--examples must be at least 1")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    props = _split([args.properties] if args.properties else None)
    for p in props or ():
        if p not in PROPERTY_FACTS:
            raise UsageError(f"unknown property {p!r}; choose from "
                             f"{', '.join(PROPERTY_FACTS)}")
    _writable(args.json, "--json")
    _writable(args.junit, "--junit")
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
                      exhibits=bool(args.report_dir), reproduce=prefix)
    tasks = plan_tasks(targets, opts)
    out = Console(pretty=False if args.plain else None, quiet=args.quiet)
    if args.list:
        for t in targets:
            chosen = [p for p in t.properties if (t, p) in tasks]
            out.print(f"{t.name:<32} {', '.join(chosen) or '-':<60} {t.note or ''}".rstrip())
        return 0
    skipped = [t for t in targets if not t.properties]
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
    with out.progress(tasks) as done:
        results = run_tasks(tasks, opts, jobs=jobs, on_done=done)
    grouped = group_results(targets, results)
    elapsed = time.perf_counter() - started
    run = {"seed": args.seed, "profile": profile, "examples": examples, "mode": args.mode,
           "order": args.order, "dtype": args.dtype, "properties": props,
           "ops": _split(args.ops), "shard": args.shard, "modules": list(args.modules),
           "training": not args.no_training, "strict": args.strict}
    status = reports.exit_status(grouped, args.strict)
    _summary(out, grouped, skipped, args, elapsed, status)
    if args.json:
        timings = None if not args.timings else {
            "total_seconds": round(elapsed, 3),
            "checks": {f"{c.target}[{c.check}]": round(c.time, 4) for c in results}}
        reports.write_json(args.json, reports.json_document(grouped, skipped, run, timings))
        out.print(f"JSON report: {args.json}")
    if args.junit:
        reports.write_junit(args.junit, grouped, run, args.strict)
        out.print(f"JUnit report: {args.junit}")
    if args.report_dir:
        from gradverify.html import write_report
        page = write_report(args.report_dir, grouped, run)
        out.print(f"HTML report: {page}")
    return status


def _summary(out: Any, grouped: Sequence[Any], skipped: Sequence[Any],
             args: argparse.Namespace, elapsed: float, status: int) -> None:
    from gradverify.harness.report import FAIL, INCONCLUSIVE
    out.table(grouped)
    checks = [c for r in grouped for c in r.checks]
    failed = [c for c in checks if c.verdict == FAIL]
    unsure = [c for c in checks if c.verdict == INCONCLUSIVE]
    if skipped and not args.quiet:
        out.print(f"\nnot checked ({len(skipped)}): " + "; ".join(
            f"{t.name}" for t in skipped if t.kind == "op") + (
            " — no op-level properties (sources, state, random)" if any(
                t.kind == "op" for t in skipped) else ""))
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
        for c in failed:
            lines = (c.message or "FAIL").splitlines()
            out.print(f"  FAIL {c.target}[{c.check}]")
            for line in lines[:14]:
                out.print(f"      {line}")
            if len(lines) > 14:
                out.print(f"      ... ({len(lines) - 14} more lines in --json/--junit)")
            out.print(f"      reproduce: {c.reproduce}")
    verdict = "PASS" if status == 0 else "FAIL"
    out.print(f"\n{verdict}: {len(checks)} checks, {len(failed)} failed, {len(unsure)} "
              f"inconclusive; seed {args.seed}; {elapsed:.1f} s (exit status {status})")


# -- explain / audit ---------------------------------------------------------------------------
def cmd_explain(args: argparse.Namespace) -> int:
    """``gradverify explain FILE.py [--dot FILE]``."""
    from gradverify.explain import explain, load_script, write_dot
    _writable(args.dot, "--dot")
    model = load_script(args.script)
    print(explain(model))
    if args.dot:
        write_dot(model, args.dot)
        print(f"\nGraphviz DOT: {args.dot}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """``gradverify audit FILE.py [--steps N] [--strict]``."""
    from gradverify.explain import audit, load_script
    if args.steps < 1:
        raise UsageError("--steps must be at least 1")
    model = load_script(args.script)
    return audit(model, args.steps, strict=args.strict)
