"""NumPy functions that evaluate float32 the way XLA on CPU does: subnormal inputs are read as
zero and subnormal results are written as zero (flush-to-zero, denormals-are-zero), while
float64 evaluations keep every value. The precision check must not FAIL them.

>>> a = np.array([1.4e-45, 2.0], np.float32)
>>> ftz(a).tolist()
[0.0, 2.0]
"""

from __future__ import annotations

import numpy as np


def ftz(a: np.ndarray) -> np.ndarray:
    """Subnormal float32 entries to (signed) zero; other dtypes unchanged."""
    a = np.asarray(a)
    if a.dtype != np.float32:
        return a
    sub = np.abs(a) < np.finfo(np.float32).tiny
    return np.where(sub, np.copysign(np.float32(0), a), a).astype(np.float32)


def maximum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """jnp.maximum's forward: the larger entry."""
    return ftz(np.maximum(ftz(a), ftz(b)))


def maximum_vjp(xs, gs, scale_tie: float = 0.5, scale32: float = 1.0):
    """jnp.maximum's VJP: a tie splits the cotangent in halves (``scale_tie``); ``scale32``
    scales the float32 gradient only (a seeded low-precision fault)."""
    a, b = ftz(xs[0]), ftz(xs[1])
    v = gs[0]
    tie = (a == b).astype(v.dtype)
    ga = ftz(v * ((a > b) + scale_tie * tie).astype(v.dtype))
    gb = ftz(v * ((b > a) + (1 - scale_tie) * tie).astype(v.dtype))
    if a.dtype == np.float32 and scale32 != 1.0:
        ga, gb = ga * np.float32(scale32), gb * np.float32(scale32)
    return ga, gb


def sqrt(x: np.ndarray) -> np.ndarray:
    return ftz(np.sqrt(ftz(x)))


def sqrt_vjp(xs, gs):
    x = ftz(xs[0])
    with np.errstate(divide="ignore"):
        return (ftz(gs[0] * (0.5 / np.sqrt(x)).astype(x.dtype)),)


def relu_scaled(x: np.ndarray) -> np.ndarray:
    """relu(x * 1e-30): the intermediate x * 1e-30 is subnormal for |x| < 1e-8 and flushed."""
    z = ftz(ftz(x) * x.dtype.type(1e-30))
    return ftz(np.maximum(z, 0))


def relu_scaled_vjp(xs, gs):
    x = ftz(xs[0])
    z = ftz(x * x.dtype.type(1e-30))
    return (ftz(gs[0] * (z > 0).astype(x.dtype) * x.dtype.type(1e-30)),)


def relu_scaled_back(x: np.ndarray) -> np.ndarray:
    """relu(x * 1e-30) * 1e30: the flushed intermediate leaves no subnormal value outside,
    only an output that float32 loses to 0."""
    return ftz(relu_scaled(x) * x.dtype.type(1e30))


def relu_scaled_back_vjp(xs, gs):
    return relu_scaled_vjp(xs, [ftz(gs[0] * xs[0].dtype.type(1e30))])


def scaled(x: np.ndarray) -> np.ndarray:
    """x * 3e-38: outputs and gradients straddle float32's smallest normal number, so the
    flush zeroes some of them (and some of vjp(a v1 + b v2) but not of vjp(v1), vjp(v2))."""
    return ftz(ftz(x) * x.dtype.type(3e-38))


def scaled_vjp(xs, gs):
    return (ftz(ftz(gs[0]) * xs[0].dtype.type(3e-38)),)


def through_tiny(x: np.ndarray) -> np.ndarray:
    """(x * 1e-38) * 1e38 (the identity): at |x| >= 1 the forward's intermediate is normal,
    but the backward pass forms v * 1e-38, subnormal for |v| < 1.2 and flushed - the float32
    gradient is 0 where float64's is v. ``scale32`` scales the float32 gradient (a seeded
    low-precision fault on top)."""
    return ftz(ftz(ftz(x) * x.dtype.type(1e-38)) * x.dtype.type(1e38))


def through_tiny_vjp(xs, gs, scale32: float = 1.0):
    g = ftz(ftz(ftz(gs[0]) * xs[0].dtype.type(1e-38)) * xs[0].dtype.type(1e38))
    if g.dtype == np.float32 and scale32 != 1.0:
        g = ftz(g * np.float32(scale32))
    return (g,)
