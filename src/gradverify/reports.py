"""Machine-readable reports of a ``check`` run: JSON (byte-identical for the same seed,
described by the JSON Schema ``gradverify/schemas/check-report.schema.json``) and JUnit XML
(valid against the junit-10.xsd schema CI servers read: one testcase per op x check, the
readable report as the failure text). Every file is written to a temporary file beside it
and renamed, so a reader never sees half a report.

>>> from gradverify.runner import CheckResult, TargetResult
>>> results = [TargetResult("Relu", "op", [CheckResult("Relu", "shapes", "PASS", seed=1)])]
>>> doc = json_document(results, [], {"seed": 0})
>>> doc["summary"]["verdict"], doc["summary"]["checks"], doc["complete"]
('PASS', 1, True)
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import re
import socket
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gradverify.harness.report import FAIL, INCONCLUSIVE, PASS, combine

__all__ = ["summary", "json_document", "write_json", "junit_tree", "write_junit",
           "exit_status", "RunState", "run_metadata", "atomic_write", "json_schema",
           "ERROR"]

SCHEMA = "gradverify-check/1"
ERROR = "error"  # a FAIL whose check raised (not a wrong value): JUnit <error>


@dataclass
class RunState:
    """How the run ended: ``complete`` unless a signal stopped it (``interrupted_by``,
    with the checks ``not_run``); ``meta`` is :func:`run_metadata`."""

    complete: bool = True
    interrupted_by: str | None = None
    not_run: list[tuple[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def run_metadata(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """When, where and with what the run happened (``argv``: the arguments after
    ``gradverify``, default ``sys.argv[1:]``): for the JUnit and HTML reports (never the
    JSON, which must not change between identical runs).

    >>> sorted(run_metadata()["versions"])
    ['gradverify', 'hypothesis', 'numpy', 'python', 'scipy']
    """
    import hypothesis
    import numpy
    import scipy

    from gradverify import __version__
    return {
        "timestamp": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
        "hostname": socket.gethostname(),
        "command": " ".join(["gradverify", *map(_quote, sys.argv[1:] if argv is None
                                                else argv)]),
        "platform": platform.platform(),
        "versions": {"gradverify": __version__, "python": platform.python_version(),
                     "numpy": numpy.__version__, "scipy": scipy.__version__,
                     "hypothesis": hypothesis.__version__},
    }


def _quote(arg: str) -> str:
    import shlex
    return shlex.quote(arg)


def is_error(check: Any) -> bool:
    """A FAIL because the check raised (an exception in the op, a crash, a timeout) rather
    than because a value was wrong."""
    return check.verdict == FAIL and getattr(check, "kind", None) == ERROR


def summary(results: Sequence[Any], skipped: Sequence[Any] = ()) -> dict[str, Any]:
    """Counts per verdict over every check, and the overall verdict."""
    counts = Counter(c.verdict for r in results for c in r.checks)
    return {"verdict": combine(c.verdict for r in results for c in r.checks),
            "targets": len(results), "checks": sum(counts.values()),
            PASS: counts.get(PASS, 0), FAIL: counts.get(FAIL, 0),
            INCONCLUSIVE: counts.get(INCONCLUSIVE, 0), "skipped_targets": len(skipped)}


def exit_status(results: Sequence[Any], strict: bool = False) -> int:
    """0 when every check passed (INCONCLUSIVE too, unless ``strict``), else 1.

    >>> from gradverify.runner import CheckResult, TargetResult
    >>> r = [TargetResult("Op", "op", [CheckResult("Op", "gradient", "INCONCLUSIVE", 1)])]
    >>> exit_status(r), exit_status(r, strict=True)
    (0, 1)
    """
    verdicts = {c.verdict for r in results for c in r.checks}
    return 1 if FAIL in verdicts or (strict and INCONCLUSIVE in verdicts) else 0


def json_document(results: Sequence[Any], skipped: Sequence[Any], run: dict[str, Any],
                  timings: dict[str, Any] | None = None, state: RunState | None = None,
                  ) -> dict[str, Any]:
    """The JSON report as a dict. ``run`` holds the options that determine the results
    (seed, profile, examples, filters, shard, modules); ``complete`` is false for a run a
    signal stopped (``interrupted``, ``not_run`` say which checks are missing); ``timings``
    (optional) is a separate top-level field, the only one that changes between identical
    runs."""
    from gradverify import __version__
    state = state or RunState()
    doc: dict[str, Any] = {
        "schema": SCHEMA, "gradverify": __version__, "complete": state.complete,
        "run": run, "summary": summary(results, skipped),
        "targets": [{"name": r.name, "kind": r.kind, "verdict": r.verdict,
                     "checks": [c.to_dict() for c in r.checks]} for r in results],
        "skipped": [{"name": t.name, "kind": t.kind, "reason": t.note} for t in skipped],
    }
    if not state.complete:
        doc["interrupted"] = {"signal": state.interrupted_by,
                              "not_run": [{"target": t, "check": c} for t, c in state.not_run]}
    if timings is not None:
        doc["timings"] = timings
    return doc


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the report :func:`json_document` builds, shipped
    in the package.

    >>> json_schema()["properties"]["schema"]["const"]
    'gradverify-check/1'
    """
    text = resources.files("gradverify").joinpath("schemas/check-report.schema.json")
    return json.loads(text.read_text(encoding="utf-8"))


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file in ``path``'s directory, then rename it over
    ``path``: readers see the old file or the whole new one, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` deterministically (fixed key order, two-space indent, final newline)."""
    atomic_write(path, (json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
                        + "\n").encode("utf-8"))


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    """Drop characters XML 1.0 cannot hold (terminal escapes and the like)."""
    return _XML_BAD.sub("", text)


def _value(v: Any) -> str:
    """A property value as a person writes it: ``a, b`` for a list, ``-`` for none."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v)) or "-"
    return str(v)


def junit_tree(results: Sequence[Any], run: dict[str, Any], strict: bool = False,
               state: RunState | None = None) -> ET.ElementTree:
    """JUnit XML: one ``testcase`` per target x check (classname ``gradverify.<target>``,
    name the check). A wrong value is a ``failure`` whose text is the readable report; a
    check that raised, crashed or timed out an ``error``; INCONCLUSIVE is ``skipped`` (a
    ``failure`` with ``strict``). An interrupted run ends with an ``error`` testcase
    ``run interrupted`` listing the checks not run."""
    state = state or RunState()
    cases = [(r, c) for r in results for c in r.checks]
    errors = sum(is_error(c) for _, c in cases) + (not state.complete)
    failures = sum((c.verdict == FAIL and not is_error(c))
                   or (strict and c.verdict == INCONCLUSIVE) for _, c in cases)
    skipped = sum(c.verdict == INCONCLUSIVE and not strict for _, c in cases)
    total_time = sum(c.time for _, c in cases)
    counts = {"tests": str(len(cases) + (not state.complete)), "failures": str(failures),
              "errors": str(errors), "time": f"{total_time:.3f}"}
    root = ET.Element("testsuites", {"name": "gradverify check", **counts})
    suite = ET.SubElement(root, "testsuite", {
        "name": "gradverify check", **counts, "skipped": str(skipped),
        "timestamp": state.meta.get("timestamp", ""),
        "hostname": state.meta.get("hostname", "")})
    props = ET.SubElement(suite, "properties")
    extra = {"complete": state.complete, "command": state.meta.get("command"),
             "platform": state.meta.get("platform"),
             **{f"version.{k}": v for k, v in state.meta.get("versions", {}).items()}}
    for k, v in {**run, **extra}.items():
        ET.SubElement(props, "property", {"name": k, "value": _clean(_value(v))})
    for r, c in cases:
        case = ET.SubElement(suite, "testcase", {"classname": f"gradverify.{r.name}",
                                                 "name": c.check, "time": f"{c.time:.3f}"})
        text = _clean((c.message or c.verdict) + (
            f"\nreproduce: {c.reproduce}" if c.reproduce else ""))
        first = text.splitlines()[0] if text else c.verdict
        if is_error(c):
            el = ET.SubElement(case, "error", {"message": first[:300], "type": "error"})
            el.text = text
        elif c.verdict == FAIL or (strict and c.verdict == INCONCLUSIVE):
            el = ET.SubElement(case, "failure", {"message": first[:300], "type": c.verdict})
            el.text = text
        elif c.verdict == INCONCLUSIVE:
            ET.SubElement(case, "skipped", {"message": f"INCONCLUSIVE: {first}"[:300]})
            ET.SubElement(case, "system-out").text = text
    if not state.complete:
        case = ET.SubElement(suite, "testcase", {"classname": "gradverify",
                                                 "name": "run interrupted", "time": "0.000"})
        el = ET.SubElement(case, "error", {
            "type": "interrupted",
            "message": f"run interrupted by {state.interrupted_by}: "
                       f"{len(state.not_run)} checks not run; this report is incomplete"})
        el.text = "not run:\n" + "\n".join(f"  {t}[{c}]" for t, c in state.not_run)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: str | Path, results: Sequence[Any], run: dict[str, Any],
                strict: bool = False, state: RunState | None = None) -> None:
    """Write the JUnit XML report to ``path`` (UTF-8, with an XML declaration)."""
    tree = junit_tree(results, run, strict, state)
    data = ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True)
    atomic_write(path, data + b"\n")
