"""The precision check: a low-precision (float32) gradient against the float64 one, under
the float32 evaluation term of the error budget: ``F32_SAFETY × max(eps, forward relative
error at x) × max|g64|``, plus how far the float64 gradient itself moves within float32
rounding of x when that is needed.

The tight check of the formula is done in float64 (see ``lines.reference``); this check only
asks whether the low-precision evaluation is as good as its precision allows.

Flush-to-zero: XLA on CPU (JAX) and many GPU kernels compute float32 with subnormals flushed
to zero, inputs and results alike. A subnormal input then acts as an exact zero, which can
make a tie (``maximum(1.4e-45, 0)`` is a tie at 0 for the float32 code, not for float64) or
reach a singularity (``sqrt`` of a flushed 1e-40 has gradient inf). Rounding by a few ulps
never reaches 0 from a subnormal (every relative move stays subnormal), so the rounding
sensitivity cannot see it: the flushed point is a candidate of its own. An entry whose
low-precision gradient matches the float64 gradient at the point with subnormal inputs
flushed to zero (within the same tolerance; inf matching inf) is explained by the flush; a
real low-precision fault matches neither point and still FAILs.
"""

from __future__ import annotations

import math

import numpy as np

from gradverify.harness.calls import CallError, Problem
from gradverify.harness.lines import Ref, all_finite, finite_abs, normalise, worst_index
from gradverify.harness.precision_flush import (
    entry_errors,
    flush_evidence,
    flush_explained,
    flushed_gradient,
    overflow,
)
from gradverify.harness.precision_moves import input_moves
from gradverify.harness.precision_noise import noise_allowance
from gradverify.harness.precision_range import derivative_scale, small_inputs_explained
from gradverify.harness.reasons import Reason
from gradverify.harness.report import FAIL, INCONCLUSIVE, PASS, Check, Entry

__all__ = ["precision"]



