"""Neural-network ops: activations, softmax family, cross-entropies, losses, bias_add, dropout.

Each op is one block: kernel + metadata, shape rule, gradient (second order correct: a rule
that reuses an op's own output differentiates through it, see the cross-entropy grads).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.special as sp

from gradverify.engine import errors
from gradverify.engine import meta as m
from gradverify.engine.graph import Tensor, _graph_of, constant_value, convert_to_tensor
from gradverify.engine.ops.array_ops import expand_dims, transpose
from gradverify.engine.ops.core_ops import cast, stop_gradient, zeros_like
from gradverify.engine.ops.core_ops import shape as _shape_of
from gradverify.engine.ops.math_ops import greater, greater_equal, less, negative, realdiv
from gradverify.engine.ops.random_ops import random_uniform
from gradverify.engine.ops.reduction_ops import reduce_sum
from gradverify.engine.registry import export, op
from gradverify.engine.shapes import TensorShape, as_shape, unknown_shape

_NUM = m.FLOAT + m.INT


def _last_max(x: np.ndarray) -> np.ndarray:
    """Max over the last axis (kept). NumPy reduces a short last axis row by row, which is
    ~7x slower than folding its columns for the class counts of typical softmax layers."""
    c = x.shape[-1]
    if 1 < c <= 32:
        out = x[..., 0]
        for j in range(1, c):
            out = np.maximum(out, x[..., j])
        return out[..., None]
    return np.max(x, axis=-1, keepdims=True)


def _last_sum(x: np.ndarray) -> np.ndarray:
    """Sum over the last axis (kept), as a product with ones: ~9x faster than np.sum on a
    short last axis."""
    return x @ np.ones((x.shape[-1], 1), dtype=x.dtype)


def _last_axis_rule(ctx: Any) -> TensorShape:
    return ctx.rank_at_least(0, 1)


def _swap_with_last(t: Tensor, axis: int) -> tuple[Tensor, list[int] | None]:
    """``t`` with ``axis`` and the last axis swapped (the permutation is its own inverse)."""
    rank = t.shape.ndims
    if axis == -1 or (rank is not None and axis == rank - 1):
        return t, None
    if rank is None:
        raise ValueError(f"An axis other than the last ({axis}) needs a known rank; "
                         f"{t.name} has unknown rank.")
    if not -rank <= axis < rank:
        raise errors.InvalidArgumentError(
            None, None, f"Dimension ({axis}) must be in the range [{-rank}, {rank}) where "
            f"{rank} is the number of dimensions in the input.")
    perm = list(range(rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    return transpose(t, perm), perm


def _move_to_end(t: Tensor, axis: int) -> Tensor:
    """``t`` with ``axis`` moved to the end, the other axes keeping their order (TF's
    ``_move_dim_to_end`` in the cross-entropy wrappers)."""
    rank = t.shape.ndims
    if axis == -1 or (rank is not None and axis == rank - 1):
        return t
    if rank is None:
        raise ValueError(f"An axis other than the last ({axis}) needs a known rank; "
                         f"{t.name} has unknown rank.")
    if not -rank <= axis < rank:
        raise errors.InvalidArgumentError(
            None, None, f"Dimension ({axis}) must be in the range [{-rank}, {rank}) where "
            f"{rank} is the number of dimensions in the input.")
    axis %= rank
    return transpose(t, [i for i in range(rank) if i != axis] + [axis])


def _axis_or_dim(axis: Any, dim: Any) -> int:
    if axis is not None and dim is not None:
        raise ValueError("Cannot specify both 'dim' and 'axis'")
    value = axis if axis is not None else dim
    if value is None:
        return -1
    if isinstance(value, Tensor):
        folded = constant_value(value)
        if folded is None:
            raise ValueError(f"The axis must be known when the graph is built; {value.name} "
                             "is not a constant.")
        value = folded
    return int(value)


# -- activations -----------------------------------------------------------------------------
@op("Relu", inputs={"features": m.reals}, kinks=(0.0,), dtypes=_NUM, api=("nn.relu",),
    reference=lambda x: np.where(x > 0, x, np.zeros_like(x)))
def relu(features):
    """``max(features, 0)``; the gradient is 0 at exactly 0 (TF's convention)."""
    return np.maximum(features, 0)


@relu.gradient
def _(op, grad):
    return grad * cast(greater(op.outputs[0], 0), grad.dtype)


@op("Relu6", inputs={"features": m.reals}, kinks=(0.0, 6.0), dtypes=_NUM,
    api=("nn.relu6",), reference=lambda x: np.where(x < 0, 0, np.where(x > 6, 6, x)))
def relu6(features):
    """``min(max(features, 0), 6)``; the gradient passes only where ``0 < x < 6``."""
    return np.clip(features, 0, 6)


@relu6.gradient
def _(op, grad):
    x = op.inputs[0]
    return grad * (cast(greater(x, 0), grad.dtype) * cast(less(x, 6), grad.dtype))


@op("Elu", inputs={"features": m.reals}, kinks=(0.0,), api=("nn.elu",),
    reference=lambda x: np.where(x > 0, x, np.exp(np.minimum(x, 0)) - 1))
def elu(features):
    """``x`` where ``x > 0``, else ``exp(x) - 1``. (The kink at 0 is in the second
    derivative: the first is 1 on both sides.)"""
    return np.where(features > 0, features, np.expm1(np.minimum(features, 0)))


@elu.gradient
def _(op, grad):
    # g where x > 0, else g * (y + 1); written through y so the second order is exp(x) = y + 1.
    below = 1 - cast(greater(op.inputs[0], 0), grad.dtype)
    return grad * (1 + op.outputs[0] * below)


@op("Softplus", inputs={"features": m.reals}, api=("nn.softplus", "math.softplus"),
    reference=lambda x: np.logaddexp(np.zeros_like(x), x))
def softplus(features):
    """``log(1 + exp(x))``, computed without overflow as ``log1p(exp(-|x|)) + max(x, 0)``."""
    return np.log1p(np.exp(-np.abs(features))) + np.maximum(features, 0)


@softplus.gradient
def _(op, grad):
    return grad * sigmoid(op.inputs[0])


@op("Sigmoid", inputs={"x": m.reals}, api=("sigmoid", "nn.sigmoid", "math.sigmoid"),
    reference=lambda x: 0.5 + 0.5 * np.tanh(0.5 * x))
def sigmoid(x):
    """``1 / (1 + exp(-x))`` (scipy's overflow-free ``expit``)."""
    return sp.expit(x)


@sigmoid.gradient
def _(op, grad):
    y = op.outputs[0]
    return grad * (y * (1 - y))


@op("Tanh", inputs={"x": m.reals}, api=("tanh", "nn.tanh", "math.tanh"),
    reference=lambda x: 2 * sp.expit(2 * x) - 1)
def tanh(x):
    """Hyperbolic tangent."""
    return np.tanh(x)


@tanh.gradient
def _(op, grad):
    y = op.outputs[0]
    return grad * (1 - y * y)


# -- softmax family --------------------------------------------------------------------------
@op("Softmax", inputs={"logits": m.reals}, signature="custom",
    reference=lambda x: sp.softmax(x, axis=-1))
def _softmax(logits):
    """``exp(x) / sum(exp(x))`` over the last axis."""
    e = np.exp(logits - _last_max(logits))
    return e / _last_sum(e)


_softmax.shape_rule(_last_axis_rule)


@_softmax.gradient
def _(op, grad):
    y = op.outputs[0]
    return (grad - reduce_sum(grad * y, -1, keepdims=True)) * y


@op("LogSoftmax", inputs={"logits": m.reals}, signature="custom",
    reference=lambda x: sp.log_softmax(x, axis=-1))
def _log_softmax(logits):
    """``x - logsumexp(x)`` over the last axis."""
    z = logits - _last_max(logits)
    return z - np.log(_last_sum(np.exp(z)))


_log_softmax.shape_rule(_last_axis_rule)


@_log_softmax.gradient
def _(op, grad):
    return grad - reduce_sum(grad, -1, keepdims=True) * _softmax(op.inputs[0])


def _softmax_api(opdef: Any, default: str) -> Any:
    def fn(logits: Any, axis: Any = None, name: str | None = None, dim: Any = None) -> Tensor:
        axis = _axis_or_dim(axis, dim)
        logits = convert_to_tensor(logits)
        moved, perm = _swap_with_last(logits, axis)
        if perm is None:
            return opdef(logits, name=name)
        return transpose(opdef(moved), perm, name=name or default)
    fn.__name__ = default
    fn.__doc__ = (f"``{default}(logits, axis=None, name=None, dim=None)``: "
                  f"{opdef.__doc__} (``axis``, default -1, is swapped to the end and back).")
    return fn


softmax = export("nn.softmax", "math.softmax")(_softmax_api(_softmax, "softmax"))
log_softmax = export("nn.log_softmax", "math.log_softmax")(
    _softmax_api(_log_softmax, "log_softmax"))


def _ensure_xent_args(name: str, sentinel: Any, labels: Any, logits: Any) -> None:
    if sentinel is not None:
        raise ValueError(f"Only call `{name}` with named arguments (labels=..., logits=..., "
                         "...)")
    if labels is None or logits is None:
        raise ValueError("Both labels and logits must be provided.")


# -- softmax cross-entropy -------------------------------------------------------------------
def _xent_reference(features, labels):
    logp = sp.log_softmax(features, axis=-1)
    total = np.sum(labels, axis=-1, keepdims=True)
    return -np.sum(labels * logp, axis=-1), total * sp.softmax(features, axis=-1) - labels


@op("SoftmaxCrossEntropyWithLogits",
    inputs={"features": m.reals, "labels": m.probabilities},
    outputs=("loss", "backprop"), signature="(c),(c)->(),(c)", reference=_xent_reference)
def _softmax_xent(features, labels):
    """Row-wise ``sum(labels * (logsumexp(z) - z))`` and its gradient
    ``sum(labels) * softmax(z) - labels`` (TF's ``softmax(z) - labels`` for label rows that
    sum to 1; the exact derivative off them too)."""
    z = features - _last_max(features)
    e = np.exp(z)
    s = _last_sum(e)
    total = _last_sum(labels)
    # sum(l * (log s - z)) as log(s) * sum(l) - sum(l * z): both terms >= 0 (z <= 0)
    loss = (np.log(s) * total - _last_sum(labels * z))[..., 0]
    return loss, total * (e / s) - labels


@_softmax_xent.gradient
def _(op, grad_loss, grad_backprop):
    logits, labels = op.inputs
    g = expand_dims(grad_loss, -1) if grad_loss is not None else None
    d_logits = None if g is None else g * op.outputs[1]
    d_labels = None if g is None else g * negative(_log_softmax(logits))
    if grad_backprop is not None:  # second order: backprop = sum(labels) * p - labels
        p = _softmax(logits)
        gp = reduce_sum(grad_backprop * p, -1, keepdims=True)
        extra = reduce_sum(labels, -1, keepdims=True) * ((grad_backprop - gp) * p)
        d_logits = extra if d_logits is None else d_logits + extra
        d_labels = gp - grad_backprop if d_labels is None else d_labels + (gp - grad_backprop)
    return [d_logits, d_labels]


def _xent_v2(labels: Any, logits: Any, axis: int, name: str | None) -> Tensor:
    logits = convert_to_tensor(logits)
    if isinstance(labels, Tensor) or hasattr(labels, "_as_graph_element"):
        labels = cast(convert_to_tensor(labels), logits.dtype)  # TF casts labels to logits'
    else:
        labels = convert_to_tensor(labels, dtype=logits.dtype)
    if labels.shape.ndims == logits.shape.ndims:
        labels = _move_to_end(labels, axis)
    logits = _move_to_end(logits, axis)
    loss, _ = _softmax_xent(logits, labels, name=name)
    return loss


@export("nn.softmax_cross_entropy_with_logits_v2")
def softmax_cross_entropy_with_logits_v2(_sentinel: Any = None, labels: Any = None,
                                         logits: Any = None, dim: int = -1,
                                         name: str | None = None,
                                         axis: int | None = None) -> Tensor:
    """Per-row cross-entropy of ``softmax(logits)`` against ``labels`` (keyword-only);
    gradients flow to both. ``axis`` (alias ``dim``) is the class axis."""
    _ensure_xent_args("softmax_cross_entropy_with_logits_v2", _sentinel, labels, logits)
    return _xent_v2(labels, logits, _axis_or_dim(axis, None if dim == -1 else dim), name)


@export("nn.softmax_cross_entropy_with_logits")
def softmax_cross_entropy_with_logits(_sentinel: Any = None, labels: Any = None,
                                      logits: Any = None, dim: int = -1,
                                      name: str | None = None,
                                      axis: int | None = None) -> Tensor:
    """TF1's v1 cross-entropy: as ``_v2`` but no gradient flows into ``labels``."""
    _ensure_xent_args("softmax_cross_entropy_with_logits", _sentinel, labels, logits)
    logits = convert_to_tensor(logits)
    if not isinstance(labels, Tensor) and not hasattr(labels, "_as_graph_element"):
        labels = convert_to_tensor(labels, dtype=logits.dtype)
    return _xent_v2(stop_gradient(labels), logits,
                    _axis_or_dim(axis, None if dim == -1 else dim), name)


# -- sparse softmax cross-entropy ------------------------------------------------------------
def _sparse_xent_reference(features, labels):
    logp = sp.log_softmax(features, axis=-1)
    onehot = np.arange(features.shape[-1]) == labels[..., None]
    return -np.sum(np.where(onehot, logp, 0), axis=-1), sp.softmax(features, axis=-1) - onehot


@op("SparseSoftmaxCrossEntropyWithLogits",
    inputs={"features": m.reals, "labels": m.labels(of="features")},
    outputs=("loss", "backprop"), signature="custom", reference=_sparse_xent_reference,
    examples=({"shapes": {"features": (4, 3), "labels": (4,)}},
              {"shapes": {"features": (2, 3, 5), "labels": (2, 3)}},
              {"shapes": {"features": (1, 1), "labels": (1,)}},
              {"shapes": {"features": (3,), "labels": ()}},
              {"shapes": {"features": (3, 4), "labels": (3,)},
               "values": {"labels": [0, 3, 3]}}))
def _sparse_xent(features, labels):
    """Row-wise ``logsumexp(z) - z[label]`` and its gradient ``softmax(z) - onehot(label)``."""
    if labels.shape != features.shape[:-1]:
        raise ValueError("labels must have the shape of logits without the last dimension")
    classes = features.shape[-1]
    if labels.size:
        lo, hi = labels.min(), labels.max()
        if lo < 0 or hi >= classes:
            bad = lo if lo < 0 else hi
            values = " ".join(str(v) for v in labels.reshape(-1))
            raise errors.InvalidArgumentError(
                None, None, f"Received a label value of {bad} which is outside the valid "
                f"range of [0, {classes}).  Label values: {values}")
    if features.size == 0:
        return np.zeros(labels.shape, features.dtype), np.zeros_like(features)
    z = features - _last_max(features)
    e = np.exp(z)
    s = _last_sum(e)
    idx = labels[..., None].astype(np.intp)
    loss = (np.log(s) - np.take_along_axis(z, idx, axis=-1))[..., 0]
    backprop = e / s
    np.put_along_axis(backprop, idx, np.take_along_axis(backprop, idx, axis=-1) - 1, axis=-1)
    return loss, backprop


@_sparse_xent.shape_rule
def _(ctx):
    logits = ctx.rank_at_least(0, 1)
    labels = ctx.input_shapes[1]
    if logits.ndims is None:
        if labels.ndims is None:
            return [unknown_shape(), unknown_shape()]
        return [labels, TensorShape(labels.as_list() + [None])]
    dims = logits.as_list()
    batch = dims[:-1]
    if labels.ndims is not None:
        if labels.ndims != len(batch):
            raise ctx.fail(f"Shape must be rank {len(batch)} but is rank {labels.ndims}")
        batch = [ctx.merge(a, b) for a, b in zip(batch, labels.as_list())]
    return [TensorShape(batch), TensorShape(batch + [dims[-1]])]


@_sparse_xent.gradient
def _(op, grad_loss, grad_backprop):
    logits = op.inputs[0]
    d_logits = None if grad_loss is None else expand_dims(grad_loss, -1) * op.outputs[1]
    if grad_backprop is not None:  # second order: backprop = softmax(logits) - onehot
        p = _softmax(logits)
        extra = (grad_backprop - reduce_sum(grad_backprop * p, -1, keepdims=True)) * p
        d_logits = extra if d_logits is None else d_logits + extra
    return [d_logits, None]


@export("nn.sparse_softmax_cross_entropy_with_logits")
def sparse_softmax_cross_entropy_with_logits(_sentinel: Any = None, labels: Any = None,
                                             logits: Any = None,
                                             name: str | None = None) -> Tensor:
    """Cross-entropy of ``softmax(logits)`` against integer class ``labels`` (keyword-only);
    ``labels`` has the shape of ``logits`` without its last (class) axis. A label outside
    ``[0, classes)`` is an InvalidArgumentError at run time. No gradient to ``labels``."""
    _ensure_xent_args("sparse_softmax_cross_entropy_with_logits", _sentinel, labels, logits)
    logits = convert_to_tensor(logits)
    labels = convert_to_tensor(labels)
    ls, gs = labels.shape, logits.shape
    if gs.ndims == 0:
        raise ValueError(f"Logits cannot be scalars - received shape {gs}.")
    if gs.ndims is not None and ls.ndims is not None and ls.ndims != gs.ndims - 1:
        raise ValueError(f"Rank mismatch: Rank of labels (received {ls.ndims}) should equal "
                         f"rank of logits minus 1 (received {gs.ndims}).")
    if ls.is_fully_defined() and gs[:-1].is_fully_defined() and ls != gs[:-1]:
        raise ValueError(f"Shape mismatch: The shape of labels (received {ls}) should equal "
                         f"the shape of logits except for the last dimension (received "
                         f"{gs}).")
    loss, _ = _sparse_xent(logits, labels, name=name)
    return loss


# -- sigmoid cross-entropy -------------------------------------------------------------------
@op("SigmoidCrossEntropyWithLogits",
    inputs={"logits": m.reals, "labels": m.bounded(0.0, 1.0)}, signature="custom",
    reference=lambda x, z: z * np.logaddexp(0, -x) + (1 - z) * np.logaddexp(0, x),
    examples=({"shapes": {"logits": (2, 3), "labels": (2, 3)}},
              {"shapes": {"logits": (), "labels": ()}},
              {"shapes": {"logits": (1, 4, 1), "labels": (1, 4, 1)}},
              {"shapes": {"logits": (5,), "labels": (5,)},
               "values": {"labels": [0.0, 1.0, 0.5, 0.0, 1.0]}}))
def _sigmoid_xent(logits, labels):
    """Elementwise ``-z log(sigmoid(x)) - (1 - z) log(1 - sigmoid(x))``, computed as TF1 does:
    ``max(x, 0) - x z + log1p(exp(-|x|))``."""
    if logits.shape != labels.shape:
        raise ValueError("logits and labels must have the same shape")
    return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))


