"""``tf.summary``: scalar and histogram summary ops, merging, and ``FileWriter``.

A summary op outputs a string scalar: a serialized TensorFlow ``Summary`` protocol buffer
(``summary_proto.py``), so ``session.run(merged)`` gives bytes that ``FileWriter`` writes
into TensorBoard event files. The ops need nothing beyond NumPy; only ``FileWriter`` needs the
``tensorboard`` extra (``pip install 'gradverify[tensorboard]'``).

Tags follow TF1: the name (characters outside ``[A-Za-z0-9_./-]`` become ``_``) inside the
current name scope, made unique like op names (``loss``, ``loss_1``), ``family/`` prefixed
when a family is given. Every summary is added to ``GraphKeys.SUMMARIES`` (or the given
collections), which ``merge_all`` reads.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     x = tf.constant([1.0, 2.0, 3.0])
...     s = tf.summary.scalar("mean", tf.reduce_mean(x))
...     h = tf.summary.histogram("values", x)
...     merged = tf.summary.merge_all()
...     with tf.Session() as sess:
...         out = sess.run(merged)
>>> s.op.type, merged.dtype.name, type(out)
('ScalarSummary', 'string', <class 'bytes'>)
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import numpy as np

from gradverify.engine import errors
from gradverify.engine import meta as m
from gradverify.engine.graph import GraphKeys, Tensor, get_default_graph, name_scope
from gradverify.engine.registry import REQUIRED, export, op
from gradverify.engine.shapes import TensorShape
from gradverify.engine.summary_proto import histogram_summary, scalar_summary
from gradverify.engine.summary_writer import FileWriter

__all__ = ["scalar", "histogram", "merge", "merge_all", "FileWriter"]

_REAL = ("float32", "float64", "int32", "int64")
_SUMMARY = m.Domain("serialized_summary", dtypes=("string",), differentiable=False)


def _as_bytes(value: Any) -> bytes:
    value = value.item() if isinstance(value, np.ndarray) else value
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


# -- ScalarSummary ---------------------------------------------------------------------------
@op("ScalarSummary", inputs={"values": m.reals}, attrs={"tag": REQUIRED},
    signature="custom", dtypes=_REAL, out_dtype="string", differentiable=False,
    examples=({"shapes": {"values": ()}, "attrs": {"tag": "loss"}},))
def _scalar_summary(values, *, tag):
    """A ``Summary`` with one ``simple_value``: the scalar ``values`` as float32."""
    if np.ndim(values) != 0:
        raise errors.InvalidArgumentError(
            None, None, f"tags and values not the same shape: [] != "
            f"{TensorShape(np.shape(values)).as_tf_str()} (tag '{tag}')")
    return np.array(scalar_summary(tag, float(values)), dtype=object)


@_scalar_summary.shape_rule
def _(ctx):
    s = ctx.input_shapes[0]
    if s.ndims is not None and s.ndims != 0:
        raise ctx.fail(f"tags and values not the same shape: [] != {s.as_tf_str()} "
                       f"(tag '{ctx.attrs['tag']}')")
    return TensorShape([])


# -- HistogramSummary ------------------------------------------------------------------------
@op("HistogramSummary", inputs={"values": m.reals}, attrs={"tag": REQUIRED},
    signature="custom", dtypes=_REAL, out_dtype="string", differentiable=False,
    examples=({"shapes": {"values": (3, 4)}, "attrs": {"tag": "w"}},
              {"shapes": {"values": ()}, "attrs": {"tag": "w"}},
              {"shapes": {"values": (0,)}, "attrs": {"tag": "empty"}}))
def _histogram_summary(values, *, tag):
    """A ``Summary`` with the histogram of every element of ``values`` (TF's buckets)."""
    if not np.all(np.isfinite(values)):
        raise errors.InvalidArgumentError(None, None,
                                          f"Nan in summary histogram for: {tag}")
    return np.array(histogram_summary(tag, values), dtype=object)


@_histogram_summary.shape_rule
def _(ctx):
    return TensorShape([])


# -- MergeSummary ----------------------------------------------------------------------------
@op("MergeSummary", inputs={"inputs": _SUMMARY}, variadic="inputs", signature="custom",
    out_dtype="string", differentiable=False,
    examples=({"shapes": {"inputs": [(), ()]},
               "values": {"inputs": [scalar_summary("a", 1.0), scalar_summary("b", 2.0)]}},
              {"shapes": {"inputs": [()]}, "values": {"inputs": [b""]}}))
def _merge_summary(*inputs):
    """One ``Summary`` holding every value of the inputs: serialized messages concatenate."""
    return np.array(b"".join(_as_bytes(x) for x in inputs), dtype=object)


@_merge_summary.shape_rule
def _(ctx):
    for i, s in enumerate(ctx.input_shapes):
        if s.ndims is not None and s.ndims != 0:
            raise ctx.fail(f"inputs[{i}] must be a scalar string (a serialized Summary), "
                           f"got shape {s.as_tf_str()}")
    return TensorShape([])


# -- the tf.summary API ----------------------------------------------------------------------
def _clean_tag(name: str | None) -> str | None:
    if name is None:
        return None
    cleaned = re.sub(r"[^-/\w\.]", "_", name).lstrip("/")
    return cleaned


def _build(kernel: Any, name: str, tensor: Any, collections: Any, family: str | None) -> Tensor:
    name, family = _clean_tag(name), _clean_tag(family)
    base = name if family is None else f"{family}/{name}"
    with name_scope(base, values=[tensor]) as scope:
        tag = scope.rstrip("/") if family is None else f"{family}/{scope.rstrip('/')}"
        out = kernel(tensor, tag=tag, name=scope)
    graph = out.graph
    for key in (collections if collections is not None else [GraphKeys.SUMMARIES]):
        graph.add_to_collection(key, out)
    return out


@export("summary.scalar")
def scalar(name: str, tensor: Any, collections: Any = None, family: str | None = None) -> Tensor:
    """A string tensor: the ``Summary`` of one real scalar, tagged ``name``.

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default(), tf.name_scope("train"):
    ...     tf.summary.scalar("loss", 0.5).op.get_attr("tag")
    'train/loss'
    """
    return _build(_scalar_summary, name, tensor, collections, family)


@export("summary.histogram")
def histogram(name: str, values: Any, collections: Any = None,
              family: str | None = None) -> Tensor:
    """A string tensor: the ``Summary`` histogram of ``values`` (any shape, finite)."""
    return _build(_histogram_summary, name, values, collections, family)


@export("summary.merge")
def merge(inputs: Any, collections: Any = None, name: str | None = None) -> Tensor:
    """One string tensor holding every summary in ``inputs``."""
    inputs = list(inputs)
    if not inputs:
        raise ValueError("merge needs at least one summary tensor")
    with contextlib.nullcontext() if name else name_scope("Merge", values=inputs):
        out = _merge_summary(inputs, name=name or "MergeSummary")
    for key in collections or []:
        out.graph.add_to_collection(key, out)
    return out


@export("summary.merge_all")
def merge_all(key: str = GraphKeys.SUMMARIES, scope: str | None = None,
              name: str | None = None) -> Tensor | None:
    """Merge every summary in collection ``key`` of the default graph; None if empty."""
    found = get_default_graph().get_collection(key, scope)
    return merge(found, name=name) if found else None


export("summary.FileWriter")(FileWriter)
