"""Numeric directional derivatives with error bounds, and the judgement against an analytic
value.

Everything works on a *line* ``t -> phi(t)``: ``phi(t) = <v, f(x + t d)>`` for a probe, or
``f(x + t d)`` itself (one channel per output entry) for a Jacobian column. ``t`` is
dimensionless: the direction ``d`` already carries the scale of ``x`` (relative steps).

Two estimators:

- :func:`quick` - central differences at ``h`` and ``h/2`` and one Richardson step
  (4 evaluations). Budget: truncation ``|D(h/2) - D(h)|/3`` (the error of the *less*
  accurate of the two, so an over-estimate for the extrapolated value), output round-off
  ``3 C_ROUND eps F / h`` where F bounds ``|phi|`` near 0, argument rounding likewise, and
  the cancellation noise ``3 C_NOISE sigma / h`` when a measured noise level is given.
- :func:`~gradverify.harness.ecnoise.noise` - the noise level sigma of phi near 0.
- :func:`refine` - a ladder of steps ``16h, 4h, h, ... h/1024`` (in float64 from 256h:
  coarser Richardson rungs resolve what round-off hides at h): Richardson at each rung, the
  budget from the spread of neighbouring rungs plus round-off and measured noise, the best
  rung per channel, and one-sided differences to recognise kinks (the gap between the
  one-sided derivatives stays put as h shrinks) and jumps (it grows like 1/h).

Every error term is an entry of :class:`~gradverify.harness.budget.ErrorBudget`.

>>> import numpy as np
>>> line = Line(lambda t: np.array([np.sin(1.0 + t)]), np.float64)
>>> est = quick(line, 1e-4)
>>> bool(abs(est.value[0] - np.cos(1.0)) <= est.bound[0] < 1e-9)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradverify.harness.budget import (
    C_NOISE,
    C_ROUND,
    ErrorBudget,
    default_step,
    ladder_top,
)
from gradverify.harness.ecnoise import noise
from gradverify.harness.reasons import Reason

__all__ = ["Line", "Estimate", "quick", "refine", "noise", "default_step", "C_ROUND",
           "FLAT_REACH"]

FLAT_REACH = 0.1  # the farthest step looked at when phi is flat on the whole ladder


class Line:
    """``phi`` restricted to a line, with its round-off scale and an evaluation count.

    ``phi(t)`` returns an array (one value per channel), or with ``paired=True`` a pair
    ``(values, magnitudes)`` or triple ``(values, magnitudes, argument)`` where magnitudes
    bound the terms whose rounding enters phi (default ``|phi(t)|``) and ``argument`` the
    change of phi when the argument rounds to its spacing, in units of eps. Non-finite
    values are kept and reported by the estimators.
    """

    def __init__(self, phi: Callable[[float], Any], dtype: type = np.float64,
                 paired: bool = False):
        self._phi = phi
        self._paired = paired
        self.eps = float(np.finfo(dtype).eps)
        self.calls = 0
        self.top = 0.0  # the largest output at x when the channels leave some outputs out
        self.terms: np.ndarray | None = None  # per channel, its output's terms' size
        self._cache: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __call__(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        value, mag, _ = self.full(t)
        return value, mag

    def full(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value, output magnitude, argument-rounding magnitude) at t."""
        hit = self._cache.get(t)
        if hit is not None:
            return hit
        self.calls += 1
        out = self._phi(t)
        if self._paired:
            parts = [np.atleast_1d(np.asarray(o, dtype=np.float64)) for o in out]
            value, mag = parts[0], parts[1]
            arg = parts[2] if len(parts) > 2 else np.zeros_like(value)
        else:
            value = np.atleast_1d(np.asarray(out, dtype=np.float64))
            mag = np.abs(value)
            arg = np.zeros_like(value)
        self._cache[t] = (value, mag, arg)
        return value, mag, arg