@_sigmoid_xent.shape_rule
def _(ctx):
    a, b = ctx.input_shapes
    if not a.is_compatible_with(b):
        raise ctx.fail(f"logits and labels must have the same shape ({a} vs {b})")
    return a.merge_with(b)


@_sigmoid_xent.gradient
def _(op, grad):
    # sigmoid(x) - z, written (1 - z) sigmoid(x) - z sigmoid(-x): the same value, without
    # TF's cancellation of two numbers near 1 at a saturated logit (x = 20, z = 1: 5e-8 of
    # the gradient lost; x = 30: 1e-3)
    x, z = op.inputs
    return [grad * ((1.0 - z) * sigmoid(x) - z * sigmoid(negative(x))), grad * negative(x)]


@export("nn.sigmoid_cross_entropy_with_logits")
def sigmoid_cross_entropy_with_logits(_sentinel: Any = None, labels: Any = None,
                                      logits: Any = None, name: str | None = None) -> Tensor:
    """Elementwise logistic loss of ``logits`` against ``labels`` in [0, 1] (keyword-only);
    gradients flow to both."""
    _ensure_xent_args("sigmoid_cross_entropy_with_logits", _sentinel, labels, logits)
    logits = convert_to_tensor(logits)
    if isinstance(labels, Tensor) or hasattr(labels, "_as_graph_element"):
        labels = convert_to_tensor(labels)
    else:
        labels = convert_to_tensor(labels, dtype=logits.dtype)
    if not labels.shape.is_compatible_with(logits.shape):
        raise ValueError(f"logits and labels must have the same shape ({logits.shape} vs "
                         f"{labels.shape})")
    return _sigmoid_xent(logits, labels, name=name or "logistic_loss")


