"""Jumps per output entry: which entries of a probe's line jump within the steps.

A probe's line ``phi(t) = <v, f(x + t u) - f(x)>`` mixes every output entry: one entry
that crosses many jumps within each step (``floormod(893672.5, 1)``: steps of 15-21 cross
periods of 1) turns phi into jitter although the other entries are smooth, and the
projected differences no longer show which part of phi is jitter. The line keeps the whole
output at each ladder point (``lines.line``), so each entry's own one-sided differences
``f_i(x +- t u) - f_i(x)`` at the ladder's eight rungs are judged here:

- a slope (a smooth entry, however steep) gives differences that shrink like ``t``;
- a kink crossed between rungs changes the slope once (a Lipschitz function's difference
  is piecewise linear in t, a breakpoint per kink crossed);
- differences at the entry's round-off level (``C_ROUND`` ulps of it, the budget's output
  term) say nothing and count as 0;
- a jumping entry's differences are wherever the sawtooth lands: their size turns up and
  down at random, their sign flips more than once, or the quotients ``|d| / t`` of the
  fine rungs exceed the coarse rungs' 64 times (:func:`grow_like_jumps`); or the
  coarse rungs fall back against the fine rungs' slope without growing like t (a jump or
  two crossed); or one side stays one constant far above the other (a jump at x).

A wrong gradient changes nothing here: it is a property of the analytic side, and the
differences are the function's own. So an entry that does not jump is judged as before, and
one that jumps is left out of the line's judgement (its cotangent component zeroed) and
reported INCONCLUSIVE (``JUMPS_WITHIN_STEP``).

>>> t = [4.0 ** -k for k in range(8)]
>>> smooth = [np.array([3e6 * s, 2 * s]) for s in t]                  # steep, gentle
>>> saw = [np.array([v, 2 * s]) for v, s in zip((0.4, -0.7, 0.1, 0.9, -0.3, 0.6, -0.2, 0.5), t)]
>>> jumping(smooth, smooth, t, np.zeros(2), 2.0 ** -52).tolist()
[False, False]
>>> jumping(saw, saw, t, np.zeros(2), 2.0 ** -52).tolist()
[True, False]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gradverify.harness.budget import C_ROUND, SAFETY, ladder_top
from gradverify.harness.lines import normalise
from gradverify.harness.reasons import Reason
from gradverify.harness.report import FAIL, INCONCLUSIVE

__all__ = ["grow_like_jumps", "sign_flips", "jumping", "jitter", "jump_at_x", "ladder_steps",
           "line_jumping", "without_jumping", "jump_beside_slope", "even_unsettled"]

FINE = 3         # the finest rungs that must show a jump beside one slope (t spans 16x)
JUMP_OVER = 128.0  # a jump this many times its round-off (staircase.REJECT's margin)
EVEN_RUNGS = 5   # the finest rungs whose even part must not shrink (t spans 256x)


def grow_like_jumps(diffs: Sequence[np.ndarray], steps: Sequence[float]) -> np.ndarray:
    """Per channel, from the signed one-sided differences ``f(x + t) - f(x)`` at eight
    steps t, each a quarter of the one before (round-off level differences as 0): do they
    behave like jitter across jumps within the steps rather than like a Lipschitz
    function's? A Lipschitz function's difference is piecewise linear in t with a
    breakpoint per kink crossed: its size shrinks like t below every kink, stays one
    constant beyond them (a kink closer than every step with a flat piece beyond: b a
    relative 1e-12 above a in max(a, b); a single jump at x, judged elsewhere), turning at
    most once per kink. Jitter (floormod whose period is far below t: the difference is
    wherever the sawtooth lands) goes up and down at random. Jitter: the size of the
    difference turns (up to down or back, by more than 10 %) three times or more, or the
    finer half's quotients ``|diff| / t`` exceed the coarser half's 64 times while the
    differences are not one constant.

    >>> t = [4.0 ** -k for k in range(8)]
    >>> smooth = [np.array([2 * s]) for s in t]
    >>> constant = [np.array([1e-9]) for _ in t]
    >>> jitter = [np.array([v]) for v in (1.2, -0.38, 1.4, 1.1, 0.25, 0.88, 1.0, 1.8)]
    >>> [bool(grow_like_jumps(c, t)[0]) for c in (smooth, constant, jitter)]
    [False, False, True]
    """
    size = np.abs(np.array(diffs))                # (steps, channels), coarse first
    turns = np.zeros(size.shape[1:], int)
    trend = np.zeros(size.shape[1:])              # +1 growing, -1 shrinking, 0 unknown
    prev = size[0]
    for cur in size[1:]:
        seen = (cur > 0) & (prev > 0)             # round-off level (0) skipped
        with np.errstate(divide="ignore", invalid="ignore"):
            move = np.where(~seen, 0.0, np.where(cur > 1.1 * prev, 1.0,
                                                 np.where(prev > 1.1 * cur, -1.0, 0.0)))
        turns += (move != 0) & (trend != 0) & (move != trend)
        trend = np.where(move != 0, move, trend)
        prev = np.where(cur > 0, cur, prev)
    # or: the quotients |diff| / t of the finer half exceed the coarser half's 64 times
    # (a period crossed only at the coarse steps: tiny differences there, the slope
    # itself at the fine ones) without the differences being one constant
    half = len(diffs) // 2
    q = size / np.asarray(steps, np.float64)[:, None] if size.ndim == 2 else (
        size / np.asarray(steps, np.float64))
    fine, coarse = np.median(q[half:], axis=0), np.median(q[:half], axis=0)
    constant = np.max(size, axis=0) <= 2 * np.min(size, axis=0)
    return (turns >= 3) | ((fine > 64 * coarse) & (coarse > 0) & ~constant) | (
        sign_flips(diffs) >= 2)


def sign_flips(diffs: Sequence[np.ndarray]) -> np.ndarray:
    """Per channel, how often the signed one-sided differences ``f(x + t) - f(x)`` change
    sign from one rung to the next among the sizeable ones (not 0 - round-off level - and
    at least 1/16 of the largest). A slope keeps its sign while t shrinks; a smooth
    function's Taylor terms ``s t + c t^2 / 2`` change it at most once (where the curvature
    overtakes the slope), and a kink crossed at most once per kink; jitter across jumps
    (floormod(893672.5, 1) along a probe: +-0.4 at every coarse rung) lands on either side
    at random. Differences far below the largest (a slope's fine rungs with noise
    around them) are left out: only a flip between differences of one size counts.

    >>> sign_flips([np.array([v]) for v in (-0.5, -0.37, 0.41, -0.4, 0.4, 0.1, 0.02)])
    array([3])
    >>> sign_flips([np.array([v]) for v in (4.0, 1.0, 0.25, -1e-3, 1e-3)])
    array([0])
    """
    d = np.array(diffs, np.float64)
    size = np.abs(d)
    top = np.max(np.where(np.isfinite(size), size, 0.0), axis=0)
    sizeable = (size > 0) & np.isfinite(size) & (size >= top / 16)
    flips = np.zeros(d.shape[1:], int)
    last = np.zeros(d.shape[1:])  # the sign of the last sizeable difference (0: none yet)
    for k in range(d.shape[0]):
        sgn = np.where(sizeable[k], np.sign(d[k]), 0.0)
        flips += (sgn != 0) & (last != 0) & (sgn != last)
        last = np.where(sgn != 0, sgn, last)
    return flips


def ladder_steps(eps: float, h: float) -> list[float]:
    """The classic ladder's eight rungs, 16h down to h / 1024, as the ladder evaluates them
    (the same float values, so a line's stored evaluations are found again).

    >>> len(ladder_steps(2.0 ** -52, 1e-5))
    8
    """
    top = ladder_top(eps, h)
    extra = round(math.log(top / (16 * h), 4))
    return [top / 4 ** k for k in range(extra, extra + 8)]


def jumping(up: Sequence[np.ndarray], down: Sequence[np.ndarray], steps: Sequence[float],
            base: np.ndarray, eps: float, c_round: float = C_ROUND) -> np.ndarray:
    """Per output entry: do its one-sided differences ``up[k] = f(x + t_k) - f(x)`` and
    ``down[k] = f(x - t_k) - f(x)`` (``base`` = f(x), rungs coarse first) behave like jitter
    across jumps rather than like a Lipschitz function's? Differences within ``c_round``
    ulps of the entry (the budget's output round-off) count as 0.

    >>> t = [4.0 ** -k for k in range(8)]
    >>> noise = [np.array([1e-17 * (-1) ** k]) for k in range(8)]        # round-off only
    >>> jumping(noise, noise, t, np.ones(1), 2.0 ** -52).tolist()
    [False]
    """
    base = np.abs(np.asarray(base, np.float64))
    sides, errs = [], []
    for diffs in (up, down):
        kept = []
        for d in diffs:
            d = np.asarray(d, np.float64)
            with np.errstate(invalid="ignore"):
                floor = 4 * c_round * eps * np.fmax(np.abs(base + d), base)
                kept.append(np.where(np.abs(d) > floor, d, 0.0))
        sides.append(kept)
        errs.append(np.array([2 * c_round * eps * np.fmax(np.abs(base + np.asarray(
            d, np.float64)), base) for d in diffs]))
    # whole multiples of one jump at every rung (a period near the finest rung)
    # staircase imports this module
    from gradverify.harness.staircase import quantised, stairs_beside_slope
    with np.errstate(invalid="ignore"):
        whole = quantised(np.array(up, np.float64), np.array(down, np.float64), *errs)
        whole |= stairs_beside_slope(np.array(up, np.float64), np.array(down, np.float64),
                                     *errs)
        beside = jump_beside_slope(np.array(up, np.float64), np.array(down, np.float64),
                                   steps, *errs)
        beside |= even_unsettled(np.array(up, np.float64), np.array(down, np.float64), *errs)
    return jitter(sides[0], sides[1], steps) | whole | beside


def jump_beside_slope(up: np.ndarray, down: np.ndarray, steps: Sequence[float],
                      e_up: np.ndarray, e_dn: np.ndarray, safety: float = SAFETY,
                      ) -> np.ndarray:
    """Per channel (columns of the differences ``f(x +- t) - f(x)`` at the rungs, coarse
    first, with their round-off ``e_up``, ``e_dn``): does f jump at x beside one slope?
    On the ``FINE`` finest rungs ``up = J+ + s t`` and ``down = J- - s t`` within
    ``safety`` times their round-off, with a jump ``J+`` or ``J-`` above ``JUMP_OVER``
    times it and above 4 ``|s|`` times the finest step, while the coarsest rung's odd part
    exceeds 16 times the jump. The coarse rungs are free otherwise: they cross further
    jumps (floormod at x / y = 1.1e7 exactly, its period near the finest
    rung: the coarse rungs grow like the staircase's average slope, which no test of
    "one constant at every rung" sees, while the fine ones show the jump at x and the
    piece's slope on both sides).

    A differentiable function cannot: its curvature is no constant over a 16-fold span
    of t, nor is a kink's change of slope (one slope on both sides is required); a
    Lipschitz one only with a sliver below the finest step steeper than the jump over
    the step - structure no step resolves. A wrong gradient changes nothing here (the
    differences are the function's own): f is discontinuous at x, no derivative exists.

    >>> t = np.array([4.0 ** -k for k in range(8)])[:, None]
    >>> e = np.full((8, 1), 1e-16)
    >>> stairs = 50 * t + np.array([9, 7, 5, 3, 1, 0, 0, 0.0])[:, None]     # J+ = 0
    >>> jump_beside_slope(stairs - 2.5, -50 * t, t[:, 0], e, e).tolist()    # J+ = -2.5
    [True]
    >>> jump_beside_slope(50 * t + t ** 2, -50 * t + t ** 2, t[:, 0], e, e).tolist()
    [False]
    """
    t = np.asarray(steps, np.float64)[-FINE:]
    u, d = np.asarray(up, np.float64)[-FINE:], np.asarray(down, np.float64)[-FINE:]
    eu, ed = np.asarray(e_up, np.float64)[-FINE:], np.asarray(e_dn, np.float64)[-FINE:]
    ok = np.all(np.isfinite(u) & np.isfinite(d) & np.isfinite(eu) & np.isfinite(ed), axis=0)
    u, d = np.where(ok, u, 0.0), np.where(ok, d, 0.0)
    # unknowns (J+, J-, s): up = J+ + s t, down = J- - s t, each row in units of its error
    n = t.size
    a = np.zeros((2 * n, 3))
    a[:n, 0], a[n:, 1], a[:n, 2], a[n:, 2] = 1.0, 1.0, t, -t
    rhs = np.concatenate([u, d])
    coef = np.linalg.lstsq(a, rhs, rcond=None)[0]               # (3, channels)
    err = np.concatenate([eu + eu[-1], ed + ed[-1]])
    with np.errstate(invalid="ignore"):
        fits = np.all(np.abs(a @ coef - rhs) <= safety * np.where(ok, err, 0.0), axis=0)
        jump = np.maximum(np.abs(coef[0]), np.abs(coef[1]))
        big = (jump > JUMP_OVER * safety * np.maximum(eu[-1], ed[-1])) & (
            jump > 4 * np.abs(coef[2]) * t[-1])
        # the coarse rungs cross more jumps (grow like the staircase's average slope): a
        # sliver narrower than every step (clip's t between lo and hi) stays constant
        grows = np.abs(np.asarray(up, np.float64)[0] - np.asarray(down, np.float64)[0]) / 2 \
            > 16 * jump
    return ok & fits & big & grows


def even_unsettled(up: np.ndarray, down: np.ndarray, e_up: np.ndarray, e_dn: np.ndarray,
                   safety: float = SAFETY) -> np.ndarray:
    """Per channel (columns of the differences at the rungs, coarse first): does the even
    part ``(up + down) / 2`` fail to shrink on the ``EVEN_RUNGS`` finest rungs - its
    largest value on the two finest at least a quarter of its largest on all of them,
    that far above round-off - while the odd part grows like a slope to 16 times it?

    A smooth function's even part is ``c t^2`` (256-fold smaller over the span), a kink's
    grows like t (64-fold), a kink crossed within the span is 0 below it: none stays. A
    jump at x keeps it one constant; jumps crossed at the fine rungs (staircases of
    several entries summed into one output, each near the finest rung) make it wander
    between 0 and a few jumps. A sliver narrower than every step (clip's t between lo
    and hi) keeps it constant too, but its odd part is constant as well: not counted.

    >>> t = np.array([4.0 ** -k for k in range(8)])[:, None]
    >>> e = np.full((8, 1), 1e-16)
    >>> wander = np.array([0.3, 0.3, 0, 0.3, 0, 0, 0.3, 0.3])[:, None]
    >>> even_unsettled(50 * t + wander, -50 * t + wander, e, e).tolist()
    [True]
    >>> even_unsettled(50 * t + 9 * t ** 2, -50 * t + 9 * t ** 2, e, e).tolist()
    [False]
    """
    u, d = np.asarray(up, np.float64), np.asarray(down, np.float64)
    eu, ed = np.asarray(e_up, np.float64), np.asarray(e_dn, np.float64)
    even = np.abs((u + d) / 2)[-EVEN_RUNGS:]
    err = ((eu + ed) / 2)[-EVEN_RUNGS:]
    with np.errstate(invalid="ignore"):
        top = np.max(even, axis=0)
        stays = np.max(even[-2:], axis=0) >= top / 4
        big = np.max(even[-2:] - JUMP_OVER * safety * err[-2:], axis=0) > 0
        grows = np.abs(u[0] - d[0]) / 2 > 16 * top
    return stays & big & grows & np.all(np.isfinite(even), axis=0)


def jitter(up: Sequence[np.ndarray], down: Sequence[np.ndarray], steps: Sequence[float],
           ) -> np.ndarray:
    """:func:`jumping` on differences already set to 0 at their round-off level (a Jacobian
    column's channels: ``verdicts`` floors them with the line's magnitudes).

    >>> t = [4.0 ** -k for k in range(8)]
    >>> jitter([np.array([2 * s]) for s in t], [np.array([-2 * s]) for s in t], t).tolist()
    [False]
    """
    out = np.zeros(np.shape(up[0]), bool)
    for kept in (up, down):
        out |= grow_like_jumps(kept, steps) | _fallen_back(np.array(kept), steps)
    return out | jump_at_x(np.abs(np.array(up)), np.abs(np.array(down)))


def _fallen_back(d: np.ndarray, steps: Sequence[float]) -> np.ndarray:
    """Per entry (columns of the signed differences ``d``, rungs coarse first): do two
    neighbouring coarse rungs fall back against the slope the fine rungs agree on? The
    finest two sizeable rungs whose quotients ``d / t`` agree within 25 % give the slope
    s; a coarser rung has fallen back when its difference has the opposite sign and is
    below ``|s| t / 4`` (floormod(893672.5, 1) along x: -0.4 at the two coarsest rungs,
    where the slope 9e5 predicts +86: f(x + t) fell back by a period). Two such rungs in a
    row whose difference does not grow like t (the coarser below twice the finer) are a
    jump or two crossed. A kink into a piece going back crosses 0 once and then grows like
    ``t - t0``: at least 4 times per rung; a kink into a flat or gentler piece keeps the
    slope's sign."""
    t = np.asarray(steps, np.float64)[:, None]
    size = np.abs(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = d / t
    n = d.shape[0]
    slope = np.zeros(d.shape[1:])
    found = np.zeros(d.shape[1:], int) - 1  # the coarser rung of the slope's pair
    for k in range(n - 1, 0, -1):
        pair = (size[k] > 0) & (size[k - 1] > 0) & (np.abs(q[k] - q[k - 1])
                                                     <= 0.25 * np.abs(q[k]))
        new = pair & (found < 0)
        slope = np.where(new, q[k], slope)
        found = np.where(new, k - 1, found)
    coarse = np.arange(n)[:, None] < found[None, :]
    with np.errstate(invalid="ignore"):
        back = coarse & (np.sign(d) == -np.sign(slope)[None, :]) & (
            size < np.abs(slope)[None, :] * t / 4)
        fallen = back[:-1] & back[1:] & (size[:-1] < 2 * size[1:])
    return fallen.any(axis=0)


def jump_at_x(up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """Per entry: a jump at x itself (x on floormod's period boundary: f(x + t) - f(x) tends
    to -|y| as t shrinks, f(x - t) - f(x) to 0) - one side's differences stay one nonzero
    constant at every rung while the other side's two finest differences are 16 times
    smaller. A kink closer than every step with a flat piece beyond (max(a, b) with
    b = a (1 + 1e-12), b moved down) gives a constant too, but no larger than the slope on
    the way times the finest step - what the other side shows there (at one of its two
    finest rungs: a second kink may cross 0 at one)."""
    out = np.zeros(up.shape[1:], bool)
    for one, other in ((up, down), (down, up)):
        lo, hi = np.min(one, axis=0), np.max(one, axis=0)
        out |= (lo > 0) & (hi <= 2 * lo) & (lo > 16 * np.max(other[-2:], axis=0))
    return out


def line_jumping(line: object, h: float, c_round: float = C_ROUND) -> np.ndarray | None:
    """The output entries of a probe's line (``lines.line`` with a cotangent) that jump
    within its ladder's steps, from the whole outputs it kept at each rung; None when the
    line kept none (not a probe's line, or an output too large to keep)."""
    kept = getattr(line, "entries", None)
    if kept is None:
        return None
    steps = ladder_steps(line.eps, h)  # type: ignore[attr-defined]
    try:
        with np.errstate(invalid="ignore"):
            up = [kept.values[t] - kept.base for t in steps]
            down = [kept.values[-t] - kept.base for t in steps]
    except KeyError:
        return None  # the ladder was not evaluated (or not kept) at every rung
    out = jumping(up, down, steps, kept.base, line.eps, c_round)
    # (a jump at x beside a slope, ``jump_beside_slope``, is left out as JUMPS_WITHIN_STEP,
    # not as a jump at x: the probe is then judged without it, never re-localised by its
    # jumps - every column's line would cross the same staircase again)
    line.jump_at_x = jump_at_x(  # type: ignore[attr-defined]
        *(np.abs(np.array(side)) * (np.abs(np.array(side)) > 4 * c_round * line.eps
                                    * np.abs(kept.base)) for side in (up, down)))
    return out


def without_jumping(probe: Any, line: Any, span: tuple[int, int] | None,
                    directions: list[np.ndarray | None]) -> Any:
    """A fast-mode probe (``fast.Probe``) whose ``line`` FAILed with some output entries
    jumping (``line.jumping``), or found them jumping along one input entry: the same
    probe with the cotangent zeroed on them (one VJP for its analytic value, the line's
    kept outputs for the numeric one), from now on. Its FAIL stands - the entries that do
    not jump disagree; otherwise the probe is INCONCLUSIVE (``JUMPS_WITHIN_STEP``) for the
    entries left out."""
    p, ref = probe.p, probe.ref
    mask, at, v = line.jumping, 0, []
    for t, y in zip(probe.v, ref.ys):
        t = np.array(t, np.float64)
        if y.dtype.kind == "f":
            t.ravel()[mask[at:at + t.size]] = 0.0
            at += t.size
        v.append(t)
    g = [np.zeros_like(x) if gk is None else gk for gk, x in zip(
        normalise(p.vjp(ref.xs, [t.astype(y.dtype) for t, y in zip(v, ref.ys)], ref.vjp),
                  ref.xs), ref.xs)]
    # the analytic side's measured rounding (hygiene.linearity), per input entry: none
    # where the masked gradient is exactly 0 (every term came from a left-out output - the
    # input entries behind them are stepped at their own huge scale, 3e15 beside 0.4, and
    # their rounding would swamp the tolerance of the entries still judged)
    residual = [r if not r.size else np.where(np.asarray(gk) == 0, 0.0, r)
                for r, gk in zip(probe.residual, g)]
    rest = type(probe)(p, ref, v, g, probe.directions, residual, probe.stable, probe.h)
    rest.ladder = probe.ladder
    entry = rest.compare(span, None if directions is probe.directions else directions,
                         kept=line.entries)
    n = int(mask.sum())
    at_x = getattr(line, "jump_at_x", None) is not None and bool(np.all(line.jump_at_x[mask]))
    # The probe goes on without them: localising its disagreement, or judging its kinks
    # jointly, weighs only the entries that do not jump (a joint judgement over the
    # jumping entries' coordinates samples nothing but jitter, at great cost).
    probe.v, probe.g, probe.cts, probe.residual = rest.v, rest.g, rest.cts, rest.residual
    probe.left_out = n  # (undecided.py: a FAIL of the rest must be found at an entry)
    if entry.verdict == FAIL:
        entry.note = entry.note or (f"without the {n} output entries that jump within the "
                                    "step, the probe still disagrees")
        return entry
    if at_x:
        # f is discontinuous at x in those entries: no derivative there to verify (what
        # the ladder's own jump test says of a whole line), the rest as judged
        entry.note = entry.note or Reason.DISCONTINUOUS.text(
            f"{n} output entries jump at x (left out); the other entries agree")
        return entry
    entry.verdict = INCONCLUSIVE
    entry.note = Reason.JUMPS_WITHIN_STEP.text(
        f"{n} output entries jump within every step tried along the probe (left out: their "
        "differences do not shrink with the step); the other entries agree")
    return entry
