"""Indexing: gather and its scatter-add, one-hot, select/where, strided slicing (``t[...]``).

Each op is one block: kernel + metadata, shape rule, gradient. Shape manipulation
(reshape, concat, tile, slice, pad ...) is in ``array_ops``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine import dtypes as _dt
from gradverify.engine import meta as m
from gradverify.engine.graph import Tensor, constant_value
from gradverify.engine.ops.array_ops import (
    _concat,
    _invalid,
    _known_shape,
    _math,
    _merge_shapes,
    _pack,
    _rank_of,
    _static_int,
    _tf_shape,
    _transpose,
    reshape,
)
from gradverify.engine.ops.core_ops import cast, shape, zeros_like
from gradverify.engine.registry import REQUIRED, api, export, op
from gradverify.engine.shapes import TensorShape, unknown_shape


# -- GatherV2 and its gradient's scatter-add -------------------------------------------------
def _ref_gather(params, indices, *, axis):
    a = axis % params.ndim
    moved = np.moveaxis(params, a, 0)[np.asarray(indices)]
    q = np.ndim(indices)
    return np.moveaxis(moved, list(range(q)), list(range(a, a + q)))


@op("GatherV2", inputs={"params": m.anything, "indices": m.indices(of="params")},
    attrs={"axis": 0}, signature="custom", dtypes=m.ALL,
    choices={"axis": m.AxisChoice(of=0)}, reference=_ref_gather,
    examples=({"shapes": {"params": (5, 3), "indices": (4,)}, "attrs": {"axis": 0},
               "values": {"indices": [0, 2, 2, 4]}},
              {"shapes": {"params": (2, 5, 3), "indices": (2, 3)}, "attrs": {"axis": 1},
               "values": {"indices": [[4, 0, 4], [1, 1, 3]]}},
              {"shapes": {"params": (3, 4), "indices": ()}, "attrs": {"axis": -1},
               "values": {"indices": 2}},
              {"shapes": {"params": (4,), "indices": (6,)}, "attrs": {"axis": 0},
               "values": {"indices": [3, 3, 3, 0, 1, 3]}}))
def _gather(params, indices, *, axis):
    rank = params.ndim
    if not -rank <= axis < max(rank, 1) or rank == 0:
        raise _invalid(f"Expected axis in the range [{-rank}, {rank}), but got {axis}")
    n = params.shape[axis]
    bad = (indices < 0) | (indices >= n)
    if np.any(bad):
        where = np.argwhere(bad)[0]
        pos = "" if indices.ndim == 0 else "[" + ",".join(str(int(i)) for i in where) + "]"
        raise _invalid(f"indices{pos} = {indices[tuple(where)]} is not in [0, {n})")
    return np.take(params, indices, axis=axis)


@_gather.shape_rule
def _(ctx):
    p, i = ctx.input_shapes
    if p.ndims is None or i.ndims is None:
        return unknown_shape()
    rank = p.ndims
    axis = ctx.attrs["axis"]
    if rank == 0:
        raise ctx.fail("Shape must be at least rank 1 but is rank 0")
    if not -rank <= axis < rank:
        raise ctx.fail(f"Expected axis in the range [{-rank}, {rank}), but got {axis}")
    axis %= rank
    dims = p.as_list()
    return TensorShape(dims[:axis] + i.as_list() + dims[axis + 1:])


@_gather.gradient
def _(op, grad):
    params, indices = op.inputs
    axis, rank = op.attrs["axis"], params.shape.ndims
    if axis < 0:
        if rank is None:
            raise ValueError(f"Gradient of '{op.name}' (op: 'GatherV2') with a negative axis "
                             "needs the rank of params to be known when the graph is built.")
        axis += rank
    n_static = params.shape.as_tuple()[axis] if rank is not None else None
    n = np.int32(n_static) if n_static is not None else _getitem(shape(params), axis)
    if axis == 0:
        g = unsorted_segment_sum(grad, indices, n)
    else:  # move the indices' axes to the front, scatter-add, move the result's axis back
        q = indices.shape.ndims
        if rank is None or q is None:
            raise ValueError(f"Gradient of '{op.name}' (op: 'GatherV2') along axis {axis} "
                             "needs the ranks of params and indices when the graph is built.")
        perm = list(range(axis, axis + q)) + list(range(axis)) + list(
            range(axis + q, rank + q - 1))
        g = unsorted_segment_sum(_transpose(grad, perm=tuple(perm)), indices, n)
        back = list(range(1, axis + 1)) + [0] + list(range(axis + 1, rank))
        g = _transpose(g, perm=tuple(back))
    g.set_shape(params.shape)
    return [g, None]


@export("gather")
def gather(params: Any, indices: Any, validate_indices: Any = None, name: str | None = None,
           axis: Any = None, batch_dims: int = 0) -> Tensor:
    """Slices of ``params`` along ``axis`` at ``indices`` (out-of-range indices are an
    InvalidArgumentError at run time)."""
    if batch_dims != 0:
        raise NotImplementedError("gather with batch_dims != 0 is not implemented")
    axis = 0 if axis is None else _static_int(axis, "axis")
    return _gather(params, indices, axis=axis, name=name)


def _ref_segment_sum(data, segment_ids, num_segments):
    ids = np.asarray(segment_ids)
    n = int(num_segments)
    flat_ids = ids.reshape(-1)
    flat = data.reshape((flat_ids.size,) + data.shape[ids.ndim:])
    out = np.zeros((n,) + data.shape[ids.ndim:], data.dtype)
    for k, s in enumerate(flat_ids.tolist()):
        if s >= 0:
            out[s] += flat[k]
    return out


@op("UnsortedSegmentSum",
    inputs={"data": m.reals,
            "segment_ids": m.Domain("segment_ids", of="num_segments", dtypes=m.INT,
                                    differentiable=False),
            "num_segments": m.structural("num_segments")},
    signature="custom", dtypes=m.FLOAT + m.INT, reference=_ref_segment_sum,
    api=("unsorted_segment_sum", "math.unsorted_segment_sum"),
    examples=({"shapes": {"data": (4, 3), "segment_ids": (4,), "num_segments": ()},
               "values": {"segment_ids": [0, 2, 2, 4], "num_segments": 5}},
              {"shapes": {"data": (2, 3, 2), "segment_ids": (2, 3), "num_segments": ()},
               "values": {"segment_ids": [[1, 1, 0], [-1, 1, 2]], "num_segments": 3}},
              {"shapes": {"data": (3,), "segment_ids": (3,), "num_segments": ()},
               "values": {"segment_ids": [1, 1, 1], "num_segments": 2}}))
def unsorted_segment_sum(data, segment_ids, num_segments):
    """``out[i] = sum of data[j...] over segment_ids[j...] == i``; negative ids are dropped."""
    ids = np.asarray(segment_ids)
    n = int(num_segments)
    if data.shape[:ids.ndim] != ids.shape:
        raise _invalid(f"data.shape = {_tf_shape(data.shape)} does not start with "
                       f"segment_ids.shape = {_tf_shape(ids.shape)}")
    bad = ids >= n
    if np.any(bad):
        where = np.argwhere(bad)[0]
        pos = "" if ids.ndim == 0 else "[" + ",".join(str(int(i)) for i in where) + "]"
        raise _invalid(f"segment_ids{pos} = {ids[tuple(where)]} is out of range [0, {n})")
    out = np.zeros((n,) + data.shape[ids.ndim:], data.dtype)
    keep = ids >= 0
    np.add.at(out, ids[keep], data[keep])  # duplicates accumulate
    return out


@unsorted_segment_sum.shape_rule
def _(ctx):
    data, ids, _ = ctx.input_shapes
    ctx.rank_exactly(2, 0)
    num = ctx.const(2)
    if num is not None and int(num) < 0:
        raise ctx.fail(f"num_segments must be >= 0, got {int(num)}")
    n = None if num is None else int(num)
    if data.ndims is None or ids.ndims is None:
        return unknown_shape()
    if ids.ndims > data.ndims or not TensorShape(data.as_list()[:ids.ndims]).is_compatible_with(
            ids):
        raise ctx.fail(f"data.shape = {data.as_tf_str()} does not start with segment_ids.shape"
                       f" = {ids.as_tf_str()}")
    return TensorShape([n] + data.as_list()[ids.ndims:])


@unsorted_segment_sum.gradient
def _(op, grad):
    _, ids, _ = op.inputs
    known = constant_value(ids)
    if known is not None and np.all(np.asarray(known) >= 0):
        return [_gather(grad, ids, axis=0), None, None]
    # negative ids were dropped: gather at max(ids, 0) and zero those rows
    ge = _math("greater_equal")
    keep = ge(ids, np.zeros((), ids.dtype.np))
    g = _gather(grad, _select(keep, ids, zeros_like(ids)), axis=0)
    ones = _math("add")(zeros_like(_getitem(shape(grad), np.s_[1:])), 1)
    mask = reshape(cast(keep, grad.dtype), _concat([shape(ids), ones], axis=0))
    return [_math("multiply")(g, mask), None, None]


# -- Tile ------------------------------------------------------------------------------------
def _ref_tile(x, multiples):
    mult = [int(v) for v in np.asarray(multiples).reshape(-1)]
    inter = [v for d in x.shape for v in (1, d)]
    big = [v for mm, d in zip(mult, x.shape) for v in (mm, d)]
    return np.broadcast_to(x.reshape(inter), big).reshape(
        [mm * d for mm, d in zip(mult, x.shape)])


@op("Tile", inputs={"input": m.anything, "multiples": m.structural("multiples", of="input")},
    signature="custom", dtypes=m.ALL, reference=_ref_tile,
    examples=({"shapes": {"input": (2, 3), "multiples": (2,)}, "values": {"multiples": [2, 1]}},
              {"shapes": {"input": (1, 2, 3), "multiples": (3,)},
               "values": {"multiples": [3, 1, 2]}},
              {"shapes": {"input": (3,), "multiples": (1,)}, "values": {"multiples": [4]}},
              {"shapes": {"input": (2, 2), "multiples": (2,)}, "values": {"multiples": [0, 2]}},
              {"shapes": {"input": (), "multiples": (0,)}, "values": {"multiples": []}}))
def _tile(input, multiples):
    mult = np.asarray(multiples).reshape(-1)
    if mult.size != input.ndim:
        raise _invalid(f"Expected multiples argument to be a vector of length {input.ndim} "
                       f"but got length {mult.size}")
    if np.any(mult < 0):
        i = int(np.argmax(mult < 0))
        raise _invalid(f"Expected multiples[{i}] >= 0, but got {mult[i]}")
    return np.tile(input, [int(v) for v in mult]) if input.ndim else input.copy()


@_tile.shape_rule
def _(ctx):
    x = ctx.input_shapes[0]
    n = ctx.rank_exactly(1, 1).as_list()[0]
    if x.ndims is not None and n is not None and n != x.ndims:
        raise ctx.fail(f"Shape must be rank {n} but is rank {x.ndims}")
    rank = x.ndims if x.ndims is not None else n
    if rank is None:
        return unknown_shape()
    dims = x.as_list() if x.ndims is not None else [None] * rank
    mult = ctx.const(1)
    if mult is None:  # partly known multiples ([n, 1]): the known ones still multiply
        part = ctx.const_as_shape(1)
        known = part.as_list() if part.ndims == rank else [None] * rank
        return TensorShape([0 if d == 0 or v == 0 else None if d is None or v is None
                            else d * v for d, v in zip(dims, known)])
    mult = [int(v) for v in np.asarray(mult).reshape(-1)]
    for i, v in enumerate(mult):
        if v < 0:
            raise ctx.fail(f"Expected multiples[{i}] >= 0, but got {v}")
    return TensorShape([0 if v == 0 else None if d is None else d * v
                        for d, v in zip(dims, mult)])


@_tile.gradient
def _(op, grad):
    x, multiples = op.inputs
    rank = _rank_of(x, grad)
    if rank is None:
        n = multiples.shape.as_tuple()
        rank = n[0] if n else None
    if rank is None:
        raise ValueError(f"Gradient of '{op.name}' (op: 'Tile') needs the rank of its input "
                         "to be known when the graph is built.")
    if rank == 0:
        return [grad, None]  # tiling a scalar copies it
    mult, xs = constant_value(multiples), _known_shape(x)
    if mult is not None and xs is not None:  # [m0, d0, m1, d1, ...]
        split: Any = np.stack([np.asarray(mult, np.int32).reshape(-1), xs], axis=1).reshape(-1)
    else:
        split = reshape(_pack([cast(multiples, _dt.int32), shape(x)], axis=1), [-1])
    g = _math("reduce_sum")(reshape(grad, split), axis=list(range(0, 2 * rank, 2)))
    g.set_shape(x.shape)
    return [g, None]


@export("tile", "manip.tile")
def tile(input: Any, multiples: Any, name: str | None = None) -> Tensor:
    """``input`` repeated ``multiples[i]`` times along axis ``i``."""
    return _tile(input, multiples, name=name)


# -- OneHot ----------------------------------------------------------------------------------
def _ref_one_hot(indices, *, depth, on_value, off_value, axis, dtype):
    idx = np.asarray(indices)
    valid = (idx >= 0) & (idx < depth)
    rows = np.zeros(idx.shape + (depth,))
    if depth:
        rows = np.eye(depth)[np.where(valid, idx, 0)] * valid[..., None]
    out = off_value + (on_value - off_value) * rows
    return np.moveaxis(out, -1, axis).astype(_dt.as_dtype(dtype).np)


@op("OneHot", inputs={"indices": m.integers},
    attrs={"depth": REQUIRED, "on_value": 1, "off_value": 0, "axis": -1,
           "dtype": _dt.float32},
    signature="custom", out_dtype="attr:dtype", differentiable=False,
    choices={"depth": (1, 3, 4), "axis": (-1, 0), "on_value": (1, 5),
             "off_value": (0, -1), "dtype": (_dt.float32, _dt.float64, _dt.int32)},
    reference=_ref_one_hot,
    examples=({"shapes": {"indices": (4,)}, "values": {"indices": [0, 2, -1, 3]},
               "attrs": {"depth": 3, "axis": -1}},
              {"shapes": {"indices": (2, 2)}, "values": {"indices": [[1, 0], [5, 2]]},
               "attrs": {"depth": 3, "axis": 1, "on_value": 2, "off_value": -1}},
              {"shapes": {"indices": ()}, "values": {"indices": 1},
               "attrs": {"depth": 2, "axis": 0}}))
def _one_hot(indices, *, depth, on_value, off_value, axis, dtype):
    rank = indices.ndim
    axis = rank if axis == -1 else axis
    hot = np.expand_dims(indices, axis) == np.arange(depth).reshape(
        [depth if i == axis else 1 for i in range(rank + 1)])
    dt = _dt.as_dtype(dtype).np
    return np.where(hot, np.asarray(on_value).astype(dt), np.asarray(off_value).astype(dt))


@_one_hot.shape_rule
def _(ctx):
    depth, axis = ctx.attrs["depth"], ctx.attrs["axis"]
    if depth < 0:
        raise ctx.fail(f"depth must be non-negative, got: {depth}")
    s = ctx.input_shapes[0]
    if s.ndims is None:
        return unknown_shape()
    if not -1 <= axis <= s.ndims:
        raise ctx.fail(f"Expected axis to be -1 or between [0, {s.ndims + 1}).  But "
                       f"received: {axis}")
    dims = s.as_list()
    axis = s.ndims if axis == -1 else axis
    return TensorShape(dims[:axis] + [depth] + dims[axis:])


def _scalar_attr(value: Any, what: str) -> Any:
    if isinstance(value, Tensor):
        v = constant_value(value)
        if v is None:
            raise ValueError(f"{what} must be known when the graph is built; {value.name} is "
                             "not a constant.")
        value = v
    arr = np.asarray(value)
    if arr.ndim != 0:
        raise ValueError(f"{what} must be a scalar, got shape {arr.shape}")
    return arr.item()


@export("one_hot")
def one_hot(indices: Any, depth: Any, on_value: Any = None, off_value: Any = None,
            axis: Any = None, dtype: Any = None, name: str | None = None) -> Tensor:
    """One-hot rows of length ``depth`` (``on_value`` at each index, ``off_value`` elsewhere;
    an index outside [0, depth) gives a row of ``off_value``)."""
    def dtype_of(v: Any) -> _dt.DType | None:
        if v is None or type(v) in (bool, int, float):
            return None  # a Python scalar takes the requested dtype
        return v.dtype if isinstance(v, Tensor) else _dt.as_dtype(np.asarray(v).dtype)
    on_dt, off_dt = dtype_of(on_value), dtype_of(off_value)
    if on_dt is not None and off_dt is not None and on_dt is not off_dt:
        raise TypeError(f"dtype {on_dt.name} of on_value does not match dtype {off_dt.name} "
                        "of off_value")
    if dtype is not None:
        dtype = _dt.as_dtype(dtype)
        for v, what in ((on_dt, "on_value"), (off_dt, "off_value")):
            if v is not None and v is not dtype:
                raise TypeError(f"dtype {v.name} of {what} does not match dtype parameter "
                                f"{dtype.name}")
    else:
        dtype = on_dt or off_dt or _dt.float32
    on = 1 if on_value is None else _scalar_attr(on_value, "on_value")
    off = 0 if off_value is None else _scalar_attr(off_value, "off_value")
    return _one_hot(indices, depth=_static_int(depth, "depth"), on_value=on, off_value=off,
                    axis=-1 if axis is None else _static_int(axis, "axis"), dtype=dtype,
                    name=name or "one_hot")


# -- Select / SelectV2 / Where ---------------------------------------------------------------
def _ref_select(condition, x, y):
    c = np.asarray(condition)
    if c.ndim == 0:
        return (x if c else y).copy()
    if c.ndim == 1 and x.ndim > 1:
        c = c.reshape((-1,) + (1,) * (x.ndim - 1))
    return np.choose(np.broadcast_to(c, x.shape).astype(int), [y, x])


@op("Select", inputs={"condition": m.boolean, "x": m.anything, "y": m.anything},
    signature="custom", dtypes=m.ALL, reference=_ref_select,
    examples=({"shapes": {"condition": (2, 3), "x": (2, 3), "y": (2, 3)}},
              {"shapes": {"condition": (3,), "x": (3, 2), "y": (3, 2)}},
              {"shapes": {"condition": (), "x": (2, 2), "y": (2, 2)}},
              {"shapes": {"condition": (4,), "x": (4,), "y": (4,)}}))
def _select(condition, x, y):
    if x.shape != y.shape:
        raise _invalid(f"'then' and 'else' must have the same size.  but received: "
                       f"{_tf_shape(x.shape)} vs. {_tf_shape(y.shape)}")
    if condition.ndim == 0:
        return x if condition else y
    if condition.shape == x.shape:
        return np.where(condition, x, y)
    if condition.ndim == 1 and x.ndim > 1 and condition.shape[0] == x.shape[0]:
        return np.where(condition.reshape((-1,) + (1,) * (x.ndim - 1)), x, y)
    raise _invalid(f"'condition' must be a scalar, a vector matching the first dimension of "
                   f"'then', or the same shape as 'then': {_tf_shape(condition.shape)} vs. "
                   f"{_tf_shape(x.shape)}")


@_select.shape_rule
def _(ctx):
    c = ctx.input_shapes[0]
    data = _merge_shapes(ctx, ctx.input_shapes[1:])
    if c.ndims is None or data.ndims is None or c.ndims == 0:
        return data
    if c.ndims == data.ndims:
        return _merge_shapes(ctx, [data, c])
    if c.ndims == 1:
        ctx.merge(c.as_list()[0], data.as_list()[0])
        return data
    raise ctx.fail(f"Shape must be rank {data.ndims} but is rank {c.ndims}")


@_select.gradient
def _(op, grad):
    c = op.inputs[0]
    zeros = zeros_like(grad)
    return [None, _select(c, grad, zeros), _select(c, zeros, grad)]


@op("SelectV2", inputs={"condition": m.boolean, "x": m.anything, "y": m.anything},
    signature="broadcast", dtypes=m.ALL, api=("where_v2",),
    reference=lambda c, x, y: np.choose(np.asarray(c).astype(int), [y, x]))
def _select_v2(condition, x, y):
    """``x`` where ``condition`` else ``y``, with NumPy broadcasting of all three."""
    return np.where(condition, x, y)


@_select_v2.gradient
def _(op, grad):
    c = op.inputs[0]
    zero = np.zeros((), grad.dtype.np)
    return [None, _select_v2(c, grad, zero), _select_v2(c, zero, grad)]


@op("Where", inputs={"condition": m.boolean}, signature="custom", out_dtype="int64",
    differentiable=False, examples=({"shapes": {"condition": (2, 3)}},
                                    {"shapes": {"condition": ()}}),
    reference=lambda c: np.array([i for i in np.ndindex(np.shape(c)) if c[i]],
                                 np.int64).reshape(int(np.count_nonzero(c)), np.ndim(c)))
def _where(condition):
    return np.argwhere(condition).astype(np.int64)


@_where.shape_rule
def _(ctx):
    return TensorShape([None, ctx.input_shapes[0].ndims])


@export("where")
def where(condition: Any, x: Any = None, y: Any = None, name: str | None = None) -> Tensor:
    """With ``x`` and ``y``: elements of ``x`` where ``condition`` else of ``y`` (no
    broadcasting; a vector ``condition`` picks rows). Alone: the int64 coordinates of the
    true elements, shape ``[n, rank]``."""
    if x is None and y is None:
        return _where(condition, name=name)
    if x is None or y is None:
        raise ValueError("x and y must both be non-None or both be None.")
    return _select(condition, x, y, name=name)


# -- StridedSlice: Python indexing ------------------------------------------------------------
_MASKS = ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")


def _spec_entries(n: int, rank: int, masks: Any, fail: Any) -> list[tuple[str, int, int]]:
    """The sparse spec (``n`` entries with ``masks``) over ``rank`` input dims, expanded to
    ``(kind, k, dim)``: kind ``full`` (a dim the ellipsis covers), ``newaxis``, ``shrink`` or
    ``slice``; ``k`` the spec entry, ``dim`` the input axis (-1 for a new axis)."""
    ell, new, shrink = (masks["ellipsis_mask"], masks["new_axis_mask"],
                        masks["shrink_axis_mask"])
    kinds = []
    for k in range(n):
        bit = 1 << k
        kinds.append("ellipsis" if ell & bit else "newaxis" if new & bit
                     else "shrink" if shrink & bit else "slice")
    if kinds.count("ellipsis") > 1:
        raise fail("Multiple ellipses in slice spec not allowed")
    if "ellipsis" not in kinds:
        kinds.append("ellipsis")  # implicit trailing ellipsis
    used = sum(kd in ("shrink", "slice") for kd in kinds)
    if used > rank:
        raise fail(f"Index out of range using input dim {rank}; input has only {rank} dims")
    entries: list[tuple[str, int, int]] = []
    dim = 0
    for k, kd in enumerate(kinds):
        if kd == "ellipsis":
            for _ in range(rank - used):
                entries.append(("full", k, dim))
                dim += 1
        elif kd == "newaxis":
            entries.append(("newaxis", k, -1))
        else:
            entries.append((kd, k, dim))
            dim += 1
    return entries


def _numpy_index(shape: Any, begin: Any, end: Any, strides: Any, masks: Any) -> tuple:
    """The NumPy basic index for a strided slice of an array of ``shape`` (run time)."""
    begin, end, strides = (np.asarray(a).reshape(-1).tolist() for a in (begin, end, strides))
    if not len(begin) == len(end) == len(strides):
        raise _invalid(f"Expected begin, end, and strides to be 1D equal size tensors, but got "
                       f"shapes [{len(begin)}], [{len(end)}], and [{len(strides)}] instead.")
    index: list[Any] = []
    for kind, k, dim in _spec_entries(len(begin), len(shape), masks, _invalid):
        if kind == "full":
            index.append(np.s_[:])
        elif kind == "newaxis":
            index.append(None)
        elif strides[k] == 0:
            raise _invalid(f"strides[{k}] must be non-zero")
        elif kind == "shrink":
            b, d = begin[k], shape[dim]
            if not -d <= b < d:
                raise _invalid(f"slice index {b} of dimension {dim} out of bounds.")
            index.append(b % d)
        else:
            index.append(np.s_[None if masks["begin_mask"] >> k & 1 else begin[k]:
                               None if masks["end_mask"] >> k & 1 else end[k]:strides[k]])
    return tuple(index)


def _strided_shape(ctx: Any, in_shape: TensorShape, spec: list[int]) -> TensorShape:
    """Static output shape of a strided slice of ``in_shape``; inputs ``spec`` of ``ctx``
    hold begin, end and strides."""
    lengths = [ctx.input_shapes[i].as_tuple() for i in spec]
    n = None
    for ln in lengths:
        if ln is not None and len(ln) != 1:
            raise ctx.fail(f"Shape must be rank 1 but is rank {len(ln)}")
        if ln is not None and ln[0] is not None:
            if n is not None and n != ln[0]:
                raise ctx.fail(f"Expected begin, end, and strides to be 1D equal size tensors, "
                               f"but got lengths {[x[0] if x else None for x in lengths]} "
                               "instead")
            n = ln[0]
    if n is None or in_shape.ndims is None:
        return unknown_shape()
    begin, end, strides = (None if ctx.const(i) is None
                           else np.asarray(ctx.const(i)).reshape(-1).tolist() for i in spec)
    masks = ctx.attrs
    dims = in_shape.as_list()
    out: list[int | None] = []
    for kind, k, dim in _spec_entries(n, len(dims), masks, ctx.fail):
        if kind == "newaxis":
            out.append(1)
            continue
        d = dims[dim]
        if kind == "full":
            out.append(d)
            continue
        s = None if strides is None else strides[k]
        if s == 0:
            raise ctx.fail(f"strides[{k}] must be non-zero")
        b = None if begin is None else begin[k]
        if kind == "shrink":
            if d is not None and b is not None and not -d <= b < d:
                raise ctx.fail(f"slice index {b} of dimension {dim} out of bounds.")
            continue
        bm, em = masks["begin_mask"] >> k & 1, masks["end_mask"] >> k & 1
        e = None if end is None else end[k]
        if d is not None and s is not None and (bm or b is not None) and (em or e is not None):
            out.append(len(range(*np.s_[None if bm else b:None if em else e:s].indices(d))))
        elif bm and em and s in (1, -1):
            out.append(d)
        else:
            out.append(None)
    return TensorShape(out)


def _ref_strided_slice(x, begin, end, strides, *, begin_mask, end_mask, ellipsis_mask,
                       new_axis_mask, shrink_axis_mask):
    index: list[Any] = []
    for k, (b, e, s) in enumerate(zip(*(np.asarray(a).reshape(-1).tolist()
                                        for a in (begin, end, strides)))):
        if ellipsis_mask >> k & 1:
            index.append(Ellipsis)
        elif new_axis_mask >> k & 1:
            index.append(None)
        elif shrink_axis_mask >> k & 1:
            index.append(b)
        else:
            index.append(np.s_[None if begin_mask >> k & 1 else b:
                               None if end_mask >> k & 1 else e:s])
    return np.array(x[tuple(index)])


_SS_ATTRS = dict.fromkeys(_MASKS, 0)
_SS_INPUTS = {"begin": m.structural("strided_begin", of="input"),
              "end": m.structural("strided_end", of="input"),
              "strides": m.structural("strides", of="input")}


@op("StridedSlice", inputs={"input": m.anything, **_SS_INPUTS}, attrs=_SS_ATTRS,
    signature="custom", dtypes=m.ALL, reference=_ref_strided_slice,
    choices={"begin_mask": (0, 1, 2, 3), "end_mask": (0, 1, 2, 3), "ellipsis_mask": (0,),
             "new_axis_mask": (0,), "shrink_axis_mask": (0,)},
    examples=(
        {"shapes": {"input": (4, 5), "begin": (2,), "end": (2,), "strides": (2,)},
         "values": {"begin": [1, 0], "end": [3, 5], "strides": [1, 2]}},
        {"shapes": {"input": (5, 3), "begin": (2,), "end": (2,), "strides": (2,)},
         "values": {"begin": [-1, 0], "end": [0, 0], "strides": [-2, 1]},
         "attrs": {"end_mask": 1 | 2, "begin_mask": 2}},
        {"shapes": {"input": (2, 3, 4), "begin": (3,), "end": (3,), "strides": (3,)},
         "values": {"begin": [0, -1, 0], "end": [0, 0, 0], "strides": [1, 1, -1]},
         "attrs": {"ellipsis_mask": 1, "shrink_axis_mask": 2, "begin_mask": 4,
                   "end_mask": 4}},
        {"shapes": {"input": (3, 2), "begin": (3,), "end": (3,), "strides": (3,)},
         "values": {"begin": [0, 1, 0], "end": [0, 2, 0], "strides": [1, 1, 1]},
         "attrs": {"new_axis_mask": 1 | 4, "shrink_axis_mask": 2}},
        {"shapes": {"input": (3,), "begin": (1,), "end": (1,), "strides": (1,)},
         "values": {"begin": [-1], "end": [0], "strides": [1]},
         "attrs": {"shrink_axis_mask": 1}}))
def _strided_slice(input, begin, end, strides, *, begin_mask, end_mask, ellipsis_mask,
                   new_axis_mask, shrink_axis_mask):
    masks = {"begin_mask": begin_mask, "end_mask": end_mask, "ellipsis_mask": ellipsis_mask,
             "new_axis_mask": new_axis_mask, "shrink_axis_mask": shrink_axis_mask}
    return np.asarray(input[_numpy_index(input.shape, begin, end, strides, masks)])


@_strided_slice.shape_rule
def _(ctx):
    return _strided_shape(ctx, ctx.input_shapes[0], [1, 2, 3])


@_strided_slice.gradient
def _(op, grad):
    x, begin, end, strides = op.inputs
    masks = {k: op.attrs[k] for k in _MASKS}
    g = _strided_slice_grad(shape(x), begin, end, strides, grad, **masks)
    g.set_shape(x.shape)
    return [g, None, None, None]


def _ref_strided_slice_grad(shape, begin, end, strides, dy, **masks):
    out = np.zeros([int(d) for d in np.asarray(shape).reshape(-1)], dy.dtype)
    flat_index = _ref_strided_slice(np.arange(out.size).reshape(out.shape), begin, end,
                                    strides, **masks)
    out.reshape(-1)[np.asarray(flat_index).reshape(-1)] = np.asarray(dy).reshape(-1)
    return out


@op("StridedSliceGrad", inputs={"shape": m.structural("dims"),
                                **{k: m.structural(d.kind) for k, d in _SS_INPUTS.items()},
                                "dy": m.reals},
    attrs=_SS_ATTRS, signature="custom", dtypes=m.FLOAT + m.INT,
    reference=_ref_strided_slice_grad,
    examples=(
        {"shapes": {"shape": (2,), "begin": (2,), "end": (2,), "strides": (2,), "dy": (2, 3)},
         "values": {"shape": [4, 5], "begin": [1, 0], "end": [3, 5], "strides": [1, 2]}},
        {"shapes": {"shape": (2,), "begin": (2,), "end": (2,), "strides": (2,), "dy": (3,)},
         "values": {"shape": [5, 3], "begin": [-1, 2], "end": [0, 0], "strides": [-2, 1]},
         "attrs": {"end_mask": 1, "shrink_axis_mask": 2}}))
def _strided_slice_grad(shape, begin, end, strides, dy, *, begin_mask, end_mask,
                        ellipsis_mask, new_axis_mask, shrink_axis_mask):
    """``dy`` scattered into zeros of ``shape`` at the positions the strided slice read."""
    masks = {"begin_mask": begin_mask, "end_mask": end_mask, "ellipsis_mask": ellipsis_mask,
             "new_axis_mask": new_axis_mask, "shrink_axis_mask": shrink_axis_mask}
    dims = tuple(int(d) for d in np.asarray(shape).reshape(-1))
    out = np.zeros(dims, dy.dtype)
    index = _numpy_index(dims, begin, end, strides, masks)
    if out[index].shape != dy.shape:
        raise _invalid(f"shape of dy was {_tf_shape(dy.shape)} instead of "
                       f"{_tf_shape(out[index].shape)}")
    out[index] = dy  # basic indexing: every position at most once
    return out


@_strided_slice_grad.shape_rule
def _(ctx):
    ctx.rank_exactly(0, 1)
    dims = ctx.const(0)
    if dims is None:
        n = ctx.input_shapes[0].as_tuple()
        return unknown_shape(n[0] if n else None)
    out = TensorShape([int(d) for d in np.asarray(dims).reshape(-1)])
    expected = _strided_shape(ctx, out, [1, 2, 3])
    if not expected.is_compatible_with(ctx.input_shapes[4]):
        raise ctx.fail(f"shape of dy was {ctx.input_shapes[4].as_tf_str()} instead of "
                       f"{expected.as_tf_str()}")
    return out


@_strided_slice_grad.gradient
def _(op, grad):
    _, begin, end, strides, _ = op.inputs
    masks = {k: op.attrs[k] for k in _MASKS}
    return [None, None, None, None, _strided_slice(grad, begin, end, strides, **masks)]


@export("strided_slice")
def strided_slice(input_: Any, begin: Any, end: Any, strides: Any = None, begin_mask: int = 0,
                  end_mask: int = 0, ellipsis_mask: int = 0, new_axis_mask: int = 0,
                  shrink_axis_mask: int = 0, var: Any = None,
                  name: str | None = None) -> Tensor:
    """``input_[begin:end:strides]`` per dimension, with TF's bit masks: ``begin_mask`` /
    ``end_mask`` ignore begin / end (full range), ``ellipsis_mask`` marks ``...``,
    ``new_axis_mask`` inserts a size-1 axis, ``shrink_axis_mask`` takes index ``begin``."""
    if strides is None:
        strides = (api("ones_like")(begin) if isinstance(begin, Tensor)
                   else np.ones(np.shape(begin), np.int32))
    return _strided_slice(input_, begin, end, strides, begin_mask=int(begin_mask),
                          end_mask=int(end_mask), ellipsis_mask=int(ellipsis_mask),
                          new_axis_mask=int(new_axis_mask),
                          shrink_axis_mask=int(shrink_axis_mask), name=name)


def _index_part(value: Any) -> Any:
    """An int, or a scalar int32/int64 tensor, from one piece of an index."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    conv = getattr(value, "_as_graph_element", None)
    t = conv() if conv is not None else value
    if isinstance(t, Tensor) and t.dtype in (_dt.int32, _dt.int64) and t.shape.ndims in (0,
                                                                                       None):
        return t
    raise TypeError("Only integers, slices (`:`), ellipsis (`...`), tf.newaxis (`None`) and "
                    f"scalar tf.int32/tf.int64 tensors are valid indices, got {value!r}")