# -- BiasAdd ---------------------------------------------------------------------------------
_FORMAT = {"attrs": {"data_format": "NHWC"}, "choices": {"data_format": ("NHWC", "NCHW")},
           "signature": "custom", "dtypes": _NUM}


def _channel_axis(data_format: str, rank: int) -> int:
    return 1 if data_format == "NCHW" else rank - 1


def _bias_add_reference(value, bias, data_format):
    if data_format == "NCHW":
        return np.moveaxis(np.moveaxis(value, 1, -1) + bias, -1, 1)
    return value + bias


@op("BiasAdd", inputs={"value": m.reals, "bias": m.reals}, **_FORMAT,
    reference=_bias_add_reference,
    examples=({"shapes": {"value": (2, 3), "bias": (3,)}, "attrs": {"data_format": "NHWC"}},
              {"shapes": {"value": (2, 4, 5, 3), "bias": (3,)},
               "attrs": {"data_format": "NHWC"}},
              {"shapes": {"value": (1, 1), "bias": (1,)}, "attrs": {"data_format": "NHWC"}},
              {"shapes": {"value": (2, 3, 4), "bias": (3,)},
               "attrs": {"data_format": "NCHW"}},
              {"shapes": {"value": (2, 3, 4, 5), "bias": (3,)},
               "attrs": {"data_format": "NCHW"}},
              {"shapes": {"value": (1, 2, 1, 1), "bias": (2,)},
               "attrs": {"data_format": "NCHW"}}))
