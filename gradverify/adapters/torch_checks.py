"""Checks the torch adapter adds around the harness: the bfloat16 gradient against the
float64 one (NumPy has no bfloat16, so the harness cannot model its rounding), and torch's
``check_undefined_grad`` (a backward given no gradient for an output acts as given zeros).

>>> import torch
>>> x = torch.ones(3, dtype=torch.float64, requires_grad=True)
>>> undefined_grad_check(lambda t: (t * 2, t.sin()), (x,), seed=0).verdict
'PASS'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from gradverify.adapters.torch_function import TorchFunction, differentiable_positions
from gradverify.harness import FAIL, PASS, Check, Entry

__all__ = ["bfloat16_precision", "undefined_grad_check"]


# The harness allows float32 gradients 64 eps (7.6e-6) relative to max|g|; 64 bfloat16 eps
# would be 50%. torch accumulates bfloat16 reductions in float32, so a correct gradient is a
# few roundings off: 16 eps (12.5%) still passes every correct op we tried (tests_adapters).
_BF16_SAFETY = 16.0


def bfloat16_precision(low: TorchFunction, high: TorchFunction, *, seed: int) -> Check:
    """The bfloat16 gradient against the float64 one: at most ``_BF16_SAFETY * max(eps,
    forward relative error) * max|g64|`` apart per input (entries whose true gradient
    overflows the dtype excepted)."""
    rng = np.random.default_rng([seed, 3])
    y_low, y_high = low.forward(*low.arrays), high.forward(*high.arrays)
    cts = [rng.standard_normal(y.shape) if y.dtype.kind == "f" else np.zeros(y.shape)
           for y in y_high]
    g_low = low.vjp(low.arrays, [c.astype(y.dtype) for c, y in zip(cts, y_low)])
    g_high = high.vjp(high.arrays, cts)
    fwd_err = 0.0
    for a, b in zip(y_low, y_high):
        scale = float(np.max(np.abs(b), initial=0.0)) if b.dtype.kind == "f" else 0.0
        if scale > 0 and np.isfinite(scale):
            fwd_err = max(fwd_err, float(np.nanmax(np.abs(a - b))) / scale)
    eps = float(torch.finfo(torch.bfloat16).eps)
    worst = []
    for k, (g, h) in enumerate(zip(g_low, g_high)):
        g = np.zeros(low.arrays[k].shape) if g is None else np.asarray(g, np.float64)
        h = np.zeros(low.arrays[k].shape) if h is None else np.asarray(h, np.float64)
        tol = _BF16_SAFETY * max(eps, fwd_err) * float(np.max(np.abs(h), initial=0.0)) + 1e-300
        big = float(torch.finfo(low.dtypes[k]).max)
        overflow = np.isinf(g) & (np.abs(h) >= big) & (np.sign(g) == np.sign(h))
        with np.errstate(invalid="ignore"):
            err = np.where(overflow, 0.0, np.abs(g - h))
        bad = ~(err <= tol)
        if bad.any():
            i = int(np.argmax(np.where(np.isnan(err), np.inf, err)))
            worst.append(Entry(input=k, input_name=f"x{k}", index=tuple(
                int(t) for t in np.unravel_index(i, g.shape)), analytic=float(g.flat[i]),
                numeric=float(h.flat[i]), bound=0.0, tolerance=tol, step=0.0, verdict=FAIL,
                note="float64 analytic gradient"))
    return Check("precision", FAIL if worst else PASS,
                 "wrong only in low precision: the bfloat16 gradient differs from the "
                 "float64 one beyond rounding" if worst else None, worst=worst,
                 details={"forward_relative_error": fwd_err, "dtype": "bfloat16"})


def undefined_grad_check(func: Callable, args: Sequence[Any], *, seed: int) -> Check:
    """``check_undefined_grad``: differentiating a subset of the outputs leaves the others'
    gradients undefined; the backward must then act as if they were zeros (torch's rule),
    never raise or return something else.

    >>> import torch
    >>> x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    >>> undefined_grad_check(lambda t: (t * 2, t.sin()), (x,), seed=0).verdict
    'PASS'
    """
    name = "hygiene.undefined_grad"
    positions = differentiable_positions(args, all_floats=False)
    tf = TorchFunction(func, args, positions)
    live = [k for k, flag in enumerate(tf.live) if flag]
    if len(live) < 2:
        return Check(name, PASS, details={"skipped": "fewer than two differentiable "
                                                       "outputs"})
    rng = np.random.default_rng([seed, 5])
    ys = tf.forward(*tf.arrays)
    for drop in live:
        cts = [rng.standard_normal(y.shape).astype(y.dtype) if k in live else None
               for k, y in enumerate(ys)]
        zeroed = [None if c is None else (np.zeros_like(c) if k == drop else c)
                  for k, c in enumerate(cts)]
        undefined = [None if k == drop else c for k, c in enumerate(cts)]
        try:
            want = tf.vjp(tf.arrays, zeroed)
            got = tf.vjp(tf.arrays, undefined)
        except Exception as e:  # noqa: BLE001 - raising on an undefined gradient is the bug
            return Check(name, FAIL, f"backward raises when output {drop} has no gradient "
                         f"(undefined): {type(e).__name__}: {e}")
        for k, (a, b) in enumerate(zip(want, got)):
            a = np.zeros_like(tf.arrays[k]) if a is None else a
            b = np.zeros_like(tf.arrays[k]) if b is None else b
            if not np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True):
                return Check(name, FAIL, f"with no gradient for output {drop}, the "
                             f"gradient of input {positions[k]} differs from the one given "
                             "zeros for it")
    return Check(name, PASS)
