"""``--report-dir DIR``: ``DIR/index.html``, one self-contained file (images embedded), that
can be mailed or archived as CI's artifact.

The run (seed, profile, command line, timestamp, host, Python / NumPy / SciPy / Hypothesis /
gradverify versions, platform), every check (passes collapsed), and for each failing or
inconclusive one: the readable report, the reproduce line and, for gradient checks, each
kept example: the drawn case, the worst-entries table (INCONCLUSIVE rows explained in
words), the step-size plot of the worst entry (``gradverify.stepsize``) and, in full mode
with more than one entry, heatmaps of the analytic Jacobian, the numeric one and their
difference. Without matplotlib the page keeps every table and says the plots are
unavailable.

>>> import tempfile
>>> from gradverify.runner import CheckResult, TargetResult
>>> d = tempfile.mkdtemp()
>>> page = write_report(d, [TargetResult("Relu", "op", [CheckResult("Relu", "shapes",
...                                                               "PASS", 1)])], {"seed": 0})
>>> text = page.read_text()
>>> "All checks passed" in text and "1 passing checks" in text
True
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradverify import plots
from gradverify.harness.report import FAIL, INCONCLUSIVE, PASS
from gradverify.reports import RunState, atomic_write

__all__ = ["write_report"]

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1300px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2.2em;
     border-bottom: 1px solid #ddd; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: .6em 0; font-size: 12.5px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-family: monospace; }
td.num, td code { white-space: nowrap; }
pre, code { font: 12px/1.35 ui-monospace, monospace; background: #f7f7f7; }
pre { padding: .7em; overflow-x: auto; border: 1px solid #e4e4e4; }
.PASS { color: #1e7b34; font-weight: 600; } .FAIL { color: #b3261e; font-weight: 600; }
.INCONCLUSIVE { color: #a06800; font-weight: 600; }
table.facts th { width: 9em; } table.facts td code { white-space: normal;
    word-break: break-all; }
.notice { background: #fff6d6; border: 1px solid #e8d48a; padding: .6em 1em; }
.legend { background: #f2f6fb; border: 1px solid #cfdcec; padding: .4em 1em; }
img { max-width: 100%; border: 1px solid #eee; margin: .4em 0; }
figure { margin: .5em 0 1em; } figcaption { font-size: 12px; color: #555; }
"""