def _bias_add(value, bias, *, data_format):
    """``value`` plus the 1-D ``bias`` along the channel axis (last for NHWC, 1 for NCHW)."""
    nchw = data_format == "NCHW"
    if value.ndim < (3 if nchw else 2) or bias.ndim != 1 or (
            bias.shape[0] != value.shape[_channel_axis(data_format, value.ndim)]):
        raise ValueError("BiasAdd: bias must be 1-D and match the channel dimension")
    if nchw:
        bias = bias.reshape((-1,) + (1,) * (value.ndim - 2))
    return value + bias


def _bias_add_shape(ctx: Any, with_bias: bool) -> TensorShape:
    nchw = ctx.attrs["data_format"] == "NCHW"
    if ctx.attrs["data_format"] not in ("NHWC", "NCHW"):
        raise ctx.fail(f"Invalid data format '{ctx.attrs['data_format']}'")
    value = ctx.rank_at_least(0, 3 if nchw else 2)
    bias_dim = ctx.rank_exactly(1, 1).as_list()[0] if with_bias else None
    if value.ndims is None:
        return unknown_shape() if with_bias else unknown_shape(1)
    dims = value.as_list()
    axis = _channel_axis(ctx.attrs["data_format"], len(dims))
    dims[axis] = ctx.merge(dims[axis], bias_dim)
    return TensorShape(dims) if with_bias else TensorShape([dims[axis]])


