"""Judging an analytic value against a numeric estimate: PASS, FAIL or INCONCLUSIVE.

- Smooth channel: PASS if ``|a - n| <= safety * (bound + analytic_bound)``; FAIL beyond it
  (the bound is an over-estimate, so the disagreement is real); INCONCLUSIVE when the
  estimate is unreliable, or when the tolerance is too loose to have seen a relative error of
  ``detect_rtol`` (round-off dominated) - never a silent PASS.
- Kink channel: PASS if ``a`` lies between the one-sided derivatives (widened by their
  bounds); otherwise FAIL.

>>> import numpy as np
>>> from gradverify.harness.numeric import Line, refine
>>> est = refine(Line(lambda t: np.array([abs(t)])), 1e-5)   # |x| at 0
>>> judge(np.array([0.0]), np.zeros(1), est).verdict.tolist()  # 0 is in [-1, 1]
['PASS']
>>> judge(np.array([2.0]), np.zeros(1), est).verdict.tolist()
['FAIL']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradverify.harness.numeric import Estimate
from gradverify.harness.report import FAIL, INCONCLUSIVE, PASS

__all__ = ["Judgement", "judge"]


@dataclass
class Judgement:
    verdict: np.ndarray       # per channel: PASS / FAIL / INCONCLUSIVE
    tolerance: np.ndarray
    kind: np.ndarray          # "smooth" / "kink"
    reason: list[str | None]


def judge(analytic: np.ndarray, analytic_bound: np.ndarray, est: Estimate, *,
          scale: float = 0.0, safety: float = 4.0, detect_rtol: float = 1e-3,
          resolution: Any = 0.0) -> Judgement:
    """Per-channel verdicts for analytic values against the estimate ``est``.

    scale: the natural size of derivatives in this check (e.g. the largest Jacobian entry);
    a tolerance below ``detect_rtol * max(|a|, |numeric|, scale)`` is tight enough to judge.
    resolution: the smallest change of phi the outputs can show whatever their own size
    (``eps * max |y|`` over all outputs): an output that is 0 by cancellation of O(1)
    terms (softmax - labels) stays bit-for-bit unchanged under changes below it.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = a.size
    verdict = np.full(n, PASS, dtype=object)
    kind = np.full(n, "smooth", dtype=object)
    reason: list[str | None] = [None] * n
    with np.errstate(all="ignore"):
        tol = safety * (est.bound + analytic_bound)
        err = np.abs(a - est.value)
        natural = np.maximum.reduce([np.abs(a), np.abs(est.value),
                                     np.full(n, float(scale))])
        side_tol = safety * (est.side_bound + analytic_bound)
        res = np.broadcast_to(np.asarray(resolution, dtype=np.float64), (n,))
        lo = np.minimum(est.left, est.right) - side_tol
        hi = np.maximum(est.left, est.right) + side_tol
    for i in range(n):
        if not np.isfinite(a[i]):
            verdict[i] = FAIL if not est.unreliable[i] else INCONCLUSIVE
            reason[i] = ("non-finite analytic gradient where the numeric one is finite"
                         if not est.unreliable[i] else est.reason[i])
        elif a[i] == 0.0 and est.value[i] == 0.0:
            tol[i] = 0.0  # phi(h) == phi(-h) at the chosen steps and the gradient says 0
        elif est.kink[i]:
            kind[i] = "kink"
            tol[i] = side_tol[i]
            inside = lo[i] <= a[i] <= hi[i]
            verdict[i] = PASS if inside else FAIL
            if not inside:
                reason[i] = (f"at a kink the gradient must lie between the one-sided "
                             f"derivatives [{min(est.left[i], est.right[i]):.6g}, "
                             f"{max(est.left[i], est.right[i]):.6g}]")
        elif est.unreliable[i]:
            verdict[i] = INCONCLUSIVE
            reason[i] = est.reason[i]
        elif err[i] > tol[i] and err[i] * est.step[i] <= res[i]:
            # The disagreement moves phi by less than the rounding of outputs of the
            # largest size present: an output computed by cancellation (0 = 0.5 - 0.5)
            # hides changes its own size does not predict.
            verdict[i] = INCONCLUSIVE
            reason[i] = ("disagreement below the outputs' resolution (an output computed "
                         "by cancellation?)")
        elif err[i] > tol[i]:
            verdict[i] = FAIL
        elif tol[i] > detect_rtol * natural[i]:
            verdict[i] = INCONCLUSIVE
            reason[i] = ("round-off dominated: the numeric estimate cannot resolve a "
                         f"relative error of {detect_rtol:g}"
                         if est.roundoff[i] >= 0.5 * est.bound[i] else
                         "truncation error too large: the function is not smooth enough "
                         "at the step sizes tried")
    return Judgement(verdict=verdict, tolerance=tol, kind=kind, reason=reason)
