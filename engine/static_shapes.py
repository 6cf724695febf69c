"""What is known of a shape tensor's value when the graph is built (TF's partial shapes).

``constant_value_as_shape(t)`` reads a 1-D shape tensor as a possibly partial TensorShape:
``Shape(x)`` is x's static shape, ``Pack`` of scalars keeps the ones whose value is known,
``ConcatV2`` joins, a ``StridedSlice`` of one slices, a constant gives its values (negative
entries, like reshape's ``-1``, are unknown). ``shape_slice_value`` folds a slice of
``Shape(x)`` that selects only known dimensions (``tf.shape(x)[1]`` of a ``[None, 4]`` x is
4), so arithmetic on such slices folds too, as TF's constant evaluation does.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     x = tf.placeholder(tf.float32, [None, 4, 5])
...     s = tf.shape(x)
...     constant_value_as_shape(tf.convert_to_tensor([s[0], s[1] * s[2]])).as_list()
[None, 20]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine.shapes import TensorShape, unknown_shape

__all__ = ["constant_value_as_shape", "shape_slice_value"]


def shape_slice_value(tensor: Any) -> np.ndarray | None:
    """The value of ``StridedSlice(Shape(x), ...)`` if every selected dim of x is known."""
    from gradverify.engine.graph import constant_value
    op = tensor.op
    if op.type != "StridedSlice" or op.inputs[0].op.type != "Shape":
        return None
    dims = op.inputs[0].op.inputs[0].shape.as_tuple()
    if dims is None:
        return None
    bounds = [constant_value(t) for t in op.inputs[1:]]
    if any(b is None for b in bounds):
        return None
    partial = np.array([-1 if d is None else d for d in dims], dtype=op.inputs[0].dtype.np)
    try:
        out = np.asarray(op.opdef.kernel(partial, *bounds, **op.attrs))
    except Exception:  # noqa: BLE001 - an invalid slice: the run reports it
        return None
    return None if np.any(out < 0) else out  # -1 marks an unknown dim (sizes are >= 0)


def constant_value_as_shape(tensor: Any) -> TensorShape:
    """The partial shape a 1-D shape tensor is known to hold when the graph is built."""
    from gradverify.engine.graph import constant_value
    shape = tensor.shape
    if shape.ndims == 0:
        return unknown_shape()
    if shape.ndims is not None and shape.as_tuple() == (0,):
        return TensorShape([])
    op = tensor.op
    if op.type == "Shape":
        return op.inputs[0].shape
    if op.type == "Pack" and op.attrs.get("axis", 0) == 0:
        dims = []
        for t in op.inputs:
            v = constant_value(t)
            dims.append(None if v is None or np.ndim(v) or int(v) < 0 else int(v))
        return TensorShape(dims)
    if op.type == "ConcatV2":
        dims: list[int | None] = []
        for t in op.inputs:
            part = constant_value_as_shape(t)
            if part.ndims is None:
                n = shape.as_tuple()
                return unknown_shape(n[0] if n else None)
            dims += part.as_list()
        return TensorShape(dims)
    value = constant_value(tensor)
    if value is not None:
        return TensorShape([None if int(d) < 0 else int(d)
                            for d in np.asarray(value).reshape(-1)])
    if op.type == "StridedSlice" and not any(op.attrs.get(k) for k in (
            "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")):
        source = constant_value_as_shape(op.inputs[0])
        bounds = [constant_value(t) for t in op.inputs[1:]]
        if source.ndims is not None and all(b is not None and np.size(b) == 1
                                            for b in bounds):
            b, e, s = (int(np.asarray(v).reshape(-1)[0]) for v in bounds)
            if s == 1:  # TF's PartialStridedSliceShape: unit strides only
                b = None if op.attrs.get("begin_mask", 0) & 1 else b
                e = None if op.attrs.get("end_mask", 0) & 1 else e
                return TensorShape(source.as_list()[b:e])
    n = shape.as_tuple()
    return unknown_shape(n[0] if n else None)