@_bias_add.shape_rule
def _(ctx):
    return _bias_add_shape(ctx, with_bias=True)


@_bias_add.gradient
def _(op, grad):
    # BiasAdd is not a NumPy broadcast: reduce to [C] explicitly, in both layouts.
    return [grad, _bias_add_grad(grad, data_format=op.attrs["data_format"])]


def _bias_add_grad_reference(out_backprop, data_format):
    g = np.moveaxis(out_backprop, 1, -1) if data_format == "NCHW" else out_backprop
    return g.reshape(-1, g.shape[-1]).sum(axis=0)


@op("BiasAddGrad", inputs={"out_backprop": m.reals}, **_FORMAT,
    reference=_bias_add_grad_reference,
    examples=({"shapes": {"out_backprop": (2, 3)}, "attrs": {"data_format": "NHWC"}},
              {"shapes": {"out_backprop": (2, 4, 5, 3)}, "attrs": {"data_format": "NHWC"}},
              {"shapes": {"out_backprop": (1, 1)}, "attrs": {"data_format": "NHWC"}},
              {"shapes": {"out_backprop": (2, 3, 4)}, "attrs": {"data_format": "NCHW"}},
              {"shapes": {"out_backprop": (2, 3, 4, 5)}, "attrs": {"data_format": "NCHW"}}))
