"""Machine-readable reports of a ``check`` run: JSON (byte-identical for the same seed) and
JUnit XML (one testcase per op x check, the readable report as the failure text).

>>> from gradverify.runner import CheckResult, TargetResult
>>> results = [TargetResult("Relu", "op", [CheckResult("Relu", "shapes", "PASS", seed=1)])]
>>> doc = json_document(results, [], {"seed": 0})
>>> doc["summary"]["verdict"], doc["summary"]["checks"]
('PASS', 1)
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradverify.harness.report import FAIL, INCONCLUSIVE, PASS, combine

__all__ = ["summary", "json_document", "write_json", "junit_tree", "write_junit",
           "exit_status"]

SCHEMA = "gradverify-check/1"


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
                  timings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON report as a dict. ``run`` holds the options that determine the results
    (seed, profile, examples, filters, shard, modules); ``timings`` (optional) is a separate
    top-level field, the only one that changes between identical runs."""
    doc: dict[str, Any] = {
        "schema": SCHEMA, "run": run, "summary": summary(results, skipped),
        "targets": [{"name": r.name, "kind": r.kind, "verdict": r.verdict,
                     "checks": [c.to_dict() for c in r.checks]} for r in results],
        "skipped": [{"name": t.name, "kind": t.kind, "reason": t.note} for t in skipped],
    }
    if timings is not None:
        doc["timings"] = timings
    return doc


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` deterministically (fixed key order, two-space indent, final newline)."""
    Path(path).write_text(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
                          + "\n", encoding="utf-8")


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    """Drop characters XML 1.0 cannot hold (terminal escapes and the like)."""
    return _XML_BAD.sub("", text)


def junit_tree(results: Sequence[Any], run: dict[str, Any], strict: bool = False,
               ) -> ET.ElementTree:
    """JUnit XML: one ``testcase`` per target x check (classname ``gradverify.<target>``,
    name the check). FAIL is a ``failure`` whose text is the readable report;
    INCONCLUSIVE is ``skipped`` (a ``failure`` with ``strict``)."""
    cases = [(r, c) for r in results for c in r.checks]
    failures = sum(c.verdict == FAIL or (strict and c.verdict == INCONCLUSIVE)
                   for _, c in cases)
    skipped = sum(c.verdict == INCONCLUSIVE and not strict for _, c in cases)
    total_time = sum(c.time for _, c in cases)
    attrs = {"name": "gradverify check", "tests": str(len(cases)), "failures": str(failures),
             "errors": "0", "skipped": str(skipped), "time": f"{total_time:.3f}"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", attrs)
    props = ET.SubElement(suite, "properties")
    for k, v in run.items():
        ET.SubElement(props, "property", {"name": k, "value": _clean(json.dumps(v))})
    for r, c in cases:
        case = ET.SubElement(suite, "testcase", {"classname": f"gradverify.{r.name}",
                                                 "name": c.check, "time": f"{c.time:.3f}"})
        text = _clean((c.message or c.verdict) + (
            f"\nreproduce: {c.reproduce}" if c.reproduce else ""))
        first = text.splitlines()[0] if text else c.verdict
        if c.verdict == FAIL or (strict and c.verdict == INCONCLUSIVE):
            el = ET.SubElement(case, "failure", {"message": first[:300], "type": c.verdict})
            el.text = text
        elif c.verdict == INCONCLUSIVE:
            ET.SubElement(case, "skipped", {"message": f"INCONCLUSIVE: {first}"[:300]})
            ET.SubElement(case, "system-out").text = text
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: str | Path, results: Sequence[Any], run: dict[str, Any],
                strict: bool = False) -> None:
    """Write the JUnit XML report to ``path`` (UTF-8, with an XML declaration)."""
    junit_tree(results, run, strict).write(path, encoding="utf-8", xml_declaration=True)
