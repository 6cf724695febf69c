"""Rounding measures of the precision check (``precision.py``): how much a VJP rounds (in the
cotangent at x, and as x moves by a few ulps), and the natural size of a gradient's terms.

A gradient formed as a difference of large intermediates (``(t + t) / (t + t)``: two terms
of size ``|v / t|`` cancel to 0 in float64, to an ulp of them in float32) rounds at the
intermediates' size, which neither ``|g64|`` nor the VJP of ``|v|`` shows. A VJP is linear
in its cotangent, so its non-linearity measures its rounding; the natural size caps what
that measurement may excuse.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.harness.calls import CallError, Problem
from gradverify.harness.lines import cotangent, finite_abs, normalise, scales
from gradverify.harness.precision_moves import input_moves

__all__ = ["vjp_noise", "moved_noise", "natural_terms", "noise_allowance", "NOISE_ROUNDS",
           "NOISE_SAFETY", "MOVED_SAFETY"]

# Linear combinations of cotangents measured for the VJP's rounding noise; the largest
# residual counts (one alone can cancel by chance).
NOISE_ROUNDS = 4
# A residual mixes three evaluations' roundings; one evaluation may round a few times one
# sample's size.
NOISE_SAFETY = 4.0
# A moved difference is two roundings apart, and the one at x may sit at the edge of their
# range where the few neighbours sampled sit near it: twice the largest difference seen.
MOVED_SAFETY = 2.0


def vjp_noise(p: Problem, v1: list[np.ndarray], g1: list[np.ndarray],
               xs: list[np.ndarray] | None = None, vjp: Any = None) -> list[np.ndarray]:
    """The rounding noise of a VJP (the user's at ``p.xs``, or ``vjp`` at ``xs``), entry
    by entry: ``|vjp(a u + b w) -
    a vjp(u) - b vjp(w)|`` for random cotangents (exactly 0 in exact arithmetic: a VJP is
    linear in the cotangent), the largest over ``NOISE_ROUNDS`` pairs; non-finite
    residuals count 0.

    >>> import numpy as np
    >>> from gradverify.harness.calls import Problem
    >>> p = Problem(np.tanh, lambda xs, gs: (gs[0] * 3,), [np.ones(2, np.float32)])
    >>> v = [np.array([0.3, -0.2], np.float32)]
    >>> bool(np.all(vjp_noise(p, v, [v[0] * 3])[0] < 1e-6))   # float32 rounding of 3 v
    True
    """
    alpha, beta = 0.75, -1.5  # exact in binary
    xs = p.xs if xs is None else xs
    out = [np.zeros(x.shape) for x in xs]
    u, gu = v1, g1
    for _ in range(NOISE_ROUNDS):
        w = cotangent(p.rng, v1)
        mix = [(alpha * a.astype(np.float64) + beta * b.astype(np.float64)).astype(a.dtype)
               if a.dtype.kind == "f" else a for a, b in zip(u, w)]
        try:
            gw = normalise(p.vjp(xs, w, vjp), xs)
            gm = normalise(p.vjp(xs, mix, vjp), xs)
        except CallError:
            break
        for k, (a, b, c) in enumerate(zip(gu, gw, gm)):
            if a is None or b is None or c is None or not (
                    np.shape(a) == np.shape(b) == np.shape(c) == out[k].shape):
                continue
            with np.errstate(all="ignore"):
                r = np.abs(np.asarray(c, np.float64) - alpha * np.asarray(a, np.float64)
                           - beta * np.asarray(b, np.float64))
            out[k] = np.fmax(out[k], np.where(np.isfinite(r), r, 0.0))
        u, gu = w, gw
    return out


def moved_noise(p: Problem, ref: Any, v1: list[np.ndarray], g1: list[np.ndarray],
                g64: list[np.ndarray]) -> list[np.ndarray]:
    """How far the low-precision VJP's difference from the float64 one moves, entry by
    entry, when x moves by a few units of its own rounding (the sign patterns of
    ``precision_moves.input_moves``, both ways): the rounding the backward pass inherits
    from the forward's intermediates, which :func:`vjp_noise` cannot see (it holds x, so
    they are fixed). layer_norm of ``[-0.7, 1]`` is ``+-1``, whose sum cancels to 0 in
    float64 and to an ulp of 1 in float32, a different one at each neighbouring x: a
    gradient through that sum is noise of that size. The difference, not the low-precision
    gradient alone: what both gradients move by is the function's own variation (exp at 44
    moves by 2e-5 over 4 ulps; ``precision._rounding_sensitivity`` allows that part), and a
    formula off by a factor is off alike at every neighbour.

    >>> import numpy as np
    >>> from gradverify.harness.calls import Problem
    >>> from gradverify.harness.lines import Ref
    >>> def vjp(xs, gs):   # the sum of (x - mean) / std: 0 in exact arithmetic
    ...     x = xs[0]; z = (x - x.mean()) / x.std()
    ...     return (np.full(x.shape, gs[0] * z.sum(), x.dtype),)
    >>> x = np.array([-0.7, 1.0, 0.3], np.float32)
    >>> p = Problem(lambda x: x.sum(), vjp, [x])
    >>> ref = Ref(lambda x: x.sum(), vjp, [x.astype(float)], [], 2.0 ** -52)
    >>> v = [np.array(1.0, np.float32)]
    >>> noise = moved_noise(p, ref, v, vjp(p.xs, v), vjp(ref.xs, [v[0].astype(float)]))
    >>> bool(1e-9 < noise[0].max() < 1e-6)   # float32 ulps of 1, not of the tiny float64 sum
    True
    """
    out = [np.zeros(x.shape) for x in p.xs]
    v64 = [v.astype(np.float64) if v.dtype.kind == "f" else v for v in v1]
    with np.errstate(all="ignore"):
        at_x = [np.asarray(g, np.float64) - h for g, h in zip(g1, g64)]
    patterns = input_moves(p, p.xs)
    # both ways, by 4 ulps and by 7: a rounding inside whose phase advances by nearly a
    # whole ulp per 4 ulps of x (layer_norm over one entry: mean * rstd with rstd = 316)
    # looks alike at every 4-ulp neighbour
    for ulps, signs in [(4, s) for s in patterns] + [(7, [-t for t in s]) for s in patterns]:
        moved = [_rounding_move(x, s, ulps) if d else x for x, d, s in zip(p.xs, p.diff, signs)]
        moved64 = [m.astype(r.dtype) for m, r in zip(moved, ref.xs)]
        try:
            low = normalise(p.vjp(moved, v1), moved)
            high = normalise(p.vjp(moved64, v64, ref.vjp), moved64)
        except CallError:
            continue
        for k, (g, h, d0) in enumerate(zip(low, high, at_x)):
            if g is None or h is None or not (
                    np.shape(g) == np.shape(h) == d0.shape == out[k].shape):
                continue
            with np.errstate(all="ignore"):
                d = np.abs(np.asarray(g, np.float64) - np.asarray(h, np.float64) - d0)
            out[k] = np.fmax(out[k], np.where(np.isfinite(d), d, 0.0))
    return out


def _rounding_move(x: np.ndarray, signs: np.ndarray, ulps: int = 4) -> np.ndarray:
    # ``ulps`` of x's dtype; an entry the move would take below the normal range is held:
    # a flush-to-zero evaluation would see a tie or a zero there, a jump of the function,
    # not rounding (precision.py's flushed point judges that one)
    moved = (x * (1 + ulps * float(np.finfo(x.dtype).eps) * signs)).astype(x.dtype)
    tiny = float(np.finfo(x.dtype).tiny)
    return np.where((np.abs(x) >= tiny) & (np.abs(moved) < tiny), x, moved)


def natural_terms(v1: list[np.ndarray], ys: list[np.ndarray], x: np.ndarray,
                   ) -> np.ndarray:
    """The natural size of a gradient's terms at each entry of ``x``: ``max|v| max|y| /
    min(|x_i|, 1)`` (zeros of x step like the RMS of the rest, as the steps do). Below
    |x| = 1 it grows: terms of (t + t) / (t + t) are |v / t|. A wrong low-precision gradient
    of ordinary size (tanh accumulated in float16) stays far outside 64 ulps of it.

    >>> import numpy as np
    >>> natural_terms([np.array([0.5])], [np.array([2.0])], np.array([1e-3, 4.0])).tolist()
    [1000.0, 1.0]
    """
    size = sum(float(np.max(finite_abs(np.asarray(v, np.float64)), initial=0.0))
               * float(np.max(finite_abs(np.asarray(y, np.float64)), initial=0.0))
               for v, y in zip(v1, ys) if y.dtype.kind == "f")
    if x.dtype.kind != "f":
        return np.zeros(x.shape)
    return size / np.minimum(scales([x])[0], 1.0)


def noise_allowance(p: Problem, ref: Any, v1: list[np.ndarray], g1: list[np.ndarray],
                    g64: list[np.ndarray], rel: list[float],
                    ) -> tuple[list[np.ndarray | float], int]:
    """Per input, what the VJPs' measured rounding allows the precision check at each
    entry (``rel``: the float32 budget's relative size per input), and how many entries
    of the float64 VJP are not linear in the cotangent beyond any rounding.

    A gradient formed as a difference of large intermediates (``(t + t) / (t + t)``: two
    terms of size ``|v / t|`` cancel to 0 in float64, to an ulp of them in float32) rounds
    at the intermediates' size, which neither ``|g64|`` nor the VJP of ``|v|`` shows. A
    function of size ``|y|`` changes by ``|y|`` over a distance ``|x_i|``: its gradient's
    terms are about ``|v| |y| / |x_i|``. How much the low-precision VJP actually rounds by
    at each entry is measured (its non-linearity in the cotangent) and counted up to the
    float32 budget of those terms: an entry that is exact or flushes cleanly earns nothing,
    a VJP that accumulates in float16 no more than float32 rounding. The rounding inherited
    from the forward's intermediates (:func:`moved_noise`) counts as measured: the terms'
    size is that of intermediates the outputs need not show (a layer norm's outputs of 1
    summing to 0). The float64 gradient
    rounds the same terms at its own eps (4e-16 where float32 cancels exactly): its
    measured noise is its own error, capped alike at the float32 budget of the terms or of
    the gradient. float64 rounds them 1e10 times finer, so a float64 VJP beyond that cap
    that is not homogeneous either (``_not_homogeneous``) is not linear in the cotangent (it
    squares ``v``, say, where the float32 one rounds every value to 0 and its own linearity
    check sees nothing).

    >>> import numpy as np
    >>> from gradverify.harness.calls import Problem
    >>> from gradverify.harness.lines import Ref
    >>> def sq(xs, gs):  # squares the cotangent; in float32 every value rounds to 0
    ...     return (gs[0] * gs[0] * 2 * xs[0] * (xs[0].dtype == np.float64),)
    >>> x = np.array([1.0, 2.0])
    >>> p = Problem(lambda x: x * x, sq, [x.astype(np.float32)])
    >>> ref = Ref(lambda x: x * x, sq, [x], [x * x], 2.0 ** -52)
    >>> v = [np.array([0.5, -0.25], np.float32)]
    >>> g1, g64 = sq(p.xs, v), sq(ref.xs, [v[0].astype(float)])
    >>> noise_allowance(p, ref, v, list(g1), list(g64), [1e-5])[1]
    2
    """
    v64 = [v.astype(np.float64) if v.dtype.kind == "f" else v for v in v1]
    noise64 = vjp_noise(p, v64, g64, ref.xs, ref.vjp)
    out: list[np.ndarray | float] = [0.0] * len(ref.xs)
    beyond: list[np.ndarray | None] = [None] * len(ref.xs)
    moved = moved_noise(p, ref, v1, g1, g64)
    for k, (noise, x) in enumerate(zip(vjp_noise(p, v1, g1), ref.xs)):
        if p.diff[k] and x.size:
            natural = natural_terms(v1, ref.ys, x)
            cap64 = rel[k] / 4 * np.maximum(natural, np.max(finite_abs(g64[k]))) + (
                64 * float(np.finfo(np.float64).tiny))
            beyond[k] = np.where(noise64[k] > cap64, cap64, np.nan)
            out[k] = (np.minimum(NOISE_SAFETY * noise, rel[k] / 4 * natural)
                      + MOVED_SAFETY * moved[k] + NOISE_SAFETY * np.minimum(noise64[k], cap64))
    return out, _not_homogeneous(p, ref, v64, g64, beyond)


def _not_homogeneous(p: Problem, ref: Any, v64: list[np.ndarray], g64: list[np.ndarray],
                     caps: list[np.ndarray | None]) -> int:
    """How many entries with a cap (not NaN) have ``vjp(2 v) / 2`` off ``vjp(v)`` by more
    than it, in the float64 build. Doubling is exact and commutes with every rounding,
    a float16 cast inside included: a linear formula is homogeneous bit for bit, one that
    squares or ignores ``v`` is off by ``|g|`` (an overflow at ``2 v`` is no evidence)."""
    if all(c is None or np.isnan(c).all() for c in caps):
        return 0
    try:
        doubled = normalise(p.vjp(ref.xs, [2 * v if v.dtype.kind == "f" else v for v in v64],
                                  ref.vjp), ref.xs)
    except CallError:
        return 0
    count = 0
    for g, h, cap in zip(doubled, g64, caps):
        if cap is None or g is None or np.shape(g) != np.shape(h):
            continue
        off = np.abs(np.asarray(g, np.float64) / 2 - h)
        count += int(np.count_nonzero(np.isfinite(off) & (off > cap)))
    return count