def _bias_add_grad(out_backprop, *, data_format):
    """The bias gradient of BiasAdd: ``out_backprop`` summed over every non-channel axis."""
    if out_backprop.ndim < (3 if data_format == "NCHW" else 2):
        raise ValueError("BiasAddGrad: input rank too small")
    axis = _channel_axis(data_format, out_backprop.ndim)
    others = tuple(i for i in range(out_backprop.ndim) if i != axis)
    return np.sum(out_backprop, axis=others, dtype=out_backprop.dtype)


@_bias_add_grad.shape_rule
def _(ctx):
    return _bias_add_shape(ctx, with_bias=False)


@_bias_add_grad.gradient
def _(op, grad):
    # The adjoint of "sum over non-channel axes" spreads grad along the channel axis.
    return _bias_add(zeros_like(op.inputs[0]), grad, data_format=op.attrs["data_format"])


@export("nn.bias_add")
def bias_add(value: Any, bias: Any, data_format: str | None = None,
             name: str | None = None) -> Tensor:
    """``value + bias`` with the 1-D ``bias`` along the channel axis: the last one
    (``"NHWC"``/``"N...C"``, default) or axis 1 (``"NCHW"``/``"NC..."``)."""
    if data_format is None:
        fmt = "NHWC"
    elif data_format.startswith("NC"):
        fmt = "NCHW"
    elif data_format.startswith("N") and data_format.endswith("C"):
        fmt = "NHWC"
    else:
        raise ValueError("data_format must be of the form `N...C` or `NC...`")
    return _bias_add(value, bias, data_format=fmt, name=name)


