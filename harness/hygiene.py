"""Hygiene checks, each a named function returning a :class:`Check`: what must hold before
any finite difference means anything.

- ``deterministic``: two forward evaluations at the same inputs agree bit for bit;
- ``input_unchanged``: neither the forward nor the VJP mutates its inputs;
- ``output_type``: the forward returns real arrays (``None``, strings, objects: FAIL);
- ``arity``: one gradient per input;
- ``gradient_type`` / ``gradient_shape``: each gradient is a real array (or ``None``) with its
  input's shape and dtype;
- ``linearity``: ``vjp(a v1 + b v2) = a vjp(v1) + b vjp(v2)`` (catches "ignores the upstream
  gradient");
- ``finite``: no NaN/Inf gradient where the numeric derivative is finite.

>>> import numpy as np
>>> deterministic([np.ones(2)], [np.ones(2)]).verdict
'PASS'
>>> gradient_shape([np.ones(3)], [np.ones(2)], [True], ["x"]).reason
'x: gradient (3,):float64 for input (2,):float64'
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from gradverify.harness.calls import CallError, Problem
from gradverify.harness.lines import (
    cotangent,
    finite_max,
    normalise,
    scales,
    shape_dtype,
    worst_index,
)
from gradverify.harness.probe_sums import BLOCK
from gradverify.harness.report import FAIL, PASS, Check, Entry

__all__ = ["same", "deterministic", "input_unchanged", "arity", "gradient_type",
           "gradient_shape", "linearity", "finite"]


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shape, dtype and values (NaN equal to NaN)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    # one pass in the common case (the method, not np.all: its wrapper costs more than the
    # comparison of a small array); NaNs need the slow one
    if bool((a == b).all()):
        return True
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _combine(alpha: float, a: np.ndarray, beta: float, b: np.ndarray) -> np.ndarray:
    """alpha a + beta b in float64 (the same roundings as ``a * alpha + b * beta``) with
    no temporary of the full size: beta b is formed block by block."""
    out = np.asarray(np.multiply(a, alpha, dtype=np.float64))
    if out.ndim == 0 or np.shape(b) != out.shape or not out.flags.c_contiguous:
        out += np.multiply(b, beta, dtype=np.float64)  # (rare layouts: one temporary)
        return np.asarray(out)
    flat, bs = out.reshape(-1), np.ravel(b)
    if flat.size <= BLOCK:  # one block: no slices
        flat += np.multiply(bs, beta, dtype=np.float64)
        return out
    tmp = np.empty(min(flat.size, BLOCK))
    for lo in range(0, flat.size, BLOCK):
        part = tmp[:min(BLOCK, flat.size - lo)]
        np.multiply(bs[lo:lo + part.size], beta, out=part, dtype=np.float64)
        flat[lo:lo + part.size] += part
    return out


class _Limits(NamedTuple):
    eps: float
    tiny: float


@functools.cache
def _finfo(dtype: np.dtype) -> _Limits:
    # np.finfo's answers as floats, looked up once per dtype (np.finfo costs a microsecond
    # or two a call, and a small check asks a dozen times)
    info = np.finfo(dtype)
    return _Limits(float(info.eps), float(info.tiny))


def _natural(out_size: Callable[[], float], x: np.ndarray) -> float:
    return out_size() / max(finite_max(x), 1.0)


def deterministic(y0: Sequence[np.ndarray], y1: Sequence[np.ndarray]) -> Check:
    ok = len(y0) == len(y1) and all(same(a, b) for a, b in zip(y0, y1))
    return Check("hygiene.deterministic", PASS if ok else FAIL,
                 None if ok else "forward not deterministic: two evaluations at the same "
                 "inputs differ (a random op inside?)")


def input_unchanged(mutated: Sequence[str]) -> Check:
    return Check("hygiene.input_unchanged", FAIL if mutated else PASS,
                 f"input mutated: {', '.join(mutated)}" if mutated else None)


def mutated_inputs(before: Sequence[np.ndarray], after: Sequence[np.ndarray],
                   names: Sequence[str], suffix: str = "") -> list[str]:
    return [names[k] + suffix for k, (a, b) in enumerate(zip(before, after))
            if not same(a, b)]


def arity(gradients: Sequence[Any], n_inputs: int) -> Check:
    ok = len(gradients) == n_inputs
    return Check("hygiene.arity", PASS if ok else FAIL,
                 None if ok else f"vjp returned {len(gradients)} gradients for {n_inputs} "
                 "inputs")


def gradient_type(gradients: Sequence[Any], names: Sequence[str]) -> Check:
    """Each gradient is None or converts to a real-valued array."""
    bad = []
    for k, g in enumerate(gradients):
        if g is None or (type(g) is np.ndarray and g.dtype.kind in "biuf"):
            continue  # (an array of numbers: the common case, no conversion)
        if isinstance(g, (str, bytes, dict, set)):
            bad.append(f"{names[k]}: gradient is {type(g).__name__}, not an array")
            continue
        try:
            kind = np.asarray(g).dtype.kind
        except Exception as e:  # noqa: BLE001 - whatever it is, it is not an array
            bad.append(f"{names[k]}: gradient is not an array ({type(e).__name__})")
            continue
        if kind not in "biuf":
            bad.append(f"{names[k]}: gradient has dtype {np.asarray(g).dtype}")
    return Check("hygiene.gradient_type", FAIL if bad else PASS,
                 "; ".join(bad) if bad else None)


def gradient_shape(gradients: Sequence[np.ndarray | None], xs: Sequence[np.ndarray],
                   diff: Sequence[bool], names: Sequence[str]) -> Check:
    bad = [f"{names[k]}: gradient {shape_dtype(g)} for input {shape_dtype(x)}"
           for k, (g, x) in enumerate(zip(gradients, xs))
           if diff[k] and g is not None and (g.shape != x.shape or g.dtype != x.dtype)]
    return Check("hygiene.gradient_shape", FAIL if bad else PASS,
                 "; ".join(bad) if bad else None)


def finite(gradient_check: Check) -> Check:
    bad = [e for e in gradient_check.worst if e.verdict == FAIL
           and not np.isfinite(e.analytic) and np.isfinite(e.numeric)]
    return Check("hygiene.finite", FAIL if bad else PASS,
                 "NaN/Inf gradient where the numeric derivative is finite" if bad else None,
                 worst=bad)


def linearity(p: Problem, v1: list[np.ndarray], g1: list[np.ndarray],
              y0: list[np.ndarray], made: list | None = None,
              ) -> tuple[Check, list[np.ndarray]]:
    """vjp(a v1 + b v2) must equal a vjp(v1) + b vjp(v2) up to rounding. ``made``: if
    given, receives the pair (v2, vjp(v2)) for reuse (fast mode's second cotangent).

    In a low-precision dtype, a backward pass whose values proportional to the cotangent
    leave the normal range (``v * 1e-45`` rounds to 0 or to a few digits, which ``1.5 v``
    does not) is judged again with the cotangents scaled up (``_range_lost``)."""
    v2 = cotangent(p.rng, v1)
    v12 = [_combine(_ALPHA, a, _BETA, b).astype(a.dtype, copy=False) if a.dtype.kind == "f"
           else a for a, b in zip(v1, v2)]
    # both at once: a VJP offering several cotangents per call serves them from one forward
    g2, g12 = _gradients(p, p.vjps(p.xs, [v2, v12]))
    if made is not None:
        made.append((v2, g2))
    worst, residual = _nonlinearity(p, v1, y0, g1, g2, g12)
    details = {}
    if worst and (scaled := _range_lost(p, v1, v2, v12, y0)):
        (worst, residual), details = ([], scaled[0]), {"cotangent_scaled_by": scaled[1]}
    elif worst and _rounds_coarser(p, v1, g1, y0, g2, g12):
        worst, details = [], {"rounding_inside": "float32"}
    elif worst and _odd_homogeneous(p, v1):
        worst, details = [], {"homogeneous": "vjp(-2 v) == -2 vjp(v) bit for bit"}
    check = Check("hygiene.linearity", FAIL if worst else PASS,
                  "gradient not linear in the cotangent (ignores the upstream gradient?)"
                  if worst else None, worst=worst, details=details)
    return check, residual


def _range_lost(p: Problem, v1: list[np.ndarray], v2: list[np.ndarray],
                v12: list[np.ndarray], y0: list[np.ndarray],
                ) -> tuple[list[np.ndarray], str] | None:
    """The residual (in units of ``v1``) and the scale ``2^k`` at which the low-precision
    VJP is linear, when non-linearity at ``v1`` is the dtype's range; None when it is not.

    Scaling cotangents by a power of two is exact, and a linear formula commutes with it
    (rounding included) wherever its values stay in range: at ``2^k`` (half the exponent
    range) and ``2^(k/2)``, values that were subnormal are ordinary, so ``vjp(2^k v) /
    2^k`` is linear in ``v`` and equals ``vjp(2^(k/2) v) / 2^(k/2)``. A wrong formula fails
    one of the two at any scale: ``v`` ignored or squared is not homogeneous, and the
    homogeneity test has no rounding floor of a gradient's natural size, under which a
    scaled gradient could hide."""
    low = [t.dtype for t in [*p.xs, *v1] if t.dtype.kind == "f" and t.dtype != np.float64]
    if not low:
        return None
    k = int(np.finfo(low[0]).maxexp) // 2
    scaled = [[(v.astype(np.float64) * 2.0 ** shift).astype(v.dtype) if v.dtype.kind == "f"
               else v for v in cts] for shift, cts in ((k, v1), (k, v2), (k, v12), (k // 2, v1))]
    try:
        g1, g2, g12, half = ([np.asarray(g, np.float64) / 2.0 ** shift for g in gs]
                             for shift, gs in zip((k, k, k, k // 2),
                                                  _gradients(p, p.vjps(p.xs, scaled))))
    except CallError:
        return None
    for a, b, x in zip(g1, half, p.xs):
        tol = math.sqrt(_finfo(x.dtype).eps) * np.fmax(np.abs(a), np.abs(b)) + float(
            _finfo(x.dtype).tiny)
        if not (np.isfinite(a).all() and np.isfinite(b).all() and (np.abs(a - b) <= tol).all()):
            return None
    worst, residual = _nonlinearity(p, v1, y0, g1, g2, g12)
    return None if worst else (residual, f"2^{k}")


def _rounds_coarser(p: Problem, v1: list[np.ndarray], g1: list[np.ndarray],
                    y0: list[np.ndarray], g2: list[np.ndarray], g12: list[np.ndarray],
                    ) -> bool:
    """A VJP not linear at its dtype's rounding whose gradient entries are float32 numbers,
    linear within float32's rounding (64 eps) and exactly homogeneous, ``vjp(2 v) / 2 =
    vjp(v)``: a linear formula computed in float32 inside
    (``sin(x.astype(float32))`` of float64 ``x``; its FAIL came and went with the seed).
    Doubling the cotangent commutes with every rounding, so the formula passes that bit for
    bit; a cotangent ignored, squared or added to is not homogeneous and FAILs."""
    if not any(t.dtype == np.float64 for t in [*p.xs, *v1] if t.dtype.kind == "f"):
        return False  # a float32 function: _range_lost's case
    # evidence of float32 inside: every gradient entry is a float32 number (a homogeneous
    # fault in a float64 VJP, 1e-4 |v| on an entry, is not excused)
    for g, d in zip(g1, p.diff):
        g64 = np.asarray(g, np.float64)
        if d and not np.array_equal(g64.astype(np.float32).astype(np.float64), g64,
                                    equal_nan=True):
            return False
    # within float32's rounding of linear: the budget float32 gradients get (64 eps)
    if _nonlinearity(p, v1, y0, g1, g2, g12, rel_floor=64 * _F32_EPS)[0]:
        return False
    return _scales_exactly(p, v1, 2.0)


def _odd_homogeneous(p: Problem, v1: list[np.ndarray]) -> bool:
    """A VJP not linear at the rounding of its gradient's own size, that is exactly odd
    and homogeneous: ``vjp(-2 v) == -2 vjp(v)`` bit for bit. A gradient that is pure
    cancellation (terms of size 0.2 summing to 7e-18, at an output of exactly 0: no
    natural size to floor the tolerance at) rounds like terms nobody sees; scaling by -2
    commutes with every rounding, so a linear formula passes it exactly, while a
    cotangent ignored, squared, clipped at 0 or added to does not, at any size."""
    return any(t.dtype.kind == "f" for t in v1) and _scales_exactly(p, v1, -2.0)


def _scales_exactly(p: Problem, v1: list[np.ndarray], factor: float) -> bool:
    """``vjp(factor v1) == factor vjp(v1)`` bit for bit (``factor`` a power of two, or its
    negative: scaling by it is exact)."""
    scaled = [v * factor if v.dtype.kind == "f" else v for v in v1]
    try:  # both in one call: two programs (XLA's fusions) may round differently
        g_v, g_s = _gradients(p, p.vjps(p.xs, [v1, scaled]))
    except CallError:
        return False
    for a, b, d in zip(g_v, g_s, p.diff):
        a64, b64 = np.asarray(a, np.float64) * factor, np.asarray(b, np.float64)
        if d and not (a64.shape == b64.shape and np.array_equal(a64, b64, equal_nan=True)):
            return False
    return True


_F32_EPS = float(np.finfo(np.float32).eps)
_ALPHA, _BETA = 0.75, -1.5  # exact in binary: no rounding from the coefficients


def _gradients(p: Problem, results: list[list[Any]]) -> list[list[np.ndarray]]:
    return [[np.zeros_like(x) if g is None else g for g, x in zip(normalise(gs, p.xs), p.xs)]
            for gs in results]


def _readable(t: np.ndarray) -> np.ndarray:
    """``t`` itself when NumPy's ufuncs read it as float64 exactly (its own float types),
    else a float64 copy (bfloat16, integers, bools)."""
    return t if isinstance(t, np.ndarray) and t.dtype in _NATIVE_FLOATS else np.asarray(
        t, np.float64)


_NATIVE_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _nonlinearity(p: Problem, v1: list[np.ndarray], y0: list[np.ndarray],
                  g1: list[np.ndarray], g2: list[np.ndarray], g12: list[np.ndarray],
                  rel_floor: float = 0.0) -> tuple[list[Entry], list[np.ndarray]]:
    """The entries where ``g12`` is not ``a g1 + b g2`` beyond rounding (the worst per
    input; ``rel_floor``: a coarser relative rounding), and the residual ``|g12 - (a g1 +
    b g2)|`` per input."""
    alpha, beta = _ALPHA, _BETA
    worst, residual = [], []
    # The cotangents are rounded to the outputs' dtypes (a float64 -> float32 cast rounds
    # v1 + v2): the coarsest dtype on either side sets the rounding.
    out_eps = max((_finfo(v.dtype).eps for v in v1 if v.dtype.kind == "f"), default=0.0)
    # Below the smallest normal number rounding is absolute, and an evaluation that flushes
    # subnormals to zero (XLA on CPU) loses up to the whole range: 64 of these (the floor
    # below) cover a flush in each of the three gradients compared.
    subnormal = max(_finfo(t.dtype).tiny / 16 for t in [*p.xs, *v1] if t.dtype.kind == "f")
    def out_size() -> float:
        return sum(float(np.max(np.abs(v), initial=0.0)) * finite_max(y)
                   for v, y in zip(v1, y0) if v.dtype.kind == "f")
    for k, (a, b, c, x) in enumerate(zip(g1, g2, g12, p.xs)):
        if not p.diff[k] or a.shape != x.shape or b.shape != x.shape or c.shape != x.shape:
            residual.append(np.zeros(x.shape))
            continue
        # In float64 throughout, but a float32 gradient is read as float64 by the ufuncs
        # themselves, block by block: no float64 copies of the three gradients (exact
        # either way). (No errstate of its own: check_vjp runs everything under one.)
        a, b, c = _readable(a), _readable(b), _readable(c)
        r = _combine(alpha, a, beta, b)
        if r.ndim:
            np.abs(np.subtract(c, r, out=r, dtype=np.float64), out=r)
        else:
            r = np.asarray(np.abs(np.asarray(c, np.float64) - r))
        err = float(r.max()) if r.size else 0.0
        if not np.isfinite(err):
            # A non-finite gradient (an overflow, inf - inf inside at a subnormal input) is
            # judged by hygiene.finite and precision, not as a non-linearity.
            r = np.where(np.isfinite(a) & np.isfinite(b) & np.isfinite(c), r, 0.0)
            err = float(np.max(r, initial=0.0))
        residual.append(r)
        rel = max(math.sqrt(max(_finfo(x.dtype).eps, out_eps)), rel_floor)
        # A gradient that is pure cancellation noise (softmax's second order at a tie is
        # ~1e-17 from O(1) terms) has no scale of its own: floor the tolerance at the
        # natural size |v| |y| / max(|x|, 1) of a gradient of this function. The terms are
        # computed only as far as needed to pass (the largest one decides).
        tol = 0.0
        for factor, term in ((abs(alpha), partial(finite_max, a)),
                             (abs(beta), partial(finite_max, b)),
                             (1.0, partial(finite_max, c)),
                             (1.0, partial(_natural, out_size, x))):
            tol = max(tol, rel * factor * term() + 64 * subnormal)
            if np.isfinite(err) and err <= tol:
                break
        if np.isfinite(err) and err > tol:
            # Below |x| = 1 the natural size grows entry by entry: a function of size |y|
            # changes by |y| over a distance |x_i|, so its gradient's terms are about
            # |v| |y| / |x_i| ((t + t) / (t + t) at t = 1e-20 rounds terms of 1e20 to a
            # difference of 1e13) - a cotangent ignored still shows beside them.
            # Each entry against its own floor: a cotangent ignored at x_i = 7 is not
            # excused by the floor of an entry at 1e-8 beside it.
            local = np.broadcast_to(np.fmax(rel * out_size() / np.minimum(
                scales([x])[0], 1.0) + 64 * subnormal, tol), r.shape)
            r = np.where(r > local, r, 0.0)
            err = float(np.max(r, initial=0.0))
            tol = float(local.flat[worst_index(r)]) if err > 0 else tol
        if not np.isfinite(err) or err > tol:
            i = worst_index(r)
            worst.append(Entry(input=k, input_name=p.names[k],
                               index=tuple(int(t) for t in np.unravel_index(i, x.shape)),
                               analytic=float(c.flat[i]),
                               numeric=alpha * float(a.flat[i]) + beta * float(b.flat[i]),
                               bound=0.0, tolerance=tol, step=0.0, verdict=FAIL))
    return worst, residual

