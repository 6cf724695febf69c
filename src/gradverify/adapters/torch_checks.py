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

from gradverify.adapters.common import low_precision_check
from gradverify.adapters.torch_function import TorchFunction, differentiable_positions
from gradverify.harness import FAIL, PASS, Check

__all__ = ["bfloat16_precision", "undefined_grad_check"]


def bfloat16_precision(low: TorchFunction, high: TorchFunction, *, seed: int) -> Check:
    """The bfloat16 gradient of ``low`` against the float64 one of ``high``."""
    return low_precision_check(low.forward, low.vjp, low.arrays, high.forward, high.vjp,
                               high.arrays, seed=seed)


def undefined_grad_check(func: Callable, args: Sequence[Any], *, seed: int,
                         tf: TorchFunction | None = None) -> Check:
    """``check_undefined_grad``: differentiating a subset of the outputs leaves the others'
    gradients undefined; the backward must then act as if they were zeros (torch's rule),
    never raise or return something else.

    >>> import torch
    >>> x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    >>> undefined_grad_check(lambda t: (t * 2, t.sin()), (x,), seed=0).verdict
    'PASS'
    """
    name = "hygiene.undefined_grad"
    if tf is None or tf.order != 1:  # (tf: made by gradcheck from the same args)
        tf = TorchFunction(func, args, differentiable_positions(args, all_floats=False))
    positions = tf.positions
    live = [k for k, flag in enumerate(tf.live) if flag]
    if len(live) < 2:
        return Check(name, PASS, details={"skipped": "fewer than two differentiable "
                                                       "outputs"})
    rng = np.random.default_rng([seed, 5])
    ys = tf.output_specs()  # from the evaluation the VJPs below reuse: no forward
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