# -- L2Loss ----------------------------------------------------------------------------------
@op("L2Loss", inputs={"t": m.reals}, signature="custom", api=("nn.l2_loss",),
    reference=lambda t: np.sum(np.square(t, dtype=np.float64)) / 2)
def l2_loss(t):
    """``sum(t ** 2) / 2``: a scalar (``inf`` on overflow, without a warning)."""
    with np.errstate(over="ignore"):
        return np.asarray(np.sum(t * t) / 2, dtype=t.dtype)


@l2_loss.shape_rule
def _(ctx):
    return TensorShape([])


@l2_loss.gradient
def _(op, grad):
    return op.inputs[0] * grad


# -- dropout (a composite: uniform noise, a mask, a rescale) ---------------------------------
def _noise_shape(x: Tensor, noise_shape: Any) -> Any:
    """TF's ``_get_noise_shape``: the shape of ``x``, or ``noise_shape`` with its unknown
    entries filled from ``x``'s static shape."""
    if noise_shape is None:
        return _shape_of(x)
    if isinstance(noise_shape, Tensor):
        return noise_shape
    try:
        ns = as_shape(noise_shape)
    except (TypeError, ValueError):
        return noise_shape
    xs = x.shape.as_tuple()
    if xs is not None and ns.ndims == len(xs):
        return TensorShape([d if n is None and d is not None else n
                            for n, d in zip(ns.as_tuple(), xs)])
    return ns


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