@dataclass
class Estimate:
    """Per-channel estimate of ``phi'(0)`` with its error budget.

    kink: channels where the one-sided derivatives differ and keep differing as h shrinks;
    for them ``left``/``right`` are the one-sided limits and ``side_bound`` their error.
    jump: channels where phi is discontinuous at 0 (no derivative exists).
    unreliable: channels with no trustworthy estimate, ``reason`` (a Reason text) says why.
    """

    value: np.ndarray
    budget: ErrorBudget
    step: np.ndarray
    kink: np.ndarray
    left: np.ndarray
    right: np.ndarray
    side_bound: np.ndarray
    unreliable: np.ndarray
    reason: list[str | None]
    scale: np.ndarray  # |phi| near 0: the natural size of phi (for relative judgements)
    flat: np.ndarray | None = None  # bit-for-bit constant over the whole ladder
    jump: np.ndarray | None = None
    rungs: tuple[np.ndarray, ...] | None = None  # refine: steps, Richardson values, bounds

    @property
    def bound(self) -> np.ndarray:
        """The numeric estimate's error bound (the budget's numeric terms)."""
        return self.budget.numeric()

    @property
    def roundoff(self) -> np.ndarray:
        return self.budget.roundoff()


def _empty(n: int) -> Estimate:
    z = np.zeros(n)
    budget = ErrorBudget.zeros(n)
    budget.truncation[:] = np.inf
    return Estimate(value=z.copy(), budget=budget, step=z.copy(), kink=np.zeros(n, bool),
                    left=z.copy(), right=z.copy(), side_bound=np.full(n, np.inf),
                    unreliable=np.ones(n, bool), reason=[Reason.NONFINITE_NEAR_X.value] * n,
                    scale=z.copy(), jump=np.zeros(n, bool))


def _last_run(mask: np.ndarray, length: int) -> np.ndarray:
    """Per channel (columns of ``mask``, rungs down the rows), the index k of the finest
    rung ending a run of ``length`` consecutive True rungs (k - length + 1 .. k); -1 if
    there is none.

    >>> _last_run(np.array([[1, 1], [1, 0], [1, 1], [0, 1]], bool), 2).tolist()
    [2, 3]
    """
    rungs = mask.shape[0]
    if rungs < length:
        return np.full(mask.shape[1:], -1)
    run = mask[length - 1:].copy()
    for i in range(1, length):
        run &= mask[length - 1 - i:rungs - i]
    found = run.any(axis=0)
    return np.where(found, rungs - 1 - np.argmax(run[::-1], axis=0), -1)


def quick(line: Line, h: float, c_round: float = C_ROUND,
          sigma: np.ndarray | float = 0.0) -> Estimate:
    """Central differences at h and h/2 plus one Richardson step: 4 evaluations.

    sigma: the measured noise level of phi (see :func:`noise`), charged as cancellation.
    """
    (p1, a1, r1), (m1, b1, s1) = line.full(h), line.full(-h)
    (p2, a2, r2), (m2, b2, s2) = line.full(h / 2), line.full(-h / 2)
    n = p1.size
    finite = np.isfinite(p1) & np.isfinite(m1) & np.isfinite(p2) & np.isfinite(m2)
    # (4 D(h/2) - D(h)) / 3 amplifies a per-point error e into at most 3 e / h.
    amp = 3.0 / h
    with np.errstate(all="ignore"):
        d1 = (p1 - m1) / (2 * h)
        d2 = (p2 - m2) / h
        value = (4 * d2 - d1) / 3
        trunc = np.abs(d2 - d1) / 3
        mag = np.maximum.reduce([a1, b1, a2, b2])
        arg = np.maximum.reduce([r1, s1, r2, s2])
    est = _empty(n)
    est.value = np.where(finite, value, np.nan)
    b = est.budget
    b.truncation = np.where(finite, trunc, np.inf)
    b.output_roundoff = np.where(finite, mag * (c_round * line.eps * amp), 0.0)
    b.argument_rounding = np.where(finite, arg * (line.eps * amp), 0.0)
    b.cancellation = np.where(finite, C_NOISE * np.broadcast_to(sigma, (n,)) * amp, 0.0)
    est.step = np.full(n, h)
    est.unreliable = ~finite
    est.reason = [None if f else Reason.NONFINITE_NEAR_X.text("within the step of x")
                  for f in finite]
    est.scale = np.where(np.isfinite(mag), mag, 0.0)
    return est


