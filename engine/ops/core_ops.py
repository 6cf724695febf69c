"""Core ops: constants, placeholders, identity, the gradient machinery's own ops, shapes.

Each op is one block: kernel (decorated with its metadata), shape rule, gradient, and where
TF's signature differs from the generic builder, the public wrapper.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine import dtypes as _dt
from gradverify.engine import errors
from gradverify.engine import meta as m
from gradverify.engine.autopack import nested_tensor_dtype
from gradverify.engine.graph import Tensor, constant, convert_to_tensor, get_default_graph
from gradverify.engine.registry import REQUIRED, export, op
from gradverify.engine.shapes import TensorShape, as_shape

_ANY = m.Domain("any", dtypes=m.ALL, differentiable=False)
_LIKE = m.shape_only


# -- Const ---------------------------------------------------------------------------------
@op("Const", inputs={}, attrs={"value": REQUIRED, "dtype": REQUIRED}, signature="custom",
    out_dtype="attr:dtype", differentiable=False)
def _const(*, value, dtype):
    return value


@_const.shape_rule
def _(ctx):
    return TensorShape(np.shape(ctx.attrs["value"]))


@_const.fold_rule
def _(t):
    return t.op.attrs["value"]


export("constant")(constant)


# -- Placeholder ---------------------------------------------------------------------------
@op("Placeholder", inputs={}, attrs={"dtype": REQUIRED, "shape": None}, signature="custom",
    out_dtype="attr:dtype", stateful=True, differentiable=False)
def _placeholder(ctx, *, dtype, shape):
    raise errors.InvalidArgumentError(
        None, ctx.op, f"You must feed a value for placeholder tensor '{ctx.op.name}' with "
        f"dtype {dtype.proto_name}"
        + ("" if shape.ndims is None else f" and shape {shape.as_tf_str()}"))


@_placeholder.shape_rule
def _(ctx):
    return ctx.attrs["shape"]


@export("placeholder")
def placeholder(dtype: Any, shape: Any = None, name: str | None = None) -> Tensor:
    """A value fed at run time: ``x = placeholder(float32, [None, 784])``.

    Running anything that needs it without a feed raises InvalidArgumentError.
    """
    return _placeholder(dtype=_dt.as_dtype(dtype), shape=as_shape(shape),
                        name=name or "Placeholder")


@op("PlaceholderWithDefault", inputs={"input": m.anything}, attrs={"shape": REQUIRED},
    signature="custom", dtypes=m.ALL, alias=True, reference=lambda x, shape: x,
    examples=({"shapes": {"input": (2, 3)}, "attrs": {"shape": TensorShape([None, 3])}},
              {"shapes": {"input": ()}, "attrs": {"shape": TensorShape([])}}))
def _placeholder_with_default(input, *, shape):
    return input


@_placeholder_with_default.shape_rule
def _(ctx):
    shape = ctx.attrs["shape"]
    if not shape.is_compatible_with(ctx.input_shapes[0]):
        raise ctx.fail(f"Shape {shape} of the default is incompatible with {shape}")
    return shape


@_placeholder_with_default.fold_rule
def _(t):
    return None  # it can be fed: its default is not a build-time constant


@_placeholder_with_default.gradient
def _(op, grad):
    return grad


@export("placeholder_with_default")
def placeholder_with_default(input: Any, shape: Any, name: str | None = None) -> Tensor:
    """A placeholder that takes ``input``'s value when not fed."""
    return _placeholder_with_default(input, shape=as_shape(shape), name=name)


# -- Identity, StopGradient, NoOp ------------------------------------------------------------
@op("Identity", inputs={"input": m.anything}, dtypes=m.ALL, alias=True, api="identity",
    reference=lambda x: x)
def identity(input):
    """The input, unchanged (reading a variable's reference gives its value)."""
    return input


@identity.gradient
def _(op, grad):
    return grad


@op("StopGradient", inputs={"input": m.anything}, dtypes=m.ALL, alias=True,
    differentiable=False, api="stop_gradient", reference=lambda x: x)
