"""What ``audit_step`` reports: a :class:`VariableAudit` per variable and the
:class:`StepAudit` of the whole step (verdict, reasons, a table for humans, a dict for JSON).

>>> a = StepAudit([VariableAudit("w", trainable=True, expected=True, changed=True)])
>>> a.verdict, a.changed, a.reasons
('PASS', ['w'], [])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gradverify.harness.report import FAIL, PASS, combine

__all__ = ["VariableAudit", "StepAudit"]


@dataclass
class VariableAudit:
    """What happened to one variable in the step.

    ``sources``: where its update comes from (``"GradientDescent (sgd)"``, ``"assign_sub
    (hand-written)"``); ``pipeline``: the stages its gradient went through
    (``["loss", "gradients", "clip_by_global_norm", "apply(sgd)"]``); ``schedule``: the
    values the update used of hyperparameters computed in the graph (a learning-rate
    schedule, a fed placeholder), and ``global_step`` when a schedule reads it;
    ``reason``: every failed rule, ``"; "``-joined."""

    name: str
    trainable: bool
    expected: bool
    changed: bool
    verdict: str = PASS
    reason: str | None = None
    rule: str | None = None
    paths: list[list[str]] = field(default_factory=list)
    max_error: float = 0.0
    tolerance: float = 0.0
    worst_index: tuple[int, ...] | None = None
    predicted: float | None = None
    actual: float | None = None
    sources: list[str] = field(default_factory=list)
    pipeline: list[str] = field(default_factory=list)
    schedule: dict[str, float] = field(default_factory=dict)

    def add(self, verdict: str, reason: str) -> None:
        """Add a finding: the verdict is the worst one, the reasons accumulate."""
        self.verdict = combine([self.verdict, verdict])
        if verdict != PASS:
            self.reason = reason if self.reason is None else f"{self.reason}; {reason}"

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["worst_index"] = None if self.worst_index is None else list(self.worst_index)
        for k in ("max_error", "tolerance", "predicted", "actual"):
            v = out[k]
            out[k] = None if v is None else (float(v) if math.isfinite(v) else str(v))
        return out


@dataclass
class StepAudit:
    """The audit of one step: ``verdict``, per-variable findings and the reasons."""

    variables: list[VariableAudit] = field(default_factory=list)
    fetch_checks: list[tuple[str, str, str | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    result: Any = None

    @property
    def verdict(self) -> str:
        return combine([v.verdict for v in self.variables]
                       + [c[1] for c in self.fetch_checks])

    @property
    def changed(self) -> list[str]:
        return [v.name for v in self.variables if v.changed]

    @property
    def expected(self) -> list[str]:
        return [v.name for v in self.variables if v.expected]

    @property
    def unexpected(self) -> list[str]:
        return [v.name for v in self.variables if v.changed and not v.expected]

    @property
    def missing(self) -> list[str]:
        return [v.name for v in self.variables if v.verdict == FAIL and v.expected
                and not v.changed]

    @property
    def worst(self) -> VariableAudit | None:
        """The variable whose delta is furthest from its prediction (relative to tolerance)."""
        rated = [v for v in self.variables if v.expected and v.tolerance > 0]
        return max(rated, key=lambda v: v.max_error / v.tolerance, default=None)

    def variable(self, name: str) -> VariableAudit:
        return next(v for v in self.variables if v.name == name)

    @property
    def reasons(self) -> list[str]:
        out = [f"{v.name}: {v.reason}" for v in self.variables if v.verdict != PASS]
        return out + [f"fetch {n}: {r}" for n, verdict, r in self.fetch_checks
                      if verdict != PASS]

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "variables": [v.to_dict() for v in self.variables],
                "fetches": [{"name": n, "verdict": v, "reason": r}
                            for n, v, r in self.fetch_checks], "notes": self.notes}

    def __str__(self) -> str:
        lines = [f"step audit: {self.verdict}"]
        for r in self.reasons:
            lines.append(f"  {r}")
        width = max([len("variable")] + [len(v.name) for v in self.variables]) + 2
        rw = max([len("rule")] + [len(v.rule or "") for v in self.variables]) + 2
        lines.append(f"  {'variable':<{width}}trainable  updated  {'rule':<{rw}}"
                     "max|err|/tol   paths from the loss")
        for v in self.variables:
            ratio = "-" if not v.expected or v.tolerance == 0 else (
                f"{v.max_error / v.tolerance:.2g}")
            lines.append(f"  {v.name:<{width}}{'yes' if v.trainable else 'no':<11}"
                         f"{'yes' if v.changed else 'no':<9}{(v.rule or '-'):<{rw}}"
                         f"{ratio:<15}{len(v.paths) or '-'}")
            if v.sources:
                lines.append(f"      updated by: {', '.join(v.sources)}")
            if v.pipeline:
                lines.append(f"      pipeline: {' → '.join(v.pipeline)}")
            if v.schedule:
                lines.append("      schedule: " + ", ".join(
                    f"{k} = {x:.6g}" for k, x in v.schedule.items()))
            for p in v.paths[:4]:
                lines.append(f"      {' -> '.join(p)}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)