def _pack_index(values: list[Any]) -> Any:
    """A constant vector when every entry is a Python int, else a Pack of scalars."""
    if not any(isinstance(v, Tensor) for v in values):
        arr = np.array(values, np.int64)
        return arr.astype(np.int32) if np.all(np.abs(arr) < 2**31 - 1) else arr
    dtype = _dt.int64 if any(isinstance(v, Tensor) and v.dtype is _dt.int64
                             for v in values) else _dt.int32
    return _pack([cast(v, dtype) if isinstance(v, Tensor) else np.array(v, dtype.np)
                  for v in values], axis=0)


@export("_internal.getitem")
def _getitem(tensor: Any, key: Any) -> Tensor:
    """``tensor[key]``: ints (negative too), slices with steps, ``None``/``tf.newaxis``,
    ``...`` and scalar integer tensors, as one StridedSlice op."""
    spec = key if isinstance(key, tuple) else (key,)
    begin: list[Any] = []
    end: list[Any] = []
    strides: list[Any] = []
    masks = dict.fromkeys(_MASKS, 0)
    for k, s in enumerate(spec):
        bit = 1 << k
        if s is Ellipsis or s is None:
            masks["ellipsis_mask" if s is Ellipsis else "new_axis_mask"] |= bit
            begin.append(0)
            end.append(0)
            strides.append(1)
        elif isinstance(s, type(np.s_[:])):
            if s.start is None:
                masks["begin_mask"] |= bit
            if s.stop is None:
                masks["end_mask"] |= bit
            begin.append(0 if s.start is None else _index_part(s.start))
            end.append(0 if s.stop is None else _index_part(s.stop))
            strides.append(1 if s.step is None else _index_part(s.step))
        else:
            i = _index_part(s)
            masks["shrink_axis_mask"] |= bit
            begin.append(i)
            end.append(i + 1)
            strides.append(1)
    return _strided_slice(tensor, _pack_index(begin), _pack_index(end), _pack_index(strides),
                          **masks, name="strided_slice")
