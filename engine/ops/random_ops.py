"""Random ops: standard normal, truncated normal, uniform (float and int) samples.

Each op is one block flagged ``random=True``: the kernel takes the run context first and
draws from ``ctx.rng``, the op's generator in the session, seeded from the ``seed``/``seed2``
attributes that :func:`get_seed` sets at build time by TF1's rule. A random op draws once per
run (its consumers share the draw) and anew on every run; a new Session restarts the
sequence. The public ``random_normal``/``truncated_normal``/``random_uniform`` are TF1's
composites: the raw draw, then ``* stddev + mean`` (or ``* (max - min) + min``) as ordinary
differentiable ops, so gradients reach ``mean``/``stddev`` tensors.

>>> import gradverify.engine as tf
>>> g = tf.Graph()
>>> with g.as_default():
...     tf.set_random_seed(1)
...     x = tf.random_uniform([2])
>>> a = tf.Session(graph=g).run(x); b = tf.Session(graph=g).run(x)
>>> bool((a == b).all())
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine import dtypes as _dt
from gradverify.engine import errors
from gradverify.engine import meta as m
from gradverify.engine.graph import Tensor, _graph_of, convert_to_tensor, get_default_graph
from gradverify.engine.ops.math_ops import add
from gradverify.engine.registry import export, op
from gradverify.engine.session import DEFAULT_GRAPH_SEED
from gradverify.engine.shapes import TensorShape

_MAXINT32 = 2**31 - 1
_FLOATS = (_dt.float32, _dt.float64)
_INTS = (_dt.int32, _dt.int64)


# -- seeds -----------------------------------------------------------------------------------
def _truncate_seed(seed: Any) -> int:
    return int(seed) % _MAXINT32


@export("get_seed", "random.get_seed")
def get_seed(op_seed: Any) -> tuple[int | None, int | None]:
    """TF1's ``(seed, seed2)`` for a random op about to be built in the default graph.

    Graph seed set, op seed None: the op seed is the number of ops created so far in the
    graph (TF's ``graph._last_id``), so a graph built the same way draws the same numbers.
    Op seed set, graph seed None: the graph seed is 87654321. Both None: ``(None, None)``,
    fresh entropy. ``(0, 0)`` becomes ``(0, 2**31 - 1)`` (TF reserves it).
    """
    graph = get_default_graph()
    global_seed = graph.seed
    if global_seed is not None:
        if op_seed is None:
            op_seed = graph.version  # number of ops created so far (TF's graph._last_id)
        seeds = (_truncate_seed(global_seed), _truncate_seed(op_seed))
    elif op_seed is not None:
        seeds = (DEFAULT_GRAPH_SEED, _truncate_seed(op_seed))
    else:
        seeds = (None, None)
    if seeds == (0, 0):
        return (0, _MAXINT32)
    return seeds


# -- shapes ----------------------------------------------------------------------------------
def _dims(shape: np.ndarray) -> tuple[int, ...]:
    """The run-time shape input as a tuple (ValueError, reported via the shape rule)."""
    arr = np.asarray(shape)
    if arr.ndim != 1 or np.any(arr < 0):
        raise ValueError(f"shape must be a vector of non-negative sizes, got {arr.tolist()}")
    return tuple(int(d) for d in arr)


def _random_shape(ctx: Any) -> TensorShape:
    ctx.rank_exactly(0, 1)
    dims = ctx.const(0)
    if dims is not None:
        dims = np.asarray(dims).reshape(-1)
        for d in dims:
            if d < 0:
                raise ctx.fail(f"Dimension {int(d)} must be >= 0")
        return TensorShape([int(d) for d in dims])
    return ctx.const_as_shape(0)  # random_normal([n, 3]) with n unknown: [?, 3]


_SHAPE = {"shape": m.structural("dims")}
_RANDOM = {"random": True, "differentiable": False, "signature": "custom",
           "out_dtype": "attr:dtype", "attrs": {"dtype": _dt.float32, "seed": None,
                                                "seed2": None},
           "choices": {"dtype": _FLOATS},
           "examples": ({"values": {"shape": [2, 3]}}, {"values": {"shape": []}},
                        {"values": {"shape": [1, 4, 1]}})}


# -- the raw draws ---------------------------------------------------------------------------
@op("RandomStandardNormal", inputs=_SHAPE, **_RANDOM)
def _random_standard_normal(ctx, shape, *, dtype, seed, seed2):
    """Samples of N(0, 1) of the given shape."""
    return np.asarray(ctx.rng.standard_normal(_dims(shape), dtype=dtype.np))


_random_standard_normal.shape_rule(_random_shape)


@op("TruncatedNormal", inputs=_SHAPE, **_RANDOM)
def _truncated_normal(ctx, shape, *, dtype, seed, seed2):
    """Samples of N(0, 1) with every value of magnitude above 2 re-drawn."""
    rng = ctx.rng
    out = np.asarray(rng.standard_normal(_dims(shape)))
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out.astype(dtype.np)


_truncated_normal.shape_rule(_random_shape)


@op("RandomUniform", inputs=_SHAPE, **_RANDOM)
def _random_uniform(ctx, shape, *, dtype, seed, seed2):
    """Samples uniform in [0, 1)."""
    return np.asarray(ctx.rng.random(_dims(shape), dtype=dtype.np))


_random_uniform.shape_rule(_random_shape)


_INT_BOUND = m.Domain("integers", differentiable=False)  # T-typed (int32/int64)


@op("RandomUniformInt", inputs={**_SHAPE, "minval": _INT_BOUND, "maxval": _INT_BOUND},
    attrs={"seed": None, "seed2": None}, random=True, differentiable=False,
    signature="custom", dtypes=m.INT,
    examples=({"values": {"shape": [2, 3], "minval": 0, "maxval": 5}},
              {"values": {"shape": [4], "minval": -3, "maxval": -1}}))
def _random_uniform_int(ctx, shape, minval, maxval, *, seed, seed2):
    """Integers uniform in [minval, maxval)."""
    for what, v in (("minval", minval), ("maxval", maxval)):
        if np.ndim(v) != 0:
            raise errors.InvalidArgumentError(
                None, None, f"{what} must be 0-D, got shape {list(np.shape(v))}")
    if not minval < maxval:
        raise errors.InvalidArgumentError(None, None,
                                          f"Need minval < maxval: {minval} >= {maxval}")
    dims = _dims(shape)
    return np.asarray(ctx.rng.integers(minval, maxval, size=dims, dtype=np.asarray(minval).dtype))


@_random_uniform_int.shape_rule
def _(ctx):
    ctx.rank_exactly(1, 0)
    ctx.rank_exactly(2, 0)
    return _random_shape(ctx)


# -- TF1's public composites -----------------------------------------------------------------
def _shape_tensor(shape: Any) -> Tensor:
    """TF's ``shape_tensor``: a list/tuple/TensorShape as an int32 ``shape`` constant."""
    if isinstance(shape, Tensor) or hasattr(shape, "_as_graph_element"):
        return convert_to_tensor(shape)
    if isinstance(shape, TensorShape):
        if not shape.is_fully_defined():
            raise ValueError(f"Cannot convert a partially known TensorShape to a Tensor: "
                             f"{shape}")
        shape = shape.as_list()
    if isinstance(shape, (list, tuple)):
        if not shape:
            return convert_to_tensor(np.zeros(0, np.int32), name="shape")
        shape = [getattr(d, "value", d) for d in shape]  # Dimension objects
    return convert_to_tensor(shape, name="shape")


def _float_dtype(dtype: Any) -> _dt.DType:
    dtype = _dt.as_dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"Value passed to parameter 'dtype' has DataType {dtype.name} not in "
                        "list of allowed values: float32, float64")
    return dtype