@export("nn.dropout")
def dropout(x: Any, keep_prob: Any = None, noise_shape: Any = None, seed: Any = None,
            name: str | None = None, rate: Any = None) -> Tensor:
    """``x / keep_prob`` where a uniform draw keeps the element (probability ``keep_prob``),
    else 0. ``rate = 1 - keep_prob`` may be given instead. ``noise_shape`` (broadcast
    against ``x``) shares one draw across axes. ``keep_prob`` may be a scalar tensor (fed at
    run time); a Python 1.0 returns ``x`` itself. Each run draws a new mask."""
    if keep_prob is not None and rate is not None:
        raise ValueError("Cannot specify both 'keep_prob' and 'rate'")
    if keep_prob is None and rate is None:
        raise ValueError("You must provide a rate to dropout.")
    graph = _graph_of([x, keep_prob, rate])
    with graph.as_default(), graph.name_scope(name or "dropout"):
        x = convert_to_tensor(x, name="x")
        if not x.dtype.is_floating:
            raise ValueError("x has to be a floating point tensor since it's going to be "
                             f"scaled. Got a {x.dtype.name} tensor instead.")
        if keep_prob is not None:
            if _is_number(keep_prob):
                if not 0 < keep_prob <= 1:
                    raise ValueError("keep_prob must be a scalar tensor or a float in the "
                                     f"range (0, 1], got {keep_prob:g}")
                if keep_prob == 1:
                    return x
            keep = convert_to_tensor(keep_prob, dtype=x.dtype, name="keep_prob")
            keep.shape.assert_is_compatible_with(TensorShape([]))
            if constant_value(keep) is not None and constant_value(keep) == 1:
                return x
            drop = 1 - keep
        else:
            if _is_number(rate):
                if not 0 <= rate < 1:
                    raise ValueError("rate must be a scalar tensor or a float in the range "
                                     f"[0, 1), got {rate:g}")
                if rate == 0:
                    return x
            drop = convert_to_tensor(rate, dtype=x.dtype, name="rate")
            drop.shape.assert_is_compatible_with(TensorShape([]))
            if constant_value(drop) is not None and constant_value(drop) == 0:
                return x
            keep = 1 - drop
        noise = random_uniform(_noise_shape(x, noise_shape), seed=seed, dtype=x.dtype)
        # keep where noise >= rate, i.e. floor(keep_prob + noise) == 1 (TF1's binary tensor)
        mask = cast(greater_equal(noise, drop), x.dtype)
        ret = realdiv(x, keep) * mask
        ret.set_shape(x.shape)
        return ret
