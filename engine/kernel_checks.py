"""Run-time checks of kernel outputs against the op's static dtypes and shapes.

A kernel that returns ``None``, the wrong number of outputs, a float32 array for a float64
op, or an array whose shape contradicts the op's static shape is a broken op: the session
raises ``InternalError`` naming the op, the output, and both dtypes or shapes, instead of
letting the wrong value flow on silently. The session runs the checked version of a plan for
each new combination of feed shapes (and always when ``GRADVERIFY_CHECK_KERNELS=always``),
the unchecked one otherwise, so the hot path of a repeated run pays nothing per kernel.

>>> import gradverify.engine as tf
>>> from gradverify.engine import meta
>>> from gradverify.engine.registry import op, unregister
>>> @op("HalfPrecisionBug", inputs={"x": meta.reals}, api=None, dtypes=("float64",))
... def bug(x):
...     return x.astype("float32")
>>> with tf.Graph().as_default():
...     y = bug(tf.constant([1.0], tf.float64))
...     try:
...         tf.Session().run(y)
...     except tf.errors.InternalError as e:
...         print(e.message[:77])
Kernel of 'HalfPrecisionBug' (op: 'HalfPrecisionBug') returned output 0 of dt
>>> unregister("HalfPrecisionBug")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradverify.engine import errors
from gradverify.engine.graph import Operation
from gradverify.engine.shapes import TensorShape

__all__ = ["output_checker"]


def output_checker(op: Operation) -> Callable[[Any], Any]:
    """A function that returns a kernel's result unchanged if it fits ``op``'s outputs,
    else raises ``InternalError`` naming the op and what differs."""
    n = len(op.outputs)
    specs = [(t.dtype.np, t.dtype.name, t.shape.as_tuple(), t.shape) for t in op.outputs]
    where = f"Kernel of '{op.name}' (op: '{op.type}')"

    def fail(message: str) -> errors.InternalError:
        return errors.InternalError(None, op, f"{where} {message}")

    def check_one(i: int, value: Any) -> None:
        want_np, want_name, dims, static = specs[i]
        if value is None:
            raise fail(f"returned None for output {i}, which has dtype {want_name} and shape "
                       f"{static.as_tf_str()}.")
        dtype = getattr(value, "dtype", None)
        if dtype is None:  # a Python number or list: what a fetch would turn it into
            dtype = np.asarray(value).dtype
        got_shape = np.shape(value)
        if dtype != want_np:
            raise fail(f"returned output {i} of dtype {dtype}, but the op's output has dtype "
                       f"{want_name} (shape {TensorShape(got_shape).as_tf_str()}).")
        if dims is not None and (len(dims) != len(got_shape) or any(
                d is not None and d != g for d, g in zip(dims, got_shape))):
            raise fail(f"returned output {i} of shape {TensorShape(got_shape).as_tf_str()}, "
                       f"but the op's static shape is {static.as_tf_str()} (dtype "
                       f"{want_name}).")

    if n == 1:
        def check(value: Any) -> Any:
            check_one(0, value)
            return value
    else:
        def check(value: Any) -> Any:
            if not isinstance(value, (tuple, list)) or len(value) != n:
                got = len(value) if isinstance(value, (tuple, list)) else type(value).__name__
                raise fail(f"returned {got} where the op has {n} outputs.")
            for i, v in enumerate(value):
                check_one(i, v)
            return value
    return check
