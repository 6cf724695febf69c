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

import numpy as np

from gradverify.harness.calls import CallError, Problem
from gradverify.harness.lines import Ref, finite_abs, normalise, scales, worst_index
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
            scale = float(np.max(np.abs(b)))
            if scale > 0 and np.isfinite(scale):
                fwd_err = max(fwd_err, float(np.max(np.abs(a - b))) / scale)
    worst, tols = _precision_entries(p, g1, g64, fwd_err, None)
    g_flush = _flushed_gradient(p, ref, v1) if worst else None  # only when it may explain
    if g_flush is not None:
        worst, tols = _precision_entries(p, g1, g64, fwd_err, None, g_flush)
    overflowed = sum(int(np.count_nonzero(_overflow(g, h, x)))
                     for g, h, x in zip(g1, g64, p.xs))
    sensitive = False
    if worst:  # maybe the float64 gradient itself moves that much within float32 rounding
        sens = _rounding_sensitivity(p, ref, v1, g64)
        # A gradient that sums cotangent terms which cancel (fill's sum(v) = 1e-4 from O(1)
        # terms) rounds at the terms' size: the vjp of |v| estimates it.
        absolute = normalise(p.vjp(ref.xs, [np.abs(v.astype(np.float64)) for v in v1],
                                    ref.vjp), ref.xs)
        rel = [p.opts.f32_safety * max(float(np.finfo(x.dtype).eps), fwd_err) for x in p.xs]
        sens = [sv + r / 4 * (0.0 if a is None else finite_abs(np.asarray(a, np.float64)))
                for sv, r, a in zip(sens, rel, absolute)]
        # A gradient formed as a difference of large intermediates ((t + t) / (t + t): two
        # terms of size |v / t| cancel to 0 in float64, to an ulp of them in float32)
        # rounds at the intermediates' size, which neither |g64| nor the vjp of |v| shows.
        # A function of size |y| changes by |y| over a distance |x_i|: its gradient's
        # terms are about |v| |y| / |x_i|, and each entry may round at that size.
        sens = [sv + r / 4 * _natural_terms(v1, ref.ys, x)
                for sv, r, x in zip(sens, rel, ref.xs)]
        worst, tols = _precision_entries(p, g1, g64, fwd_err, sens, g_flush)
        sensitive = True
    low = next(str(x.dtype) for x, d in zip(p.xs, p.diff) if d and x.dtype != np.float64)
    underflowed = _flush_evidence(p, ref, g64, y_lo) if worst else 0
    if worst and underflowed:
        # A value below the normal range (an output, a gradient entry), or an output the
        # low-precision evaluation lost to exactly 0, says the function computes there: a
        # flush-to-zero evaluation rounds such values, and whatever was computed inside at
        # that size, to 0, which can move a tie or a kink we cannot see.
        verdict, reason = INCONCLUSIVE, Reason.SUBNORMAL_FLUSHED.text(
            f"{underflowed} values of the float64 evaluation are below {low}'s normal "
            f"range ({float(np.finfo(low).tiny):.3g}) or are 0 in {low}; the {low} "
            "gradient differs from the float64 one at the flushed inputs too: not "
            "verifiable there")
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
                          "sensitivity_measured": sensitive,
                          "flush_explained": _flush_explained(p, g1, g64, g_flush, tols)}), g64


def _natural_terms(v1: list[np.ndarray], ys: list[np.ndarray], x: np.ndarray,
                   ) -> np.ndarray:
    """The natural size of a gradient's terms at each entry of ``x``: ``max|v| max|y| /
    min(|x_i|, 1)`` (zeros of x step like the RMS of the rest, as the steps do). Below
    |x| = 1 it grows: terms of (t + t) / (t + t) are |v / t|. A wrong low-precision gradient
    of ordinary size (tanh accumulated in float16) stays far outside 64 ulps of it.

    >>> import numpy as np
    >>> _natural_terms([np.array([0.5])], [np.array([2.0])], np.array([1e-3, 4.0])).tolist()
    [1000.0, 1.0]
    """
    size = sum(float(np.max(finite_abs(np.asarray(v, np.float64)), initial=0.0))
               * float(np.max(finite_abs(np.asarray(y, np.float64)), initial=0.0))
               for v, y in zip(v1, ys) if y.dtype.kind == "f")
    if x.dtype.kind != "f":
        return np.zeros(x.shape)
    return size / np.minimum(scales([x])[0], 1.0)


