"""Learning-rate schedules of ``tf.train``: graph ops of the global step, evaluated each run.

``exponential_decay``, ``inverse_time_decay``, ``natural_exp_decay``, ``polynomial_decay``
(``cycle``, ``power``) and ``piecewise_constant`` follow TF1's ``learning_rate_decay.py``:
the step is cast to the learning rate's dtype, ``staircase`` floors ``step / decay_steps``,
and the result is an ordinary tensor, so an optimizer built with it reads the current step
on every run.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     step = tf.train.get_or_create_global_step()
...     lr = tf.train.exponential_decay(0.1, step, 10, 0.5, staircase=True)
...     with tf.Session() as s:
...         _ = s.run(step.initializer)
...         _ = s.run(step.assign(25))
...         round(float(s.run(lr)), 6)
0.025
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradverify.engine import dtypes as _dt
from gradverify.engine.graph import Tensor, _graph_of, convert_to_tensor
from gradverify.engine.registry import api, export

__all__ = ["exponential_decay", "inverse_time_decay", "natural_exp_decay",
           "polynomial_decay", "piecewise_constant"]


def _need_step(global_step: Any, what: str) -> None:
    if global_step is None:
        raise ValueError(f"global_step is required for {what}.")


def _floor(x: Tensor) -> Tensor:
    return api("floordiv")(x, convert_to_tensor(1.0, dtype=x.dtype))


def _decay_inputs(learning_rate: Any, global_step: Any, decay_steps: Any,
                  decay_rate: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    lr = convert_to_tensor(learning_rate, name="learning_rate")
    if not lr.dtype.is_floating:
        raise TypeError(f"learning_rate must be floating point, got {lr.dtype.name}: {lr}")
    step = api("cast")(global_step, lr.dtype)
    steps = api("cast")(decay_steps, lr.dtype)
    rate = api("cast")(decay_rate, lr.dtype)
    return lr, step, steps, rate


def _scope(name: str | None, default: str, values: list[Any]) -> Any:
    graph = _graph_of(values)
    return graph, graph.name_scope(name or default)


def _rate_decay(op_name: str, kind: str, learning_rate: Any, global_step: Any,
                decay_steps: Any, decay_rate: Any, staircase: bool, name: str | None,
                combine: Any) -> Tensor:
    """The shared body of the three ``decay_rate``-driven schedules: ``combine(lr, rate, p,
    out_name)`` with ``p = global_step / decay_steps`` (floored with ``staircase``)."""
    _need_step(global_step, op_name)
    graph, scope = _scope(name, kind, [learning_rate, global_step])
    with graph.as_default(), scope as ns:
        lr, step, steps, rate = _decay_inputs(learning_rate, global_step, decay_steps,
                                              decay_rate)
        p = step / steps
        if staircase:
            p = _floor(p)
        return combine(lr, rate, p, ns[:-1] + "/")


@export("train.exponential_decay")
def exponential_decay(learning_rate: Any, global_step: Any, decay_steps: Any,
                      decay_rate: Any, staircase: bool = False,
                      name: str | None = None) -> Tensor:
    """``learning_rate * decay_rate ** (global_step / decay_steps)`` (the exponent floored
    with ``staircase``)."""
    return _rate_decay("exponential_decay", "ExponentialDecay", learning_rate, global_step,
                       decay_steps, decay_rate, staircase, name,
                       lambda lr, rate, p, out: api("multiply")(lr, api("pow")(rate, p),
                                                                name=out))


@export("train.natural_exp_decay")
def natural_exp_decay(learning_rate: Any, global_step: Any, decay_steps: Any,
                      decay_rate: Any, staircase: bool = False,
                      name: str | None = None) -> Tensor:
    """``learning_rate * exp(-decay_rate * global_step / decay_steps)``."""
    return _rate_decay("natural_exp_decay", "NaturalExpDecay", learning_rate, global_step,
                       decay_steps, decay_rate, staircase, name,
                       lambda lr, rate, p, out: api("multiply")(
                           lr, api("exp")(api("negative")(rate * p)), name=out))


@export("train.inverse_time_decay")
def inverse_time_decay(learning_rate: Any, global_step: Any, decay_steps: Any,
                       decay_rate: Any, staircase: bool = False,
                       name: str | None = None) -> Tensor:
    """``learning_rate / (1 + decay_rate * global_step / decay_steps)``."""
    return _rate_decay("inverse_time_decay", "InverseTimeDecay", learning_rate, global_step,
                       decay_steps, decay_rate, staircase, name,
                       lambda lr, rate, p, out: api("truediv")(
                           lr, api("add")(convert_to_tensor(1.0, dtype=lr.dtype), rate * p),
                           name=out))


@export("train.polynomial_decay")
def polynomial_decay(learning_rate: Any, global_step: Any, decay_steps: Any,
                     end_learning_rate: Any = 0.0001, power: Any = 1.0, cycle: bool = False,
                     name: str | None = None) -> Tensor:
    """``(learning_rate - end) * (1 - step / decay_steps) ** power + end`` with the step
    held at ``decay_steps`` afterwards; with ``cycle`` the decay restarts: ``decay_steps``
    becomes the first multiple of itself at or above the step (1 multiple at step 0)."""
    _need_step(global_step, "polynomial_decay")
    graph, scope = _scope(name, "PolynomialDecay", [learning_rate, global_step])
    with graph.as_default(), scope as ns:
        lr, step, steps, _ = _decay_inputs(learning_rate, global_step, decay_steps, 0)
        end = api("cast")(end_learning_rate, lr.dtype)
        power = api("cast")(power, lr.dtype)
        if cycle:
            one = convert_to_tensor(1.0, dtype=lr.dtype)
            ceil = api("negative")(_floor(api("negative")(step / steps)))
            multiplier = api("where")(api("equal")(step, 0.0), one, ceil)
            steps = steps * multiplier
        else:
            step = api("minimum")(step, steps)
        p = step / steps
        return api("add")(api("multiply")(lr - end, api("pow")(1.0 - p, power)), end,
                          name=ns[:-1] + "/")


@export("train.piecewise_constant", "train.piecewise_constant_decay")
def piecewise_constant(x: Any, boundaries: Sequence[Any], values: Sequence[Any],
                       name: str | None = None) -> Tensor:
    """``values[0]`` while ``x <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < x <= boundaries[i]``, ``values[-1]`` beyond the last boundary.

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     x = tf.placeholder(tf.int32, [])
    ...     lr = tf.train.piecewise_constant(x, [10, 20], [1.0, 0.5, 0.1])
    ...     with tf.Session() as s:
    ...         [float(s.run(lr, {x: v})) for v in (10, 11, 20, 21)]
    [1.0, 0.5, 0.5, 0.10000000149011612]
    """
    if len(boundaries) != len(values) - 1:
        raise ValueError("The length of boundaries should be 1 less than the length of "
                         "values")
    graph, scope = _scope(name, "PiecewiseConstant", [x, *boundaries, *values])
    with graph.as_default(), scope as ns:
        x = convert_to_tensor(x)
        bounds = [convert_to_tensor(b) for b in boundaries]
        for i, b in enumerate(bounds):
            if b.dtype is not x.dtype:
                if b.dtype is _dt.int32 and x.dtype is _dt.int64:  # lossless promotion
                    bounds[i] = api("cast")(b, _dt.int64)
                else:
                    raise ValueError(f"Boundaries ({b.dtype.name}) must have the same dtype "
                                     f"as x ({x.dtype.name}).")
        vals = [convert_to_tensor(v) for v in values]
        for v in vals[1:]:
            if v.dtype is not vals[0].dtype:
                raise ValueError(f"Values must have elements all with the same dtype "
                                 f"({vals[0].dtype.name} vs {v.dtype.name}).")
        out = vals[-1]
        for b, v in reversed(list(zip(bounds, vals[:-1]))):
            out = api("where")(api("less_equal")(x, b), v, out)
        return api("identity")(out, name=ns[:-1] + "/")