def stop_gradient(input):
    """The input, with no gradient flowing back through it."""
    return input


@op("NoOp", inputs={}, outputs=(), signature="custom", differentiable=False, api="no_op")
def no_op():
    """Does nothing; used to group control dependencies."""


@no_op.shape_rule
def _(ctx):
    return []


@export("group")
def group(*inputs: Any, name: str | None = None) -> Any:
    """An op that runs all ``inputs`` (ops or tensors); it has no output."""
    from gradverify.engine.graph import _graph_of, control_dependencies
    flat = []
    for i in inputs:
        flat.extend(i if isinstance(i, (list, tuple)) else [i])
    with _graph_of(flat).as_default(), control_dependencies(flat):
        return no_op(name=name or "group_deps")


# -- the gradient machinery's own pair: sum to a shape, broadcast to a shape -----------------
@op("Unbroadcast", inputs={"grad": m.reals, "like": _LIKE},
    attrs={"op_name": "", "input_index": 0}, signature="custom",
    dtypes=m.FLOAT + m.INT,
    examples=({"shapes": {"grad": (2, 3), "like": (3,)}},
              {"shapes": {"grad": (4, 1, 3), "like": (1, 1)}},
              {"shapes": {"grad": (2, 3), "like": (2, 3)}},
              {"shapes": {"grad": (5, 2, 3), "like": (1, 2, 1)}}))
