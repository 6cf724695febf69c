"""A FAIL must stand on the step ladder as a whole: the rungs' estimates of one derivative
may not contradict each other beyond their own error bounds.

The ladder (``numeric.refine``) keeps the rung whose bound is smallest. Its bound models
truncation by the spread of neighbouring Richardson values and round-off by the outputs'
size and the noise measured below the step. A forward whose rounding is *frozen* over the
fine rungs defeats both: ``gelu(x) = x (1 + erf(x / sqrt 2)) / 2`` at ``x = -7.5`` forms
``1 + erf`` as a difference of terms of size 1, so the computed function is ``x c`` with
``c`` constant on stairs ``2e-4`` wide; every fine rung then shows the slope ``c = 3e-14``
exactly, with no spread and no noise, where the derivative is ``-1.8e-12``. The coarse
rungs, which cross stairs, find it to a few per cent within their own bounds. Two
estimates of one derivative that disagree beyond both bounds say that an error model is
wrong somewhere, not which one; when the gradient agrees with one of them, the FAIL has no
ground: INCONCLUSIVE (``STRUCTURE_BELOW_STEP``). A wrong gradient agrees with no rung of a
smooth function (they agree with each other), so it still FAILs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradverify.harness.budget import C_ROUND
from gradverify.harness.judge import Judgement
from gradverify.harness.numeric import Estimate, Line
from gradverify.harness.reasons import Reason
from gradverify.harness.report import FAIL, INCONCLUSIVE, Entry

if TYPE_CHECKING:
    from gradverify.harness.fast import Probe

__all__ = ["rungs_disagree", "recheck_probe", "EXTRA"]

EXTRA = 2  # rungs above the ladder's top, each the step ratio coarser (float64: 1024h, 4096h)


def rungs_disagree(line: Line, est: Estimate, jd: Judgement, analytic: np.ndarray,
                   safety: float, c_round: float = C_ROUND) -> Judgement:
    """``jd`` with each smooth FAIL channel whose ladder contradicts itself (some rung's
    Richardson value off the chosen estimate by more than both bounds, the analytic value
    nearer that rung than the chosen estimate and within their disagreement) made
    INCONCLUSIVE.

    >>> import numpy as np
    >>> from gradverify.harness.judge import judge
    >>> from gradverify.harness.numeric import Line, refine
    >>> from scipy.special import erf
    >>> gelu = lambda t: np.array([0.5 * (t - 7.5) * (1 + erf((t - 7.5) / np.sqrt(2)))])
    >>> line = Line(gelu)                                    # t: x + 7.5
    >>> est = refine(line, 6e-6)
    >>> slope = np.array([-1.7938314830426484e-12])          # mpmath's
    >>> jd = judge(slope, np.zeros(1), est, scale=0.0)
    >>> jd.verdict[0], rungs_disagree(line, est, jd, slope, 4.0).verdict[0]
    ('FAIL', 'INCONCLUSIVE')
    """
    failing = [i for i in range(len(jd.verdict))
               if jd.verdict[i] == FAIL and jd.kind[i] == "smooth"]
    # a probe's FAIL (fast mode) goes on to localisation and the kink judgement, which
    # an early abstention would pre-empt: reduce_max's ties in float32 make its coarse rungs
    # straddle kinks, one of them nearer the gradient than the fine estimate by chance
    if est.rungs is None or not failing or (getattr(line, "entries", None) is not None
                                            and not getattr(line, "rungs", False)):
        return jd
    rich, bound = _extended(line, *est.rungs, c_round)
    a = np.asarray(analytic, np.float64)
    for i in failing:
        with np.errstate(invalid="ignore"):
            usable = np.isfinite(rich[:, i]) & np.isfinite(bound[:, i])
            margin = safety * bound[:, i] + jd.tolerance[i]
            gap = np.abs(rich[:, i] - est.value[i])
            # apart beyond the rung's own bound, and the gradient nearer that rung than the
            # chosen estimate: a wrong gradient of a smooth function sits near the chosen
            # estimate, whatever a rung's bound missed
            apart = (gap > bound[:, i] + jd.tolerance[i]) & (
                np.abs(a[i] - rich[:, i]) < np.abs(a[i] - est.value[i]))
            # bounds that two estimates disagree beyond hold for neither: the derivative
            # is resolved to the disagreement, around both (coarse rungs frozen on stairs
            # of their own show 1e-16 spread 0.5 % off the derivative)
            within = ((a[i] >= np.minimum(rich[:, i], est.value[i]) - gap - margin)
                      & (a[i] <= np.maximum(rich[:, i], est.value[i]) + gap + margin))
        hit = np.flatnonzero(usable & apart & within)
        if hit.size:
            k = int(hit[-1])  # the finest such rung
            jd.verdict[i] = INCONCLUSIVE
            jd.reason[i] = Reason.STRUCTURE_BELOW_STEP.text(
                f"the step ladder contradicts itself: a coarser rung finds "
                f"{rich[k, i]:.6g} (+- {safety * bound[k, i]:.2g}), the chosen step "
                f"{est.value[i]:.6g} (+- {jd.tolerance[i]:.2g}), and the gradient lies "
                "within their disagreement (rounding frozen inside the function over the "
                "fine steps, e.g. 1 + erf(x) in its tail)")
    return jd


def _extended(line: Line, hs: np.ndarray, rich: np.ndarray, bound: np.ndarray,
              c_round: float) -> tuple[np.ndarray, np.ndarray]:
    """The ladder's Richardson values and bounds with ``EXTRA`` rungs above its top (the
    same rules as ``numeric.refine``: the spread of neighbouring values, the outputs'
    rounding amplified by the extrapolation)."""
    ratio = float(hs[0] / hs[1]) if hs.size > 1 else 4.0
    r2 = ratio * ratio
    steps = [float(hs[0]) * ratio ** j for j in range(EXTRA, -1, -1)] + [float(hs[1])]
    central, mags = [], []
    for t in steps:
        (p, mp), (m, mm) = line(t), line(-t)
        with np.errstate(all="ignore"):
            central.append((p - m) / (2 * t))
        mags.append(np.fmax(np.abs(mp), np.abs(mm)))
    central = np.array(central)
    with np.errstate(all="ignore"):
        top = (r2 * central[1:] - central[:-1]) / (r2 - 1)  # at steps[1:]
        gaps = np.abs(np.diff(top, axis=0))
        spread = np.fmax(np.vstack([np.full((1, top.shape[1]), np.nan), gaps]),
                         np.vstack([gaps, np.full((1, top.shape[1]), np.nan)]))
        amp = (r2 + 1 / ratio) / (r2 - 1) / np.array(steps[1:])[:, None]
        more = spread + np.array(mags[1:]) * c_round * line.eps * amp
    # steps[1:] are the new rungs, the old top and the old second rung: keep the new ones
    new = slice(0, EXTRA)
    return (np.vstack([top[new], rich]), np.vstack([np.where(np.isfinite(more[new]),
                                                             more[new], np.inf), bound]))


def recheck_probe(probe: Probe, entry: Entry, found: list[Entry]) -> str:
    """Fast mode: a probe's FAIL settled (``fast.Probe.settle``) on smooth entries or
    jointly, judged again on each failing entry's own line with the ladder's
    self-consistency asked (:func:`rungs_disagree`; not asked before settling, where a
    coarse rung straddling a tie would pre-empt the kink judgement). Every one
    INCONCLUSIVE: the verdict is (the entries carry the reason); else FAIL stands.
    A wrong gradient of a smooth function disagrees with every rung alike, and an entry
    at a tie is a kink on its own line, which the rule leaves alone: FAIL. An entry whose
    tie lies between the fine and the coarse rungs is judged as full mode judges it."""
    fails = list({(e.input, e.index): e for e in found if e.verdict == FAIL}.values()) or [
        entry]
    # a joint judgement of flat-looking entries (no kink seen) is asked again as well: a
    # frozen stair's slope looks flat beside the derivative
    if any(e.kind not in ("smooth", "joint kink") for e in found + [entry]):
        return FAIL
    probe.rungs = True
    try:
        again = [probe.compare(_span(probe, e)) for e in fails]
    finally:
        probe.rungs = False
    if any(a.verdict != INCONCLUSIVE for a in again):
        return FAIL
    for e in found + [entry]:
        if e.verdict == FAIL:
            e.verdict, e.note = INCONCLUSIVE, again[0].note
    return INCONCLUSIVE


def _span(probe: Probe, e: Entry) -> tuple[int, int] | None:
    """The flat support position of a single entry (None: the whole probe)."""
    if e.index is None:
        return None
    for k, off in probe.blocks:
        if k == e.input:
            i = off + int(np.ravel_multi_index(e.index, probe.ref.xs[k].shape))
            return i, i + 1
    return None
