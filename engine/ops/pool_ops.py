"""2-D pooling: MaxPool and AvgPool, with their gradients as graph ops (MaxPoolGrad,
MaxPoolGradGrad, AvgPoolGrad), each with its own gradient so every order is defined.

Ties (TF's CPU convention, ``SpatialMaxPoolWithArgMaxHelper``): each window's gradient goes
to the FIRST maximal input in row-major window order (rows, then columns), counting only real
cells (padding never receives gradient); overlapping windows add up. SAME padding: AvgPool
divides by the number of real cells in each window, not the window size.

>>> import numpy as np, gradverify.engine as tf
>>> x = tf.constant(np.array([[1.0, 3.0], [3.0, 0.0]]).reshape(1, 2, 2, 1))
>>> y = tf.nn.max_pool(x, [1, 2, 2, 1], [1, 2, 2, 1], "VALID")
>>> tf.Session().run(tf.gradients(y, x)[0]).reshape(2, 2).tolist()
[[0.0, 1.0], [0.0, 0.0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine import meta as m
from gradverify.engine.graph import Tensor
from gradverify.engine.ops._windows import PADDINGS, check_4, geometry, window_size
from gradverify.engine.ops.conv_ops import _padding, _sequence, _sizes
from gradverify.engine.ops.core_ops import shape, zeros_like
from gradverify.engine.registry import REQUIRED, export, op
from gradverify.engine.shapes import TensorShape

_ATTRS = {"ksize": REQUIRED, "strides": REQUIRED, "padding": REQUIRED, "data_format": "NHWC"}
_CHOICES = {"ksize": ((1, 2, 2, 1), (1, 3, 3, 1), (1, 1, 2, 1), (1, 2, 1, 1)),
            "strides": ((1, 2, 2, 1), (1, 1, 1, 1), (1, 2, 1, 1), (1, 3, 3, 1)),
            "padding": PADDINGS}
_SHAPES = ((1, 4, 4, 1), (2, 3, 5, 2), (1, 1, 3, 1), (1, 5, 2, 2))
_TIED = np.array([[2.0, 2.0, 0.0, 1.0], [2.0, -1.0, 1.0, 1.0],
                  [0.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 3.0]]).reshape(1, 4, 4, 1)
# full layouts for the gradient ops: input shape, ksize, strides, padding
_LAYOUTS = (((1, 4, 4, 1), (1, 2, 2, 1), (1, 2, 2, 1), "VALID"),
            ((2, 3, 5, 2), (1, 3, 3, 1), (1, 2, 2, 1), "SAME"),
            ((1, 5, 2, 2), (1, 2, 1, 1), (1, 1, 1, 1), "VALID"),
            ((1, 4, 4, 1), (1, 3, 3, 1), (1, 1, 1, 1), "SAME"),
            ((1, 1, 3, 1), (1, 1, 2, 1), (1, 1, 2, 1), "SAME"))
_NOT_CHECKED = m.Domain("reals", differentiable=False)  # piecewise constant, with jumps


def _pool_out(x: tuple, ksize: tuple, strides: tuple, padding: str) -> tuple:
    return (x[0], window_size(x[1], ksize[1], strides[1], 1, padding)[0],
            window_size(x[2], ksize[2], strides[2], 1, padding)[0], x[3])


def _layout_examples(roles: dict[str, str]) -> tuple[dict, ...]:
    """Templates for a gradient op: ``roles`` maps each input to the pooling's ``input``,
    ``output`` (their shapes) or ``sizes`` (the input shape as a pinned int vector)."""
    out = []
    for x, k, s, p in _LAYOUTS:
        y = _pool_out(x, k, s, p)
        shapes, pinned = {}, {}
        for name, role in roles.items():
            shapes[name] = {"input": x, "output": y, "sizes": (4,)}[role]
            if role == "sizes":
                pinned[name] = list(x)
        out.append({"shapes": shapes, "values": pinned,
                    "attrs": {"ksize": k, "strides": s, "padding": p, "data_format": "NHWC"}})
    return tuple(out)


def _attrs_of(ctx_or_attrs: Any, op_type: str) -> tuple[tuple, tuple, str]:
    a = ctx_or_attrs
    if a["data_format"] != "NHWC":
        raise ValueError(f"Default {op_type} only supports NHWC on device type CPU (given "
                         f"{a['data_format']})")
    if a["padding"] not in PADDINGS:
        raise ValueError(f"Invalid padding '{a['padding']}': must be SAME or VALID")
    ksize = check_4("ksize", a["ksize"], op_type)
    strides = check_4("strides", a["strides"], op_type)
    if ksize[0] != 1 or strides[0] != 1:
        raise ValueError("Pooling is not yet supported on the batch dimension.")
    if ksize[3] != 1 or strides[3] != 1:
        raise ValueError(f"{op_type} on the CPU pools across width/height only; ksize and "
                         "strides must be 1 in the depth dimension.")
    return ksize, strides, a["padding"]


def _pool_shape(ctx: Any, x: list) -> list:
    try:
        ksize, strides, padding = _attrs_of(ctx.attrs, ctx.type)
    except ValueError as e:
        raise ctx.fail(str(e)) from None
    out = [x[0], None, None, x[3]]
    for axis in (1, 2):
        if x[axis] is None:
            continue
        size = window_size(x[axis], ksize[axis], strides[axis], 1, padding)[0]
        if size < 0:
            raise ctx.fail(f"Negative dimension size caused by subtracting {ksize[axis]} "
                           f"from {x[axis]}")
        out[axis] = size
    return out


_GEOMS: dict[tuple, Any] = {}  # validated layouts; a checker runs one op thousands of times


def _geom(op_type: str, x_shape: tuple, ksize: Any, strides: Any, padding: str,
          data_format: str):
    try:
        key: tuple | None = (op_type, tuple(x_shape), tuple(ksize), tuple(strides), padding,
                             data_format)
        g = _GEOMS.get(key)
    except TypeError:  # an attribute TF would reject: validated (and refused) below
        key, g = None, None
    if g is None:
        g = _validated_geom(op_type, x_shape, ksize, strides, padding, data_format)
        if key is not None:
            if len(_GEOMS) >= 512:
                _GEOMS.clear()
            _GEOMS[key] = g
    return g


def _validated_geom(op_type: str, x_shape: tuple, ksize: Any, strides: Any, padding: str,
                    data_format: str):
    ksize, strides, padding = _attrs_of({"ksize": ksize, "strides": strides,
                                         "padding": padding, "data_format": data_format},
                                        op_type)
    if len(x_shape) != 4:
        raise ValueError(f"{op_type}: input must be 4-dimensional, got shape {x_shape}")
    return geometry(op_type, x_shape, ksize[1], ksize[2], strides, (1, 1, 1, 1), padding)


def _lowest(dtype: np.dtype) -> Any:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _first_argmax(g: Any, x: np.ndarray) -> np.ndarray:
    """Per window, the offset ``k`` (row-major in the window) of its first maximal real cell:
    TF's scan, which takes a cell only when it is strictly greater than the best so far."""
    xp = g.pad(x, _lowest(x.dtype))
    real = g.pad(np.ones((1, g.h, g.w, 1), bool), False)
    best = np.full((g.n, g.oh, g.ow, g.c), _lowest(x.dtype), x.dtype)
    idx = np.full(best.shape, -1, np.int32)
    for k, (_, _, (rows, cols)) in enumerate(g.offsets()):
        view = xp[:, rows, cols, :]
        take = (view > best) | ((idx < 0) & real[:, rows, cols, :])
        np.copyto(best, view, where=take)
        np.copyto(idx, k, where=take)
    return idx


