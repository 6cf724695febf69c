"""Terminal output of ``check``: a progress display and the summary table.

With ``rich`` installed (extra ``pretty``) and standard output a terminal: a live progress
bar and a rich table. Otherwise plain lines, one per finished target, and a plain table —
what CI logs get.

>>> import io
>>> from gradverify.runner import CheckResult, TargetResult
>>> out = io.StringIO()
>>> c = Console(out, pretty=False)
>>> c.table([TargetResult("Relu", "op", [CheckResult("Relu", "shapes", "PASS", 1)])])
>>> print(out.getvalue().splitlines()[0].split())
['op', 'checks', 'runs', 'verdict', 'worst', 'err/tol', 'time']
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from gradverify.harness.report import FAIL, INCONCLUSIVE, PASS

__all__ = ["Console", "fmt_ratio"]


def fmt_ratio(worst: dict[str, Any] | None) -> str:
    """The worst error / tolerance of a check or target, for a table cell.

    >>> fmt_ratio({"ratio": 0.00123}), fmt_ratio(None), fmt_ratio({"ratio": float("inf")})
    ('0.0012', '-', 'inf')
    """
    if worst is None:
        return "-"
    r = worst["ratio"]
    return "nan" if math.isnan(r) else ("inf" if math.isinf(r) else f"{r:.2g}")


def _verdict_cell(r: Any) -> str:
    bad = [c.check for c in r.checks if c.verdict != PASS]
    if not bad:
        return PASS
    worst = r.verdict
    names = [c.check.replace("gradient_", "") for c in r.checks if c.verdict == worst]
    return f"{worst} ({', '.join(names)})"


class Console:
    """Progress and summary output to ``stream``; ``pretty=None`` picks rich when it is
    installed and ``stream`` is a terminal."""

    def __init__(self, stream: TextIO | None = None, pretty: bool | None = None,
                 quiet: bool = False):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        if pretty is None:
            pretty = bool(getattr(self.stream, "isatty", lambda: False)())
        if pretty:
            try:
                import rich.console  # noqa: F401
            except ImportError:
                pretty = False
        self.pretty = pretty
        self._rich = None
        if pretty:
            from rich.console import Console as RichConsole
            self._rich = RichConsole(file=self.stream)

    def print(self, text: str = "") -> None:
        if self._rich is not None:
            self._rich.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=self.stream, flush=True)

    @contextlib.contextmanager
    def progress(self, tasks: Sequence[tuple[Any, str]]) -> Iterator[Any]:
        """Yields ``done(result)``: call it as each check finishes."""
        remaining = Counter(t.name for t, _ in tasks)
        verdicts: dict[str, list[str]] = {}
        targets = len(remaining)
        finished = [0]
        if self.quiet:
            yield lambda result: None
            return
        if self._rich is not None:
            from rich.markup import escape
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )
            columns = (TextColumn("[bold]checking"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("checks"), TimeElapsedColumn(),
                       TextColumn("{task.description}"))
            with Progress(*columns, console=self._rich, transient=False) as bar:
                task = bar.add_task("", total=len(tasks))
                fails = [0]

                def done(result: Any) -> None:
                    fails[0] += result.verdict == FAIL
                    note = f"  {fails[0]} failed" if fails[0] else ""
                    bar.update(task, advance=1, description=escape(
                        f"{result.target}[{result.check}]{note}"))
                yield done
            return

        def plain(result: Any) -> None:
            verdicts.setdefault(result.target, []).append(result.verdict)
            remaining[result.target] -= 1
            if remaining[result.target] == 0:
                finished[0] += 1
                vs = verdicts[result.target]
                verdict = FAIL if FAIL in vs else (INCONCLUSIVE if INCONCLUSIVE in vs
                                                    else PASS)
                print(f"[{finished[0]:>{len(str(targets))}}/{targets}] "
                      f"{result.target:<32} {verdict:<12} {len(vs)} checks",
                      file=self.stream, flush=True)
        yield plain

    def table(self, results: Sequence[Any]) -> None:
        """One row per target: checks run, examples run, verdict, worst error/tolerance,
        time; then the totals."""
        rows = [(r.name, str(len(r.checks)), str(sum(c.runs for c in r.checks)),
                 _verdict_cell(r), fmt_ratio(r.worst), f"{r.time:.2f}s") for r in results]
        head = ("op", "checks", "runs", "verdict", "worst err/tol", "time")
        checks = [c for r in results for c in r.checks]
        counts = Counter(c.verdict for c in checks)
        total = (f"{len(results)} ops", str(len(checks)), str(sum(c.runs for c in checks)),
                 ", ".join(f"{counts[v]} {v}" for v in (PASS, FAIL, INCONCLUSIVE)
                           if counts[v]) or "-", "", f"{sum(c.time for c in checks):.1f}s")
        if self._rich is not None:
            from rich.table import Table
            table = Table(*head, show_footer=False)
            for col in table.columns[1:3] + table.columns[4:]:
                col.justify = "right"
            styles = {PASS: "green", FAIL: "bold red", INCONCLUSIVE: "yellow"}
            from rich.text import Text
            for r, row in zip(results, rows):   # Text: names like "Op[x]" are not markup
                table.add_row(*map(Text, row[:3]), Text(row[3], style=styles[r.verdict]),
                              *map(Text, row[4:]))
            table.add_section()
            table.add_row(*total, style="bold")
            self._rich.print(table)
            return
        widths = [max(len(x) for x in col) for col in zip(head, *rows, total)]
        right = {1, 2, 4, 5}

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
        print(line(head), file=self.stream)
        print("  ".join("-" * w for w in widths), file=self.stream)
        for row in rows:
            print(line(row), file=self.stream)
        print("  ".join("-" * w for w in widths), file=self.stream)
        print(line(total), file=self.stream, flush=True)
