"""Judging an analytic value against a numeric estimate: PASS, FAIL, INCONCLUSIVE or
NOT_APPLICABLE, channel by channel.

- Smooth channel: PASS if ``|a - n| <= tolerance(budget)`` (``safety × budget``, the budget
  being the estimate's plus the analytic value's rounding); FAIL beyond it (the budget is an
  over-estimate, so the disagreement is real); INCONCLUSIVE when the estimate is unreliable,
  or when the tolerance is too loose to have seen a relative error of ``inconclusive_rtol``
  (round-off or truncation dominated) - never a silent PASS.
- Kink channel: PASS if ``a`` lies between the one-sided derivatives (widened by their
  bounds); otherwise FAIL. Joint kinks (ties) are judged afterwards by ``kinks.py``.
- Jump channel: NOT_APPLICABLE (no derivative exists).

Resolution is per channel: the cancellation term of each channel's budget is measured on
that channel, so a tiny output next to large ones is judged on its own noise.

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

from gradverify.harness.budget import INCONCLUSIVE_RTOL, SAFETY, ErrorBudget, tolerance
from gradverify.harness.numeric import Estimate
from gradverify.harness.reasons import Reason
from gradverify.harness.report import FAIL, INCONCLUSIVE, NOT_APPLICABLE, PASS

__all__ = ["Judgement", "judge", "jumps_at_x"]


@dataclass
class Judgement:
    verdict: np.ndarray       # per channel: PASS / FAIL / INCONCLUSIVE / NOT_APPLICABLE
    tolerance: np.ndarray
    kind: np.ndarray          # "smooth" / "kink" / "jump"
    reason: list[str | None]
    budget: ErrorBudget


def judge(analytic: np.ndarray, analytic_bound: np.ndarray, est: Estimate, *,
          scale: float = 0.0, safety: float = SAFETY,
          inconclusive_rtol: float = INCONCLUSIVE_RTOL, float32: Any = 0.0) -> Judgement:
    """Per-channel verdicts for analytic values against the estimate ``est``.

    analytic_bound: the analytic values' rounding (budget term ``analytic_rounding``).
    scale: the natural size of derivatives in this check (e.g. the largest Jacobian entry);
    a tolerance below ``inconclusive_rtol * max(|a|, |numeric|, scale)`` is tight enough.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = a.size
    verdict = np.full(n, PASS, dtype=object)
    kind = np.full(n, "smooth", dtype=object)
    reason: list[str | None] = [None] * n
    budget = est.budget.with_analytic(analytic_bound, float32)
    jump = est.jump if est.jump is not None else np.zeros(n, bool)
    with np.errstate(all="ignore"):
        tol = tolerance(budget, safety)
        err = np.abs(a - est.value)
        natural = np.maximum.reduce([np.abs(a), np.abs(est.value),
                                     np.full(n, float(scale))])
        side_tol = safety * (est.side_bound + budget.analytic_rounding + budget.float32)
        lo = np.minimum(est.left, est.right) - side_tol
        hi = np.maximum(est.left, est.right) + side_tol
    for i in range(n):
        if jump[i]:
            verdict[i], kind[i], reason[i] = NOT_APPLICABLE, "jump", est.reason[i]
        elif not np.isfinite(a[i]):
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
        elif err[i] > tol[i]:
            verdict[i] = FAIL
        elif tol[i] > inconclusive_rtol * natural[i]:
            verdict[i] = INCONCLUSIVE
            top = budget.dominant()[i] if np.isfinite(tol[i]) else "truncation"
            code = (Reason.TRUNCATION_DOMINATED if top == "truncation"
                    else Reason.ROUNDOFF_DOMINATED)
            reason[i] = code.text(f"the estimate cannot resolve a relative error of "
                                  f"{inconclusive_rtol:g} ({top.replace('_', ' ')} "
                                  "is the largest error term)")
    return Judgement(verdict=verdict, tolerance=tol, kind=kind, reason=reason,
                     budget=budget)


