"""Shape manipulation and assembling: reshape, transpose, squeeze, concat, stack, tile, slice,
pad. (Indexing - gather, one-hot, where, strided slicing - is in ``index_ops``.)

Each op is one block: kernel + metadata, shape rule, gradient.

Gradients that need shapes use ``Shape`` ops (folded to constants when the static shape is
known), so they also work when dimensions are only known at run time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine import dtypes as _dt
from gradverify.engine import errors
from gradverify.engine import meta as m
from gradverify.engine.graph import Tensor, constant_value, convert_to_tensor
from gradverify.engine.ops.core_ops import cast, identity, shape, zeros_like
from gradverify.engine.registry import REQUIRED, api, export, op
from gradverify.engine.shapes import TensorShape, unknown_shape


def _invalid(message: str) -> errors.InvalidArgumentError:
    """A run-time error raised from a kernel (the session attaches the op)."""
    return errors.InvalidArgumentError(None, None, message)


def _tf_shape(dims: Any) -> str:
    """``[2,3]``: a concrete shape the way TF prints it in messages."""
    return "[" + ",".join(str(int(d)) for d in dims) + "]"


def _static_int(value: Any, what: str) -> int:
    """A Python int from an int, NumPy integer or constant scalar tensor."""
    if isinstance(value, Tensor):
        v = constant_value(value)
        if v is None:
            raise ValueError(f"{what} must be known when the graph is built; {value.name} "
                             "is not a constant.")
        value = v
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" or arr.ndim != 0:
        raise TypeError(f"{what} must be an integer, got {value!r}")
    return int(arr)


def _math(name: str) -> Any:
    """A public function of math_ops (imported lazily: math_ops imports this module)."""
    return api(name)


def _known_shape(t: Tensor) -> np.ndarray | None:
    """The static shape of ``t`` as an int32 array, or None if not fully known."""
    s = t.shape
    return np.array(s.as_list(), np.int32) if s.is_fully_defined() else None


def _rank_of(*tensors: Tensor) -> int | None:
    for t in tensors:
        if t.shape.ndims is not None:
            return t.shape.ndims
    return None


def _merge_shapes(ctx: Any, shapes: list[TensorShape], what: str = "") -> TensorShape:
    """Merge equal shapes with TF's messages ("Shapes must be equal rank ...")."""
    out = shapes[0]
    for s in shapes[1:]:
        if out.ndims is not None and s.ndims is not None:
            if out.ndims != s.ndims:
                raise ctx.fail(f"Shapes must be equal rank, but are {out.ndims} and "
                               f"{s.ndims}{what}")
            for i, (a, b) in enumerate(zip(out.as_list(), s.as_list())):
                if a is not None and b is not None and a != b:
                    raise ctx.fail(f"Dimension {i} in both shapes must be equal, but are {a} "
                                   f"and {b}. Shapes are {out.as_tf_str()} and "
                                   f"{s.as_tf_str()}.{what}")
        out = out.merge_with(s)
    return out


def _reshape_to_input(op: Any, grad: Tensor) -> Tensor:
    return reshape(grad, shape(op.inputs[0]))


# -- Reshape -------------------------------------------------------------------------------
@op("Reshape", inputs={"tensor": m.anything, "shape": m.structural("new_shape", of="tensor")},
    signature="custom", dtypes=m.ALL, api=("reshape", "manip.reshape"),
    reference=lambda t, s: np.reshape(t, tuple(s)),
    examples=({"shapes": {"tensor": (2, 3), "shape": (2,)}, "values": {"shape": [3, 2]}},
              {"shapes": {"tensor": (2, 3, 4), "shape": (2,)}, "values": {"shape": [-1, 4]}},
              {"shapes": {"tensor": (1,), "shape": (0,)}, "values": {"shape": []}}))
def reshape(tensor, shape):
    """``tensor`` with the same elements in a new shape; one dimension may be -1."""
    return np.reshape(tensor, tuple(int(d) for d in np.asarray(shape).reshape(-1)))


