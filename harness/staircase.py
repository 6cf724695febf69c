"""Staircases: jumps crossed by the coarse rungs of the ladder only, judged on the fine ones.

``floormod``'s second-order function ``-v floor(x / y)`` at x / y = 1056900.5 is piecewise
constant with a period of ~2.4e-7 in y: the ladder's coarse rungs (16h ... h / 16) cross
1 to 51 jumps, and their differences grow with the count of crossings like a slope (the
staircase's *average* slope, -x v / y^2); its fine rungs cross none and give exact 0s. The
derivative at x is that of the piece x sits on (0), not the average slope.

The principle: a one-sided difference ``f(x +- t) - f(x)`` known to within its round-off
``e`` (``C_ROUND`` ulps of the outputs plus the argument's rounding) is a *measurement* of
the piece x sits on when no jump lies within t of x. Judged per channel, from the
differences the ladder has evaluated already (no new evaluation):

1. Residuals against the analytic slope ``a``: ``R+ = f(x + t) - f(x) - a t``,
   ``R- = f(x - t) - f(x) + a t``. A jump closer to x than the finest rung adds a constant
   ``J`` on one side (the finest rung's residual, when it exceeds its round-off).
2. The *fine* rungs: the longest run of the finest rungs (at least ``MIN_FINE``, a span of
   16 in t) where both sides' residuals less J stay within ``SAFETY`` times their
   round-off: there the analytic slope and the function agree, exactly as far as rounding
   allows.
3. The coarse rung just above them disagrees - in the odd part ``O = (R+ - R-) / 2`` (a
   smooth function's curvature is even and cancels there) - by more than ``REJECT`` times
   the next rung's round-off: had the coarse slope held below that rung, the fine rungs
   would have shown it far above their round-off (a smooth function's higher odd terms
   shrink 64-fold per rung and would show at the next rung too). So the fine rungs refute
   the coarse slope; coarse odd residuals that grow faster than ``GROWTH`` per rung (a
   Taylor term, not a count of crossings) leave the FAIL standing.

A wrong derivative FAILs still: the fine rungs then disagree with ``a`` (step 2 fails), and
a fault below the fine rungs' round-off that the coarse rungs resolve shows the same
relative disagreement at every rung (step 3 fails: the coarse odd residual is then at most
4 times the next rung's, inside its round-off). Outcome per channel: the fine rungs alone
agree (PASS when they resolve ``inconclusive_rtol`` and show a change; INCONCLUSIVE
``JUMPS_WITHIN_STEP`` when they do not, or are exactly 0 - a flat piece and a change
rounded away inside the function, ``(x + 1e20) - 1e20``, look alike), or one side is a
nonzero constant J (a jump at x, or closer than the finest rung: NOT_APPLICABLE
``DISCONTINUOUS`` - no derivative to verify).

>>> import numpy as np
>>> from gradverify.harness.numeric import Line
>>> stairs = Line(lambda t: np.array([np.floor(500000.25 + 1e6 * t) - 5e5]))  # period 1e-6
>>> t = [1e-4 / 4 ** k for k in range(8)]
>>> v = fine_rungs(stairs, t, np.zeros(1), c_round=4.0, eps=2.0 ** -52)
>>> v.code.tolist(), v.value.tolist()
([1], [0.0])
>>> fine_rungs(stairs, t, np.array([1e6]), c_round=4.0, eps=2.0 ** -52).code.tolist()
[0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gradverify.harness.budget import INCONCLUSIVE_RTOL, SAFETY
from gradverify.harness.judge import Judgement
from gradverify.harness.jump_entries import even_unsettled, jump_beside_slope, ladder_steps
from gradverify.harness.numeric import Estimate
from gradverify.harness.reasons import Reason
from gradverify.harness.report import FAIL, INCONCLUSIVE, NOT_APPLICABLE, PASS

__all__ = ["FineRungs", "fine_rungs", "rejudge", "quantised", "stairs_beside_slope",
           "MIN_FINE", "REJECT", "GROWTH", "NONE", "PIECE", "JUMP_AT_X"]

MIN_FINE = 3    # fine rungs that must agree: t spans 16x, so one rung is not a fluke
REJECT = 128.0  # coarse odd residual / next rung's round-off: 2 x 64, a cubic term's fall
GROWTH = 16.0   # per-rung growth of the coarse odd residuals: 4 for crossings, 64 cubic
WHOLE = 16.0    # a multiple is measured while q's round-off times it stays below q / 16
MIN_WHOLE = 5   # measured whole multiples (of 16 differences) that make a staircase
NONE, PIECE, JUMP_AT_X = 0, 1, 2  # codes: no staircase; fine rungs agree; jump at x
BESIDE_RUNGS = 5  # the finest Richardson residuals judged per side (t spans 4 ** 5)
MOST_JUMPS = 8   # crossings counted by one residual near the finest rung: a few, not 16 ** k


@dataclass
class FineRungs:
    """Per channel: ``code`` (NONE, PIECE, JUMP_AT_X), the fine rungs' slope ``value``
    (per unit t), its ``tolerance`` (safety x round-off of the central difference at the
    coarsest fine rung), the coarsest fine ``step`` and the ``jump`` J at x."""

    code: np.ndarray
    value: np.ndarray
    tolerance: np.ndarray
    step: np.ndarray
    jump: np.ndarray
    flat: np.ndarray = None  # type: ignore[assignment]  # fine rungs exactly 0, both sides


def _rungs(line: object, steps: Sequence[float], eps: float, c_round: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Differences (rungs, channels) up and down, and their round-off bounds."""
    phi0, mag0, arg0 = line.full(0.0)  # type: ignore[attr-defined]
    out = []
    for sign in (1.0, -1.0):
        d, e = [], []
        for t in steps:
            phi, mag, arg = line.full(sign * t)  # type: ignore[attr-defined]
            with np.errstate(invalid="ignore"):
                d.append(phi - phi0)
                # both ends round: c_round ulps of the outputs, the argument's spacing
                e.append(2 * eps * (c_round * np.fmax(mag, mag0) + np.fmax(arg, arg0)))
        out += [np.array(d, np.float64), np.array(e, np.float64)]
    return out[0], out[1], out[2], out[3]


