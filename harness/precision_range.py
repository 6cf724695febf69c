"""The precision check at the edge of a low-precision dtype's range. Two explanations of a
difference that is the range, not the formula:

- inputs near the smallest normal number, or whose products are
  (``small_inputs_explained``): an intermediate formed from them can be subnormal, of a
  few digits, or 0 inside the computation;
- the size of a derivative per unit of cotangent (``derivative_scale``): a chain rule
  forms derivative factors before the cotangent weights them (``-v (y y)``, TF's
  ``(-x / y) / y``), so where one is beyond float32's range the float32 gradient overflows
  although ``v`` times it would fit.

>>> import numpy as np
>>> from gradverify.harness.calls import Problem
>>> from gradverify.harness.lines import Ref
>>> x = np.array([5e-20, 2.0])
>>> vjp = lambda xs, gs: (gs[0] * ((-1 / xs[0]) / xs[0]),)
>>> p = Problem(lambda x: 1 / x, vjp, [x.astype(np.float32)])
>>> ref = Ref(lambda x: 1 / x, vjp, [x], [1 / x], 2.0 ** -52)
>>> g1 = [np.array([-np.inf, -0.125], np.float32)]
>>> v1, g64 = [np.array([0.5, 1.0], np.float32)], [np.array([-2e38, -0.125])]
>>> d = derivative_scale(p, ref, v1, g1, g64)
>>> bool(d[0][0] > np.finfo(np.float32).max), float(d[0][1])
(True, 0.25)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gradverify.harness.calls import CallError, Problem
from gradverify.harness.lines import Ref, finite_abs, normalise

__all__ = ["derivative_scale", "small_inputs_explained"]


def derivative_scale(p: Problem, ref: Ref, v1: list[np.ndarray], g1: list[np.ndarray],
                      g64: list[np.ndarray]) -> list[np.ndarray | None]:
    """Per input, a lower estimate of the float64 derivative's size per unit of cotangent
    at each entry: ``|g64| / max|v|`` and the float64 VJP of a cotangent of ones (an
    elementwise derivative exactly). None for every input when no low-precision entry is
    non-finite where the float64 one is finite (nothing to explain: no evaluation).

    A chain rule forms derivative factors before the cotangent weights them (``-v (y y)``,
    TF's ``(-x / y) / y``): where one is beyond the dtype's range the low-precision
    gradient overflows although ``v`` times it would fit."""
    with np.errstate(invalid="ignore"):
        if not any(np.any(~np.isfinite(np.asarray(g, np.float64)) & np.isfinite(h))
                   for g, h in zip(g1, g64) if np.shape(g) == np.shape(h)):
            return [None] * len(g64)
    vmax = max([float(np.max(finite_abs(np.asarray(v, np.float64)), initial=0.0))
                for v in v1 if v.dtype.kind == "f"] + [0.0])
    ones = [np.ones(v.shape) if v.dtype.kind == "f" else v for v in v1]
    try:
        unit = normalise(p.vjp(ref.xs, ones, ref.vjp), ref.xs)
    except CallError:
        unit = [None] * len(g64)
    out: list[np.ndarray | None] = []
    for h, u in zip(g64, unit):
        with np.errstate(all="ignore"):
            d = np.abs(h) / vmax if vmax > 0 else np.zeros(h.shape)
            if u is not None and np.shape(u) == h.shape:
                d = np.fmax(d, np.abs(np.asarray(u, np.float64)))
        out.append(d)
    return out




def small_inputs_explained(p: Problem, ref: Ref, v1: list[np.ndarray], g64: list[np.ndarray],
                           check_at: Callable[[Problem, Ref, list[np.ndarray],
                                               list[np.ndarray]], str],
                           native: bool = False) -> int:
    """``j`` when the low-precision gradient does not FAIL (``check_at``, the precision
    check) at the point with every normal input entry of magnitude below 1 moved to
    ``sign(x) |x|^(1/2^j)``; 0 when x is not at the edge of the dtype's range, or the
    moved point FAILs too.

    At the edge of the range: a float64 input, output or gradient entry within ``1/eps``
    of the dtype's smallest normal number, or a product of the inputs below 1 that is. A
    computation there can form an intermediate of a few digits or none (``prod`` of 1.2e-38
    and 1e-5 in float32 is 1.2e-43, a subnormal of three digits; of four 1e-15 it is 0),
    and its gradient is that far off; the rounding sensitivity, moving x by units of its
    rounding, never shows it. ``j`` is the least that takes those products off the edge;
    zeros, signs, ties and order are kept, subnormal inputs are the flush check's and stay.
    A formula wrong in low precision (a downcast inside) is wrong at the moved point too.
    ``native``: the float64 check itself (the inputs of every float dtype move, subnormal
    ones too: nothing flushes float64), only where an input, output or gradient value is
    at the edge (a product of 60 000 normal draws is below it, and moving them all costs
    a second check): ``prod``'s second order through 1.1e-308 and 6.7e-7 forms a subnormal
    of nine digits.

    >>> import numpy as np
    >>> from gradverify.harness.checker import Options
    >>> vjp = lambda xs, gs: (gs[0] * np.prod(xs[0]) / xs[0],)
    >>> p = Problem(np.prod, vjp, [np.array([1.2e-38, 1e-5, 2.0], np.float32)])
    >>> p.opts, seen = Options(), []
    >>> moved_point_passes = lambda q, ref, v, g: seen.append(q.xs) or "PASS"
    >>> small_inputs_explained(p, None, [np.float32(1)], [], moved_point_passes)
    1
    >>> [float(x) for x in seen[0][0]]  # doctest: +ELLIPSIS
    [1.09...e-19, 0.00316..., 2.0]
    """
    if getattr(p, "moved_inward", False):  # the moved point is judged as it is
        return 0
    low = [(k, np.finfo(x.dtype)) for k, x in enumerate(p.xs)
           if p.diff[k] and (native or x.dtype != np.float64)]
    if not low:
        return 0
    edge = min(float(info.tiny) / float(info.eps) for _, info in low)
    magnitudes = [np.abs(p.xs[k].astype(np.float64)) for k, _ in low]
    small = [(a >= (0.0 if native else float(info.tiny))) & (a > 0) & (a < 1)
             for a, (_, info) in zip(magnitudes, low)]
    logs = sum(float(np.log(a[m]).sum()) for a, m in zip(magnitudes, small))
    values = [*magnitudes, *(np.abs(y) for y in (ref.ys if ref else []) if y.dtype.kind == "f"),
              *(np.abs(g) for g in g64)]
    near = any(bool(np.any((v > 0) & (v < edge))) for v in values)
    if not (near or (logs < np.log(edge) and not native)) or not any(m.any() for m in small):
        return 0  # (native: a value at the edge; a product of many entries below 1 is not)
    j = 1
    while logs / 2 ** j < np.log(edge) and j < 8:
        j += 1
    xs32, xs64 = list(p.xs), list(ref.xs) if ref else None
    for (k, _), a, m in zip(low, magnitudes, small):
        x = p.xs[k]
        xs32[k] = np.where(m, np.sign(x) * a ** (1.0 / 2 ** j), x).astype(x.dtype)
        if xs64 is not None:
            xs64[k] = xs32[k].astype(np.float64)
    q = Problem(p.forward_fn, p.vjp_fn, xs32, timeout=p.timeout, names=p.names, rng=p.rng)
    q.opts, q.explicit_rtols = p.opts, getattr(p, "explicit_rtols", {})
    q.moved_inward = True
    try:
        ref_q = None if ref is None else Ref(
            ref.forward, ref.vjp, xs64, q.forward(xs64, ref.forward, moved=True), ref.eps)
        g1 = normalise(q.vjp(q.xs, v1), q.xs)
        verdict = check_at(q, ref_q, v1, [np.zeros(x.shape) if g is None else g
                                          for g, x in zip(g1, q.xs)])
    except CallError:
        verdict = "FAIL"
    finally:
        p.n_forward += q.n_forward
        p.n_backward += q.n_backward
    return j if verdict != "FAIL" else 0
