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
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradverify.runner import UsageError

__all__ = ["main", "build_parser", "import_modules", "DEFAULT_EXAMPLES", "DEFAULT_TIMEOUT"]

# Examples per property when neither --examples nor --profile is given: a plain
# `gradverify check` (~400 checks) stays a quick gate. --profile uses the profile's count.
DEFAULT_EXAMPLES = 20
# Seconds per check before its worker is killed: generous (a plain `gradverify check` runs
# all ~400 checks in about a minute), so only a hung op reaches it.
DEFAULT_TIMEOUT = 300.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    """The ``gradverify`` argument parser (subcommands ``check``, ``explain``, ``audit``)."""
    parser = _Parser(prog="gradverify", description="Gradient verification for the engine's "
                     "ops and TF1-style training scripts.")
    from gradverify import __version__
    parser.add_argument("--version", action="version", version=f"gradverify {__version__}")
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
    check.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                       help="seconds one check may run before it is killed and FAILs "
                       f"(default {DEFAULT_TIMEOUT:g}; 0: no limit)")
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
        args.argv = argv   # the command line as given, for the reports
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
    # Console scripts do not put the cwd on sys.path; appended, it never shadows an
    # installed module, while a user module named on the command line still imports.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    # The gate writes nothing outside its report paths: no __pycache__ beside user modules.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        return [_import_module(spec) for spec in specs]
    finally:
        sys.dont_write_bytecode = writes_bytecode


def _import_module(spec: str) -> str:
    """One module name or ``.py`` file, imported; its module name."""
    import importlib
    import importlib.util
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
    _registers_ops(spec, sys.modules[name])
    return name


def _registers_ops(spec: str, module: Any) -> None:
    """A module named on the command line must register ops: otherwise ``check`` would
    silently check only the built-ins."""
    from gradverify.properties.targets import TargetError, ops_of
    try:
        ops_of(module)
    except TargetError:
        raise UsageError(f"no ops registered by {spec} (no op kernel is defined in it)"
                         ) from None


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
    """``gradverify check``: see :mod:`gradverify.check`."""
    from gradverify.check import run_check_command
    return run_check_command(args)


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
