"""Reductions: sum, mean, max, min, prod (right with zeros, to second order), logsumexp,
and argmax/argmin.

Each op is one block: kernel + metadata, shape rule, gradient. A reduction's gradient
re-inserts the reduced axes and broadcasts back to the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine import dtypes as _dt
from gradverify.engine import errors
from gradverify.engine import meta as m
from gradverify.engine.graph import Tensor, constant_value, convert_to_tensor
from gradverify.engine.ops.array_ops import expand_dims, reshape, transpose
from gradverify.engine.ops.core_ops import broadcast_like, cast, shape, size, zeros_like
from gradverify.engine.ops.math_ops import NUM, equal, exp
from gradverify.engine.registry import export, op
from gradverify.engine.shapes import TensorShape, unknown_shape


# -- reductions ------------------------------------------------------------------------------
def _axes(axis: Any) -> tuple[int, ...] | None:
    """TF's axis argument (None, int, list, 0-d/1-d array) as None or a tuple of ints."""
    if axis is None:
        return None
    if isinstance(axis, Tensor):
        value = constant_value(axis)
        if value is None:
            raise ValueError(f"The axis of a reduction must be known when the graph is "
                             f"built; {axis.name} is not a constant.")
        axis = value
    arr = np.asarray(axis)
    if arr.size == 0 and arr.ndim == 1:
        return ()  # axis=[]: reduce nothing
    if arr.dtype.kind not in "iu" or arr.ndim > 1:
        raise TypeError(f"axis must be an int or a list of ints, got {axis!r}")
    return tuple(int(a) for a in arr.reshape(-1))


def _reduced_axes(ctx: Any) -> tuple[tuple[int, ...] | None, int | None]:
    """The op's axis attribute normalised to non-negative axes (None: all), and the rank."""
    rank = ctx.input_shapes[0].ndims
    axis = ctx.attrs["axis"]
    if axis is None or rank is None:
        return (None if axis is None else axis), rank
    out = []
    for a in axis:
        if not -rank <= a < rank:
            raise ctx.fail(f"Invalid reduction dimension {a} for input with {rank} "
                           "dimensions")
        out.append(a % rank)
    if len(set(out)) != len(out):
        raise ctx.fail(f"Axes contains duplicate dimension: {out}")
    return tuple(out), rank


def _reduce_shape(ctx: Any) -> TensorShape:
    axes, rank = _reduced_axes(ctx)
    keep = ctx.attrs["keepdims"]
    if rank is None:
        return unknown_shape()
    dims = ctx.input_shapes[0].as_list()
    if axes is None:
        return TensorShape([1] * rank if keep else [])
    if keep:
        return TensorShape([1 if i in axes else d for i, d in enumerate(dims)])
    return TensorShape([d for i, d in enumerate(dims) if i not in axes])


def _kept(op: Any, t: Tensor) -> Tensor:
    """``t``, shaped like the reduction ``op``'s output, with the reduced axes re-inserted as
    size 1 (the ``keepdims=True`` layout), so it broadcasts against the input. With
    ``axis=None`` and no keepdims, ``t`` is a scalar and broadcasts as it is."""
    axes = op.attrs["axis"]
    if op.attrs["keepdims"] or axes is None or not axes:
        return t
    rank = op.inputs[0].shape.ndims
    if rank is None:
        if any(a < 0 for a in axes):
            raise ValueError(f"Gradient of '{op.name}' (op: '{op.type}') with negative axes "
                             f"{list(axes)} needs the rank of its input, which is unknown.")
        normalized = sorted(axes)
    else:
        normalized = sorted(a % rank for a in axes)
    for a in normalized:
        t = expand_dims(t, a)
    return t


def _grad_to_input_shape(op: Any, grad: Tensor) -> Tensor:
    """A reduction's output gradient, with the reduced axes re-inserted and broadcast back."""
    return broadcast_like(_kept(op, grad), op.inputs[0])


_REDUCE = {"signature": "custom", "attrs": {"axis": None, "keepdims": False},
           "choices": {"axis": m.AxisChoice(of=0, allow_none=True, allow_tuple=True),
                       "keepdims": (False, True)}}