def precision(p: Problem, ref: Ref, v1: list[np.ndarray],
               g1: list[np.ndarray]) -> tuple[Check, list[np.ndarray]]:
    """The low-precision gradient against the float64 one, under a float32 error model:
    tolerance f32_safety * max(eps, forward relative error at x) * max|g64|. Returns the
    check and the float64 gradient."""
    g64 = [np.zeros_like(x) if g is None else np.asarray(g, np.float64)
           for g, x in zip(normalise(p.vjp(ref.xs, [v.astype(np.float64) for v in v1],
                                            ref.vjp), ref.xs), ref.xs)]
    y_lo = p.forward([x.copy() for x in p.xs])
    fwd_err = 0.0
    for a, b in zip(y_lo, ref.ys):
        if a.dtype.kind == "f" and a.size:
            scale = float(np.maximum(b.max(), -b.min()))  # max |b|, no |b| array
            if scale > 0 and np.isfinite(scale):
                diff = np.asarray(np.subtract(a, b, dtype=np.float64))  # (0-d: a scalar)
                fwd_err = max(fwd_err, float(np.abs(diff, out=diff).max()) / scale)
    worst, tols = _precision_entries(p, g1, g64, fwd_err, None)
    g_flush = flushed_gradient(p, ref, v1) if worst else None  # only when it may explain
    if g_flush is not None:
        worst, tols = _precision_entries(p, g1, g64, fwd_err, None, g_flush)
    overflowed = sum(int(np.count_nonzero(overflow(g, h, x)))
                     for g, h, x in zip(g1, g64, p.xs) if not all_finite(g))
    sensitive, nonlinear64 = False, 0
    if worst:  # maybe the float64 gradient itself moves that much within float32 rounding
        sens = _rounding_sensitivity(p, ref, v1, g64)
        # A gradient that sums cotangent terms which cancel (fill's sum(v) = 1e-4 from O(1)
        # terms) rounds at the terms' size: the vjp of |v| estimates it.
        absolute = normalise(p.vjp(ref.xs, [np.abs(v.astype(np.float64)) for v in v1],
                                    ref.vjp), ref.xs)
        rel = [p.opts.f32_safety * max(float(np.finfo(x.dtype).eps), fwd_err) for x in p.xs]
        sens = [sv + r / 4 * (0.0 if a is None else finite_abs(np.asarray(a, np.float64)))
                for sv, r, a in zip(sens, rel, absolute)]
        # A gradient formed as a difference of large intermediates: the VJPs' measured
        # rounding (precision_noise.noise_allowance), and whether the float64 one is linear
        allowance, nonlinear64 = noise_allowance(p, ref, v1, g1, g64, rel)
        sens = [sv + a for sv, a in zip(sens, allowance)]
        worst, tols = _precision_entries(p, g1, g64, fwd_err, sens, g_flush)
        sensitive = True
    low = next(str(x.dtype) for x, d in zip(p.xs, p.diff) if d and x.dtype != np.float64)
    underflowed = flush_evidence(p, ref, g64, y_lo) if worst else 0
    if worst and nonlinear64:
        verdict = FAIL
        reason = (f"the float64 VJP is not linear in the cotangent at {nonlinear64} entries: "
                  "vjp(a u + b w) differs from a vjp(u) + b vjp(w) beyond float32 rounding "
                  f"of the gradient's terms (ignores or squares the upstream gradient?)")
    elif worst and underflowed:
        # A value below the normal range (an output, a gradient entry), or an output the
        # low-precision evaluation lost to exactly 0, says the function computes there: a
        # flush-to-zero evaluation rounds such values, and whatever was computed inside at
        # that size, to 0, which can move a tie or a kink we cannot see.
        verdict, reason = INCONCLUSIVE, Reason.SUBNORMAL_FLUSHED.text(
            f"{underflowed} values of the float64 evaluation are below {low}'s normal "
            f"range ({float(np.finfo(low).tiny):.3g}) or are 0 in {low}; the {low} "
            "gradient differs from the float64 one at the flushed inputs too: not "
            "verifiable there")
    elif worst and (edge := _at_range_edge(p, g1, g64, fwd_err, sens, g_flush,
                                           derivative_scale(p, ref, v1, g1, g64))):
        # 1 / x of such an entry is not a normal number of the dtype, or the derivative
        # itself (per unit of cotangent) is beyond the dtype's range: a correct formula
        # (x / y's gradient at y = 1.4e-39; reciprocal's -v (y y) at x = 5e-20 in float32,
        # y y = 4e38) overflows inside, as it does in TF.
        verdict, reason = INCONCLUSIVE, Reason.GRADIENT_OVERFLOWS.text(
            f"the {low} gradient is not finite at {edge} entries whose inputs' reciprocals "
            f"leave {low}'s range (|x| < {1 / float(np.finfo(low).max):.3g} or > "
            f"{1 / float(np.finfo(low).tiny):.3g}) or whose derivative per unit of "
            f"cotangent does (> {float(np.finfo(low).max):.3g}); the float64 gradient is "
            "finite: not verifiable there")
    elif worst and (rescaled := _range_explained(p, v1, g1, g64, fwd_err, sens, g_flush)):
        # Scaling the cotangent by 2^k is exact and a VJP is linear in it: a difference
        # that vanishes under such scaling is the dtype's range lost inside the backward
        # pass (an intermediate flushed or underflowed, or overflowing), not its formula.
        verdict, reason = INCONCLUSIVE, Reason.SUBNORMAL_FLUSHED.text(
            f"the {low} gradient matches the float64 one with the cotangent scaled by "
            f"2^{rescaled}: an intermediate of its backward pass leaves {low}'s normal "
            "range at this cotangent; not verifiable there")
    elif worst and (j := small_inputs_explained(
            p, ref, v1, g64, lambda q, r, v, g: precision(q, r, v, g)[0].verdict)):
        verdict, reason = INCONCLUSIVE, Reason.SUBNORMAL_FLUSHED.text(
            f"x is at the edge of {low}'s normal range (values, or products of the inputs, "
            f"within 1/eps of {float(np.finfo(low).tiny):.3g}); with the inputs below 1 "
            f"moved to |x|^(1/{2 ** j}) the {low} gradient is within its rounding: an "
            f"intermediate leaves {low}'s normal range at x; not verifiable there")
    elif worst:
        verdict = FAIL
        reason = (f"wrong only in low precision: the {low} gradient differs from the float64 "
                  "one beyond rounding" + (" (and beyond how much the float64 gradient moves "
                                           f"within {low} rounding of x)" if sensitive else ""))
    elif overflowed:
        verdict, reason = INCONCLUSIVE, Reason.GRADIENT_OVERFLOWS.text(
            f"{low} at {overflowed} entries (inf, as rounding gives): not verifiable there")
    else:
        verdict, reason = PASS, None
    return Check("precision", verdict, reason,
                 worst=worst, tolerance=max(tols) if tols else None,
                 details={"forward_relative_error": fwd_err, "dtype": low,
                          "float64_not_linear": nonlinear64,
                          "sensitivity_measured": sensitive,
                          "flush_explained": flush_explained(p, g1, g64, g_flush, tols)}), g64


