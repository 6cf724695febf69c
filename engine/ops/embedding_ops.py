"""``embedding_lookup`` and the sampled losses ``nce_loss`` and ``sampled_softmax_loss``.

All three are TF1's composites of registered ops (gather, concat, matmul, the
cross-entropies), so their gradients are the ops' own: duplicate ids add up in the gradient
(GatherV2's scatter-add), sampled ids carry none (``stop_gradient``, like TF).

``embedding_lookup`` with a list of tables (a sharded embedding) follows TF's partition
strategies: ``"mod"`` (the default) keeps id ``i`` in table ``i % n`` at row ``i // n``;
``"div"`` keeps contiguous blocks, the first ``total % n`` tables one row longer. Both are
done as one gather from the tables concatenated along axis 0.

>>> import numpy as np, gradverify.engine as tf
>>> a, b = tf.constant([[0.0], [2.0]]), tf.constant([[1.0], [3.0]])
>>> tf.Session().run(tf.nn.embedding_lookup([a, b], [3, 0, 1])).ravel().tolist()
[3.0, 0.0, 1.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine.graph import Tensor, _graph_of, convert_to_tensor
from gradverify.engine.ops.array_ops import concat, expand_dims, reshape
from gradverify.engine.ops.candidate_sampling_ops import log_uniform_candidate_sampler
from gradverify.engine.ops.core_ops import (
    cast,
    identity,
    ones_like,
    shape,
    stop_gradient,
    zeros_like,
)
from gradverify.engine.ops.index_ops import gather, where
from gradverify.engine.ops.math_ops import equal, log, matmul, maximum, sqrt
from gradverify.engine.ops.nn_ops import (
    sigmoid_cross_entropy_with_logits,
    softmax_cross_entropy_with_logits_v2,
)
from gradverify.engine.ops.reduction_ops import reduce_max, reduce_sum
from gradverify.engine.registry import export

_FLT_MAX = float(np.finfo(np.float32).max)


def _tables(params: Any) -> list[Tensor]:
    tables = list(params) if isinstance(params, (list, tuple)) else [params]
    if not tables:
        raise ValueError("Need at least one param")
    return [convert_to_tensor(t) for t in tables]


def _rows(tables: list[Tensor]) -> list[int]:
    rows = [t.shape.as_list()[0] if t.shape.ndims else None for t in tables]
    if None in rows:
        raise ValueError("embedding_lookup over several tables needs each table's first "
                         f"dimension when the graph is built; got {rows}")
    return rows


def _flat_ids(ids: Tensor, rows: list[int], strategy: str) -> Tensor:
    """Row of the concatenated tables that holds each id."""
    n = len(rows)
    if strategy == "div":
        return ids  # contiguous blocks in order: the concatenation is the full table
    # mod: id i is row i // n of table i % n, which starts at offset[i % n]
    offsets = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(ids.dtype.np)
    return gather(offsets, ids % n) + ids // n


def _clip_rows(x: Tensor, max_norm: Any, ids_rank: int | None) -> Tensor:
    """TF's ``clip_by_norm`` over the embedding axes (those after the ids' axes)."""
    rank = x.shape.ndims
    if rank is None or ids_rank is None:
        raise ValueError("max_norm needs the ranks of ids and params when the graph is built")
    axes = list(range(ids_rank, rank)) or None
    sq = reduce_sum(x * x, axes, keepdims=True)
    positive = sq > 0
    norm = where(positive, sqrt(where(positive, sq, ones_like(sq))), sq)
    limit = convert_to_tensor(max_norm, dtype=x.dtype)
    return identity(x * limit / maximum(norm, limit))


@export("nn.embedding_lookup")
def embedding_lookup(params: Any, ids: Any, partition_strategy: str = "mod",
                     name: str | None = None, validate_indices: bool = True,
                     max_norm: Any = None) -> Tensor:
    """Rows of ``params`` (a table, or a list of tables sharded by ``partition_strategy``)
    at ``ids`` (any shape): the result has shape ``ids.shape + params.shape[1:]``. Repeated
    ids add up in the gradient; an id out of range is an InvalidArgumentError at run time.
    ``max_norm``: rows whose L2 norm exceeds it are scaled down to it.

    >>> import gradverify.engine as tf
    >>> table = tf.Variable(tf.zeros([50, 8]))
    >>> tf.nn.embedding_lookup(table, [[1, 2, 3], [4, 5, 6]]).shape.as_list()
    [2, 3, 8]
    """
    if partition_strategy not in ("mod", "div"):
        raise ValueError(f"Unrecognized partition strategy: {partition_strategy}")
    tables = params if isinstance(params, (list, tuple)) else [params]
    graph = _graph_of(list(tables) + [ids])
    with graph.as_default(), graph.name_scope(name or "embedding_lookup") as scope:
        tables = _tables(params)
        ids = convert_to_tensor(ids, name="ids")
        if not ids.dtype.is_integer:
            raise TypeError(f"ids must be int32 or int64, got {ids.dtype.name}")
        if len(tables) == 1:
            out = gather(tables[0], ids, name=None if max_norm is not None else scope)
        else:
            rows = _rows(tables)
            out = gather(concat(tables, 0), _flat_ids(ids, rows, partition_strategy),
                         name=None if max_norm is not None else scope)
        if max_norm is not None:
            out = _clip_rows(out, max_norm, ids.shape.ndims)
        return out


def _sampled_logits(weights: Any, biases: Any, labels: Any, inputs: Any, num_sampled: int,
                    num_classes: int, num_true: int, sampled_values: Any,
                    subtract_log_q: bool, remove_accidental_hits: bool,
                    partition_strategy: str, seed: Any) -> tuple[Tensor, Tensor]:
    """TF's ``_compute_sampled_logits``: logits of the true classes and of the sampled ones,
    ``[batch, num_true + num_sampled]``, and their labels (``1 / num_true``, then 0)."""
    inputs = convert_to_tensor(inputs)
    labels = cast(convert_to_tensor(labels), "int64")
    if labels.shape.ndims != 2:
        raise ValueError(f"labels must have shape [batch_size, num_true], got {labels.shape}")
    labels_flat = reshape(labels, [-1])
    if sampled_values is None:
        sampled_values = log_uniform_candidate_sampler(
            labels, num_true=num_true, num_sampled=num_sampled, unique=True,
            range_max=num_classes, seed=seed)
    sampled, true_expected, sampled_expected = (stop_gradient(s) for s in sampled_values)
    sampled = cast(sampled, "int64")
    # rows of the true classes first, then those of the samples, in one lookup
    all_ids = concat([labels_flat, sampled], 0)
    all_w = cast(embedding_lookup(weights, all_ids, partition_strategy), inputs.dtype)
    all_b = cast(embedding_lookup(biases, all_ids, partition_strategy), inputs.dtype)
    n_true = shape(labels_flat)[0]
    true_w, sampled_w = all_w[:n_true], all_w[n_true:]
    true_b, sampled_b = all_b[:n_true], all_b[n_true:]
    dim = all_w.shape.as_list()[-1] if all_w.shape.ndims == 2 else None
    if dim is None and inputs.shape.ndims == 2:
        dim = inputs.shape.as_list()[-1]
    true_w = reshape(true_w, [-1, num_true, dim] if dim is not None else concat(
        [np.array([-1, num_true], np.int32), shape(all_w)[1:2]], 0))
    true_logits = reduce_sum(expand_dims(inputs, 1) * true_w, 2) + reshape(
        true_b, [-1, num_true])
    sampled_logits = matmul(inputs, sampled_w, transpose_b=True) + sampled_b
    if remove_accidental_hits:
        # -FLT_MAX where a sample is one of the row's true classes (TF's sparse_to_dense)
        hit = reduce_max(cast(equal(expand_dims(labels, 2), reshape(sampled, [1, 1, -1])),
                              sampled_logits.dtype), 1)
        sampled_logits += hit * (-_FLT_MAX)
    if subtract_log_q:
        true_logits -= log(cast(true_expected, true_logits.dtype))
        sampled_logits -= log(cast(sampled_expected, sampled_logits.dtype))
    out_logits = concat([true_logits, sampled_logits], 1)
    out_labels = concat([ones_like(true_logits) / num_true, zeros_like(sampled_logits)], 1)
    return out_logits, out_labels


@export("nn.nce_loss")
def nce_loss(weights: Any, biases: Any, labels: Any, inputs: Any, num_sampled: int,
             num_classes: int, num_true: int = 1, sampled_values: Any = None,
             remove_accidental_hits: bool = False, partition_strategy: str = "mod",
             name: str = "nce_loss") -> Tensor:
    """Noise-contrastive estimation loss per example, ``[batch]``: logistic losses of the
    true classes (label ``1 / num_true``) and of ``num_sampled`` log-uniform samples (label
    0), with ``log Q`` subtracted (TF's defaults: no removal of accidental hits).

    >>> import gradverify.engine as tf
    >>> loss = tf.nn.nce_loss(tf.zeros([100, 8]), tf.zeros([100]), [[1], [2]],
    ...                       tf.zeros([2, 8]), num_sampled=5, num_classes=100)
    >>> loss.shape.as_list()
    [2]
    """
    graph = _graph_of([inputs])
    with graph.as_default(), graph.name_scope(name):
        logits, labels_ = _sampled_logits(
            weights, biases, labels, inputs, num_sampled, num_classes, num_true,
            sampled_values, True, remove_accidental_hits, partition_strategy, None)
        losses = sigmoid_cross_entropy_with_logits(labels=labels_, logits=logits)
        return reduce_sum(losses, 1)


@export("nn.sampled_softmax_loss")
def sampled_softmax_loss(weights: Any, biases: Any, labels: Any, inputs: Any,
                         num_sampled: int, num_classes: int, num_true: int = 1,
                         sampled_values: Any = None, remove_accidental_hits: bool = True,
                         partition_strategy: str = "mod", name: str = "sampled_softmax_loss",
                         seed: Any = None) -> Tensor:
    """Softmax cross-entropy over the true classes and ``num_sampled`` log-uniform samples,
    ``[batch]``, with ``log Q`` subtracted and (TF's default) samples equal to a true class
    removed.

    >>> import gradverify.engine as tf
    >>> loss = tf.nn.sampled_softmax_loss(tf.zeros([100, 8]), tf.zeros([100]), [[1], [2]],
    ...                                   tf.zeros([2, 8]), num_sampled=5, num_classes=100)
    >>> loss.shape.as_list()
    [2]
    """
    graph = _graph_of([inputs])
    with graph.as_default(), graph.name_scope(name):
        logits, labels_ = _sampled_logits(
            weights, biases, labels, inputs, num_sampled, num_classes, num_true,
            sampled_values, True, remove_accidental_hits, partition_strategy, seed)
        return softmax_cross_entropy_with_logits_v2(labels=stop_gradient(labels_),
                                                    logits=logits)
