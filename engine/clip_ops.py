"""Gradient clipping as graph ops: ``clip_by_norm``, ``global_norm``, ``clip_by_global_norm``,
``clip_by_average_norm`` (TF1's ``clip_ops.py``, same formulas and op names).

They are compositions of registered ops (``L2Loss``, ``Sqrt``, ``Minimum``, ``Select`` ...),
so they have gradients and the property suite's op checks cover their parts. Typical use
sits between ``compute_gradients`` and ``apply_gradients``:

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     a = tf.constant([3.0, 4.0]); b = tf.constant([0.0])
...     (ca, cb), norm = tf.clip_by_global_norm([a, b], 1.0)
...     with tf.Session() as s:
...         float(s.run(norm)), [round(float(x), 3) for x in s.run(ca)]
(5.0, [0.6, 0.8])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradverify.engine.graph import Tensor, _graph_of, convert_to_tensor
from gradverify.engine.registry import api, export

__all__ = ["clip_by_norm", "global_norm", "clip_by_global_norm", "clip_by_average_norm"]


def _sequence(t_list: Any) -> list[Any]:
    if not isinstance(t_list, Sequence) or isinstance(t_list, str):
        raise TypeError("t_list should be a sequence")
    return list(t_list)


def _dense(t: Any, name: str) -> Tensor:
    values = getattr(t, "values", None)  # IndexedSlices-like: clip its values
    if values is not None and not callable(values):
        t = values
    return convert_to_tensor(t, name=name)


def _scope(name: str | None, default: str, values: list[Any]) -> Any:
    graph = _graph_of([v for v in values if v is not None])
    return graph, graph.name_scope(name or default)


@export("clip_by_norm")
def clip_by_norm(t: Any, clip_norm: Any, axes: Any = None, name: str | None = None) -> Tensor:
    """``t * clip_norm / max(||t||_2, clip_norm)``, the norm over ``axes`` (default all).

    A zero norm leaves ``t`` unchanged and its gradient finite (TF1's two-``where`` trick).

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     y = tf.clip_by_norm([[3.0, 4.0], [0.3, 0.4]], 1.0, axes=[1])
    ...     [[round(float(x), 3) for x in row] for row in tf.Session().run(y)]
    [[0.6, 0.8], [0.3, 0.4]]
    """
    graph, scope = _scope(name, "clip_by_norm", [t, clip_norm])
    with graph.as_default(), scope as ns:
        values = _dense(t, "t")
        clip_norm = convert_to_tensor(clip_norm, dtype=values.dtype, name="clip_norm")
        l2sum = api("reduce_sum")(values * values, axes, keepdims=True)
        pred = api("greater")(l2sum, 0.0)
        l2sum_safe = api("where")(pred, l2sum, api("ones_like")(l2sum))
        l2norm = api("where")(pred, api("sqrt")(l2sum_safe), l2sum)
        intermediate = values * clip_norm
        values.shape.merge_with(intermediate.shape)  # no unintended broadcasting (TF1)
        return api("identity")(intermediate / api("maximum")(l2norm, clip_norm),
                               name=ns[:-1] + "/")


@export("global_norm")
def global_norm(t_list: Sequence[Any], name: str | None = None) -> Tensor:
    """``sqrt(sum of ||t||^2)`` over the non-None tensors of ``t_list``.

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     float(tf.Session().run(tf.global_norm([[3.0], None, [[4.0]]])))
    5.0
    """
    t_list = _sequence(t_list)
    graph, scope = _scope(name, "global_norm", t_list)
    with graph.as_default(), scope:
        values = [None if t is None else _dense(t, f"t_{i}") for i, t in enumerate(t_list)]
        present = [v for v in values if v is not None]
        if not present:
            raise ValueError("global_norm needs at least one tensor that is not None.")
        dtypes = {v.dtype for v in present}
        if len(dtypes) > 1:
            raise TypeError("global_norm: all tensors must have one dtype, got "
                            f"{sorted(d.name for d in dtypes)} from "
                            f"{[v.name for v in present]}.")
        half_squared = api("reduce_sum")(api("stack")(
            [api("nn.l2_loss")(v) for v in present]))
        two = convert_to_tensor(2.0, dtype=half_squared.dtype)
        return api("sqrt")(half_squared * two, name="global_norm")


@export("clip_by_global_norm")
def clip_by_global_norm(t_list: Sequence[Any], clip_norm: Any, use_norm: Any = None,
                        name: str | None = None) -> tuple[list[Tensor | None], Tensor]:
    """``(t * clip_norm / max(global_norm, clip_norm) for t in t_list, global_norm)``.

    None entries pass through as None. ``use_norm`` replaces the computed global norm. An
    infinite or NaN norm makes every clipped tensor NaN (TF1: the step is visibly broken).

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     (a, none), n = tf.clip_by_global_norm([[6.0, 8.0], None], 5.0)
    ...     tf.Session().run(a).tolist(), none
    ([3.0, 4.0], None)
    """
    t_list = _sequence(t_list)
    if use_norm is None:
        use_norm = global_norm(t_list, name)
    graph, scope = _scope(name, "clip_by_global_norm", t_list + [clip_norm])
    with graph.as_default(), scope as ns:
        use_norm = convert_to_tensor(use_norm)
        clip_norm = convert_to_tensor(clip_norm, dtype=use_norm.dtype, name="clip_norm")
        one = convert_to_tensor(1.0, dtype=use_norm.dtype)
        scale_for_finite = clip_norm * api("minimum")(one / use_norm, one / clip_norm)
        scale = scale_for_finite + (use_norm - use_norm)  # NaN for an inf/NaN norm
        out: list[Tensor | None] = []
        for i, t in enumerate(t_list):
            if t is None:
                out.append(None)
                continue
            v = _dense(t, f"t_{i}")
            out.append(api("identity")(v * scale, name=f"{ns}_{i}"))
    return out, use_norm


@export("clip_by_average_norm")
def clip_by_average_norm(t: Any, clip_norm: Any, name: str | None = None) -> Tensor:
    """``t * clip_norm / max(||t||_2 / size(t), clip_norm)`` (TF1's average L2 norm).

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     [round(float(x), 3) for x in tf.Session().run(tf.clip_by_average_norm([3.0, 4.0], 1.0))]
    [1.2, 1.6]
    """
    graph, scope = _scope(name, "clip_by_average_norm", [t, clip_norm])
    with graph.as_default(), scope as ns:
        t = convert_to_tensor(t, name="t")
        clip_norm = convert_to_tensor(clip_norm, dtype=t.dtype, name="clip_norm")
        n_element = api("cast")(api("size")(t), t.dtype)
        l2norm_inv = api("rsqrt")(api("reduce_sum")(t * t))
        one = convert_to_tensor(1.0, dtype=t.dtype)
        factor = api("minimum")(l2norm_inv * n_element, one / clip_norm)
        return api("identity")(t * clip_norm * factor, name=ns[:-1] + "/")