@reshape.shape_rule
def _(ctx):
    ctx.rank_exactly(1, 1)
    target = ctx.const(1)
    if target is None:  # partly known ([tf.shape(x)[0], 20]): TF's partial inference
        return _reshape_partial(ctx, ctx.input_shapes[0], ctx.const_as_shape(1))
    target = [int(d) for d in np.asarray(target).reshape(-1)]
    if sum(d == -1 for d in target) > 1:
        raise ctx.fail(f"Cannot infer multiple unknown dimensions in shape {target}")
    if any(d < -1 for d in target):
        raise ctx.fail(f"Size {min(target)} must be non-negative, not {min(target)}")
    n = ctx.input_shapes[0].num_elements()
    known = int(np.prod([d for d in target if d != -1]))
    if -1 in target:
        if n is None:
            return TensorShape([None if d == -1 else d for d in target])
        if known == 0 or n % known:
            raise ctx.fail(f"Cannot reshape a tensor with {n} elements to shape {target} "
                           f"({known} elements)")
        return TensorShape([n // known if d == -1 else d for d in target])
    if n is not None and n != known:
        raise ctx.fail(f"Cannot reshape a tensor with {n} elements to shape {target} "
                       f"({known} elements)")
    return TensorShape(target)


def _reshape_partial(ctx: Any, inp: TensorShape, out: TensorShape) -> TensorShape:
    """TF's ``SetOutputShapeForReshape`` for a partly known target: with one unknown dim on
    each side and equal known products, the output's unknown dim is the input's."""
    if out.ndims is None or inp.ndims is None:
        return out
    dims, ins = out.as_list(), inp.as_list()
    out_unknown = [i for i, d in enumerate(dims) if d is None]
    in_unknown = [i for i, d in enumerate(ins) if d is None]
    known_out = int(np.prod([d for d in dims if d is not None]))
    known_in = int(np.prod([d for d in ins if d is not None]))
    if len(out_unknown) > 1 or len(in_unknown) > 1:
        return out
    if not out_unknown and not in_unknown and known_in != known_out:
        raise ctx.fail(f"Cannot reshape a tensor with {known_in} elements to shape {dims} "
                       f"({known_out} elements)")
    if out_unknown and not in_unknown and known_out > 0:
        if known_in % known_out:
            raise ctx.fail(f"Dimension size must be evenly divisible by {known_out} but is "
                           f"{known_in}")
        dims[out_unknown[0]] = known_in // known_out
    return TensorShape(dims)


@reshape.gradient
def _(op, grad):
    return [reshape(grad, shape(op.inputs[0])), None]


# -- ExpandDims ------------------------------------------------------------------------------
@op("ExpandDims", inputs={"input": m.anything}, attrs={"axis": 0}, signature="custom",
    dtypes=m.ALL, choices={"axis": m.AxisChoice(of=0, extra=1)},
    examples=({"shapes": {"input": (2, 3)}, "attrs": {"axis": -1}},
              {"shapes": {"input": ()}, "attrs": {"axis": 0}},
              {"shapes": {"input": (2, 1, 3)}, "attrs": {"axis": -4}}),
    reference=lambda x, axis: np.reshape(
        x, np.insert(np.shape(x), axis % (np.ndim(x) + 1), 1).astype(int)))
def _expand_dims(input, *, axis):
    return np.expand_dims(input, axis)


@_expand_dims.shape_rule
def _(ctx):
    s = ctx.input_shapes[0]
    if s.ndims is None:
        return unknown_shape()
    rank = s.ndims + 1
    axis = ctx.normalize_axis(ctx.attrs["axis"], rank, "axis")
    dims = s.as_list()
    return TensorShape(dims[:axis] + [1] + dims[axis:])


_expand_dims.gradient(_reshape_to_input)


@export("expand_dims")
def expand_dims(input: Any, axis: Any = None, name: str | None = None,
                dim: Any = None) -> Tensor:
    """Insert a size-1 dimension at ``axis`` (``-1`` appends)."""
    if axis is None:
        if dim is None:
            raise ValueError("Must specify an axis argument to tf.expand_dims()")
        axis = dim
    elif dim is not None:
        raise ValueError("Cannot specify both 'axis' and 'dim'")
    return _expand_dims(input, axis=_static_int(axis, "axis"), name=name)


# -- Squeeze ---------------------------------------------------------------------------------
def _ref_squeeze(x, squeeze_dims):
    axes = {a % x.ndim for a in squeeze_dims}
    return x.reshape([d for i, d in enumerate(x.shape)
                      if not (i in axes or (not axes and d == 1))])


@op("Squeeze", inputs={"input": m.anything}, attrs={"squeeze_dims": ()}, signature="custom",
    dtypes=m.ALL, choices={"squeeze_dims": m.UnitAxes(of=0)}, reference=_ref_squeeze,
    examples=({"shapes": {"input": (1, 3, 1)}, "attrs": {"squeeze_dims": ()}},
              {"shapes": {"input": (1, 3, 1)}, "attrs": {"squeeze_dims": (-1,)}},
              {"shapes": {"input": (2, 1, 1, 4)}, "attrs": {"squeeze_dims": (2, 1)}},
              {"shapes": {"input": (1,)}, "attrs": {"squeeze_dims": (0,)}},
              {"shapes": {"input": (2, 3)}, "attrs": {"squeeze_dims": ()}}))
def _squeeze(input, *, squeeze_dims):
    rank = input.ndim
    axes = []
    for a in squeeze_dims:
        if not -rank <= a < rank:
            raise _invalid(f"Tried to squeeze dim index {a} for tensor with {rank} dimensions.")
        a %= rank
        if input.shape[a] != 1:
            raise _invalid(f"Can not squeeze dim[{a}], expected a dimension of 1, got "
                           f"{input.shape[a]}")
        axes.append(a)
    return np.squeeze(input, axis=tuple(sorted(set(axes))) if axes else None)


@_squeeze.shape_rule
def _(ctx):
    s = ctx.input_shapes[0]
    dims_attr = ctx.attrs["squeeze_dims"]
    if s.ndims is None:
        return unknown_shape()
    rank = s.ndims
    axes = set()
    for a in dims_attr:
        if not -rank <= a < rank:
            raise ctx.fail(f"Tried to squeeze dim index {a} for tensor with {rank} dimensions.")
        axes.add(a % rank)
    out = []
    for i, d in enumerate(s.as_list()):
        if i in axes:
            if d is not None and d != 1:
                raise ctx.fail(f"Can not squeeze dim[{i}], expected a dimension of 1, got {d}")
            continue
        if not axes:
            if d is None:
                return unknown_shape()  # squeezing all: an unknown dim may or may not go
            if d == 1:
                continue
        out.append(d)
    return TensorShape(out)


_squeeze.gradient(_reshape_to_input)


@export("squeeze")
def squeeze(input: Any, axis: Any = None, name: str | None = None,
            squeeze_dims: Any = None) -> Tensor:
    """Remove size-1 dimensions (all of them, or those listed in ``axis``)."""
    if squeeze_dims is not None:
        if axis is not None:
            raise ValueError("Cannot specify both 'squeeze_dims' and 'axis'")
        axis = squeeze_dims
    if axis is None:
        axes: tuple[int, ...] = ()
    elif isinstance(axis, (int, np.integer)):
        axes = (int(axis),)
    else:
        axes = tuple(int(a) for a in np.asarray(axis).reshape(-1))
    return _squeeze(input, squeeze_dims=axes, name=name)


# -- Transpose -------------------------------------------------------------------------------
@op("Transpose", inputs={"x": m.anything}, attrs={"perm": None}, signature="custom",
    dtypes=m.ALL, choices={"perm": m.Permutation(of=0, allow_none=True)},
    reference=lambda x, perm: np.einsum(
        x, list(range(x.ndim)),
        list(range(x.ndim))[::-1] if perm is None else list(perm)),
    examples=({"shapes": {"x": (2, 3, 4)}, "attrs": {"perm": (1, 2, 0)}},
              {"shapes": {"x": (2, 3)}, "attrs": {"perm": None}},
              {"shapes": {"x": ()}, "attrs": {"perm": ()}}))
def _transpose(x, *, perm):
    return np.transpose(x, perm)


@_transpose.shape_rule
def _(ctx):
    s = ctx.input_shapes[0]
    perm = ctx.attrs["perm"]
    if perm is None:
        return unknown_shape() if s.ndims is None else TensorShape(s.as_list()[::-1])
    if s.ndims is not None and len(perm) != s.ndims:
        raise ctx.fail(f"Dimension must be {s.ndims} but is {len(perm)}")
    if sorted(perm) != list(range(len(perm))):
        raise ctx.fail(f"{list(perm)} is not a permutation of 0..{len(perm) - 1}")
    return unknown_shape(len(perm)) if s.ndims is None else TensorShape(
        [s.as_list()[p] for p in perm])


@_transpose.gradient
def _(op, grad):
    perm = op.attrs["perm"]
    return _transpose(grad, perm=None if perm is None else tuple(int(i) for i in np.argsort(perm)))


@export("transpose")
def transpose(a: Any, perm: Any = None, name: str = "transpose",
              conjugate: bool = False) -> Tensor:
    """Permute the axes of ``a`` (default: reverse them)."""
    if isinstance(perm, Tensor):
        value = constant_value(perm)
        if value is None:
            raise ValueError(f"perm must be known when the graph is built; {perm.name} is not "
                             "a constant.")
        perm = value
    if perm is not None:
        perm = tuple(int(p) for p in np.asarray(perm).reshape(-1))
    return _transpose(a, perm=perm, name=name)


# -- ConcatV2 --------------------------------------------------------------------------------
def _ref_concat(*xs, axis):
    axis %= xs[0].ndim
    sizes = [x.shape[axis] for x in xs]
    out_shape = list(xs[0].shape)
    out_shape[axis] = sum(sizes)
    out = np.empty(out_shape, xs[0].dtype)
    start = 0
    for x, n in zip(xs, sizes):
        index: list[Any] = [np.s_[:]] * x.ndim
        index[axis] = np.s_[start:start + n]
        out[tuple(index)] = x
        start += n
    return out


@op("ConcatV2", inputs={"values": m.anything}, variadic="values", attrs={"axis": 0},
    signature="custom", dtypes=m.ALL, choices={"axis": m.AxisChoice(of=0)},
    reference=_ref_concat,
    examples=({"shapes": {"values": [(2, 3), (4, 3)]}, "attrs": {"axis": 0}},
              {"shapes": {"values": [(2, 1, 3), (2, 4, 3), (2, 2, 3)]}, "attrs": {"axis": -2}},
              {"shapes": {"values": [(3,), (1,)]}, "attrs": {"axis": -1}},
              {"shapes": {"values": [(2, 3, 1), (2, 3, 2)]}, "attrs": {"axis": 2}}))
def _concat(*values, axis):
    first = values[0]
    rank = first.ndim
    if rank == 0:
        raise _invalid("ConcatOp : Can't concatenate scalars (use tf.stack instead)")
    if not -rank <= axis < rank:
        raise _invalid(f"ConcatOp : Expected concatenating dimensions in the range "
                       f"[{-rank}, {rank}), but got {axis}")
    a = axis % rank
    for i, v in enumerate(values[1:], 1):
        if v.ndim != rank or any(d != e for k, (d, e) in enumerate(zip(first.shape, v.shape))
                                 if k != a):
            raise _invalid(f"ConcatOp : Dimensions of inputs should match: shape[0] = "
                           f"{_tf_shape(first.shape)} vs. shape[{i}] = {_tf_shape(v.shape)}")
    return np.concatenate(values, axis=a)


@_concat.shape_rule
def _(ctx):
    shapes = ctx.input_shapes
    known = [s for s in shapes if s.ndims is not None]
    if not known:
        return unknown_shape()
    rank = known[0].ndims
    for s in known:
        if s.ndims != rank:
            raise ctx.fail(f"Shape must be rank {rank} but is rank {s.ndims}")
    if rank == 0:
        raise ctx.fail("Can't concatenate scalars (use tf.stack instead)")
    axis = ctx.attrs["axis"]
    if not -rank <= axis < rank:
        raise ctx.fail(f"Expected concatenating dimensions in the range [{-rank}, {rank}), "
                       f"but got {axis}")
    axis %= rank
    out: list[int | None] = [None] * rank
    total: int | None = 0
    first = None
    for s in shapes:
        if s.ndims is None:
            total = None
            continue
        dims = s.as_list()
        total = None if total is None or dims[axis] is None else total + dims[axis]
        for i, d in enumerate(dims):
            if i == axis:
                continue
            if out[i] is not None and d is not None and out[i] != d:
                raise ctx.fail(f"Dimension {i} in both shapes must be equal, but are {out[i]} "
                               f"and {d}. Shapes are {first.as_tf_str()} and {s.as_tf_str()}.")
            out[i] = d if out[i] is None else out[i]
        first = s if first is None else first
    out[axis] = total
    return TensorShape(out)


@_concat.gradient
def _(op, grad):
    xs = op.inputs
    rank = _rank_of(*xs, grad)
    if rank is None:
        raise ValueError(f"Gradient of '{op.name}' (op: 'ConcatV2') needs the rank of its "
                         "inputs to be known when the graph is built.")
    axis = op.attrs["axis"] % rank
    sizes = [x.shape.as_tuple()[axis] if x.shape.ndims is not None else None for x in xs]
    out = []
    if None not in sizes:  # offsets known now: constant begin/size vectors
        offset = 0
        for n in sizes:
            begin = np.zeros(rank, np.int32)
            size = np.full(rank, -1, np.int32)
            begin[axis], size[axis] = offset, n
            out.append(_slice(grad, begin, size))
            offset += n
        return out
    unit = np.eye(rank, dtype=np.int32)[axis]  # picks the concat axis out of a shape vector
    running = None
    for x in xs:  # begin = (sum of the earlier shapes) * unit, size = shape(x), at run time
        sx = shape(x)
        begin = np.zeros(rank, np.int32) if running is None else _math("multiply")(
            running, unit)
        g = _slice(grad, begin, sx)
        g.set_shape(x.shape)
        out.append(g)
        running = sx if running is None else _math("add")(running, sx)
    return out


@export("concat")
def concat(values: Any, axis: Any, name: str = "concat") -> Tensor:
    """Join ``values`` along ``axis`` (negative counts from the end)."""
    axis = _static_int(axis, "axis")
    if isinstance(values, (list, tuple)) and len(values) == 1:
        return identity(values[0], name=name)
    return _concat(values, axis=axis, name=name)


# -- Pack / Unpack ---------------------------------------------------------------------------
def _ref_stack(*xs, axis):
    a = axis % (xs[0].ndim + 1)
    return np.concatenate([np.expand_dims(x, a) for x in xs], axis=a)


@op("Pack", inputs={"values": m.anything}, variadic="values", attrs={"axis": 0},
    signature="custom", dtypes=m.ALL, choices={"axis": m.AxisChoice(of=0, extra=1)},
    reference=_ref_stack,
    examples=({"shapes": {"values": [(2, 3), (2, 3), (2, 3)]}, "attrs": {"axis": 0}},
              {"shapes": {"values": [(2, 3), (2, 3)]}, "attrs": {"axis": -1}},
              {"shapes": {"values": [(), (), ()]}, "attrs": {"axis": 0}},
              {"shapes": {"values": [(4, 1, 2)]}, "attrs": {"axis": 1}}))
def _pack(*values, axis):
    first = values[0]
    for i, v in enumerate(values[1:], 1):
        if v.shape != first.shape:
            raise _invalid(f"Shapes of all inputs must match: values[0].shape = "
                           f"{_tf_shape(first.shape)} != values[{i}].shape = "
                           f"{_tf_shape(v.shape)}")
    rank = first.ndim + 1
    if not -rank <= axis < rank:
        raise _invalid(f"axis = {axis} not in [{-rank}, {rank})")
    return np.stack(values, axis=axis)


@_pack.shape_rule
def _(ctx):
    s = _merge_shapes(ctx, ctx.input_shapes, " From merging shape 0 with other shapes.")
    if s.ndims is None:
        return unknown_shape()
    rank = s.ndims + 1
    axis = ctx.attrs["axis"]
    if not -rank <= axis < rank:
        raise ctx.fail(f"axis = {axis} not in [{-rank}, {rank})")
    axis %= rank
    dims = s.as_list()
    return TensorShape(dims[:axis] + [len(ctx.input_shapes)] + dims[axis:])


@_pack.gradient
def _(op, grad):
    parts = _unpack(grad, num=len(op.inputs), axis=op.attrs["axis"])
    return list(parts) if isinstance(parts, tuple) else [parts]


@export("stack")
def stack(values: Any, axis: int = 0, name: str = "stack") -> Tensor:
    """Stack same-shaped ``values`` along a new axis ``axis``."""
    return _pack(list(values), axis=_static_int(axis, "axis"), name=name)


def _ref_unstack(value, *, num, axis):
    parts = [np.moveaxis(value, axis, 0)[i] for i in range(num)]
    return parts[0] if num == 1 else tuple(parts)


@op("Unpack", inputs={"value": m.anything}, outputs=("output*",),
    attrs={"num": REQUIRED, "axis": 0}, signature="custom", dtypes=m.ALL,
    choices={"axis": m.AxisChoice(of=0), "num": m.DimOf(of=0, axis="axis")},
    reference=_ref_unstack,
    examples=({"shapes": {"value": (3, 2)}, "attrs": {"num": 3, "axis": 0}},
              {"shapes": {"value": (2, 4, 3)}, "attrs": {"num": 3, "axis": -1}},
              {"shapes": {"value": (2, 1)}, "attrs": {"num": 1, "axis": 1}},
              {"shapes": {"value": (2,)}, "attrs": {"num": 2, "axis": 0}}))
def _unpack(value, *, num, axis):
    rank = value.ndim
    if not -rank <= axis < rank:
        raise _invalid(f"axis = {axis} not in [{-rank}, {rank})")
    if value.shape[axis] != num:
        raise _invalid(f"Input shape axis {axis % rank} must equal {num}, got shape "
                       f"{_tf_shape(value.shape)}")
    parts = tuple(np.take(value, i, axis=axis) for i in range(num))
    return parts[0] if num == 1 else parts


@_unpack.shape_rule
def _(ctx):
    num = ctx.attrs["num"]
    if num < 0:
        raise ctx.fail(f"num must be >= 0, got {num}")
    s = ctx.rank_at_least(0, 1)
    if s.ndims is None:
        return [unknown_shape()] * num
    axis = ctx.attrs["axis"]
    if not -s.ndims <= axis < s.ndims:
        raise ctx.fail(f"axis = {axis} not in [{-s.ndims}, {s.ndims})")
    axis %= s.ndims
    dims = s.as_list()
    if dims[axis] is not None and dims[axis] != num:
        raise ctx.fail(f"Dimension must be {num} but is {dims[axis]}")
    return [TensorShape(dims[:axis] + dims[axis + 1:])] * num


@_unpack.gradient
def _(op, *grads):
    parts = [zeros_like(y) if g is None else g for g, y in zip(grads, op.outputs)]
    return _pack(parts, axis=op.attrs["axis"])


@export("unstack")
def unstack(value: Any, num: int | None = None, axis: int = 0,
            name: str = "unstack") -> list[Tensor]:
    """The slices of ``value`` along ``axis``, as a list of ``num`` tensors."""
    axis = _static_int(axis, "axis")
    if num is None:
        t = convert_to_tensor(value)
        s = t.shape
        if s.ndims is not None and not -s.ndims <= axis < s.ndims:
            raise ValueError(f"axis = {axis} not in [{-s.ndims}, {s.ndims})")
        num = None if s.ndims is None else s.as_list()[axis]
        if num is None:
            raise ValueError(f"Cannot infer num from shape {s}")
        value = t
    out = _unpack(value, num=int(num), axis=axis, name=name)
    if isinstance(out, Tensor):
        return [out]
    return [] if not isinstance(out, tuple) else list(out)


# -- Slice and Pad ---------------------------------------------------------------------------
def _ref_slice(x, begin, size):
    index = []
    for d, b, s in zip(x.shape, np.asarray(begin).tolist(), np.asarray(size).tolist()):
        index.append(np.arange(b, d if s == -1 else b + s))
    return x[np.ix_(*index)] if index else x.copy()


@op("Slice", inputs={"input": m.anything, "begin": m.structural("slice_begin", of="input"),
                     "size": m.structural("slice_size", of="input")},
    signature="custom", dtypes=m.ALL, reference=_ref_slice,
    examples=({"shapes": {"input": (4, 5), "begin": (2,), "size": (2,)},
               "values": {"begin": [1, 2], "size": [2, -1]}},
              {"shapes": {"input": (3, 2, 4), "begin": (3,), "size": (3,)},
               "values": {"begin": [0, 1, 1], "size": [3, 1, 2]}},
              {"shapes": {"input": (5,), "begin": (1,), "size": (1,)},
               "values": {"begin": [2], "size": [0]}},
              {"shapes": {"input": (), "begin": (0,), "size": (0,)},
               "values": {"begin": [], "size": []}}))
def _slice(input, begin, size):
    begin = np.asarray(begin).reshape(-1)
    size = np.asarray(size).reshape(-1)
    if len(begin) != input.ndim or len(size) != input.ndim:
        raise _invalid(f"Expected begin and size arguments to be 1-D tensors of size "
                       f"{input.ndim}, but got shapes [{len(begin)}] and [{len(size)}] "
                       "instead.")
    index = []
    for i, (d, b, s) in enumerate(zip(input.shape, begin.tolist(), size.tolist())):
        if not 0 <= b <= d:
            raise _invalid(f"Expected begin[{i}] in [0, {d}], but got {b}")
        s = d - b if s == -1 else s
        if not 0 <= s <= d - b:
            raise _invalid(f"Expected size[{i}] in [0, {d - b}], but got {s}")
        index.append(np.s_[b:b + s])
    return input[tuple(index)]


@_slice.shape_rule
def _(ctx):
    x = ctx.input_shapes[0]
    nb = ctx.rank_exactly(1, 1).as_list()[0]
    ns = ctx.rank_exactly(2, 1).as_list()[0]
    rank = x.ndims
    for n in (nb, ns):
        if rank is not None and n is not None and n != rank:
            raise ctx.fail(f"Dimension must be {rank} but is {n}")
        rank = n if rank is None else rank
    if rank is None:
        return unknown_shape()
    begin, size = ctx.const(1), ctx.const(2)
    dims = x.as_list() if x.ndims is not None else [None] * rank
    out: list[int | None] = []
    for i, d in enumerate(dims):
        b = None if begin is None else int(np.asarray(begin).reshape(-1)[i])
        s = None if size is None else int(np.asarray(size).reshape(-1)[i])
        if b is not None and (b < 0 or (d is not None and b > d)):
            raise ctx.fail(f"Expected begin[{i}] in [0, {'?' if d is None else d}], but got "
                           f"{b}")
        if s is not None and s < -1:
            raise ctx.fail(f"Expected size[{i}] >= -1, but got {s}")
        if s is not None and s != -1:
            if d is not None and b is not None and b + s > d:
                raise ctx.fail(f"Expected size[{i}] in [0, {d - b}], but got {s}")
            out.append(s)
        elif s == -1 and d is not None and b is not None:
            out.append(d - b)
        else:
            out.append(None)
    return TensorShape(out)


@_slice.gradient
def _(op, grad):
    x, begin, _ = op.inputs
    b, xs, gs = constant_value(begin), _known_shape(x), _known_shape(grad)
    if b is not None and xs is not None and gs is not None:
        b = np.asarray(b, np.int32).reshape(-1)
        paddings: Any = np.stack([b, xs - b - gs], axis=1)
    else:  # [begin, shape(x) - begin - shape(grad)] at run time
        b = cast(begin, _dt.int32)
        sub = _math("subtract")
        paddings = _pack([b, sub(sub(shape(x), b), shape(grad))], axis=1)
    g = _pad(grad, paddings)
    g.set_shape(x.shape)
    return [g, None, None]


@export("slice")
def slice(input_: Any, begin: Any, size: Any, name: str | None = None) -> Tensor:
    """The block of ``input_`` starting at ``begin`` with ``size`` (-1: to the end)."""
    return _slice(input_, begin, size, name=name)


def _ref_pad(x, paddings, *, constant_values):
    p = np.asarray(paddings).reshape(-1, 2)
    out = np.full([d + a + b for d, (a, b) in zip(x.shape, p.tolist())], constant_values,
                  x.dtype)
    out[tuple(np.s_[a:a + d] for d, (a, _) in zip(x.shape, p.tolist()))] = x
    return out


@op("Pad", inputs={"input": m.anything, "paddings": m.structural("paddings", of="input")},
    attrs={"constant_values": 0}, signature="custom", dtypes=m.ALL,
    choices={"constant_values": (0, 1)}, reference=_ref_pad,
    examples=({"shapes": {"input": (2, 3), "paddings": (2, 2)},
               "values": {"paddings": [[1, 0], [2, 1]]}, "attrs": {"constant_values": 0}},
              {"shapes": {"input": (3,), "paddings": (1, 2)},
               "values": {"paddings": [[0, 2]]}, "attrs": {"constant_values": 1}},
              {"shapes": {"input": (1, 2, 1), "paddings": (3, 2)},
               "values": {"paddings": [[0, 0], [1, 1], [0, 3]]},
               "attrs": {"constant_values": 0}}))
def _pad(input, paddings, *, constant_values):
    p = np.asarray(paddings)
    if p.shape != (input.ndim, 2):
        raise _invalid(f"The first dimension of paddings must be the rank of inputs"
                       f"{_tf_shape(p.shape)} {_tf_shape(input.shape)}")
    if np.any(p < 0):
        bad = p[np.any(p < 0, axis=1)][0]
        raise _invalid(f"Paddings must be non-negative: {bad[0]} {bad[1]}")
    if input.ndim == 0:
        return input.copy()
    return np.pad(input, p, mode="constant",
                  constant_values=np.asarray(constant_values).astype(input.dtype))


@_pad.shape_rule
def _(ctx):
    x = ctx.input_shapes[0]
    p = ctx.rank_exactly(1, 2).as_list()
    if p[1] is not None and p[1] != 2:
        raise ctx.fail(f"Dimension 1 in both shapes must be equal, but are {p[1]} and 2")
    rank = x.ndims
    if rank is not None and p[0] is not None and p[0] != rank:
        raise ctx.fail(f"Shape must be rank {p[0]} but is rank {rank}")
    rank = p[0] if rank is None else rank
    if rank is None:
        return unknown_shape()
    pads = ctx.const(1)
    dims = x.as_list() if x.ndims is not None else [None] * rank
    if pads is None:
        return unknown_shape(rank)
    pads = np.asarray(pads).reshape(rank, 2)
    if np.any(pads < 0):
        bad = pads[np.any(pads < 0, axis=1)][0]
        raise ctx.fail(f"Paddings must be non-negative: {bad[0]} {bad[1]}")
    return TensorShape([None if d is None else d + int(a) + int(b)
                        for d, (a, b) in zip(dims, pads)])


@_pad.gradient
def _(op, grad):
    x, paddings = op.inputs
    p = constant_value(paddings)
    begin = np.asarray(p).reshape(-1, 2)[:, 0] if p is not None else api(
        "_internal.getitem")(paddings, (np.s_[:], 0))  # strided slicing lives in index_ops
    g = _slice(grad, begin, shape(x))
    g.set_shape(x.shape)
    return [g, None]


@export("pad")
def pad(tensor: Any, paddings: Any, mode: str = "CONSTANT", name: str | None = None,
        constant_values: Any = 0) -> Tensor:
    """``tensor`` padded with ``paddings[i] = [before, after]`` values of ``constant_values``.

    Only ``mode="CONSTANT"`` is implemented (REFLECT and SYMMETRIC raise
    NotImplementedError).
    """
    mode = str(mode).upper()
    if mode in ("REFLECT", "SYMMETRIC"):
        raise NotImplementedError(f"pad mode {mode} is not implemented by this engine; only "
                                  "CONSTANT is.")
    if mode != "CONSTANT":
        raise ValueError(f"Unknown padding mode: {mode}")
    if isinstance(constant_values, Tensor):
        value = constant_value(constant_values)
        if value is None:
            raise ValueError("constant_values must be known when the graph is built.")
        constant_values = value
    value = np.asarray(constant_values)
    if value.ndim != 0:
        raise ValueError(f"constant_values must be a scalar, got shape {value.shape}")
    return _pad(tensor, paddings, constant_values=value.item(), name=name)