def refine(line: Line, h: float, c_round: float = C_ROUND, rungs: int = 8,
           ratio: float = 4.0, sigma: np.ndarray | None = None) -> Estimate:
    """A ladder of steps from ``16h`` down by ``ratio`` (``rungs`` of them), extended upward
    to :func:`~gradverify.harness.budget.ladder_top`: the best Richardson estimate per
    channel, and kink / jump detection from one-sided differences.

    sigma: phi's noise level; measured here (:func:`noise`) when not given."""
    phi0, mag0, arg0 = line.full(0.0)
    n = phi0.size
    if sigma is None:
        sigma = noise(line, h)
    sigma = np.where(np.isfinite(sigma), sigma, 0.0)  # non-finite samples: judged below
    # Coarser rungs above 16h where extrapolation resolves more there (float64); the finest
    # rung stays 16h / ratio^(rungs - 1) whatever the extension.
    top = ladder_top(line.eps, h) if ratio == 4.0 else 16 * h
    extra = round(math.log(top / (16 * h), ratio))  # rungs above 16h
    rungs += extra
    hs = np.array([top / ratio ** k for k in range(rungs)])
    central, fwd, bwd, mags, args, ok, still = [], [], [], [], [], [], []
    for hk in hs:
        (p, a, ra), (m, b, rb) = line.full(float(hk)), line.full(-float(hk))
        args.append(np.maximum.reduce([ra, rb, arg0]))
        still.append((p == phi0) & (m == phi0))  # bit-for-bit unchanged on both sides
        with np.errstate(all="ignore"):
            central.append((p - m) / (2 * hk))
            fwd.append((p - phi0) / hk)
            bwd.append((phi0 - m) / hk)
        mags.append(np.maximum.reduce([a, b, mag0]))
        ok.append(np.isfinite(p) & np.isfinite(m) & np.isfinite(phi0))
    central, fwd, bwd = np.array(central), np.array(fwd), np.array(bwd)
    mags, args, ok = np.array(mags), np.array(args), np.array(ok)
    eps = line.eps
    r2 = ratio * ratio
    with np.errstate(all="ignore"):
        # Richardson on the central rungs (error ~ h^2) and on the one-sided ones (~ h).
        rich = np.full_like(central, np.nan)
        rich[1:] = (r2 * central[1:] - central[:-1]) / (r2 - 1)
        rich_f = np.full_like(fwd, np.nan)
        rich_b = np.full_like(bwd, np.nan)
        rich_f[1:] = (ratio * fwd[1:] - fwd[:-1]) / (ratio - 1)
        rich_b[1:] = (ratio * bwd[1:] - bwd[:-1]) / (ratio - 1)
        pair_ok = np.zeros_like(ok)
        pair_ok[1:] = ok[1:] & ok[:-1]
        # spread: neighbouring Richardson values on both sides, robust to a coincidence
        step_diff = np.abs(np.diff(rich, axis=0))            # |rich[k+1] - rich[k]|
        step_diff = np.where(pair_ok[1:] & pair_ok[:-1], step_diff, np.nan)
        left = np.vstack([np.full((1, n), np.nan), step_diff])   # |rich[k] - rich[k-1]|
        right = np.vstack([step_diff, np.full((1, n), np.nan)])  # |rich[k+1] - rich[k]|
        spread = np.where(np.isnan(np.fmax(left, right)), np.inf, np.fmax(left, right))
        # Richardson (r2 c_k - c_{k-1}) / (r2 - 1) amplifies a per-point error e into
        # e (r2 + 1/ratio) / ((r2 - 1) h_k); eps times it first (eps |phi| underflows).
        amp = (r2 + 1 / ratio) / (r2 - 1) / hs[:, None]
        # an output that is a cancellation (layer_norm's 0 at an entry equal to its row's
        # mean) rounds like the terms it is made of, where the caller knows them
        terms = line.terms
        rounds = mags if terms is None else np.fmax(mags, terms[None, :])
        out_round = rounds * (c_round * eps * amp)
        arg_round = args * (eps * amp)
        cancel = C_NOISE * sigma[None, :] * amp
        bound = np.where(pair_ok, spread + out_round + arg_round + cancel, np.inf)
        cols = np.arange(n)
        # the classic ladder's best rung (16h's Richardson value needs 64h: a coarse one)
        classic = extra + 1 if extra else 0
        best = classic + np.argmin(bound[classic:], axis=0)
        if extra:
            # A coarser rung counts only where the classic estimate is round-off limited
            # (the function is smooth at its steps) and the coarse value lies within the
            # classic estimate's bound: a step beyond the function's scale (sin at 1e5,
            # several periods per step) can show a small spread around a wrong value.
            # A rung beyond a saturating function's scale (log-sum-exp at steps of 27)
            # agrees with its neighbours around the slope of the asymptotes, not the
            # derivative: it must show the h^2 regime Richardson assumes, successive
            # central differences shrinking by ratio^2 (differences at the round-off level
            # prove nothing: a large |phi| rounds the 1/h tail of an asymptote away).
            c_best = bound[best, cols]
            limited = spread[best, cols] <= (out_round + arg_round + cancel)[best, cols]
            fits = np.abs(rich[:classic] - rich[best, cols]) <= c_best
            d = np.abs(central[:-1] - central[1:])  # d[j]: rung j against the finer j + 1
            regime = np.zeros((classic, n), bool)
            for k in range(1, classic):  # rich[k] extrapolates central[k - 1] and central[k]
                q = d[k - 1] / np.where(d[k] > 0, d[k], np.inf)
                regime[k] = (q >= r2 / 2) & (q <= 2 * r2)
            coarse_bound = np.where(fits & limited & regime, bound[:classic], np.inf)
            k = np.argmin(coarse_bound, axis=0)
            best = np.where(coarse_bound[k, cols] < c_best, k, best)
        est = _empty(n)
        est.value, est.rungs = rich[best, cols], (hs, rich, bound)
        b = est.budget
        b.truncation = spread[best, cols]
        b.output_roundoff = out_round[best, cols]
        b.argument_rounding = arg_round[best, cols]
        b.cancellation = cancel[best, cols]
        unusable = ~pair_ok[best, cols]
        b.truncation = np.where(unusable, np.inf, b.truncation)
        est.step = hs[best]
        est.scale = np.where(np.isfinite(mag0), mag0, 0.0)

        # Kinks: a gap between the one-sided differences that stays put as h shrinks, on
        # the finest three consecutive rungs where the gap stands above round-off.
        gap = fwd - bwd
        side_round = 2 * ((c_round * mags + args) * (eps / hs[:, None])
                          + C_NOISE * sigma[None, :] / hs[:, None])
        measurable = ok & (np.abs(gap) > 8 * side_round)
        side = np.maximum(np.abs(fwd), np.abs(bwd))
        sizeable = ok & (side > 8 * side_round)
        kink = np.zeros(n, bool)
        # A jump: one-sided differences grow like 1/h (x ratio per rung) above round-off,
        # on the finest three consecutive rungs where they are sizeable.
        w_size = _last_run(sizeable, 3)
        s3 = side[np.clip(w_size, 2, None) - 2 + np.arange(3)[:, None], cols]
        jump = (w_size >= 0) & (s3[2] > 0.5 * ratio * s3[1]) & (s3[1] > 0.5 * ratio * s3[0])
        w_gap, w_pair = _last_run(measurable, 3), _last_run(measurable, 2)
        # only channels with a gap above round-off need a look (vectorised above: a column
        # of a faulty gradient has hundreds of smooth channels)
        for c in np.flatnonzero(~jump & ((w_gap >= 0) | (w_pair >= 0))).tolist():
            k = int(w_gap[c] if w_gap[c] >= 0 else w_pair[c])
            # A gap that stays put over the finest two rungs is a kink (a smooth function's
            # shrinks by the step ratio per rung), where the rung above differs too: only two
            # rungs above round-off (a slope change small beside the output's size), or a
            # second kink within that coarser step (clip's hi = 0 beside t = 1e-30 and 5.8e-7)
            two = abs(gap[k, c] - gap[k - 1, c]) <= 0.25 * abs(gap[k, c])
            if w_gap[c] < 0 and not two:
                continue
            g = np.abs(gap[k - 2:k + 1, c])
            steady = w_gap[c] >= 0 and two and abs(gap[k - 1, c] - gap[k - 2, c]) <= 0.25 * g[1]
            # A kink closer to x than the smallest step: the gap does not shrink like h
            # (a smooth function's does, by the step ratio per rung) but is not steady
            # either (it fades as the steps approach the kink's distance). The one-sided
            # slopes met on those rungs, and the central differences (the smooth piece at
            # x when the kink is farther than the finest step), bound the derivatives.
            near = w_gap[c] >= 0 and not steady and g[1] >= g[0] / 2
            kink[c] = steady or near or two
            if steady:
                est.left[c], est.right[c] = rich_b[k, c], rich_f[k, c]
                est.side_bound[c] = (abs(rich_f[k, c] - rich_f[k - 1, c])
                                     + abs(rich_b[k, c] - rich_b[k - 1, c])
                                     + 2 * side_round[k, c])
            elif near:
                sides = np.concatenate([fwd[k - 2:k + 1, c], bwd[k - 2:k + 1, c],
                                        central[k - 2:k + 1, c], [est.value[c]]])
                est.left[c], est.right[c] = float(np.min(sides)), float(np.max(sides))
                est.side_bound[c] = 2 * side_round[k, c]
            else:  # (two: the finest rung's one-sided slopes, as far as they moved)
                est.left[c], est.right[c] = bwd[k, c], fwd[k, c]
                est.side_bound[c] = (abs(fwd[k, c] - fwd[k - 1, c])
                                     + abs(bwd[k, c] - bwd[k - 1, c]) + 2 * side_round[k, c])
        est.kink = kink
        finite_any = np.isfinite(est.bound)
        # Finer steps must not settle on another value: two consecutive finer central
        # differences that agree with each other (far better than with the estimate) yet
        # differ from it beyond its bound, their truncation error (below the chosen
        # rung's) and their modelled round-off mean structure below the chosen step
        # (x mod 2.5 at x = 7e5 looks flat at steps of 70). Round-off noise the model
        # underestimates (a cancelling output) does not settle, so it is not mistaken.
        central_round = ((c_round * mags + args) * (eps / hs[:, None])
                         + C_NOISE * sigma[None, :] / hs[:, None])
        allowed = (2 * np.abs(central[best, cols] - rich[best, cols]) + est.bound
                   + 2 * central_round)
        off = np.abs(central - est.value)
        finer = (np.arange(rungs)[:, None] > best[None, :]) & ok
        pair = finer[:-1] & finer[1:]
        settled = np.abs(central[:-1] - central[1:]) <= 0.1 * np.minimum(off[:-1], off[1:])
        beyond = (off[:-1] > allowed[:-1]) & (off[1:] > allowed[1:])
        coarse = (pair & settled & beyond).any(axis=0)
        coarse &= finite_any & ~kink & ~jump
        est.unreliable = ~finite_any | jump | coarse
        est.jump = jump & finite_any
        est.reason = [Reason.DISCONTINUOUS.text("one-sided differences grow like 1/h") if j
                      else Reason.STRUCTURE_BELOW_STEP.text(
                          "finer steps disagree with the estimate") if c
                      else None if f else Reason.NONFINITE_NEAR_X.value
                      for f, j, c in zip(finite_any, jump, coarse)]
    # Unchanged bit for bit at some steps, while at others the central difference is not
    # zero: the change is rounded away inside the function (a large intermediate), or x sits
    # at the edge of a flat region - the data cannot tell which. (An even function such as
    # sqrt(x^2 + 1) - 1 at 0 is unchanged at fine steps too, but its central differences are
    # zero at every step: consistent, so judged normally.) Flat on the whole ladder: look
    # far outside it.
    still = np.array(still) & ok
    est.flat = still.all(axis=0)
    slope_seen = (ok & ~still & (central != 0)).any(axis=0)
    if est.flat.any():
        for t in (0.01, FLAT_REACH):
            (p, _), (m, _) = line(t), line(-t)
            slope_seen |= est.flat & np.isfinite(p) & np.isfinite(m) & (p != m)
    # Flat even far out: the change a t is below the rounding of the function's largest
    # intermediates at every t tried. Those are unknown, but at least the line's largest
    # output (a zero made by cancellation, 1/3 - 1/3 in softmax - labels, has |y| = 0 yet
    # rounds like 1/3), or an intermediate of 1 (log(1 + x^4) at x = -1e-6 is 0 at every step,
    # derivative -4e-18): flatness bounds |phi'| only to C_ROUND eps max(|y|, 1) / FLAT_REACH.
    blind = est.flat & ~slope_seen
    if blind.any():
        top = max(float(np.max(np.where(ok & np.isfinite(mags), mags, 0.0), initial=0.0)),
                  line.top, 1.0)  # outputs a column's line does not keep
        top = top if terms is None else np.fmax(top, terms)
        b = est.budget
        b.output_roundoff = np.where(blind, np.fmax(b.output_roundoff,
                                                    c_round * eps * top / FLAT_REACH),
                                     b.output_roundoff)
    quantized = still.any(axis=0) & slope_seen & ~est.kink
    if quantized.any():
        est.unreliable = est.unreliable | quantized
        est.reason = [Reason.ROUNDED_AWAY.text(
            "the function does not change at some steps but does at others (or x is at the "
            "edge of a flat region)") if q else r for q, r in zip(quantized, est.reason)]
    return est