def _at_range_edge(p: Problem, g1: list[np.ndarray], g64: list[np.ndarray],
                   fwd_err: float, sens: list[np.ndarray] | None,
                   g_flush: list[np.ndarray] | None,
                   scale: list[np.ndarray | None] | None = None) -> int:
    """How many entries have a non-finite low-precision gradient (a finite float64 one) at
    an input entry whose reciprocal is not a normal number of its dtype, or whose
    derivative per unit of cotangent (``scale``, from ``precision_range.derivative_scale``)
    is beyond the dtype's range, when setting those entries aside leaves no other
    disagreement; 0 otherwise. A finite but wrong value there is never excused.

    >>> import numpy as np
    >>> from gradverify.harness.calls import Problem
    >>> from gradverify.harness.checker import Options
    >>> p = Problem(np.negative, None, [np.array([1.4e-39, 2.0], np.float32)])
    >>> p.opts = Options()
    >>> g64 = [np.array([0.0, -1.0])]
    >>> _at_range_edge(p, [np.array([np.inf, -1.0], np.float32)], g64, 0.0, None, None)
    1
    >>> _at_range_edge(p, [np.array([5.0, -1.0], np.float32)], g64, 0.0, None, None)
    0
    """
    count, patched = 0, []
    for k, (g, h, x) in enumerate(zip(g1, g64, p.xs)):
        g = np.asarray(g, np.float64)
        if not p.diff[k] or x.dtype == np.float64 or g.shape != x.shape:
            patched.append(g)
            continue
        info = np.finfo(x.dtype)
        with np.errstate(all="ignore"):
            ax = np.abs(np.asarray(x, np.float64))
            beyond = (ax < 1 / float(info.max)) | (ax > 1 / float(info.tiny))
            if scale is not None and scale[k] is not None:
                beyond |= scale[k] >= float(info.max)
            edge = beyond & (~np.isfinite(g)) & np.isfinite(h)
        count += int(np.count_nonzero(edge))
        patched.append(np.where(edge, h, g))
    if not count or _precision_entries(p, patched, g64, fwd_err, sens, g_flush)[0]:
        return 0
    return count


