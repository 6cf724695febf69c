"""Verdicts, checks and the gradient report: what a check found, readable and JSON-ready.

>>> r = GradientReport(checks=[Check("hygiene.deterministic", PASS)], seed=0)
>>> r.verdict
'PASS'
>>> r.checks.append(Check("gradient", INCONCLUSIVE, "non-finite values near x"))
>>> r.verdict
'INCONCLUSIVE'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PASS", "FAIL", "INCONCLUSIVE", "NOT_APPLICABLE", "Entry", "Check",
           "GradientReport", "GradientError", "combine"]

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
# Nothing to verify (no floating-point output, a jump where no derivative exists): neutral
# when combined with other verdicts, reported as such when it is all there is.
NOT_APPLICABLE = "NOT_APPLICABLE"
_RANK = {NOT_APPLICABLE: -1, PASS: 0, INCONCLUSIVE: 1, FAIL: 2}


def combine(verdicts: Any) -> str:
    """FAIL if any FAIL, else INCONCLUSIVE if any INCONCLUSIVE, else PASS if any PASS, else
    NOT_APPLICABLE (all not applicable, or nothing at all).

    >>> combine([PASS, NOT_APPLICABLE]), combine([NOT_APPLICABLE]), combine([PASS, FAIL])
    ('PASS', 'NOT_APPLICABLE', 'FAIL')
    """
    worst = NOT_APPLICABLE
    for v in verdicts:
        if _RANK[v] > _RANK[worst]:
            worst = v
    return worst


@dataclass
class Entry:
    """One compared quantity: a Jacobian entry (full mode), a probe or a localised entry.

    index: multi-index into input ``input``'s shape (``None`` for a whole probe);
    output: multi-index into the output (full mode) or ``None`` (a cotangent-weighted sum).
    """

    input: int
    index: tuple[int, ...] | None
    analytic: float
    numeric: float
    bound: float
    tolerance: float
    step: float
    verdict: str = PASS
    kind: str = "smooth"
    output: tuple[int, ...] | None = None
    one_sided: tuple[float, float] | None = None
    input_name: str | None = None
    note: str | None = None

    @property
    def error(self) -> float:
        return abs(self.analytic - self.numeric)

    @property
    def excess(self) -> float:
        """How far beyond its tolerance the error is (>1 means outside)."""
        if not math.isfinite(self.error):
            return math.inf
        return self.error / self.tolerance if self.tolerance > 0 else (
            0.0 if self.error == 0 else math.inf)

    def where(self) -> str:
        out = "" if self.output is None else (
            f" -> out{self.output[0]}{list(self.output[1:])}")
        if self.index is None:
            return "probe" + out
        return f"{self.input_name or f'input {self.input}'}{list(self.index)}{out}"

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "input_name": self.input_name,
                "index": None if self.index is None else list(self.index),
                "output": None if self.output is None else list(self.output),
                "analytic": _num(self.analytic), "numeric": _num(self.numeric),
                "bound": _num(self.bound), "tolerance": _num(self.tolerance),
                "step": _num(self.step), "verdict": self.verdict, "kind": self.kind,
                "one_sided": None if self.one_sided is None else [
                    _num(v) for v in self.one_sided], "note": self.note}


def _num(x: float) -> Any:
    """JSON has no inf/nan: spell them as strings."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