def jumps_at_x(line: Any, est: Estimate, jd: Judgement, analytic: np.ndarray,
               c_round: float, safety: float = SAFETY,
               inconclusive_rtol: float = INCONCLUSIVE_RTOL) -> Judgement:
    """Channels judged NOT_APPLICABLE for a jump keep that verdict only if the jump is
    at x: still there at the line's smallest argument move (``lines.ulp_move``: every
    entry moved by one spacing), at least half the size the ladder's steps show.

    Else the jump lies between x and the steps: a continuous function's kink or ramp
    nearer than every step (clip's ``hi = 0`` with ``lo = -1e-30`` below: the piece
    ``out = hi`` is a 1e-30 sliver; softmax at (1e30, 1e30 + 1e15): its ramp of width 1
    sits 7 spacings of 1e30 away). There is a derivative at x: it is judged by one-sided
    differences at a step below the jump's distance (found by bisecting the log of the
    step), PASS when the analytic value lies between them and their round-off resolves
    ``inconclusive_rtol``, INCONCLUSIVE (``STRUCTURE_BELOW_STEP``) otherwise - never a
    FAIL, since the steps that saw the jump were no evidence of a derivative either."""
    jumps = [i for i in range(len(jd.verdict))
             if jd.verdict[i] == NOT_APPLICABLE and jd.kind[i] == "jump"]
    move = getattr(line, "ulp_move", None)
    if not jumps or move is None:
        return jd
    t0 = float(move())
    steps = np.asarray(est.step, np.float64)
    if not 0.0 < t0 < float(np.min(steps[jumps])):
        return jd  # no finer move than the steps themselves: the jump stands as seen
    a = np.asarray(analytic, np.float64)

    def change(t: float, i: int) -> float:
        # the larger one-sided change: a jump of one side (sign at 0) or of both alike
        # (a spike of fixed height, phi(t) = phi(-t) = c: a joint kink's sliver)
        (up, _), (down, _) = line(t), line(-t)
        return max(abs(float(up[i])), abs(float(down[i])))
    for n, i in enumerate(jumps):
        s = float(steps[i])
        size = change(s, i)
        if not (np.isfinite(size) and change(t0, i) < 0.5 * size):
            continue  # the jump is at x
        if n >= _MAX_BELOW:
            continue
        lo, hi = np.log(t0), np.log(s)
        for _ in range(_BISECT):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if change(float(np.exp(mid)), i) < 0.5 * size else (lo, mid)
        t = float(np.exp(lo)) / 4  # well inside the pieces next to x
        if not t > t0:
            continue
        (pv, pm, pa), (mv, mm, ma) = line.full(t), line.full(-t)
        fwd, bwd = float(pv[i]) / t, -float(mv[i]) / t
        tol = safety * 2 * (c_round * (float(pm[i]) + float(mm[i])) + float(pa[i])
                            + float(ma[i])) * line.eps / t
        natural = max(abs(float(a[i])), abs(fwd), abs(bwd))
        resolved = np.isfinite(tol) and tol <= inconclusive_rtol * natural
        if resolved and min(fwd, bwd) - tol <= a[i] <= max(fwd, bwd) + tol:
            jd.verdict[i], jd.kind[i], jd.reason[i] = PASS, "kink", None
            jd.tolerance[i] = tol
        elif not resolved:
            jd.verdict[i] = INCONCLUSIVE
            jd.reason[i] = Reason.STRUCTURE_BELOW_STEP.text(
                "the differences jump at every step tried, but not at the smallest move of "
                "x, and the steps below the jump's distance do not resolve the derivative")
        # resolved and outside the line's bracket: a kink of several inputs met along the
        # line (clip's t, lo and hi moved together), which a line cannot judge: left to
        # the callers' jump handling (entries isolated, joint judgement), as before
    return jd


_MAX_BELOW = 8  # jump channels of one line judged below the jump's distance (the rest INCONCLUSIVE)
_BISECT = 12    # halvings of log(step) between the smallest move and the finest step