def _range_explained(p: Problem, v1: list[np.ndarray], g1: list[np.ndarray],
                     g64: list[np.ndarray], fwd_err: float, sens: list[np.ndarray] | None,
                     g_flush: list[np.ndarray] | None) -> int:
    """The power of two ``k`` (+-) such that the low-precision VJP at cotangent ``2^k v``,
    scaled back by ``2^-k`` (both exact), agrees with the float64 gradient wherever the
    plain one did not (each entry may take the nearer of the two); 0 when neither
    scaling explains every disagreement. ``k`` is half the dtype's exponent range: values
    of the backward pass proportional to v move from the subnormal range (or from
    overflow) to ordinary sizes, while a wrong formula stays wrong at any scale.

    >>> import numpy as np
    >>> from gradverify.harness.calls import Problem
    >>> from gradverify.harness.checker import Options
    >>> def vjp(xs, gs):   # v * 1e-38 is subnormal: flushed to 0 as XLA on CPU would
    ...     t = (gs[0] * np.float32(1e-38)).astype(np.float32)
    ...     t[np.abs(t) < np.finfo(np.float32).tiny] = 0
    ...     return (t * np.float32(1e38),)
    >>> p = Problem(lambda x: x, vjp, [np.array([2.0, -5.0], np.float32)])
    >>> p.opts = Options()
    >>> v = [np.array([0.5, -0.25], np.float32)]
    >>> _range_explained(p, v, [vjp(p.xs, v)[0]], [v[0].astype(float)], 0.0, None, None)
    64
    """
    low = next(x.dtype for x, d in zip(p.xs, p.diff) if d and x.dtype != np.float64)
    k = int(np.finfo(low).maxexp) // 2
    for shift in (k, -k):
        scale = 2.0 ** shift
        cts = [(v.astype(np.float64) * scale).astype(v.dtype) if v.dtype.kind == "f" else v
               for v in v1]
        try:
            gs = normalise(p.vjp(p.xs, cts), p.xs)
        except CallError:
            continue
        nearer = []
        for g, h, alt in zip(g1, g64, gs):
            if alt is None or np.shape(alt) != np.shape(g):
                nearer.append(g)
                continue
            a = np.asarray(alt, np.float64) / scale
            with np.errstate(invalid="ignore"):
                better = np.abs(a - h) < np.abs(np.asarray(g, np.float64) - h)
            nearer.append(np.where(better, a, np.asarray(g, np.float64)))
        if not _precision_entries(p, nearer, g64, fwd_err, sens, g_flush)[0]:
            return shift
    return 0


def _precision_entries(p: Problem, g1: list[np.ndarray], g64: list[np.ndarray],
                       fwd_err: float, sens: list[np.ndarray] | None,
                       g_flush: list[np.ndarray] | None = None,
                       ) -> tuple[list[Entry], list[float]]:
    """Worst disagreement per input beyond ``f32_safety * max(eps, fwd_err) * max|g64|``
    (plus 4x the measured rounding sensitivity, entry by entry, when given); an entry is
    held to the nearer of the float64 gradient and, when given, the float64 gradient at the
    flushed point."""
    worst, tols = [], []
    for k, (g, h, x) in enumerate(zip(g1, g64, p.xs)):
        if not p.diff[k] or not g.size:
            continue
        eps = float(np.finfo(x.dtype).eps)
        # (max |h| as max(max h, -min h): no |h| array; NaN stays NaN)
        tol = p.opts.f32_safety * max(eps, fwd_err) * float(np.maximum(h.max(), -h.min())
                                                            ) + float(np.finfo(x.dtype).tiny)
        tols.append(tol)
        entry_tol = tol if sens is None else tol + 4 * sens[k]
        err = entry_errors(g, h, x)
        if g_flush is not None:
            err = np.fmin(err, entry_errors(g, g_flush[k], x))
        if sens is None and math.isfinite(tol):  # one tolerance: the worst error is worst
            i = worst_index(err)
            exceeds = err.flat[i] / tol > 1
        else:
            with np.errstate(invalid="ignore"):
                excess = err / entry_tol
            i = worst_index(excess)
            exceeds = excess.flat[i] > 1
        if not np.isfinite(err.flat[i]) or exceeds:
            worst.append(Entry(input=k, input_name=p.names[k],
                               index=tuple(int(t) for t in np.unravel_index(i, x.shape)),
                               analytic=float(np.asarray(g, np.float64).flat[i]),
                               numeric=float(h.flat[i]), bound=0.0,
                               tolerance=float(np.broadcast_to(entry_tol, x.shape).flat[i]),
                               step=0.0, verdict=FAIL, note="float64 analytic gradient"))
    return worst, tols