def _reduce_api(opdef: Any, *names: str) -> Any:
    """TF1's reduce_* signature (``reduction_indices``/``keep_dims`` are the old spellings)."""
    def reduce(input_tensor: Any, axis: Any = None, keepdims: bool | None = None,
               name: str | None = None, reduction_indices: Any = None,
               keep_dims: bool | None = None) -> Tensor:
        if axis is not None and reduction_indices is not None:
            raise ValueError("Can not specify both 'axis' and 'reduction_indices'.")
        if keepdims is not None and keep_dims is not None:
            raise ValueError("Can not specify both 'keepdims' and 'keep_dims'.")
        axis = axis if axis is not None else reduction_indices
        keep = bool(keepdims if keepdims is not None else keep_dims)
        return opdef(input_tensor, axis=_axes(axis), keepdims=keep, name=name)
    reduce.__name__ = names[0]
    reduce.__doc__ = (f"``{names[0]}(x, axis=None, keepdims=False)``: {opdef.__doc__}\n\n"
                      "axis None reduces every axis; negative axes count from the end.")
    return export(*names)(reduce)


@op("Sum", **_REDUCE, dtypes=NUM,
    reference=lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims))
def _sum(x, *, axis, keepdims):
    """Sum of elements across axes."""
    return np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


_sum.shape_rule(_reduce_shape)


@_sum.gradient
def _(op, grad):
    return _grad_to_input_shape(op, grad)


reduce_sum = _reduce_api(_sum, "reduce_sum", "math.reduce_sum")


def _ref_mean(x, axis, keepdims):
    if x.dtype.kind != "i":
        return np.mean(x, axis=axis, keepdims=keepdims)
    total = np.sum(x.astype(object), axis=axis, keepdims=keepdims)  # exact Python ints
    count = max(x.size // max(np.size(total), 1), 1)
    half = 2 ** (8 * x.dtype.itemsize - 1)  # the sum wraps around in the dtype, as in TF

    def trunc(t):
        t = (t + half) % (2 * half) - half
        return abs(t) // count * (1 if t >= 0 else -1)
    trunc = np.vectorize(trunc, otypes=[object])
    return np.asarray(trunc(total)).astype(x.dtype)


@op("Mean", **_REDUCE, dtypes=NUM, reference=_ref_mean,
    examples=({"shapes": {"x": (2, 3)}, "attrs": {"axis": (1,), "keepdims": False}},
              {"shapes": {"x": (4,)}, "attrs": {"axis": None, "keepdims": True}}))
def _mean(x, *, axis, keepdims):
    """Mean of elements across axes; on integers the sum divided with truncation toward zero,
    like TF's integer mean (``mean([-1, -2]) == -1``)."""
    if x.dtype.kind != "i":
        return np.mean(x, axis=axis, keepdims=keepdims, dtype=x.dtype)
    total = np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype)
    count = x.size // max(total.size, 1) if x.size else 0
    if count == 0:
        return np.zeros_like(total)
    quotient = total // count  # floor; truncation differs for negative inexact quotients
    quotient += ((total % count) != 0) & (total < 0)
    return np.asarray(quotient, x.dtype)


_mean.shape_rule(_reduce_shape)


