"""Jumps and structure below every step, at the points a joint kink judgement samples: when
the analytic row is outside the hull of the sampled pieces, is that evidence? Not when f
jumps within every step (the "pieces" are quotients across jumps), nor when it changes by
one fixed amount however small the step (its pieces lie below any step float can take),
nor when it does not change at all by less than its rounding (a change rounded away)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from gradverify.harness.budget import C_ROUND, SAFETY
from gradverify.harness.calls import Problem
from gradverify.harness.jump_entries import even_unsettled, jump_beside_slope
from gradverify.harness.kink_samples import _INNER, _outputs, grow_like_jumps
from gradverify.harness.lines import Ref
from gradverify.harness.numeric import FLAT_REACH
from gradverify.harness.staircase import stairs_beside_slope

__all__ = ["flat_below_rounding", "jumps_within", "steady_within"]


def _one_sided(p: Problem, ref: Ref, coords: Sequence[tuple[int, int, float]], h: float,
               reduce: Callable[[np.ndarray], np.ndarray] | None,
               ) -> tuple[np.ndarray, list[tuple[list[np.ndarray], list[float]]]]:
    """The outputs at x (reduced) and, per coordinate and side, the differences
    ``f(x +- t) - f(x)`` at eight steps t, each a quarter of the one before, from the joint
    sampling's difference step down (round-off level differences as 0); memoised."""
    if reduce is None:
        def reduce(y: np.ndarray) -> np.ndarray:
            return y
    k = len(coords)
    y0 = reduce(np.concatenate([np.asarray(y, np.float64).ravel() for y in ref.ys
                                if y.dtype.kind == "f"]))
    t0 = h * _INNER * min(1.0 / max(k - 1, 1), 0.5) * max(s for _, _, s in coords)
    lines = []
    for kk, j, _ in coords:
        x = ref.xs[kk].flat[j]
        for sign in (1.0, -1.0):
            diffs, steps = [], [t0 / 4 ** r for r in range(8)]
            for t in steps:
                moved = float(ref.xs[kk].dtype.type(x + sign * t))
                y = _outputs(p, ref, {(kk, j): moved})
                if y is None:
                    return y0, lines
                y = reduce(y)
                floor = 4 * 32 * ref.eps * np.fmax(np.abs(y), np.abs(y0))
                with np.errstate(invalid="ignore"):
                    dy = y - y0
                diffs.append(np.where(np.abs(dy) > floor, dy, 0.0))
            lines.append((diffs, steps))
    return y0, lines


