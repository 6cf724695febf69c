"""Flush-to-zero and overflow in the precision check (``precision.py``): the float64
gradient at the point a flush-to-zero evaluation sees, the evidence that values left the
low-precision dtype's normal range, and the per-entry error with correctly rounded
overflows excused.

>>> import numpy as np
>>> entry_errors(np.array([np.inf, 1.0], np.float32), np.array([1e300, 1.5]),
...              np.zeros(2, np.float32)).tolist()
[0.0, 0.5]
"""

from __future__ import annotations

import numpy as np

from gradverify.harness.calls import CallError, Problem
from gradverify.harness.lines import Ref, normalise

__all__ = ["entry_errors", "flush_evidence", "flush_explained", "flushed_gradient", "overflow"]


def overflow(g: np.ndarray, h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The true gradient is beyond the dtype's range: inf of the right sign is the correctly
    rounded value, NaN the sum of terms that overflowed with both signs (inf - inf), and
    nothing finer can be verified."""
    g = np.asarray(g, np.float64)
    beyond = np.abs(h) >= np.finfo(x.dtype).max
    return beyond & (np.isnan(g) | (np.isinf(g) & (np.sign(g) == np.sign(h))))


def flushed_gradient(p: Problem, ref: Ref, v1: list[np.ndarray],
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


def flush_evidence(p: Problem, ref: Ref, g64: list[np.ndarray],
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


def entry_errors(g: np.ndarray, h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """|g - h| entry by entry, 0 where g is the correctly rounded overflow of h (or the
    same infinity)."""
    err = np.asarray(np.subtract(g, h, dtype=np.float64))  # (0-d: a scalar)
    np.abs(err, out=err)
    if np.isfinite(err.max(initial=0.0)):
        return err  # g and h finite: no overflow to excuse (one array, no flags)
    g = np.asarray(g, np.float64)
    with np.errstate(invalid="ignore"):
        same_inf = np.isinf(g) & (g == h)
        return np.where(overflow(g, h, x) | same_inf, 0.0, err)


def flush_explained(p: Problem, g1: list[np.ndarray], g64: list[np.ndarray],
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
        count += int(np.count_nonzero(~(entry_errors(g, h, x) <= t) & (entry_errors(g, f, x) <= t)))
    return count