@_mean.gradient
def _(op, grad):
    x, y = op.inputs[0], op.outputs[0]
    n_in, n_out = x.shape.num_elements(), y.shape.num_elements()
    if n_in is not None and n_out is not None:
        count = convert_to_tensor(np.asarray(n_in // max(n_out, 1), dtype=grad.dtype.np))
    else:
        count = cast(size(x), grad.dtype) / cast(size(y), grad.dtype)
    return _grad_to_input_shape(op, grad / count)


reduce_mean = _reduce_api(_mean, "reduce_mean", "math.reduce_mean")


# -- more reductions: max, min, prod, logsumexp ----------------------------------------------
def _lowest(dtype: np.dtype) -> Any:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _highest(dtype: np.dtype) -> Any:
    return np.inf if dtype.kind == "f" else np.iinfo(dtype).max


_TIES = [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]


@op("Max", **_REDUCE, dtypes=NUM, ties=True,
    examples=({"shapes": {"x": (2, 3)}, "attrs": {"axis": (1,), "keepdims": False},
               "values": {"x": _TIES}},
              {"shapes": {"x": (2, 3)}, "attrs": {"axis": None, "keepdims": True},
               "values": {"x": _TIES}}),
    reference=lambda x, axis, keepdims: -np.min(-x, axis=axis, keepdims=keepdims))
def _max(x, *, axis, keepdims):
    """Maximum of elements across axes (ties: the gradient is split evenly among them)."""
    return np.max(x, axis=axis, keepdims=keepdims, initial=_lowest(x.dtype))


_max.shape_rule(_reduce_shape)


@op("Min", **_REDUCE, dtypes=NUM, ties=True,
    examples=({"shapes": {"x": (2, 3)}, "attrs": {"axis": (-1,), "keepdims": True},
               "values": {"x": [[1.0, -3.0, -3.0], [2.0, 2.0, 2.0]]}},),
    reference=lambda x, axis, keepdims: -np.max(-x, axis=axis, keepdims=keepdims))
def _min(x, *, axis, keepdims):
    """Minimum of elements across axes (ties: the gradient is split evenly among them)."""
    return np.min(x, axis=axis, keepdims=keepdims, initial=_highest(x.dtype))


_min.shape_rule(_reduce_shape)


def _min_or_max_grad(op, grad):
    """TF's rule: the gradient is shared evenly by the elements equal to the result."""
    x = op.inputs[0]
    indicators = cast(equal(x, _kept(op, op.outputs[0])), grad.dtype)
    count = _sum(indicators, axis=op.attrs["axis"], keepdims=True)
    return _kept(op, grad) * (indicators / count)


_max.gradient(_min_or_max_grad)
_min.gradient(_min_or_max_grad)
reduce_max = _reduce_api(_max, "reduce_max", "math.reduce_max")
reduce_min = _reduce_api(_min, "reduce_min", "math.reduce_min")


def _ref_prod_except_one(x):
    x = np.asarray(x)
    n = x.shape[-1]
    others = np.where(np.eye(n, dtype=bool), np.ones((), x.dtype), x[..., None, :])
    return np.prod(others, axis=-1, dtype=x.dtype)


@op("ProdExceptOne", signature="(n)->(n)", dtypes=NUM, reference=_ref_prod_except_one,
    examples=({"shapes": {"x": (3, 4)},
               "values": {"x": [[2.0, 0.0, 3.0, 0.5], [0.0, 1.5, 0.0, 2.0], [1.0, 2.0, 3.0, 4.0]]}},
              {"shapes": {"x": (1,)}, "values": {"x": [0.0]}}))
def _prod_except_one(x):
    """``y[..., i] = prod_{j != i} x[..., j]`` along the last axis: exclusive cumulative
    products from the left and from the right, no division (exact with zeros)."""
    if x.shape[-1] == 0:
        return x.copy()
    ones = np.ones(x.shape[:-1] + (1,), x.dtype)
    left = np.cumprod(np.concatenate([ones, x[..., :-1]], axis=-1), axis=-1, dtype=x.dtype)
    right = np.cumprod(np.concatenate([ones, x[..., :0:-1]], axis=-1), axis=-1,
                       dtype=x.dtype)[..., ::-1]
    return left * right


@_prod_except_one.gradient
def _(op, grad):
    # Hessian-vector form: (J^T g)_k = sum_{i != k} g_i prod_{j not in {i, k}} x_j. With
    # M[..., k, j] = x_j for j != k and 1 on the diagonal, ProdExceptOne(M)[..., k, i] is
    # prod_{j not in {i, k}} x_j for i != k; the diagonal (i == k) is masked out.
    x = op.inputs[0]
    n = x.shape.as_list()[-1] if x.shape.ndims is not None else None
    if n is None:
        raise ValueError(f"Gradient of '{op.name}' (op: 'ProdExceptOne') needs the size of "
                         f"the last axis of its input when the graph is built; {x.name} has "
                         f"shape {x.shape}.")
    eye = np.eye(n, dtype=x.dtype.np)
    off = 1 - eye
    pairs = _prod_except_one(expand_dims(x, -2) * off + eye)
    return _sum(expand_dims(grad, -2) * pairs * off, axis=(-1,), keepdims=False)


def _ref_prod(x, axis, keepdims):
    """Reduced axes moved to the end and flattened, then multiplied one column at a time."""
    x = np.asarray(x)
    reduced = list(range(x.ndim)) if axis is None else sorted(a % x.ndim for a in axis)
    rest = [i for i in range(x.ndim) if i not in reduced]
    flat = np.transpose(x, rest + reduced).reshape([x.shape[i] for i in rest] + [-1])
    out = np.ones(flat.shape[:-1], x.dtype)
    for k in range(flat.shape[-1]):
        out = out * flat[..., k]
    if keepdims:
        out = out.reshape([1 if i in reduced else d for i, d in enumerate(x.shape)])
    return out


_ZEROS = [[2.0, 0.0, 3.0], [0.0, 0.0, 1.5], [0.5, -2.0, 3.0]]


@op("Prod", **_REDUCE, dtypes=NUM, reference=_ref_prod,
    examples=({"shapes": {"x": (3, 3)}, "attrs": {"axis": (1,), "keepdims": False},
               "values": {"x": _ZEROS}},
              {"shapes": {"x": (3, 3)}, "attrs": {"axis": (0,), "keepdims": True},
               "values": {"x": _ZEROS}},
              {"shapes": {"x": (3, 3)}, "attrs": {"axis": None, "keepdims": False},
               "values": {"x": [[2.0, 0.0, 3.0], [1.0, 4.0, 1.5], [0.5, -2.0, 3.0]]}}))
def _prod(x, *, axis, keepdims):
    """Product of elements across axes (gradient exact when the input has zeros)."""
    return np.prod(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


_prod.shape_rule(_reduce_shape)


@_prod.gradient
def _(op, grad):
    # Move the reduced axes to the end, flatten them into one, take ProdExceptOne along it
    # times the broadcast upstream gradient, and restore the layout. No division by x.
    x = op.inputs[0]
    rank = x.shape.ndims
    if rank is None:
        raise ValueError(f"Gradient of '{op.name}' (op: 'Prod') needs the rank of its input "
                         f"when the graph is built; {x.name} has unknown rank.")
    axes = op.attrs["axis"]
    reduced = list(range(rank)) if axes is None else sorted({a % rank for a in axes})
    if not reduced:
        return grad  # nothing reduced: the identity
    perm = [i for i in range(rank) if i not in reduced] + reduced
    moved = perm != list(range(rank))
    xt = transpose(x, perm) if moved else x
    dims = x.shape.as_list()
    kept_n = [dims[i] for i in perm[:rank - len(reduced)]]
    red_n = [dims[i] for i in reduced]
    if None not in red_n and int(np.prod(red_n)) == 0:
        return zeros_like(x)  # an empty reduction: nothing to differentiate
    if None not in red_n and None not in kept_n:
        target = np.array([int(np.prod(kept_n)), int(np.prod(red_n))], np.int32)
    elif None not in red_n:
        target = np.array([-1, int(np.prod(red_n))], np.int32)
    else:  # sizes known at run time only: [prod(kept dims), prod(reduced dims)]
        mask = np.zeros(rank, np.int32)
        mask[reduced] = 1
        sx = shape(x)
        n_red = _prod(sx * mask + (1 - mask), axis=None, keepdims=False)
        n_kept = _prod(sx * (1 - mask) + mask, axis=None, keepdims=False)
        target = n_kept * np.array([1, 0], np.int32) + n_red * np.array([0, 1], np.int32)
    # The upstream gradient in keepdims layout, flattened: its reduced axes have size 1, so
    # the row-major order of its elements is already that of the kept axes (no transpose).
    g = reshape(_kept(op, grad), np.array([-1, 1], np.int32))
    flat = g * _prod_except_one(reshape(xt, target))
    out = reshape(flat, shape(xt))
    out.set_shape(xt.shape)
    return transpose(out, [int(i) for i in np.argsort(perm)]) if moved else out


reduce_prod = _reduce_api(_prod, "reduce_prod", "math.reduce_prod")


def _ref_logsumexp(x, axis, keepdims):
    import scipy.special as sp
    with np.errstate(all="ignore"):
        out = sp.logsumexp(x, axis=axis, keepdims=keepdims)
    # SciPy gives shape (1,) for a 0-d input with keepdims; a reduction keeps rank 0.
    return np.reshape(out, np.shape(np.sum(x, axis=axis, keepdims=keepdims)))


@op("ReduceLogSumExp", **_REDUCE, reference=_ref_logsumexp)
def _reduce_logsumexp(x, *, axis, keepdims):
    """``log(sum(exp(x)))`` across axes, computed stably (the finite max subtracted first).
    A slice of all -inf gives -inf; one holding +inf gives +inf."""
    with np.errstate(all="ignore"):
        top = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
        top = np.where(np.isfinite(top), top, np.zeros((), x.dtype))
        out = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True, dtype=x.dtype)) + top
    if not keepdims:
        out = out.reshape(()) if axis is None else np.squeeze(out, axis=axis)
    return out.astype(x.dtype, copy=False)


_reduce_logsumexp.shape_rule(_reduce_shape)


@_reduce_logsumexp.gradient
def _(op, grad):
    # softmax(x) = exp(x - y) with the op's own output y: second order differentiates
    # through y again, which gives the softmax Jacobian.
    x = op.inputs[0]
    return _kept(op, grad) * exp(x - _kept(op, op.outputs[0]))


reduce_logsumexp = _reduce_api(_reduce_logsumexp, "reduce_logsumexp", "math.reduce_logsumexp")


# -- argmax / argmin (int64 by default, not differentiable) ----------------------------------
_ARG = {"inputs": {"input": m.reals}, "attrs": {"axis": 0, "output_type": _dt.int64},
        "signature": "custom", "dtypes": NUM, "out_dtype": "attr:output_type",
        "differentiable": False,
        "choices": {"axis": m.AxisChoice(of=0), "output_type": (_dt.int64, _dt.int32)}}


def _arg_shape(ctx: Any) -> TensorShape:
    s = ctx.input_shapes[0]
    axis = ctx.attrs["axis"]
    if s.ndims is None:
        return unknown_shape()
    rank = s.ndims
    if not -rank <= axis < rank:
        raise ctx.fail(f"Expected dimension in the range [{-rank}, {rank}), but got {axis}")
    dims = s.as_list()
    del dims[axis % rank]
    return TensorShape(dims)


def _arg_kernel(fn: Any, x: np.ndarray, axis: int, output_type: Any) -> np.ndarray:
    if x.shape[axis] == 0:
        raise errors.InvalidArgumentError(
            None, None, f"Reduction axis {axis} is empty in shape "
            f"[{','.join(str(d) for d in x.shape)}]")
    return np.asarray(fn(x, axis=axis)).astype(output_type.np)  # the first index on ties


def _ref_arg(pick: Any) -> Any:
    def ref(x, axis, output_type):
        """The smallest index whose value equals the max (min) along ``axis``."""
        x = np.moveaxis(np.asarray(x), axis, -1)
        hit = x == pick(x, axis=-1, keepdims=True)
        index = np.where(hit, np.arange(x.shape[-1]), x.shape[-1])
        return index.min(axis=-1).astype(output_type.np)
    return ref


_ARG_TIES = ({"shapes": {"input": (2, 3)}, "attrs": {"axis": 1, "output_type": _dt.int64},
              "values": {"input": _TIES}},)


@op("ArgMax", **_ARG, reference=_ref_arg(np.max), examples=_ARG_TIES)
def _argmax(input, *, axis, output_type):
    """Index of the largest value along ``axis`` (the smallest such index on ties)."""
    return _arg_kernel(np.argmax, input, axis, output_type)


_argmax.shape_rule(_arg_shape)


@op("ArgMin", **_ARG, reference=_ref_arg(np.min), examples=_ARG_TIES)
def _argmin(input, *, axis, output_type):
    """Index of the smallest value along ``axis`` (the smallest such index on ties)."""
    return _arg_kernel(np.argmin, input, axis, output_type)


_argmin.shape_rule(_arg_shape)


def _arg_api(opdef: Any, default: str, *names: str) -> Any:
    def arg(input: Any, axis: Any = None, name: str | None = None, dimension: Any = None,
            output_type: Any = _dt.int64) -> Tensor:
        if axis is not None and dimension is not None:
            raise ValueError("Cannot specify both 'axis' and 'dimension'")
        axis = axis if axis is not None else dimension
        axis = 0 if axis is None else axis
        if isinstance(axis, Tensor):
            value = constant_value(axis)
            if value is None:
                raise ValueError(f"The axis of {default} must be known when the graph is "
                                 f"built; {axis.name} is not a constant.")
            axis = value
        arr = np.asarray(axis)
        if arr.dtype.kind not in "iu" or arr.ndim != 0:
            raise TypeError(f"axis of {default} must be an integer scalar, got {axis!r}")
        out_type = _dt.as_dtype(output_type)
        if out_type not in (_dt.int32, _dt.int64):
            raise TypeError(f"Value passed to parameter 'output_type' has DataType "
                            f"{out_type.name} not in list of allowed values: int32, int64")
        return opdef(input, axis=int(arr), output_type=out_type, name=name)
    arg.__name__ = default
    arg.__doc__ = (f"``{default}(input, axis=None, name=None, dimension=None, "
                   f"output_type=int64)``: {opdef.__doc__} axis None means 0.")
    return export(*names)(arg)


argmax = _arg_api(_argmax, "argmax", "argmax", "math.argmax")
argmin = _arg_api(_argmin, "argmin", "argmin", "math.argmin")