@dataclass
class Check:
    """One named check: verdict, reason, the worst entries and the tolerance used."""

    name: str
    verdict: str
    reason: str | None = None
    worst: list[Entry] = field(default_factory=list)
    tolerance: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Large arrays for diagnostics pages (full mode: "analytic" and "numeric" Jacobians,
    # rows = output entries, columns = input entries); kept out of to_dict and repr.
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def code(self) -> Any:
        """The :class:`~gradverify.harness.reasons.Reason` of a non-PASS, non-FAIL check."""
        from gradverify.harness.reasons import Reason
        return Reason.of(self.reason) if self.verdict not in (PASS, FAIL) else None

    def to_dict(self) -> dict[str, Any]:
        code = self.code
        return {"name": self.name, "verdict": self.verdict, "reason": self.reason,
                "code": None if code is None else code.name,
                "tolerance": None if self.tolerance is None else _num(self.tolerance),
                "worst": [e.to_dict() for e in self.worst],
                "details": {k: (_num(v) if isinstance(v, float) else v)
                            for k, v in self.details.items()}}


class GradientError(AssertionError):
    """Raised by :meth:`GradientReport.raise_for_failure`; its message is the report."""

    def __init__(self, report: GradientReport):
        super().__init__(str(report))
        self.report = report


@dataclass
class GradientReport:
    """The outcome of a gradient check.

    ``verdict`` is PASS, FAIL or INCONCLUSIVE (never PASS when something could not be
    verified); ``checks`` lists every check with its reason; ``diagnosis`` names a bug
    signature when one fits; ``evaluations`` counts forward and backward calls; ``seed``
    reproduces every random draw.
    """

    checks: list[Check] = field(default_factory=list)
    seed: int = 0
    mode: str = "auto"
    order: int = 1
    diagnosis: str | None = None
    evaluations: dict[str, int] = field(default_factory=lambda: {"forward": 0,
                                                                   "backward": 0})
    function: str = "f"
    inputs: list[dict[str, Any]] = field(default_factory=list)
    reproduce: str | None = None

    @property
    def verdict(self) -> str:
        if not self.checks:
            return INCONCLUSIVE
        worst = combine(c.verdict for c in self.checks)
        grad = self.check("gradient")
        if worst == PASS and grad is not None and grad.verdict == NOT_APPLICABLE:
            return NOT_APPLICABLE  # hygiene passed, but there was no derivative to verify
        return worst

    @property
    def resolved_rtol(self) -> float | None:
        """The smallest relative error of the whole gradient (every entry scaled by 1 + r)
        the gradient check could see; None when nothing was compared."""
        grad = self.check("gradient")
        return None if grad is None else grad.details.get("resolved_rtol")

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    def check(self, name: str) -> Check | None:
        """The check called ``name`` (or None)."""
        return next((c for c in self.checks if c.name == name), None)

    @property
    def reasons(self) -> list[str]:
        return [f"{c.name}: {c.reason}" for c in self.checks
                if c.verdict != PASS and c.reason]

    @property
    def codes(self) -> list[Any]:
        """The Reason codes of the INCONCLUSIVE / NOT_APPLICABLE checks.

        A check whose reason is not one of the closed list shows as its raw text (so a
        test comparing codes with the allowed ones sees it, rather than nothing).
        """
        return [c.code if c.code is not None else (c.reason or "no reason")
                for c in self.checks if c.verdict not in (PASS, FAIL)]

    def raise_for_failure(self, *, strict: bool = False) -> GradientReport:
        """Raise GradientError on FAIL (and on INCONCLUSIVE if ``strict``); else return self."""
        if self.verdict == FAIL or (strict and self.verdict == INCONCLUSIVE):
            raise GradientError(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no timings: the same seed gives the same dict)."""
        return {"verdict": self.verdict, "function": self.function, "mode": self.mode,
                "order": self.order, "seed": self.seed, "diagnosis": self.diagnosis,
                "evaluations": dict(self.evaluations), "inputs": self.inputs,
                "checks": [c.to_dict() for c in self.checks], "reproduce": self.reproduce}

    def __str__(self) -> str:
        return format_report(self)


def _fmt(x: float) -> str:
    return f"{x: .6e}" if math.isfinite(x) else f" {x}"


def format_report(r: GradientReport) -> str:
    """The readable report: verdict first, then each non-passing check with its worst
    entries, then what passed, the cost and how to reproduce."""
    shapes = ", ".join(f"{i.get('name') or 'x' + str(k)}{tuple(i['shape'])}:{i['dtype']}"
                       for k, i in enumerate(r.inputs))
    lines = [f"gradient check of {r.function}({shapes}): {r.verdict}"
             f"  [mode={r.mode}, order={r.order}, seed={r.seed}]"]
    if r.diagnosis:
        lines.append(f"  diagnosis: {r.diagnosis}")
    for c in r.checks:
        if c.verdict == PASS:
            continue
        lines.append(f"  {c.verdict:<12} {c.name}: {c.reason or ''}".rstrip())
        if c.worst:
            lines.append("      where                         analytic        numeric"
                         "          |error|      tolerance    step")
            for e in c.worst[:8]:
                lines.append(
                    f"      {e.where():<28}{_fmt(e.analytic)} {_fmt(e.numeric)} "
                    f"{_fmt(e.error)} {_fmt(e.tolerance)} {e.step:.1e}"
                    + (f"  [{e.kind}]" if e.kind != "smooth" else "")
                    + (f"  one-sided [{e.one_sided[0]:.6g}, {e.one_sided[1]:.6g}]"
                       if e.one_sided else ""))
    passed = [c.name for c in r.checks if c.verdict == PASS]
    if passed:
        lines.append(f"  passed: {', '.join(passed)}")
    lines.append(f"  cost: {r.evaluations.get('forward', 0)} forward, "
                 f"{r.evaluations.get('backward', 0)} backward evaluations")
    if r.reproduce:
        lines.append(f"  reproduce: {r.reproduce}")
    return "\n".join(lines)
