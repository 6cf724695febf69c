"""2-D convolution: Conv2D and its two gradients as graph ops, plus ``conv2d_transpose``.

Each op is one block: kernel + tester metadata, shape rule, gradient. The gradients are the
ops ``Conv2DBackpropInput`` and ``Conv2DBackpropFilter`` (TF's), each with its own gradient,
so every order is a graph of these three ops. Kernels are im2col + one matrix product (see
``_windows``). NHWC only: like TF's CPU kernels, NCHW is refused (at build time here).

>>> import numpy as np, gradverify.engine as tf
>>> x = tf.constant(np.ones((1, 4, 4, 1)))
>>> y = tf.nn.conv2d(x, tf.constant(np.ones((3, 3, 1, 2))), [1, 2, 2, 1], "SAME")
>>> y.shape.as_list(), tf.Session().run(y)[0, :, :, 0].tolist()
([1, 2, 2, 2], [[9.0, 6.0], [6.0, 4.0]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine import meta as m
from gradverify.engine.graph import Tensor, convert_to_tensor
from gradverify.engine.ops._windows import (
    PADDINGS,
    check_4,
    col2im,
    geometry,
    im2col,
    window_size,
)
from gradverify.engine.ops.array_ops import _pack
from gradverify.engine.ops.core_ops import shape
from gradverify.engine.registry import REQUIRED, export, op
from gradverify.engine.shapes import TensorShape

_ONES = (1, 1, 1, 1)
_ATTRS = {"strides": REQUIRED, "padding": REQUIRED, "dilations": _ONES, "data_format": "NHWC"}
_CHOICES = {"strides": (_ONES, (1, 2, 2, 1), (1, 1, 2, 1), (1, 3, 1, 1)),
            "padding": PADDINGS,
            "dilations": (_ONES, _ONES, (1, 2, 2, 1), (1, 1, 2, 1))}
# input, filter: non-square, size-1 spatial dims and channels, filters as large as the input
_SHAPES = (((1, 5, 5, 1), (3, 3, 1, 2)), ((2, 3, 4, 2), (2, 3, 2, 1)),
           ((1, 3, 1, 2), (1, 1, 2, 3)), ((1, 6, 4, 1), (3, 2, 1, 1)),
           ((2, 1, 5, 1), (1, 3, 1, 2)), ((1, 4, 3, 2), (4, 3, 2, 1)))
# full layouts for the backprop ops, whose out_backprop shape must match the attributes
_LAYOUTS = (((1, 5, 5, 1), (3, 3, 1, 2), (1, 2, 2, 1), "SAME", _ONES),
            ((2, 3, 4, 2), (2, 3, 2, 1), _ONES, "VALID", _ONES),
            ((1, 6, 4, 1), (3, 2, 1, 1), (1, 2, 1, 1), "SAME", _ONES),
            ((1, 5, 4, 1), (2, 2, 1, 2), _ONES, "SAME", (1, 2, 2, 1)),
            ((2, 1, 5, 1), (1, 3, 1, 2), (1, 1, 2, 1), "VALID", (1, 1, 2, 1)),
            ((1, 4, 3, 2), (4, 3, 2, 1), (1, 3, 3, 1), "SAME", _ONES))


def _conv_out(x: tuple, f: tuple, strides: tuple, padding: str, dilations: tuple) -> tuple:
    oh = window_size(x[1], f[0], strides[1], dilations[1], padding)[0]
    ow = window_size(x[2], f[1], strides[2], dilations[2], padding)[0]
    return (x[0], oh, ow, f[3])


def _backprop_examples(sizes_input: str, value_input: str) -> tuple[dict, ...]:
    out = []
    for x, f, s, p, d in _LAYOUTS:
        sizes, value = (x, f) if sizes_input == "input_sizes" else (f, x)
        out.append({"shapes": {sizes_input: (4,), value_input: value,
                               "out_backprop": _conv_out(x, f, s, p, d)},
                    "values": {sizes_input: list(sizes)},
                    "attrs": {"strides": s, "padding": p, "dilations": d,
                              "data_format": "NHWC"}})
    return tuple(out)


def _layout(ctx: Any) -> tuple[tuple, tuple, str]:
    """The validated attributes of a convolution op (ValueError in TF's form)."""
    a = ctx.attrs
    if a["data_format"] != "NHWC":
        raise ctx.fail(f"The {ctx.type} op currently only supports the NHWC tensor format on "
                       f"the CPU. The op was given the format: {a['data_format']}")
    if a["padding"] not in PADDINGS:
        raise ctx.fail(f"Invalid padding '{a['padding']}': must be SAME or VALID")
    try:
        return (check_4("strides", a["strides"], ctx.type),
                check_4("dilations", a["dilations"], ctx.type), a["padding"])
    except ValueError as e:
        raise ctx.fail(str(e)) from None


def _spatial(ctx: Any, size: int | None, k: int | None, stride: int, dilation: int,
             padding: str) -> int | None:
    if size is None or k is None:
        if padding == "SAME" and size is not None:
            return -(-size // stride)
        return None
    out = window_size(size, k, stride, dilation, padding)[0]
    if out < 0:
        raise ctx.fail(f"Negative dimension size caused by subtracting "
                       f"{(k - 1) * dilation + 1} from {size}")
    return out


def _output_shape(ctx: Any, x: list, f: list) -> list:
    strides, dilations, padding = _layout(ctx)
    ctx.merge(x[3], f[2])
    return [x[0], _spatial(ctx, x[1], f[0], strides[1], dilations[1], padding),
            _spatial(ctx, x[2], f[1], strides[2], dilations[2], padding), f[3]]


def _sizes(ctx: Any, i: int) -> list:
    """The 4 sizes held by the int vector input ``i`` (unknown entries None)."""
    ctx.rank_exactly(i, 1)
    n = ctx.input_shapes[i].as_list()[0]
    if n is not None and n != 4:
        raise ctx.fail(f"{ctx.type} requires its sizes input to have 4 elements, got {n}")
    v = ctx.const(i)
    return [None] * 4 if v is None else [int(d) for d in np.asarray(v).reshape(-1)]


def _check_backprop(ctx: Any, x: list, f: list, dy: list) -> None:
    want = _output_shape(ctx, x, f)
    for axis, (a, b) in enumerate(zip(want, dy)):
        if a is not None and b is not None and a != b:
            raise ctx.fail(f"{ctx.type}: Size of out_backprop doesn't match computed: actual "
                           f"= {b}, computed = {a} spatial_dim: {axis} input: {x[axis]} "
                           f"filter: {f[axis - 1] if axis in (1, 2) else f[3]}")


def _kernel_args(op: Any) -> dict[str, Any]:
    return {k: op.attrs[k] for k in ("strides", "padding", "dilations", "data_format")}


def _geometry(op_type: str, x_shape: tuple, f_shape: tuple, strides: Any, dilations: Any,
              padding: str):
    if len(x_shape) != 4 or len(f_shape) != 4 or x_shape[3] != f_shape[2]:
        raise ValueError(f"{op_type}: input {x_shape} and filter {f_shape} do not match")
    return geometry(op_type, x_shape, f_shape[0], f_shape[1], strides, dilations, padding)


def _ref_conv2d(input, filter, *, strides, padding, dilations, data_format):
    """Direct loops over output pixels and window offsets (an independent reference)."""
    n, h, w, _ = input.shape
    kh, kw, _, o = filter.shape
    (oh, top, _), (ow, left, _) = (window_size(h, kh, strides[1], dilations[1], padding),
                                   window_size(w, kw, strides[2], dilations[2], padding))
    out = np.zeros((n, oh, ow, o), np.result_type(input, filter))
    for y in range(oh):
        for x in range(ow):
            for i in range(kh):
                for j in range(kw):
                    r = y * strides[1] + i * dilations[1] - top
                    q = x * strides[2] + j * dilations[2] - left
                    if 0 <= r < h and 0 <= q < w:
                        out[:, y, x, :] += input[:, r, q, :] @ filter[i, j]
    return out


# -- Conv2D ----------------------------------------------------------------------------------
@op("Conv2D", inputs={"input": m.reals, "filter": m.reals}, attrs=_ATTRS, choices=_CHOICES,
    signature="custom", reference=_ref_conv2d,
    examples=tuple({"shapes": {"input": x, "filter": f}} for x, f in _SHAPES))
def _conv2d(input, filter, *, strides, padding, dilations, data_format):
    """Cross-correlation of NHWC ``input`` with a ``[kh, kw, in, out]`` filter."""
    g = _geometry("Conv2D", input.shape, filter.shape, strides, dilations, padding)
    out = im2col(g, input) @ filter.reshape(-1, filter.shape[3])
    return out.reshape(g.n, g.oh, g.ow, filter.shape[3])


@_conv2d.shape_rule
def _(ctx):
    x = ctx.rank_exactly(0, 4).as_list()
    f = ctx.rank_exactly(1, 4).as_list()
    return TensorShape(_output_shape(ctx, x, f))


@_conv2d.gradient
def _(op, grad):
    x, f = op.inputs
    a = _kernel_args(op)
    return [_conv2d_backprop_input(shape(x), f, grad, **a),
            _conv2d_backprop_filter(x, shape(f), grad, **a)]


# -- Conv2DBackpropInput ---------------------------------------------------------------------
@op("Conv2DBackpropInput", inputs={"input_sizes": m.structural("dims"), "filter": m.reals,
                                   "out_backprop": m.reals},
    attrs=_ATTRS, signature="custom",
    examples=_backprop_examples("input_sizes", "filter"))
def _conv2d_backprop_input(input_sizes, filter, out_backprop, *, strides, padding, dilations,
                           data_format):
    """The gradient of Conv2D with respect to its input (of shape ``input_sizes``)."""
    sizes = tuple(int(d) for d in np.asarray(input_sizes).reshape(-1))
    g = _geometry("Conv2DBackpropInput", sizes, filter.shape, strides, dilations, padding)
    if out_backprop.shape != (g.n, g.oh, g.ow, filter.shape[3]):
        raise ValueError("Conv2DBackpropInput: out_backprop does not match the layout")
    o = filter.shape[3]
    return col2im(g, out_backprop.reshape(-1, o) @ filter.reshape(-1, o).T)


@_conv2d_backprop_input.shape_rule
def _(ctx):
    sizes = _sizes(ctx, 0)
    f = ctx.rank_exactly(1, 4).as_list()
    dy = ctx.rank_exactly(2, 4).as_list()
    ctx.merge(f[3], dy[3])
    _check_backprop(ctx, sizes, f, dy)
    return TensorShape(sizes)


@_conv2d_backprop_input.gradient
def _(op, grad):
    _, f, dy = op.inputs
    a = _kernel_args(op)
    return [None, _conv2d_backprop_filter(grad, shape(f), dy, **a), _conv2d(grad, f, **a)]


# -- Conv2DBackpropFilter --------------------------------------------------------------------
@op("Conv2DBackpropFilter", inputs={"input": m.reals, "filter_sizes": m.structural("dims"),
                                    "out_backprop": m.reals},
    attrs=_ATTRS, signature="custom",
    examples=_backprop_examples("filter_sizes", "input"))
def _conv2d_backprop_filter(input, filter_sizes, out_backprop, *, strides, padding,
                            dilations, data_format):
    """The gradient of Conv2D with respect to its filter (of shape ``filter_sizes``)."""
    sizes = tuple(int(d) for d in np.asarray(filter_sizes).reshape(-1))
    g = _geometry("Conv2DBackpropFilter", input.shape, sizes, strides, dilations, padding)
    if out_backprop.shape != (g.n, g.oh, g.ow, sizes[3]):
        raise ValueError("Conv2DBackpropFilter: out_backprop does not match the layout")
    return (im2col(g, input).T @ out_backprop.reshape(-1, sizes[3])).reshape(sizes)


@_conv2d_backprop_filter.shape_rule
def _(ctx):
    x = ctx.rank_exactly(0, 4).as_list()
    sizes = _sizes(ctx, 1)
    dy = ctx.rank_exactly(2, 4).as_list()
    _check_backprop(ctx, x, sizes, dy)
    return TensorShape(sizes)


@_conv2d_backprop_filter.gradient
def _(op, grad):
    x, _, dy = op.inputs
    a = _kernel_args(op)
    return [_conv2d_backprop_input(shape(x), grad, dy, **a), None, _conv2d(x, grad, **a)]


# -- public API ------------------------------------------------------------------------------
def _sequence(value: Any, name: str) -> tuple[int, int, int, int]:
    """TF's ``_get_sequence`` for NHWC: an int, 1, 2 or 4 values -> 4 values."""
    if value is None:
        raise ValueError(f"{name} must be given")
    v = [int(value)] if np.ndim(value) == 0 else [int(x) for x in value]
    if len(v) == 1:
        v = v * 2
    if len(v) == 2:
        return (1, v[0], v[1], 1)
    if len(v) == 4:
        return tuple(v)  # type: ignore[return-value]
    raise ValueError(f"{name} should be of length 1, 2 or 4. Received: {name}={value!r} of "
                     f"length {len(v)}")


def _padding(padding: Any) -> str:
    if not isinstance(padding, str):
        raise ValueError(f"padding must be 'SAME' or 'VALID' (explicit paddings are not "
                         f"supported), got {padding!r}")
    p = padding.upper()
    if p not in PADDINGS:
        raise ValueError(f"Unknown padding: {padding!r}; must be 'SAME' or 'VALID'")
    return p


def _one(a: Any, b: Any, names: str) -> Any:
    if a is not None and b is not None:
        raise ValueError(f"Cannot specify both {names}")
    return a if a is not None else b


@export("nn.conv2d")
def conv2d(input: Any, filter: Any = None, strides: Any = None, padding: Any = None,
           use_cudnn_on_gpu: bool = True, data_format: str = "NHWC", dilations: Any = None,
           name: str | None = None, filters: Any = None) -> Tensor:
    """2-D convolution of NHWC ``input`` with a ``[kh, kw, in_channels, out_channels]``
    filter (``filters`` is an alias); ``strides``/``dilations`` an int or 1, 2 or 4 values;
    ``padding`` ``"SAME"`` (output ``ceil(in / stride)``) or ``"VALID"``.

    >>> import gradverify.engine as tf
    >>> tf.nn.conv2d(tf.zeros([2, 28, 28, 1]), tf.zeros([5, 5, 1, 32]), [1, 1, 1, 1],
    ...              "SAME").shape.as_list()
    [2, 28, 28, 32]
    """
    filter = _one(filter, filters, "'filters' and 'filter'")
    return _conv2d(input, filter, strides=_sequence(strides, "strides"),
                   padding=_padding(padding),
                   dilations=_sequence(1 if dilations is None else dilations, "dilations"),
                   data_format=data_format, name=name)


@export("nn.conv2d_backprop_input")
def conv2d_backprop_input(input_sizes: Any, filter: Any = None, out_backprop: Any = None,
                          strides: Any = None, padding: Any = None,
                          use_cudnn_on_gpu: bool = True, data_format: str = "NHWC",
                          dilations: Any = None, name: str | None = None,
                          filters: Any = None) -> Tensor:
    """The gradient of :func:`conv2d` with respect to an input of shape ``input_sizes``.

    >>> import gradverify.engine as tf
    >>> tf.nn.conv2d_backprop_input([2, 8, 8, 3], tf.zeros([3, 3, 3, 4]),
    ...                             tf.zeros([2, 4, 4, 4]), 2, "SAME").shape.as_list()
    [2, 8, 8, 3]
    """
    return _conv2d_backprop_input(
        _sizes_tensor(input_sizes), _one(filter, filters, "'filters' and 'filter'"),
        out_backprop, strides=_sequence(strides, "strides"), padding=_padding(padding),
        dilations=_sequence(1 if dilations is None else dilations, "dilations"),
        data_format=data_format, name=name)


@export("nn.conv2d_backprop_filter")
def conv2d_backprop_filter(input: Any, filter_sizes: Any, out_backprop: Any, strides: Any,
                           padding: Any, use_cudnn_on_gpu: bool = True,
                           data_format: str = "NHWC", dilations: Any = None,
                           name: str | None = None) -> Tensor:
    """The gradient of :func:`conv2d` with respect to a filter of shape ``filter_sizes``.

    >>> import gradverify.engine as tf
    >>> tf.nn.conv2d_backprop_filter(tf.zeros([2, 8, 8, 3]), [3, 3, 3, 4],
    ...                              tf.zeros([2, 6, 6, 4]), 1, "VALID").shape.as_list()
    [3, 3, 3, 4]
    """
    return _conv2d_backprop_filter(
        input, _sizes_tensor(filter_sizes), out_backprop, strides=_sequence(strides, "strides"),
        padding=_padding(padding),
        dilations=_sequence(1 if dilations is None else dilations, "dilations"),
        data_format=data_format, name=name)


def _sizes_tensor(sizes: Any) -> Any:
    """A shape given as a list that mixes ints and scalar tensors is packed (TF's autopack)."""
    if isinstance(sizes, (list, tuple)) and any(
            isinstance(s, Tensor) or hasattr(s, "_as_graph_element") for s in sizes):
        return _pack([convert_to_tensor(s, dtype=None) for s in sizes], axis=0)
    if isinstance(sizes, (list, tuple)):
        return np.asarray(sizes, np.int32)
    return sizes


@export("nn.conv2d_transpose")
def conv2d_transpose(value: Any = None, filter: Any = None, output_shape: Any = None,
                     strides: Any = None, padding: str = "SAME", data_format: str = "NHWC",
                     name: str | None = None, input: Any = None, filters: Any = None,
                     dilations: Any = None) -> Tensor:
    """The transpose of :func:`conv2d` (its gradient w.r.t. the input): ``value`` of shape
    ``[n, h, w, filter_out]``, ``filter`` ``[kh, kw, out_channels, in_channels]``, result of
    ``output_shape`` (whose conv2d with ``filter`` would have ``value``'s shape).

    >>> import gradverify.engine as tf
    >>> tf.nn.conv2d_transpose(tf.zeros([1, 7, 7, 8]), tf.zeros([3, 3, 4, 8]),
    ...                        [1, 14, 14, 4], [1, 2, 2, 1]).shape.as_list()
    [1, 14, 14, 4]
    """
    value = convert_to_tensor(_one(value, input, "'input' and 'value'"))
    filter = convert_to_tensor(_one(filter, filters, "'filters' and 'filter'"),
                               dtype=value.dtype)
    fs = filter.shape.as_list() if filter.shape.ndims == 4 else [None] * 4
    vs = value.shape.as_list() if value.shape.ndims == 4 else [None] * 4
    if None not in (fs[3], vs[3]) and fs[3] != vs[3]:
        raise ValueError(f"input channels does not match filter's input channels, "
                         f"{vs[3]} != {fs[3]}")
    sizes = _sizes_tensor(output_shape)
    static = np.asarray(sizes) if isinstance(sizes, np.ndarray) else None
    if static is not None:
        if static.shape != (4,):
            raise ValueError(f"output_shape must have shape (4,), got {list(static.shape)}")
        if fs[2] is not None and fs[2] != int(static[3]):
            raise ValueError(f"output_shape does not match filter's output channels, "
                             f"{int(static[3])} != {fs[2]}")
    return _conv2d_backprop_input(
        sizes, filter, value, strides=_sequence(strides, "strides"), padding=_padding(padding),
        dilations=_sequence(1 if dilations is None else dilations, "dilations"),
        data_format=data_format, name=name or "conv2d_transpose")