def _less_jump(r: np.ndarray, e: np.ndarray, t: np.ndarray, safety: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """One side's residuals (rungs, channels) less a jump closer than the finest rung, and
    that jump J (0 where the finest residual is within its round-off). Beyond a jump the
    piece has a slope of its own (floor(x / y)'s quotient changes with it): J + s t through
    the two finest rungs, checked by the others."""
    s = (r[-2] - r[-1]) / (t[-2, 0] - t[-1, 0])
    j = r[-1] - s * t[-1, 0]
    # a slope's mismatch alone extrapolates to J = 0: no jump, the residuals stay
    jumped = (np.abs(r[-1]) > safety * e[-1]) & (np.abs(j) > 2 * safety * e[-1])
    return np.where(jumped, r - j - s * t, r), np.where(jumped, j, 0.0)


def fine_rungs(line: object, steps: Sequence[float], analytic: np.ndarray, *,
               c_round: float, eps: float, safety: float = SAFETY) -> FineRungs:
    """The staircase judgement of the module docstring for every channel of ``line``
    (a ``numeric.Line``) at the rungs ``steps`` (coarse first, each a quarter of the one
    before), against ``analytic`` (per unit t). Channels with ``code == NONE`` are no
    staircase (or not one the fine rungs refute): judge them as before."""
    t = np.asarray(steps, np.float64)[:, None]
    up, e_up, down, e_dn = _rungs(line, steps, eps, c_round)
    a = np.nan_to_num(np.asarray(analytic, np.float64), nan=np.inf)
    n, k = up.shape
    with np.errstate(all="ignore"):
        r_up, r_dn = up - a * t, down + a * t
        r_up, j_up = _less_jump(r_up, e_up, t, safety)
        r_dn, j_dn = _less_jump(r_dn, e_dn, t, safety)
        agree = ((np.abs(r_up) <= safety * (e_up + e_up[-1]))
                 & (np.abs(r_dn) <= safety * (e_dn + e_dn[-1])))
    ok = np.isfinite(up).all(axis=0) & np.isfinite(down).all(axis=0) & np.isfinite(a)
    # the run of agreeing rungs from the finest up
    run = np.zeros(k, int)
    still = ok.copy()
    for i in range(n - 1, -1, -1):
        still &= agree[i]
        run += still
    k0 = n - run - 1  # the coarse rung just above the fine ones
    code = np.full(k, NONE, np.int8)
    value, tol, step = np.full(k, np.nan), np.full(k, np.inf), np.full(k, np.nan)
    cols = np.arange(k)
    cand = ok & (run >= MIN_FINE) & (k0 >= 0)
    for c in np.flatnonzero(cand).tolist():
        i0 = int(k0[c])
        odd = (r_up[:i0 + 1, c] - r_dn[:i0 + 1, c]) / 2
        odd_err = safety * (e_up[:i0 + 1, c] + e_dn[:i0 + 1, c])
        next_err = e_up[i0 + 1, c] + e_dn[i0 + 1, c]
        if not abs(odd[i0]) > REJECT * safety * next_err:
            continue  # the coarse disagreement is even (curvature) or within reach
        sizeable = np.abs(odd) > odd_err
        o = np.abs(odd[sizeable])
        if o.size > 1 and np.any(o[:-1] > GROWTH * o[1:]):
            continue  # grows like a Taylor term, not like a count of crossings
        code[c] = PIECE
    jump = np.where((j_up != 0) | (j_dn != 0), np.where(j_up != 0, j_up, j_dn), 0.0)
    at_x = (code == PIECE) & ((j_up != 0) != (j_dn != 0))
    code[(code == PIECE) & (j_up != 0) & (j_dn != 0)] = NONE  # two jumps: not this shape
    code[at_x] = JUMP_AT_X
    f = np.clip(k0 + 1, 0, n - 1)
    tf = t[f, 0]
    with np.errstate(all="ignore"):
        central = (r_up[f, cols] - r_dn[f, cols]) / (2 * tf)
        value = np.where(code != NONE, a + central, value)
        tol = np.where(code != NONE, safety * (e_up[f, cols] + e_dn[f, cols]) / (2 * tf),
                       tol)
        step = np.where(code != NONE, tf, step)
    fine = np.arange(n)[:, None] > k0[None, :]
    flat = np.all(((up == 0) & (down == 0)) | ~fine, axis=0)
    return FineRungs(code=code, value=value, tolerance=tol, step=step, jump=jump, flat=flat)


def quantised(up: np.ndarray, down: np.ndarray, e_up: np.ndarray, e_dn: np.ndarray,
              safety: float = SAFETY) -> np.ndarray:
    """Per channel (columns of the differences at the rungs, coarse first): are the
    differences on both sides whole multiples of one jump - a piecewise-constant function
    whose period is near the finest rung, so that no rung is free of jumps? The smallest
    sizeable difference is the quantum q; a rung's multiple m is *measured* only while
    q's own round-off times m stays below q / ``WHOLE``, and every measured multiple
    must be whole within round-off - at least ``MIN_WHOLE`` of them, of three sizes or
    more. A slope (or a gentle curve) gives whole multiples too at these power-of-4 rungs,
    proportional to the step on both sides, and so does a kink
    at a point commensurate with them, but affine in the step on each side of the kink:
    not counted.

    >>> t = np.array([4.0 ** -k for k in range(8)])[:, None]
    >>> steps = np.array([51, 13, 3, 1, 1, 0, 0, 0], float)[:, None] * 0.7
    >>> e = np.full((8, 1), 1e-15)
    >>> quantised(steps, -steps, e, e).tolist(), quantised(t * 3, -t * 3, e, e).tolist()
    ([True], [False])
    """
    d, e = np.concatenate([up, down]), np.concatenate([e_up, e_dn])
    n = up.shape[0]
    with np.errstate(all="ignore"):
        size = np.abs(d)
        big = size > safety * e
        q = np.min(np.where(big, size, np.inf), axis=0)
        e_max = np.max(e, axis=0)
        m = size / q
        measured = big & (m * safety * e_max <= q / WHOLE)
        whole = np.abs(m - np.round(m)) * q <= safety * (e + m * e_max)
        counts = np.where(big, np.round(m), 0.0)
    out = ((measured.sum(axis=0) >= MIN_WHOLE) & np.all(whole | ~measured, axis=0)
           & np.isfinite(q))
    r = 4.0 ** np.arange(n - 1, -1, -1)  # the rungs' steps in units of the finest
    # proportional to the step at every measured rung of both sides (the coarse rungs,
    # whose multiples are not measured, may carry a curvature's share): a slope, not a
    # staircase. Vectorised first: on a probe's line every smooth output entry is one.
    out &= ~(_proportional(counts[:n], measured[:n], r)
             & _proportional(counts[n:], measured[n:], r))
    for c in np.flatnonzero(out).tolist():
        if len({float(v) for v in counts[measured[:, c], c]}) < 3:
            out[c] = False
            continue
        tol = safety * (e[:, c] + e_max[c])
        # a kink at a point commensurate with the steps (|t - 3e-5| on rungs 9.6e-5 ...)
        # gives whole multiples too, but affine in t on each side of it
        out[c] = not all(_two_pieces(d[sl, c], r, tol[sl]) for sl in (slice(0, n),
                                                                      slice(n, None)))
    return out


def stairs_beside_slope(up: np.ndarray, down: np.ndarray, e_up: np.ndarray,
                        e_dn: np.ndarray, safety: float = SAFETY) -> np.ndarray:
    """Per channel (columns of the differences at the rungs, coarse first, each rung a
    quarter of the one before): are they a slope plus whole jumps - a staircase whose
    period is near or below the finest rung, beside a smooth part, so that the coarse
    rungs grow like the staircase's *average* slope and only the fine ones show the
    jumps? (floormod's ``-v floor(x / y)`` along a probe that moves v, x and y: the slope
    of v, plus one jump of v per period of x or y crossed.)

    The Richardson residuals ``rho_k = d_k - 4 d_(k+1)`` cancel every slope exactly (the
    piece's and the average one alike): a smooth function leaves ``3/4 c t^2``, shrinking
    16-fold per rung; a kink crossed leaves one constant beyond it; a staircase leaves
    differences of crossing counts, a few whole jumps at every rung. On the finest
    ``BESIDE_RUNGS`` residuals of each side: the smallest one far above round-off
    (``REJECT`` times) is the quantum q; every residual is within q / 16 (a curvature's
    share) of a whole multiple of q of at most ``MOST_JUMPS``; at least ``MIN_WHOLE`` are
    nonzero multiples, of three sizes or more (one kink crossed on each side gives two).
    Or, jumps of several sizes at once (entries with different periods summed into one
    output): the residuals flip sign twice on one side (:func:`_flips`).
    A slope is invisible here, so a wrong gradient changes nothing: f itself jumps within
    every step, and no step the dtype allows resolves the piece's slope.

    >>> t = np.array([4.0 ** -k for k in range(8)])[:, None]
    >>> up = 3e3 * t + np.array([[40, 10, 3, 1, 2, 0, 1, 0]]).T * 0.7    # jumps of 0.7
    >>> down = -3e3 * t - np.array([[41, 9, 2, 1, 0, 1, 0, 0]]).T * 0.7
    >>> e = np.full((8, 1), 1e-15)
    >>> stairs_beside_slope(up, down, e, e).tolist()
    [True]
    >>> stairs_beside_slope(3e3 * t + t ** 2, -3e3 * t + t ** 2, e, e).tolist()
    [False]
    """
    def rho(d: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d, e = np.asarray(d, np.float64), np.asarray(e, np.float64)
        return (d[:-1] - 4 * d[1:])[-BESIDE_RUNGS:], (e[:-1] + 4 * e[1:])[-BESIDE_RUNGS:]
    ru, eu = rho(up, e_up)
    rd, ed = rho(down, e_dn)
    r, e = np.concatenate([ru, rd]), np.concatenate([eu, ed])
    with np.errstate(all="ignore"):
        size = np.abs(r)
        q = np.min(np.where(size > REJECT * safety * e, size, np.inf), axis=0)
        m = np.round(size / q)
        near = np.abs(size - m * q) <= q / WHOLE + safety * e
        counts = np.where(near & (m <= MOST_JUMPS), m, -1.0)
    out = (np.all(counts >= 0, axis=0) & (np.sum(counts > 0, axis=0) >= MIN_WHOLE)
           & np.isfinite(q) & (q > 0))
    for c in np.flatnonzero(out).tolist():
        out[c] = len({float(v) for v in counts[:, c] if v > 0}) >= 3
    # jumps of several sizes (entries with different periods summed into one channel):
    # no one quantum, but the residuals flip sign at random - a piecewise-smooth
    # function's flip at most once per kink crossed (curvature keeps one sign): twice
    # on one side, between residuals far above round-off, takes three kinks within
    # the fine rungs with alternating changes of slope
    flips = [_flips(np.asarray(d, np.float64)[:-1] - 4 * np.asarray(d, np.float64)[1:],
                    np.asarray(e, np.float64)[:-1] + 4 * np.asarray(e, np.float64)[1:],
                    safety) for d, e in ((up, e_up), (down, e_dn))]
    return out | (np.maximum(flips[0], flips[1]) >= 2)


def _flips(r: np.ndarray, e: np.ndarray, safety: float) -> np.ndarray:
    """Per channel: sign changes between consecutive residuals ``r`` (rungs, channels)
    far above their round-off ``e`` (``REJECT`` times), the coarsest rung left out (a
    smooth part's higher terms may still show there)."""
    r, e = r[1:], e[1:]
    sgn = np.where(np.abs(r) > REJECT * safety * e, np.sign(r), 0.0)
    flips = np.zeros(r.shape[1:], int)
    last = np.zeros(r.shape[1:])
    for k in range(r.shape[0]):
        flips += (sgn[k] != 0) & (last != 0) & (sgn[k] != last)
        last = np.where(sgn[k] != 0, sgn[k], last)
    return flips


def _proportional(k: np.ndarray, measured: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Per channel (columns): are one side's measured multiples ``k`` (rungs, channels;
    coarse first) proportional to the steps ``r``? (No measured rung: vacuously.)"""
    last = k.shape[0] - 1 - np.argmax(measured[::-1], axis=0)  # finest measured rung
    cols = np.arange(k.shape[1])
    same = k * r[last][None, :] == k[last, cols][None, :] * r[:, None]
    return np.all(same | ~measured, axis=0)


def _two_pieces(d: np.ndarray, r: np.ndarray, tol: np.ndarray) -> bool:
    """Are one side's differences (coarse first) affine in the step on the rungs above
    some rung and on those below it (at most one kink crossed), within ``tol``?"""
    def affine(i: slice) -> bool:
        if d[i].size < 3:
            return True
        a = np.vstack([r[i], np.ones(d[i].size)]).T
        coef = np.linalg.lstsq(a, d[i], rcond=None)[0]
        return bool(np.all(np.abs(a @ coef - d[i]) <= tol[i]))
    return any(affine(slice(0, k)) and affine(slice(k, d.size)) for k in range(d.size + 1))


def rejudge(line: object, h: float, c_round: float, analytic: np.ndarray, est: Estimate,
            jd: Judgement, *, scale: float = 0.0, safety: float = SAFETY,
            inconclusive_rtol: float = INCONCLUSIVE_RTOL) -> Judgement:
    """The ladder's FAILed channels of ``line`` judged again on its fine rungs
    (:func:`fine_rungs`): a staircase the fine rungs refute is judged on them (PASS when
    they resolve ``inconclusive_rtol``, else INCONCLUSIVE ``JUMPS_WITHIN_STEP``; a jump at
    x NOT_APPLICABLE ``DISCONTINUOUS``); ``est`` then carries the fine rungs' value and
    step. Every other channel, and every channel not FAILed, keeps its judgement."""
    failing = np.array([v == FAIL for v in jd.verdict])
    if not failing.any():
        return jd
    eps = float(getattr(line, "eps", 2.0 ** -52))
    fr = fine_rungs(line, ladder_steps(eps, h), analytic, c_round=c_round, eps=eps,
                    safety=safety)
    a = np.asarray(analytic, np.float64)
    up, e_up, down, e_dn = _rungs(line, ladder_steps(eps, h), eps, c_round)
    # (a probe's line is judged per output entry: ``jump_entries.jumping`` asks the same)
    whole = (quantised(up, down, e_up, e_dn, safety)
             | stairs_beside_slope(up, down, e_up, e_dn, safety)
             | even_unsettled(up, down, e_up, e_dn, safety)) if getattr(
        line, "entries", None) is None else np.zeros(failing.size, bool)
    for i in np.flatnonzero(failing & (fr.code == NONE) & whole).tolist():
        jd.verdict[i] = INCONCLUSIVE
        jd.reason[i] = Reason.JUMPS_WITHIN_STEP.text(
            "every step tried crosses jumps (the differences are whole multiples of one "
            "jump, or a slope plus jumps): no step resolves the derivative of the piece "
            "at x")
    # a jump at x on one side or both, beside one slope, with the coarse rungs crossing
    # more jumps (two jumps at x are no shape ``fine_rungs`` verifies a slope on)
    at_x = jump_beside_slope(up, down, ladder_steps(eps, h), e_up, e_dn, safety) if getattr(
        line, "entries", None) is None else np.zeros(failing.size, bool)
    for i in np.flatnonzero(failing & (fr.code == NONE) & ~whole & at_x).tolist():
        jd.verdict[i], jd.kind[i] = NOT_APPLICABLE, "jump"
        jd.reason[i] = Reason.DISCONTINUOUS.text(
            "the finest steps show a jump at x beside one slope; the coarser steps cross "
            "more jumps")
    for i in np.flatnonzero(failing & (fr.code != NONE)).tolist():
        if fr.code[i] == JUMP_AT_X:
            jd.verdict[i], jd.kind[i] = NOT_APPLICABLE, "jump"
            jd.reason[i] = Reason.DISCONTINUOUS.text(
                f"the finest steps show a jump of {fr.jump[i]:.3g} at x on one side; the "
                "coarser steps cross more jumps")
            continue
        natural = max(abs(a[i]), abs(fr.value[i]), scale)
        jd.tolerance[i] = fr.tolerance[i]
        if fr.flat[i]:
            # no change at all below the coarse rungs: a flat piece, or a change rounded
            # away inside the function ((x + 1e20) - 1e20 is a staircase in float64 too)
            jd.verdict[i] = INCONCLUSIVE
            jd.reason[i] = Reason.JUMPS_WITHIN_STEP.text(
                "the coarse steps cross jumps; the steps below them show no change at all "
                "(a flat piece, or a change rounded away inside the function)")
        elif fr.tolerance[i] <= inconclusive_rtol * natural:
            jd.verdict[i], jd.reason[i] = PASS, None
        else:
            jd.verdict[i] = INCONCLUSIVE
            jd.reason[i] = Reason.JUMPS_WITHIN_STEP.text(
                "the coarse steps cross jumps; the steps below them agree with the "
                f"analytic value within {fr.tolerance[i]:.3g}")
        est.value[i], est.step[i] = fr.value[i], fr.step[i]
    return jd
