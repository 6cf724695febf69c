"""The size of a derivative per unit of cotangent, for the precision check at the edge of a
low-precision dtype's range: a chain rule forms derivative factors before the cotangent
weights them (``-v (y y)``, TF's ``(-x / y) / y``), so where one is beyond float32's range
the float32 gradient overflows although ``v`` times it would fit.

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

import numpy as np

from gradverify.harness.calls import CallError, Problem
from gradverify.harness.lines import Ref, finite_abs, normalise

__all__ = ["derivative_scale"]


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