def jumps_within(p: Problem, ref: Ref, coords: Sequence[tuple[int, int, float]], h: float,
                 reduce: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Per channel: does f jump within the sampling step along some coordinate of
    ``coords``? Then the sampled "pieces" are difference quotients across jumps, not
    gradients, and a point outside their hull proves nothing (floormod(1e15, 3): period 3,
    every step of 1e8 crosses millions of jumps; the derivative at x exists, no step
    resolves it).

    The differences ``f(x +- t) - f(x)`` at eight steps t (:func:`_one_sided`), judged by
    :func:`grow_like_jumps` along each coordinate and side. Evaluated only where a joint
    judgement would FAIL (16 evaluations per coordinate)."""
    y0, lines = _one_sided(p, ref, coords, h, reduce)
    out = np.zeros(np.shape(y0), bool)
    for diffs, steps in lines:
        out |= grow_like_jumps(diffs, steps)
    # both sides of each coordinate together: whole jumps beside a slope, a jump at x
    # beside one, an even part that does not shrink (a period near the finest of these
    # steps: the samples' quotients read the staircase's average slope as a piece's).
    # On whole output entries only: a probe's weighted sum (``reduce``) cancels, and its
    # round-off is not ``eps`` times the sum (a mean over 40 000 entries)
    err = 2 * C_ROUND * ref.eps * np.abs(y0)
    for (up, steps), (down, _) in zip(lines[0::2] if reduce is None else [], lines[1::2]):
        if len(up) < 8 or len(down) < 8:
            continue
        u, d = np.array(up), np.array(down)
        e = np.broadcast_to(err, u.shape) + 2 * C_ROUND * ref.eps * np.abs(u)
        e_d = np.broadcast_to(err, d.shape) + 2 * C_ROUND * ref.eps * np.abs(d)
        with np.errstate(invalid="ignore"):
            out |= (stairs_beside_slope(u, d, e, e_d) | even_unsettled(u, d, e, e_d)
                    | jump_beside_slope(u, d, steps, e, e_d))
    return out


def steady_within(p: Problem, ref: Ref, coords: Sequence[tuple[int, int, float]], h: float,
                  reduce: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Per channel: along some coordinate, does f change by one non-zero amount (within a
    factor 2) at every one of the eight steps on BOTH sides, and by about as much one
    spacing of x away? Its structure then lies below any step float can take: softmax at
    the tie (1e30, 1e30) is a ramp of width ~1 where float64's spacing is 1.4e14, so every
    step lands on a flat side and the pieces sampled (0) are not the ramp's. A piecewise-
    linear function changes like t on at least one side of each coordinate (max(a, b) with
    b a relative 1e-12 above a: b down is flat beyond the sliver, b up is the piece b),
    and a sliver wider than x's spacing shows its slope one spacing away, so their faults
    stay FAILs. The rungs are :func:`jumps_within`'s (memoised), plus 2 evaluations per
    coordinate flagged."""
    y0, lines = _one_sided(p, ref, coords, h, reduce)
    out = np.zeros(np.shape(y0), bool)
    if len(lines) < 2 * len(coords):
        return out  # a sample left the domain

    def steady(diffs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        size = np.abs(np.array(diffs))
        return ((np.min(size, axis=0) > 0) & (np.max(size, axis=0) <= 2 * np.min(size, axis=0)),
                np.array(diffs)[-1])
    for c, (kk, j, _) in enumerate(coords):
        (up, last_up), (down, last_down) = steady(lines[2 * c][0]), steady(lines[2 * c + 1][0])
        both = up & down
        if not both.any():
            continue
        x = ref.xs[kk].flat[j]
        for side, last in ((np.inf, last_up), (-np.inf, last_down)):
            y = _outputs(p, ref, {(kk, j): float(np.nextafter(x, side))})
            if y is None:
                both[:] = False
                break
            with np.errstate(invalid="ignore"):
                moved = y if reduce is None else reduce(y)
                both &= np.abs(moved - y0) >= 0.5 * np.abs(last)
        out |= both
    return out


def flat_below_rounding(p: Problem, ref: Ref, coords: Sequence[tuple[int, int, float]],
                        h: float, slopes: np.ndarray) -> np.ndarray:
    """Per output entry (``slopes``: its analytic derivatives along ``coords``, one column
    each): does f not change at all at any of the eight steps along any coordinate, on
    either side, where the analytic slopes predict a change, over the largest of those
    steps, below the round-off of the function's largest output, or of an intermediate of
    1? The flat "pieces" are then a change rounded away inside the function, not a
    measurement: log_softmax at ``[30, 0, 0]`` computes out[0] = -1.9e-13 as a difference
    of values near 30 and 1, quantised at 2.2e-16, and its slope 1.9e-13 moves it by 1e-18
    over these steps; ``log(|a b| + 1)`` at ``(3e-6, -2e-6)`` is 6e-12, yet ``1 + |a b|``
    rounds at 2.2e-16 (the intermediates are unknown; 1 is the least a constant in the
    function makes them, as in ``numeric.refine``'s flat lines) - that one provided f does
    change a tenth of a coordinate's scale away (``numeric.FLAT_REACH``, 2 evaluations
    per coordinate): flat that far too, it is flat (the tie of ``max(min(a, 0), 0)`` at
    ``a = 0`` with ``a``'s scale 7e-9: a gradient of 0.25 there FAILs). A gradient leaking
    through a flat function (stop_gradient) predicts a change far above that round-off,
    and its FAIL stands. The rungs are :func:`jumps_within`'s (memoised).
    """
    y0, lines = _one_sided(p, ref, coords, h, None)
    out = np.zeros(np.shape(y0), bool)
    if len(lines) < 2 * len(coords) or not np.isfinite(y0).all():
        return out
    flat = np.ones(np.shape(y0), bool)
    for diffs, _ in lines:
        flat &= np.all(np.array(diffs) == 0, axis=0)
    t0 = lines[0][1][0]
    predicted = np.max(np.abs(slopes), axis=1) * t0
    rounding = SAFETY * C_ROUND * ref.eps * float(np.max(np.abs(y0), initial=0.0))
    out = flat & (predicted > 0) & (predicted <= rounding)
    one = flat & (predicted > rounding) & (predicted <= max(rounding, SAFETY * C_ROUND * ref.eps))
    if one.any():  # a function flat out to a tenth of each coordinate's scale is flat
        far = np.zeros_like(out)
        for kk, j, s in coords:
            for sign in (1.0, -1.0):
                moved = float(ref.xs[kk].dtype.type(ref.xs[kk].flat[j] + sign * FLAT_REACH * s))
                y = _outputs(p, ref, {(kk, j): moved})
                with np.errstate(invalid="ignore"):
                    far |= y is not None and (
                        np.abs(y - y0) > 4 * C_ROUND * ref.eps * np.fmax(np.abs(y), np.abs(y0)))
        out |= one & far
    return out