def _unbroadcast(grad, like, *, op_name, input_index):
    """Sum ``grad`` over the axes along which ``like`` was broadcast; shape of ``like``."""
    shape = np.shape(like)
    gshape = np.shape(grad)
    if gshape == shape:
        return grad
    lead = len(gshape) - len(shape)
    if lead < 0 or any(s not in (1, g) for s, g in zip(shape, gshape[lead:])):
        raise errors.InvalidArgumentError(
            None, None, "Incompatible shapes between op input and calculated input gradient. "
            f"Forward operation: {op_name}. Input index: {input_index}. Original input shape: "
            f"{shape}. Calculated input gradient shape: {gshape}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and gshape[lead + i] != 1)
    return np.sum(grad, axis=axes, dtype=grad.dtype).reshape(shape)


@_unbroadcast.shape_rule
def _(ctx):
    grad, like = ctx.input_shapes
    if not _broadcasts_to(like, grad):
        raise ctx.fail(f"Cannot sum a gradient of shape {grad} to shape {like}")
    return like


def _broadcasts_to(small: Any, big: Any) -> bool:
    """False when the static shapes prove ``small`` does not broadcast to ``big``."""
    a, b = small.as_tuple(), big.as_tuple()
    if a is None or b is None:
        return True
    return len(a) <= len(b) and all(x in (None, 1) or y is None or x == y
                                    for x, y in zip(a, b[len(b) - len(a):]))


@_unbroadcast.gradient
def _(op, grad):
    return [broadcast_like(grad, op.inputs[0]), None]


@op("BroadcastLike", inputs={"input": m.reals, "like": _LIKE}, signature="custom",
    dtypes=m.FLOAT + m.INT,
    examples=({"shapes": {"input": (3,), "like": (2, 3)}},
              {"shapes": {"input": (1, 3), "like": (4, 3)}},
              {"shapes": {"input": (), "like": (2, 2)}}))
def broadcast_like(input, like):
    """``input`` broadcast to the shape of ``like``."""
    return np.broadcast_to(input, np.shape(like))


@broadcast_like.shape_rule
def _(ctx):
    x, like = ctx.input_shapes
    if not _broadcasts_to(x, like):
        raise ctx.fail(f"Cannot broadcast shape {x} to shape {like}")
    return like


@broadcast_like.gradient
def _(op, grad):
    return [_unbroadcast(grad, op.inputs[0], op_name=op.name), None]


# -- zeros_like / ones_like / fill -----------------------------------------------------------
def _like_fold(value):
    def fold(t):
        s = t.op.inputs[0].shape
        if not s.is_fully_defined():
            return None
        return np.full(s.as_tuple(), value, dtype=t.dtype.np)
    return fold


@op("ZerosLike", inputs={"x": m.anything}, dtypes=m.ALL, differentiable=False,
    reference=np.zeros_like)
def _zeros_like(x):
    return np.zeros_like(x)


_zeros_like.fold_rule(_like_fold(0))


@op("OnesLike", inputs={"x": m.anything}, dtypes=m.ALL, differentiable=False,
    reference=np.ones_like)
def _ones_like(x):
    return np.ones_like(x)


_ones_like.fold_rule(_like_fold(1))


def _like_wrapper(opdef, default_name):
    def like(tensor: Any, dtype: Any = None, name: str | None = None,
             optimize: bool = True) -> Tensor:
        t = convert_to_tensor(tensor)
        out = opdef(t, name=name or default_name)
        return out if dtype is None else cast(out, dtype)
    return like


zeros_like = export("zeros_like")(_like_wrapper(_zeros_like, "zeros_like"))
ones_like = export("ones_like")(_like_wrapper(_ones_like, "ones_like"))


@op("Fill", inputs={"dims": m.structural("dims"), "value": m.reals}, signature="custom",
    dtypes=m.ALL, examples=({"values": {"dims": [2, 3]}},))
def _fill(dims, value):
    return np.full(tuple(int(d) for d in dims), value, dtype=np.asarray(value).dtype)


@_fill.shape_rule
def _(ctx):
    ctx.rank_exactly(1, 0)
    dims = ctx.const(0)
    if dims is not None:
        if np.any(np.asarray(dims) < 0):
            raise ctx.fail(f"Fill dimensions must be >= 0, got {list(dims)}")
        return TensorShape([int(d) for d in dims])
    return ctx.const_as_shape(0)  # fill([n, 3], v) with n unknown: [?, 3]


@_fill.gradient
def _(op, grad):
    from gradverify.engine.registry import api
    return [None, api("reduce_sum")(grad)]


@export("fill")
def fill(dims: Any, value: Any, name: str | None = None) -> Tensor:
    """A tensor of shape ``dims`` filled with ``value``."""
    return _fill(dims, value, name=name)


def _filled(value: float):
    def make(shape: Any, dtype: Any = _dt.float32, name: str | None = None) -> Tensor:
        dtype = _dt.as_dtype(dtype)
        if isinstance(shape, Tensor):
            return _fill(shape, np.array(value, dtype.np), name=name)
        if nested_tensor_dtype(shape) is not None:  # [n, 3] with a tensor n: packed
            graph = get_default_graph()
            with graph.name_scope(name or ("zeros" if value == 0 else "ones")) as scope:
                dims = convert_to_tensor(shape, dtype=_dt.int32)
                return _fill(dims, np.array(value, dtype.np), name=scope)
        arr = np.full(tuple(int(d) for d in as_shape(shape).as_list()), value, dtype.np)
        return convert_to_tensor(arr, name=name or ("zeros" if value == 0 else "ones"))
    return make


zeros = export("zeros")(_filled(0))
ones = export("ones")(_filled(1))


# -- AddN ------------------------------------------------------------------------------------
@op("AddN", inputs={"inputs": m.reals}, variadic="inputs", signature="custom",
    dtypes=m.FLOAT + m.INT, reference=lambda *xs: np.sum(np.stack(xs), axis=0),
    examples=({"shapes": {"inputs": [(2, 3), (2, 3), (2, 3)]}},
              {"shapes": {"inputs": [(), ()]}}))
def _add_n(*inputs):
    out = inputs[0]
    for x in inputs[1:]:
        out = out + x
    return out


@_add_n.shape_rule
def _(ctx):
    shape = ctx.input_shapes[0]
    for s in ctx.input_shapes[1:]:
        if not shape.is_compatible_with(s):
            raise ctx.fail(f"Shapes must be equal rank, or dimensions must be equal, but are "
                           f"{shape.as_tf_str()} and {s.as_tf_str()}")
        shape = shape.merge_with(s)
    return shape


@_add_n.gradient
def _(op, grad):
    return [grad] * len(op.inputs)


@export("add_n", "math.add_n")
def add_n(inputs: Any, name: str | None = None) -> Tensor:
    """Elementwise sum of a list of same-shaped tensors."""
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise ValueError("inputs must be a list of at least one Tensor with the same dtype "
                         "and shape")
    if len(inputs) == 1:
        return identity(inputs[0], name=name)
    return _add_n(list(inputs), name=name)


# -- Cast ------------------------------------------------------------------------------------
@op("Cast", inputs={"x": m.anything}, attrs={"DstT": _dt.float32}, dtypes=m.ALL + ("float16",),
    out_dtype="attr:DstT", choices={"DstT": (_dt.float32, _dt.float64, _dt.int32)})
def _cast(x, *, DstT):  # noqa: N803 - TF's attribute name
    return x.astype(DstT.np)


@_cast.gradient
def _(op, grad):
    src = op.inputs[0].dtype
    if src.is_floating and grad.dtype.is_floating:
        return cast(grad, src)
    return None


@export("cast", "dtypes.cast")
def cast(x: Any, dtype: Any, name: str | None = None) -> Tensor:
    """``x`` converted to ``dtype`` (returned unchanged if it already has it)."""
    dtype = _dt.as_dtype(dtype)
    t = convert_to_tensor(x)
    if t.dtype is dtype:
        return t
    return _cast(t, DstT=dtype, name=name or "Cast")


@export("to_float")
def to_float(x: Any, name: str = "ToFloat") -> Tensor:
    return cast(x, _dt.float32, name=name)


@export("to_int32")
def to_int32(x: Any, name: str = "ToInt32") -> Tensor:
    return cast(x, _dt.int32, name=name)


@export("to_int64")
def to_int64(x: Any, name: str = "ToInt64") -> Tensor:
    return cast(x, _dt.int64, name=name)


# -- Shape, Size, Rank: known when the static shape is -------------------------------------
def _static_fold(fn):
    def fold(t):
        s = t.op.inputs[0].shape
        return None if not s.is_fully_defined() else np.asarray(fn(s), dtype=t.dtype.np)
    return fold


@op("Shape", inputs={"input": _ANY}, attrs={"out_type": _dt.int32}, signature="custom",
    dtypes=m.ALL, out_dtype="attr:out_type", differentiable=False)
def _shape(input, *, out_type):
    return np.array(np.shape(input), dtype=out_type.np)


@_shape.shape_rule
def _(ctx):
    return TensorShape([ctx.input_shapes[0].ndims])


_shape.fold_rule(_static_fold(lambda s: s.as_list()))


@export("shape")
def shape(input: Any, name: str | None = None, out_type: Any = _dt.int32) -> Tensor:
    """The shape of ``input`` as a 1-D integer tensor (known at build time when static)."""
    return _shape(input, out_type=_dt.as_dtype(out_type), name=name)


@op("Size", inputs={"input": _ANY}, attrs={"out_type": _dt.int32}, signature="custom",
    dtypes=m.ALL, out_dtype="attr:out_type", differentiable=False)
def _size(input, *, out_type):
    return np.array(np.size(input), dtype=out_type.np)


@_size.shape_rule
def _(ctx):
    return TensorShape([])


_size.fold_rule(_static_fold(lambda s: s.num_elements()))


@export("size")
def size(input: Any, name: str | None = None, out_type: Any = _dt.int32) -> Tensor:
    """The number of elements of ``input`` as a scalar integer tensor."""
    return _size(input, out_type=_dt.as_dtype(out_type), name=name)


@op("Rank", inputs={"input": _ANY}, signature="custom", dtypes=m.ALL, out_dtype="int32",
    differentiable=False, api="rank")
def rank(input):
    """The rank of ``input`` as a scalar int32 tensor."""
    return np.array(np.ndim(input), dtype=np.int32)


@rank.shape_rule
def _(ctx):
    return TensorShape([])


@rank.fold_rule
def _(t):
    n = t.op.inputs[0].shape.ndims
    return None if n is None else np.array(n, np.int32)