def _overflow(g: np.ndarray, h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The true gradient is beyond the dtype's range: inf of the right sign is the correctly
    rounded value, and nothing finer can be verified."""
    g = np.asarray(g, np.float64)
    return np.isinf(g) & (np.abs(h) >= np.finfo(x.dtype).max) & (np.sign(g) == np.sign(h))


def _flushed_gradient(p: Problem, ref: Ref, v1: list[np.ndarray],
                      ) -> list[np.ndarray] | None:
    """The float64 gradient at the point a flush-to-zero evaluation sees: every
    low-precision input entry below its dtype's smallest normal number set to (signed) zero.
    None when no entry is subnormal (nothing to flush) or the function fails there."""
    flushed, any_flushed = [], False
    for x64, x in zip(ref.xs, p.xs):
        if x.dtype.kind != "f" or x.dtype == np.float64:
            flushed.append(x64)
            continue
        sub = (x64 != 0) & (np.abs(x64) < float(np.finfo(x.dtype).tiny))
        any_flushed = any_flushed or bool(sub.any())
        flushed.append(np.where(sub, np.copysign(0.0, x64), x64))
    if not any_flushed:
        return None
    try:
        gs = normalise(p.vjp(flushed, [v.astype(np.float64) for v in v1], ref.vjp), flushed)
    except CallError:
        return None
    return [np.zeros(x.shape) if g is None or np.shape(g) != x.shape
            else np.asarray(g, np.float64) for g, x in zip(gs, ref.xs)]


def _flush_evidence(p: Problem, ref: Ref, g64: list[np.ndarray],
                    y_lo: list[np.ndarray]) -> int:
    """Entries of the float64 outputs and gradient that are non-zero but below the normal
    range of the low-precision dtype (a flush-to-zero evaluation zeroes them), and outputs
    that are exactly 0 in low precision but not in float64 (a value flushed inside:
    ``relu(x * 1e-30) * 1e30``)."""
    tiny = max(float(np.finfo(x.dtype).tiny) for x, d in zip(p.xs, p.diff)
               if d and x.dtype != np.float64)
    values = [y for y in ref.ys if y.dtype.kind == "f"] + list(g64)
    count = sum(int(np.count_nonzero((v != 0) & (np.abs(v) < tiny))) for v in values)
    for a, b in zip(y_lo, ref.ys):
        if a.dtype.kind == "f" and np.shape(a) == np.shape(b):
            count += int(np.count_nonzero((a == 0) & (b != 0) & np.isfinite(b)))
    return count


def _errors(g: np.ndarray, h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """|g - h| entry by entry, 0 where g is the correctly rounded overflow of h (or the
    same infinity)."""
    g = np.asarray(g, np.float64)
    with np.errstate(invalid="ignore"):
        same_inf = np.isinf(g) & (g == h)
        return np.where(_overflow(g, h, x) | same_inf, 0.0, np.abs(g - h))


def _flush_explained(p: Problem, g1: list[np.ndarray], g64: list[np.ndarray],
                     g_flush: list[np.ndarray] | None, tols: list[float]) -> int:
    """How many entries disagree with the float64 gradient but match it at the flushed
    point (reported, so a PASS that leans on the flush says so)."""
    if g_flush is None:
        return 0
    count, tol = 0, iter(tols)
    for k, (g, h, f, x) in enumerate(zip(g1, g64, g_flush, p.xs)):
        if not p.diff[k] or not g.size:
            continue
        t = next(tol)
        count += int(np.count_nonzero(~(_errors(g, h, x) <= t) & (_errors(g, f, x) <= t)))
    return count


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
        tol = p.opts.f32_safety * max(eps, fwd_err) * float(np.max(np.abs(h))) + float(
            np.finfo(x.dtype).tiny)
        tols.append(tol)
        entry_tol = tol if sens is None else tol + 4 * sens[k]
        err = _errors(g, h, x)
        if g_flush is not None:
            err = np.fmin(err, _errors(g, g_flush[k], x))
        with np.errstate(invalid="ignore"):
            excess = err / entry_tol
        i = worst_index(excess)
        if not np.isfinite(err.flat[i]) or excess.flat[i] > 1:
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
    # Every entry both ways; neighbouring entries and corresponding entries of different
    # inputs both together and apart (x / y does not move when x and y move alike, nor
    # softmax when all logits do); and a random pattern for the rest.
    def checker(k: int, x: np.ndarray) -> np.ndarray:
        return (-1.0) ** (np.arange(x.size).reshape(x.shape) + k)
    patterns = [[np.ones(x.shape) for x in ref.xs],
                [checker(k, x) for k, x in enumerate(ref.xs)],
                [p.rng.choice(np.array([-1.0, 1.0]), size=x.shape) for x in ref.xs]]
    for signs in patterns + [[-s for s in pattern] for pattern in patterns]:
        for scale in (1.0, _output_rounding_scale(p, ref, signs)):
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


def _output_rounding_scale(p: Problem, ref: Ref, signs: list[np.ndarray]) -> float:
    """How many times the 4-ulp input move it takes to move the output by one rounding of
    its own (0: no more than the move itself). A gradient computed from the rounded output
    (tanh' = 1 - tanh(z)^2 near saturation, where a 4-ulp move of z hardly moves tanh)
    carries that output's rounding, which only so large an input move reproduces. An output
    that does not move at all in this direction (x / y when both move alike) is invariant,
    not slow: no scale."""
    eps = max(float(np.finfo(x.dtype).eps) for x, d in zip(p.xs, p.diff) if d)
    moved = [x * (1 + 4 * eps * s) if d else x for x, d, s in zip(ref.xs, p.diff, signs)]
    try:
        ys = p.forward(moved, ref.forward)
    except CallError:
        return 0.0
    size = change = 0.0
    for a, b in zip(ys, ref.ys):
        if b.dtype.kind == "f" and b.size and np.shape(a) == b.shape:
            size = max(size, float(np.max(finite_abs(b))))
            with np.errstate(invalid="ignore"):
                d = np.abs(np.asarray(a, np.float64) - b)
            change = max(change, float(np.max(np.where(np.isfinite(d), d, 0.0))))
    if change <= 64 * float(np.finfo(np.float64).eps) * size:  # float64 noise: invariant
        return 0.0
    scale = eps * size / change
    # at most half of x: the move never flips a sign
    return min(scale, 0.5 / (4 * eps)) if scale > 2 else 0.0