def _rounding_sensitivity(p: Problem, ref: Ref, v1: list[np.ndarray],
                          g64: list[np.ndarray]) -> list[np.ndarray]:
    """How far the float64 gradient moves when every input entry moves by a few units of
    its low-precision rounding (six evaluations): a float32 computation, which
    rounds its inputs and intermediates that much, cannot be held closer. Large where the
    gradient jumps (floor) or is ill-conditioned (exp(x - logsumexp) at x = 1000)."""
    cts = [v.astype(np.float64) for v in v1]
    out = [np.zeros(x.shape) for x in ref.xs]
    patterns = input_moves(p, ref.xs)
    for signs in patterns + [[-s for s in pattern] for pattern in patterns]:
        for scale in (1.0, _output_rounding_scale(p, ref, signs, g64)):
            if scale == 0.0:
                continue
            moved = [x * (1 + 4 * float(np.finfo(x0.dtype).eps) * scale * s) if d else x
                     for x, x0, d, s in zip(ref.xs, p.xs, p.diff, signs)]
            try:
                gs = normalise(p.vjp(moved, cts, ref.vjp), moved)
            except CallError:
                continue
            for k, g in enumerate(gs):
                if g is not None and np.shape(g) == out[k].shape:
                    with np.errstate(invalid="ignore"):
                        d = np.abs(np.asarray(g, np.float64) - g64[k])
                    out[k] = np.fmax(out[k], np.where(np.isfinite(d), d, 0.0))
    return out


def _output_rounding_scale(p: Problem, ref: Ref, signs: list[np.ndarray],
                           g64: list[np.ndarray]) -> float:
    """How many times the 4-ulp input move it takes to move the output by one rounding of
    its own (0: no more than the move itself). A gradient computed from the rounded output
    (tanh' = 1 - tanh(z)^2 near saturation, where a 4-ulp move of z hardly moves tanh)
    carries that output's rounding, which only so large an input move reproduces. An output
    that does not move at all in this direction (x / y when both move alike) is invariant,
    not slow: no scale. One that the 4-ulp move does not move even in float64 (tanh at
    -16.4 is -1 + 1e-14: the move changes it by 1e-20) is told apart by the largest move
    (half of x): a saturated output moves there, an invariant one does not - nor one the
    moved entries do not feed at x (their float64 gradient is 0: ``maximum``'s smaller
    input, which half of x may carry past the larger one, a kink, not a rounding)."""
    eps = max(float(np.finfo(x.dtype).eps) for x, d in zip(p.xs, p.diff) if d)
    top = 0.5 / (4 * eps)  # at most half of x: the move never flips a sign
    size, change = _output_change(p, ref, signs, 4 * eps)
    if change <= 64 * float(np.finfo(np.float64).eps) * size:  # float64 noise
        if not any(np.any((s != 0) & (g != 0)) for s, g, d in zip(signs, g64, p.diff) if d):
            return 0.0
        size, change = _output_change(p, ref, signs, 0.5)
        return top if change > 64 * float(np.finfo(np.float64).eps) * size else 0.0
    scale = eps * size / change
    return min(scale, top) if scale > 2 else 0.0


def _output_change(p: Problem, ref: Ref, signs: list[np.ndarray], move: float
                   ) -> tuple[float, float]:
    """The outputs' largest magnitude and the largest first-order part of their change,
    ``(y(+move) - y(-move)) / 2``, when every input entry moves by ``move`` times itself
    (signs: ``signs``); a direction in which the output is stationary (logsumexp with two
    tied 1000s moved apart) changes it only at second order, and scaling the move up until
    that reaches one rounding would move the gradient itself by its whole size. (0, 0) when
    the function cannot be evaluated there."""
    try:
        ys = [p.forward([x * (1 + move * sign * s) if d else x
                         for x, d, s in zip(ref.xs, p.diff, signs)], ref.forward)
              for sign in (1.0, -1.0)]
    except CallError:
        return 0.0, 0.0
    size = change = 0.0
    for a, c, b in zip(*ys, ref.ys):
        if b.dtype.kind == "f" and b.size and np.shape(a) == np.shape(c) == b.shape:
            size = max(size, float(np.max(finite_abs(b))))
            with np.errstate(invalid="ignore"):
                d = np.abs(np.asarray(a, np.float64) - np.asarray(c, np.float64)) / 2
            change = max(change, float(np.max(np.where(np.isfinite(d), d, 0.0))))
    return size, change
