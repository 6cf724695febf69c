"""Candidate sampling: the LogUniformCandidateSampler op and ``compute_accidental_hits``.

The sampler draws classes from the log-uniform (Zipfian) distribution over
``[0, range_max)``, ``P(c) = (log(c + 2) - log(c + 1)) / log(range_max + 1)`` (classes
sorted by decreasing frequency, as word2vec vocabularies are), by TF's inversion
``floor(exp(u * log(range_max + 1))) - 1``. With ``unique=True`` it draws until it has
``num_sampled`` distinct classes, and the expected counts are ``1 - (1 - P(c)) ** tries``
(``P(c) * num_sampled`` when no draw was rejected, or with ``unique=False``). The draws come
from the op's seeded generator (graph seed + op seed, TF1's rule): reproducible per session,
new on every run.

>>> import gradverify.engine as tf
>>> g = tf.Graph()
>>> with g.as_default():
...     tf.set_random_seed(0)
...     s, t, e = tf.nn.log_uniform_candidate_sampler([[1], [7]], 1, 4, True, 50)
>>> sampled = tf.Session(graph=g).run(s)
>>> len(set(sampled.tolist())), sampled.dtype.name
(4, 'int64')
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine import meta as m
from gradverify.engine.graph import Tensor, _graph_of, convert_to_tensor
from gradverify.engine.ops.array_ops import expand_dims, reshape
from gradverify.engine.ops.core_ops import cast, fill, shape
from gradverify.engine.ops.index_ops import where
from gradverify.engine.ops.math_ops import equal, greater
from gradverify.engine.ops.random_ops import get_seed
from gradverify.engine.ops.reduction_ops import reduce_max
from gradverify.engine.registry import REQUIRED, export, op
from gradverify.engine.shapes import TensorShape

_CLASSES = m.Domain("integers", dtypes=("int64",), differentiable=False)


def log_uniform_probability(classes: np.ndarray, range_max: int) -> np.ndarray:
    """``P(c)`` of the log-uniform distribution over ``[0, range_max)``."""
    c = np.asarray(classes, np.float64)
    return (np.log(c + 2.0) - np.log(c + 1.0)) / np.log(range_max + 1.0)


def _expected(p: np.ndarray, batch: int, tries: int) -> np.ndarray:
    if tries == batch:
        return (p * batch).astype(np.float32)
    return (-np.expm1(tries * np.log1p(-p))).astype(np.float32)


def _classes_rule(ctx: Any, what: str) -> list:
    s = ctx.rank_exactly(0, 2).as_list()
    num_true = ctx.attrs["num_true"]
    if s[1] is not None and s[1] != num_true:
        raise ctx.fail(f"{what}: true_classes must have num_true = {num_true} columns, "
                       f"got {s[1]}")
    return s


@op("LogUniformCandidateSampler", inputs={"true_classes": _CLASSES},
    outputs=("sampled_candidates", "true_expected_count", "sampled_expected_count"),
    attrs={"num_true": REQUIRED, "num_sampled": REQUIRED, "unique": REQUIRED,
           "range_max": REQUIRED, "seed": None, "seed2": None},
    random=True, differentiable=False, signature="custom", dtypes=("int64",),
    out_dtype=("int64", "float32", "float32"))
def _log_uniform_sampler(ctx, true_classes, *, num_true, num_sampled, unique, range_max,
                         seed, seed2):
    """``num_sampled`` classes in ``[0, range_max)``, log-uniform, and the expected counts
    of the true and the sampled classes."""
    rng = ctx.rng
    log_range = np.log(range_max + 1.0)

    def draw(k: int) -> np.ndarray:
        v = np.floor(np.exp(rng.random(k) * log_range)).astype(np.int64) - 1
        return v % range_max  # TF's guard against exp(u log(R+1)) rounding up to R+1

    if unique:
        picked: dict[int, None] = {}
        tries = 0
        while len(picked) < num_sampled:
            for v in draw(2 * (num_sampled - len(picked)) + 8).tolist():
                tries += 1
                picked.setdefault(v)
                if len(picked) == num_sampled:
                    break
        sampled = np.fromiter(picked, np.int64, num_sampled)
    else:
        sampled, tries = draw(num_sampled), num_sampled
    true_p = log_uniform_probability(true_classes, range_max)
    return (sampled, _expected(true_p, num_sampled, tries),
            _expected(log_uniform_probability(sampled, range_max), num_sampled, tries))


@_log_uniform_sampler.shape_rule
def _(ctx):
    s = _classes_rule(ctx, "LogUniformCandidateSampler")
    a = ctx.attrs
    if a["unique"] and a["num_sampled"] > a["range_max"]:
        raise ctx.fail("Sampler's range is too small: unique=True needs num_sampled "
                       f"({a['num_sampled']}) <= range_max ({a['range_max']})")
    if a["num_sampled"] < 1 or a["range_max"] < 1:
        raise ctx.fail("num_sampled and range_max must be positive")
    return [TensorShape([a["num_sampled"]]), TensorShape(s), TensorShape([a["num_sampled"]])]


@export("nn.log_uniform_candidate_sampler", "random.log_uniform_candidate_sampler")
def log_uniform_candidate_sampler(true_classes: Any, num_true: int, num_sampled: int,
                                  unique: bool, range_max: int, seed: Any = None,
                                  name: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``(sampled_candidates, true_expected_count, sampled_expected_count)``: classes drawn
    log-uniformly from ``[0, range_max)`` (distinct ones when ``unique``), for
    ``true_classes`` of shape ``[batch, num_true]`` (int64).

    >>> import gradverify.engine as tf
    >>> s, t, e = tf.nn.log_uniform_candidate_sampler([[3]], 1, 5, True, 100, seed=1)
    >>> s.shape.as_list(), t.shape.as_list(), e.dtype.name
    ([5], [1, 1], 'float32')
    """
    classes = cast(convert_to_tensor(true_classes), "int64")
    seed1, seed2 = get_seed(seed)
    return _log_uniform_sampler(classes, num_true=int(num_true), num_sampled=int(num_sampled),
                                unique=bool(unique), range_max=int(range_max), seed=seed1,
                                seed2=seed2, name=name)