def _normal(opdef: Any, default: str, shape: Any, mean: Any, stddev: Any, dtype: Any,
            seed: Any, name: str | None) -> Tensor:
    dtype = _float_dtype(dtype)
    graph = _graph_of([shape, mean, stddev])
    with graph.as_default(), graph.name_scope(name or default) as scope:
        shape_t = _shape_tensor(shape)
        mean_t = convert_to_tensor(mean, dtype=dtype, name="mean")
        stddev_t = convert_to_tensor(stddev, dtype=dtype, name="stddev")
        seed1, seed2 = get_seed(seed)
        rnd = opdef(shape_t, dtype=dtype, seed=seed1, seed2=seed2)
        return add(rnd * stddev_t, mean_t, name=scope)


@export("random_normal", "random.normal")
def random_normal(shape: Any, mean: Any = 0.0, stddev: Any = 1.0, dtype: Any = _dt.float32,
                  seed: Any = None, name: str | None = None) -> Tensor:
    """Samples of N(mean, stddev²) of ``shape``; a new draw on every run."""
    return _normal(_random_standard_normal, "random_normal", shape, mean, stddev, dtype, seed,
                   name)


@export("truncated_normal", "random.truncated_normal")
def truncated_normal(shape: Any, mean: Any = 0.0, stddev: Any = 1.0,
                     dtype: Any = _dt.float32, seed: Any = None,
                     name: str | None = None) -> Tensor:
    """Samples of N(mean, stddev²) with values more than 2 stddev from the mean re-drawn."""
    return _normal(_truncated_normal, "truncated_normal", shape, mean, stddev, dtype, seed,
                   name)


@export("random_uniform", "random.uniform")
def random_uniform(shape: Any, minval: Any = 0, maxval: Any = None, dtype: Any = _dt.float32,
                   seed: Any = None, name: str | None = None) -> Tensor:
    """Samples uniform in [minval, maxval) (``maxval`` defaults to 1 for floats and is
    required for integers)."""
    dtype = _dt.as_dtype(dtype)
    if dtype not in _FLOATS + _INTS:
        raise ValueError(f"Invalid dtype {dtype!r}")
    if maxval is None:
        if dtype.is_integer:
            raise ValueError(f"Must specify maxval for integer dtype {dtype!r}")
        maxval = 1
    graph = _graph_of([shape, minval, maxval])
    with graph.as_default(), graph.name_scope(name or "random_uniform") as scope:
        shape_t = _shape_tensor(shape)
        min_t = convert_to_tensor(minval, dtype=dtype, name="min")
        max_t = convert_to_tensor(maxval, dtype=dtype, name="max")
        seed1, seed2 = get_seed(seed)
        if dtype.is_integer:
            return _random_uniform_int(shape_t, min_t, max_t, seed=seed1, seed2=seed2,
                                       name=scope)
        rnd = _random_uniform(shape_t, dtype=dtype, seed=seed1, seed2=seed2)
        return add(rnd * (max_t - min_t), min_t, name=scope)