LEGEND = """<div class="legend"><p><b>How to read this page.</b> Each section is one
failing or inconclusive check (op × property) with its reproduce command. For a gradient
check, each kept example shows the drawn case and its <b>worst entries</b>: the input entry
(and output entry, in full mode) compared, the analytic value, the numeric estimate, their
difference, the tolerance from the error model and the ratio error/tolerance (&gt; 1 fails).
The <b>step-size plot</b> recomputes that entry's central difference at steps
10<sup>-1</sup>…10<sup>-12</sup>: a correct gradient gives a V — truncation falling with
slope 2 on the right, round-off rising with slope −1 on the left — whose bottom dips below
the tolerance near the harness's step; a wrong gradient gives a flat floor at
|analytic − true|; a kink or jump gives a curve that never comes down. The <b>heatmaps</b>
(full mode) show the analytic Jacobian, the numeric one and their difference (rows: output
entries; columns: input entries, inputs side by side); outlined cells exceed the
tolerance.</p></div>"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _g(x: float) -> str:
    x = float(x)
    return f"{x:.6g}" if math.isfinite(x) else str(x)


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _png(draw: Any, *args: Any) -> str | None:
    """A plot drawn into memory, as a data: URI (None when there is nothing to draw)."""
    buf = io.BytesIO()
    if draw(*args, buf) is None:
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _why(e: Any) -> str:
    """An INCONCLUSIVE row in words: why the numbers beside it decide nothing."""
    words = []
    if e.kind not in ("smooth", None):
        words.append(f"{e.kind}: the one-sided derivatives disagree, so no single "
                     "derivative exists here to compare with")
    big = max(abs(float(e.analytic)), abs(float(e.numeric)))
    if math.isfinite(e.tolerance) and e.tolerance > 10 * big:
        words.append(f"the finite difference's own error bound ({_g(e.tolerance)}) is larger "
                     f"than the values compared ({_g(big)}): round-off or truncation hides "
                     "the derivative at this point")
    if 0 < e.step < 1e-12:
        words.append(f"the step ({e.step:.2g}) is tiny because steps scale with |x| and this "
                     "input entry is tiny")
    if not math.isfinite(e.tolerance) or not math.isfinite(float(e.numeric)):
        words.append("the function is not finite near this point")
    if e.note:
        words.append(str(e.note))
    return "; ".join(words) or "the numeric estimate could not be trusted at this point"


def _entries_table(report: Any) -> str:
    rows = []
    for c in report.checks:
        if c.verdict == PASS:
            continue
        for e in c.worst:
            ratio = e.excess
            rows.append(
                f"<tr><td>{_e(c.name)}</td><td><code>{_e(e.where())}</code></td>"
                + "".join(f'<td class="num">{_g(v)}</td>' for v in (
                    e.analytic, e.numeric, e.error, e.tolerance, ratio))
                + f'<td class="num">{e.step:.2g}</td><td>{_e(e.kind)}</td>'
                f'<td class="{_e(e.verdict)}">{_e(e.verdict)}</td>'
                f"<td>{_e(_why(e) if e.verdict == INCONCLUSIVE else (e.note or ''))}</td>"
                "</tr>")
    if not rows:
        return "<p>No entries: the check failed before comparing values (see the report).</p>"
    head = ("check", "where", "analytic", "numeric", "|error|", "tolerance", "error/tol",
            "step", "kind", "verdict", "note")
    return ('<table class="entries"><tr>' + "".join(f"<th>{h}</th>" for h in head)
            + "</tr>" + "".join(rows) + "</table>")


def _exhibit(ex: Any, can_plot: bool) -> str:
    out = [f"<h3>{_e(ex.title)}</h3>"]
    if ex.case:
        out.append(f"<p>case: <code>{_e(ex.case)}</code></p>")
    r = ex.report
    out.append(f"<p>report: <span class=\"{_e(r.verdict)}\">{_e(r.verdict)}</span> "
               f"[mode={_e(r.mode)}, order={r.order}, seed={r.seed}]"
               + (f"; diagnosis: {_e(r.diagnosis)}" if r.diagnosis else "") + "</p>")
    out.append(_entries_table(r))
    if not can_plot:
        return "\n".join(out)
    if ex.curve is not None:
        uri = _png(plots.step_plot, ex.curve)
        out.append(f'<figure><img src="{uri}" alt="step-size plot"><figcaption>'
                   f"Step-size plot of <code>{_e(ex.curve.where)}</code>: "
                   f"{_e(ex.curve.note)}; analytic {_g(ex.curve.analytic)}, step "
                   f"{ex.curve.step:.2g}.</figcaption></figure>")
    elif ex.curve_note:
        out.append(f"<p><i>{_e(ex.curve_note)}</i></p>")
    check = r.check("gradient")
    if check is not None and check.arrays:
        uri = _png(lambda buf: plots.jacobian_plot(r, check, buf))
        if uri is not None:
            out.append(f'<figure><img src="{uri}" alt="Jacobian heatmaps"><figcaption>'
                       "Analytic Jacobian, numeric Jacobian and their difference (rows: "
                       "output entries, columns: input entries).</figcaption></figure>")
    return "\n".join(out)


def _run_facts(run: dict[str, Any], state: RunState) -> str:
    meta = state.meta
    rows = [("command", f"<code>{_e(meta['command'])}</code>")] if meta.get("command") else []
    rows += [(k, _e(_show(v) + (" s per check" if k == "timeout" else "")))
             for k, v in run.items() if not (v is None or v is False or v == [])]
    if meta.get("timestamp"):
        rows.append(("time (UTC)", _e(meta["timestamp"])))
    if meta.get("hostname"):
        rows.append(("host", _e(meta["hostname"])))
    if meta.get("versions"):
        rows.append(("versions", _e(", ".join(f"{k} {v}" for k, v in
                                              meta["versions"].items()))))
    if meta.get("platform"):
        rows.append(("platform", _e(meta["platform"])))
    return ('<table class="facts">' + "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>"
                                             for k, v in rows) + "</table>")


def _all_checks(checks: list[Any]) -> str:
    from gradverify.console import fmt_ratio

    def table(rows: list[Any]) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("op", "check", "verdict", "runs",
                                                  "worst err/tol", "time"))
        return (f"<table><tr>{head}</tr>" + "".join(
            f"<tr><td>{_e(c.target)}</td><td>{_e(c.check)}</td>"
            f'<td class="{c.verdict}">{c.verdict}</td><td class="num">{c.runs}</td>'
            f'<td class="num">{_e(fmt_ratio(c.worst))}</td>'
            f'<td class="num">{c.time:.2f}s</td></tr>' for c in rows) + "</table>")
    passed = [c for c in checks if c.verdict == PASS]
    other = sorted((c for c in checks if c.verdict != PASS),
                   key=lambda c: (c.verdict != FAIL, c.target, c.check))
    parts = ["<h2>Every check</h2>", "<p>runs: examples executed, shrinking included; "
             "worst err/tol: the largest error / tolerance over every compared entry "
             "(&gt; 1 fails).</p>"]
    if other:
        parts.append(table(other))
    parts.append(f"<details><summary>{len(passed)} passing checks</summary>"
                 f"{table(passed)}</details>")
    return "\n".join(parts)


def write_report(directory: str | Path, results: Sequence[Any], run: dict[str, Any],
                 state: RunState | None = None) -> Path:
    """Write ``index.html`` into ``directory`` (atomically; nothing else); returns it."""
    state = state or RunState()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    can_plot = plots.available()
    checks = [c for r in results for c in r.checks]
    shown = sorted((c for c in checks if c.verdict != PASS),
                   key=lambda c: (c.verdict != FAIL, c.target, c.check))
    counts = {v: sum(c.verdict == v for c in checks) for v in (PASS, FAIL, INCONCLUSIVE)}
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>gradverify check report</title><style>{CSS}</style></head><body>",
             "<h1>gradverify check report</h1>", _run_facts(run, state),
             f"<p>{len(checks)} checks on {len(results)} ops: "
             + ", ".join(f'<span class="{v}">{n} {v}</span>' for v, n in counts.items())
             + "</p>"]
    if not state.complete:
        parts.append(f'<p class="notice"><b>Incomplete:</b> the run was interrupted by '
                     f"{_e(state.interrupted_by)}; {len(state.not_run)} checks did not run: "
                     + _e(", ".join(f"{t}[{c}]" for t, c in state.not_run[:50]))
                     + (" …" if len(state.not_run) > 50 else "") + "</p>")
    if not can_plot:
        parts.append('<p class="notice">Plots unavailable: matplotlib is not installed '
                     "(<code>pip install 'gradverify[plots]'</code>). The tables below are "
                     "complete.</p>")
    if not shown:
        parts.append("<p class=\"PASS\">All checks passed.</p>")
    else:
        parts.append(LEGEND)
        parts.append("<h2>Contents</h2><table><tr><th>op</th><th>check</th><th>verdict"
                     "</th><th>first line</th></tr>")
        for c in shown:
            first = (c.message or "").splitlines()[0] if c.message else ""
            parts.append(f'<tr><td><a href="#{_slug(c.target + "-" + c.check)}">'
                         f"{_e(c.target)}</a></td><td>{_e(c.check)}</td>"
                         f'<td class="{c.verdict}">{c.verdict}</td><td>{_e(first[:140])}'
                         "</td></tr>")
        parts.append("</table>")
    for c in shown:
        slug = _slug(f"{c.target}-{c.check}")
        parts.append(f'<h2 id="{slug}">{_e(c.target)} [{_e(c.check)}] — '
                     f'<span class="{c.verdict}">{c.verdict}</span></h2>')
        if c.reproduce:
            parts.append(f"<p>reproduce: <code>{_e(c.reproduce)}</code></p>")
        if c.message:
            parts.append(f"<details {'open' if c.verdict == FAIL else ''}><summary>"
                         f"readable report</summary><pre>{_e(c.message)}</pre></details>")
        for ex in c.exhibits:
            parts.append(_exhibit(ex, can_plot))
    parts.append(_all_checks(checks))
    parts.append("</body></html>")
    page = directory / "index.html"
    atomic_write(page, ("\n".join(parts) + "\n").encode("utf-8"))
    return page