@export("nn.compute_accidental_hits")
def compute_accidental_hits(true_classes: Any, sampled_candidates: Any, num_true: int,
                            seed: Any = None, name: str | None = None,
                            ) -> tuple[Tensor, Tensor, Tensor]:
    """``(indices, ids, weights)`` of the sampled candidates that hit a true class: add
    ``weights`` (``-FLT_MAX``) to ``sampled_logits[indices, ids]`` to remove the hits.

    >>> import gradverify.engine as tf
    >>> i, j, w = tf.nn.compute_accidental_hits([[1, 5], [2, 2]], [5, 2, 7], 2)
    >>> [a.tolist() for a in tf.Session().run([i, j])]
    [[0, 1], [0, 1]]
    """
    graph = _graph_of([true_classes, sampled_candidates])
    with graph.as_default(), graph.name_scope(name or "compute_accidental_hits"):
        classes = cast(convert_to_tensor(true_classes), "int64")
        sampled = cast(convert_to_tensor(sampled_candidates), "int64")
        cols = classes.shape.as_list()[1] if classes.shape.ndims == 2 else None
        if classes.shape.ndims not in (None, 2) or cols not in (None, int(num_true)):
            raise ValueError(f"true_classes must have shape [batch_size, num_true = "
                             f"{num_true}], got {classes.shape}")
        same = cast(equal(expand_dims(classes, 2), reshape(sampled, [1, 1, -1])), "int32")
        where_hit = where(greater(reduce_max(same, 1), 0))  # [k, 2] (row, candidate) int64
        weights = fill(expand_dims(shape(where_hit)[0], 0), -np.finfo(np.float32).max)
        return (cast(where_hit[:, 0], "int32"), where_hit[:, 1], weights)