def _tiled(g: Any) -> bool:
    """Windows that tile the input exactly: no overlap, no gap, no padding."""
    return (not g.padded and g.sh == g.kh and g.sw == g.kw and g.oh * g.kh == g.h
            and g.ow * g.kw == g.w)


def _max_pool_grad_tiled(g: Any, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """The same routing for tiling windows, in one pass per window offset: the first cell
    equal to its window's maximum takes the gradient (equal to the strict scan's choice
    when there is no NaN; the caller checks)."""
    blocks = x.reshape(g.n, g.oh, g.kh, g.ow, g.kw, g.c)
    views = [blocks[:, :, i, :, j, :] for i in range(g.kh) for j in range(g.kw)]
    top = views[0].copy()
    for v in views[1:]:
        np.maximum(top, v, out=top)
    dx = np.empty_like(grad, shape=x.shape)
    out = dx.reshape(blocks.shape)
    free = np.ones(top.shape, bool)
    for k, v in enumerate(views):
        hit = (v == top) & free
        np.multiply(grad, hit, out=out[:, :, k // g.kw, :, k % g.kw, :])
        free &= ~hit
    return dx


def _route_back(g: Any, idx: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Add each window's ``grad`` into its argmax cell (an input-shaped array)."""
    dxp = np.zeros(g.padded_shape, grad.dtype)
    for k, (_, _, (rows, cols)) in enumerate(g.offsets()):
        dxp[:, rows, cols, :] += np.where(idx == k, grad, 0)
    return g.unpad(dxp)


def _ref_max_pool(input, *, ksize, strides, padding, data_format):
    """Direct loops over output pixels (an independent reference)."""
    n, h, w, c = input.shape
    (oh, top, _), (ow, left, _) = (window_size(h, ksize[1], strides[1], 1, padding),
                                   window_size(w, ksize[2], strides[2], 1, padding))
    out = np.empty((n, oh, ow, c), input.dtype)
    for y in range(oh):
        for x in range(ow):
            r0, c0 = y * strides[1] - top, x * strides[2] - left
            win = input[:, max(r0, 0):r0 + ksize[1], max(c0, 0):c0 + ksize[2], :]
            out[:, y, x, :] = win.max(axis=(1, 2))
    return out


# -- MaxPool ---------------------------------------------------------------------------------
@op("MaxPool", inputs={"input": m.reals}, attrs=_ATTRS, choices=_CHOICES, signature="custom",
    ties=True, reference=_ref_max_pool,
    examples=tuple({"shapes": {"input": s}} for s in _SHAPES) + (
        {"shapes": {"input": (1, 4, 4, 1)}, "values": {"input": _TIED.tolist()}},))
def _max_pool(input, *, ksize, strides, padding, data_format):
    """The maximum of each window of NHWC ``input`` (padding never wins)."""
    g = _geom("MaxPool", input.shape, ksize, strides, padding, data_format)
    xp = g.pad(input, _lowest(input.dtype))
    out = None
    for _, _, (rows, cols) in g.offsets():
        view = xp[:, rows, cols, :]
        out = view.copy() if out is None else np.maximum(out, view, out=out)
    return out


@_max_pool.shape_rule
def _(ctx):
    return TensorShape(_pool_shape(ctx, ctx.rank_exactly(0, 4).as_list()))


@_max_pool.gradient
def _(op, grad):
    return _max_pool_grad(op.inputs[0], op.outputs[0], grad, **op.attrs)


# -- MaxPoolGrad -----------------------------------------------------------------------------
@op("MaxPoolGrad", inputs={"orig_input": _NOT_CHECKED, "orig_output": m.shape_only,
                           "grad": m.reals},
    attrs=_ATTRS, signature="custom",
    examples=_layout_examples({"orig_input": "input", "orig_output": "output",
                                      "grad": "output"}))
def _max_pool_grad(orig_input, orig_output, grad, *, ksize, strides, padding, data_format):
    """MaxPool's input gradient: each window's ``grad`` to its first maximal input."""
    g = _geom("MaxPoolGrad", orig_input.shape, ksize, strides, padding, data_format)
    if grad.shape != (g.n, g.oh, g.ow, g.c) or orig_output.shape != grad.shape:
        raise ValueError("MaxPoolGrad: orig_output and grad must have the pooled shape")
    if _tiled(g) and not np.isnan(orig_input).any():
        return _max_pool_grad_tiled(g, orig_input, grad)
    return _route_back(g, _first_argmax(g, orig_input), grad)


@_max_pool_grad.shape_rule
def _(ctx):
    x = ctx.rank_exactly(0, 4).as_list()
    y = ctx.rank_exactly(1, 4).as_list()
    dy = ctx.rank_exactly(2, 4).as_list()
    want = _pool_shape(ctx, x)
    for a, b, c in zip(want, y, dy):
        ctx.merge(ctx.merge(a, b), c)
    return TensorShape(x)


@_max_pool_grad.gradient
def _(op, grad):
    x, y, _ = op.inputs
    return [zeros_like(x), zeros_like(y), _max_pool_grad_grad(x, y, grad, **op.attrs)]


# -- MaxPoolGradGrad -------------------------------------------------------------------------
@op("MaxPoolGradGrad", inputs={"orig_input": _NOT_CHECKED, "orig_output": m.shape_only,
                               "grad": m.reals},
    attrs=_ATTRS, signature="custom",
    examples=_layout_examples({"orig_input": "input", "orig_output": "output",
                                      "grad": "input"}))
def _max_pool_grad_grad(orig_input, orig_output, grad, *, ksize, strides, padding,
                        data_format):
    """The adjoint of MaxPoolGrad in ``grad``: each window reads ``grad`` at its argmax."""
    g = _geom("MaxPoolGradGrad", orig_input.shape, ksize, strides, padding, data_format)
    if grad.shape != orig_input.shape or orig_output.shape != (g.n, g.oh, g.ow, g.c):
        raise ValueError("MaxPoolGradGrad: grad must have the input's shape")
    idx = _first_argmax(g, orig_input)
    gp = g.pad(grad)
    out = np.zeros(idx.shape, grad.dtype)
    for k, (_, _, (rows, cols)) in enumerate(g.offsets()):
        out += np.where(idx == k, gp[:, rows, cols, :], 0)
    return out


@_max_pool_grad_grad.shape_rule
def _(ctx):
    x = ctx.rank_exactly(0, 4).as_list()
    y = ctx.rank_exactly(1, 4).as_list()
    dx = ctx.rank_exactly(2, 4).as_list()
    x = [ctx.merge(a, b) for a, b in zip(x, dx)]
    return TensorShape([ctx.merge(a, b) for a, b in zip(_pool_shape(ctx, x), y)])


@_max_pool_grad_grad.gradient
def _(op, grad):
    x, y, _ = op.inputs
    return [zeros_like(x), zeros_like(y), _max_pool_grad(x, y, grad, **op.attrs)]


# -- AvgPool ---------------------------------------------------------------------------------
def _counts(g: Any, dtype: np.dtype) -> np.ndarray:
    """Real (unpadded) cells per window, shape ``(1, oh, ow, 1)``."""
    if not g.padded:
        return np.asarray(g.kh * g.kw, dtype)
    ones = g.pad(np.ones((1, g.h, g.w, 1), dtype))
    return sum(ones[:, rows, cols, :] for _, _, (rows, cols) in g.offsets())


def _ref_avg_pool(value, *, ksize, strides, padding, data_format):
    n, h, w, c = value.shape
    (oh, top, _), (ow, left, _) = (window_size(h, ksize[1], strides[1], 1, padding),
                                   window_size(w, ksize[2], strides[2], 1, padding))
    out = np.empty((n, oh, ow, c), value.dtype)
    for y in range(oh):
        for x in range(ow):
            r0, c0 = y * strides[1] - top, x * strides[2] - left
            out[:, y, x, :] = value[:, max(r0, 0):r0 + ksize[1],
                                    max(c0, 0):c0 + ksize[2], :].mean(axis=(1, 2))
    return out


@op("AvgPool", inputs={"value": m.reals}, attrs=_ATTRS, choices=_CHOICES, signature="custom",
    reference=_ref_avg_pool, examples=tuple({"shapes": {"value": s}} for s in _SHAPES))
def _avg_pool(value, *, ksize, strides, padding, data_format):
    """The mean of each window's real cells (SAME padding is not averaged in)."""
    g = _geom("AvgPool", value.shape, ksize, strides, padding, data_format)
    xp = g.pad(value)
    total = sum(xp[:, rows, cols, :] for _, _, (rows, cols) in g.offsets())
    return (total / _counts(g, value.dtype)).astype(value.dtype, copy=False)


@_avg_pool.shape_rule
def _(ctx):
    return TensorShape(_pool_shape(ctx, ctx.rank_exactly(0, 4).as_list()))


@_avg_pool.gradient
def _(op, grad):
    return _avg_pool_grad(shape(op.inputs[0]), grad, **op.attrs)


# -- AvgPoolGrad -----------------------------------------------------------------------------
@op("AvgPoolGrad", inputs={"orig_input_shape": m.structural("dims"), "grad": m.reals},
    attrs=_ATTRS, signature="custom",
    examples=_layout_examples({"orig_input_shape": "sizes", "grad": "output"}))
def _avg_pool_grad(orig_input_shape, grad, *, ksize, strides, padding, data_format):
    """AvgPool's input gradient: each window's ``grad / count`` spread over its real cells."""
    sizes = tuple(int(d) for d in np.asarray(orig_input_shape).reshape(-1))
    g = _geom("AvgPoolGrad", sizes, ksize, strides, padding, data_format)
    if grad.shape != (g.n, g.oh, g.ow, g.c):
        raise ValueError("AvgPoolGrad: grad must have the pooled shape")
    share = (grad / _counts(g, grad.dtype)).astype(grad.dtype, copy=False)
    dxp = np.zeros(g.padded_shape, grad.dtype)
    for _, _, (rows, cols) in g.offsets():
        dxp[:, rows, cols, :] += share
    return g.unpad(dxp)


@_avg_pool_grad.shape_rule
def _(ctx):
    sizes = _sizes(ctx, 0)
    dy = ctx.rank_exactly(1, 4).as_list()
    for a, b in zip(_pool_shape(ctx, sizes), dy):
        ctx.merge(a, b)
    return TensorShape(sizes)


@_avg_pool_grad.gradient
def _(op, grad):
    return [None, _avg_pool(grad, **op.attrs)]


# -- public API ------------------------------------------------------------------------------
def _pool_api(opdef: Any, default: str, doc: str) -> Any:
    def fn(value: Any = None, ksize: Any = None, strides: Any = None, padding: Any = None,
           data_format: str = "NHWC", name: str | None = None, input: Any = None) -> Tensor:
        if value is not None and input is not None:
            raise ValueError("Cannot specify both 'input' and 'value'")
        return opdef(value if value is not None else input, ksize=_sequence(ksize, "ksize"),
                     strides=_sequence(strides, "strides"), padding=_padding(padding),
                     data_format=data_format, name=name)
    fn.__name__ = default
    fn.__doc__ = doc
    return fn


max_pool = export("nn.max_pool", "nn.max_pool2d")(_pool_api(
    _max_pool, "max_pool",
    """``max_pool(value, ksize, strides, padding, data_format="NHWC", name=None)``: the
    maximum over each ``ksize`` window (an int or 1, 2 or 4 values, like ``strides``); the
    gradient goes to the first maximal cell of each window (TF's convention at ties).

    >>> import gradverify.engine as tf
    >>> tf.nn.max_pool(tf.zeros([8, 28, 28, 32]), [1, 2, 2, 1], [1, 2, 2, 1],
    ...                "SAME").shape.as_list()
    [8, 14, 14, 32]
    """))
avg_pool = export("nn.avg_pool", "nn.avg_pool2d")(_pool_api(
    _avg_pool, "avg_pool",
    """``avg_pool(value, ksize, strides, padding, data_format="NHWC", name=None)``: the mean
    over each window's real cells (SAME padding is not counted).

    >>> import gradverify.engine as tf
    >>> tf.nn.avg_pool(tf.zeros([1, 5, 5, 3]), 2, 2, "VALID").shape.as_list()
    [1, 2, 2, 3]
    """))
