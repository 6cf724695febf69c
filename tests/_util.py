"""Helpers for op tests: evaluate a function of engine tensors and its VJP on arrays.

>>> import numpy as np, engine as tf
>>> out, (gx,), w = vjp(lambda x: x * x, [np.array([1.0, 2.0])], seed=0)
>>> np.allclose(gx, 2 * np.array([1.0, 2.0]) * w)
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import gradverify.engine as tf


def evaluate(fn: Callable[..., Any], arrays: Sequence[np.ndarray]) -> Any:
    """``fn`` applied to constants holding ``arrays``, evaluated in a fresh graph."""
    with tf.Graph().as_default():
        out = fn(*[tf.constant(a) for a in arrays])
        with tf.Session() as s:
            return s.run(out)


def vjp(fn: Callable[..., Any], arrays: Sequence[np.ndarray], *, seed: int = 0,
        cotangent: np.ndarray | None = None) -> tuple[np.ndarray, list[Any], np.ndarray]:
    """(output, [d<w, fn(x)>/dx_i], w) with a random cotangent ``w`` (not all ones: a rule
    that ignores the upstream gradient must fail)."""
    with tf.Graph().as_default():
        xs = [tf.constant(a) for a in arrays]
        y = fn(*xs)
        with tf.Session() as s:
            y_val = np.asarray(s.run(y))
            if cotangent is None:
                cotangent = np.random.default_rng(seed).uniform(0.5, 1.5, y_val.shape)
            w = tf.constant(np.asarray(cotangent, dtype=y_val.dtype))
            grads = tf.gradients(y, xs, grad_ys=w)
            vals = s.run([g for g in grads if g is not None])
    it = iter(vals)
    return y_val, [None if g is None else np.asarray(next(it)) for g in grads], cotangent


def second_order(fn: Callable[..., Any], x: np.ndarray, *, seed: int = 0,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d/dx <v, d<w, fn(x)>/dx>, w, v) for random w, v: the Hessian-vector form."""
    rng = np.random.default_rng(seed)
    with tf.Graph().as_default():
        xt = tf.constant(x)
        y = fn(xt)
        w = tf.constant(rng.uniform(0.5, 1.5, y.shape.as_list()).astype(x.dtype))
        (g,) = tf.gradients(y, [xt], grad_ys=w)
        v = tf.constant(rng.uniform(0.5, 1.5, x.shape).astype(x.dtype))
        (h,) = tf.gradients(g, [xt], grad_ys=v)
        with tf.Session() as s:
            return np.asarray(s.run(h)), s.run(w), s.run(v)
