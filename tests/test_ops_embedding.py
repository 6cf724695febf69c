"""embedding_lookup (one table or sharded, duplicate ids, max_norm), the log-uniform
candidate sampler (distribution, uniqueness, expected counts, seeds), compute_accidental_hits,
nce_loss and sampled_softmax_loss against NumPy written from TF's definitions, and their
gradients.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp
from scipy import stats

import gradverify.engine as tf
from gradverify.engine import errors
from gradverify.harness import PASS, check_gradients


def _run(fetches, feed=None, graph=None):
    with tf.Session(graph=graph) as s:
        return s.run(fetches, feed)


# -- embedding_lookup --------------------------------------------------------------------------
def test_duplicate_ids_accumulate_in_the_gradient():
    table = np.arange(12.0).reshape(6, 2)
    ids = np.array([[1, 4, 1], [1, 0, 5]])
    with tf.Graph().as_default():
        p = tf.Variable(table)
        e = tf.nn.embedding_lookup(p, ids)
        w = np.random.default_rng(0).standard_normal((2, 3, 2))
        (g,) = tf.gradients(e, [p], grad_ys=tf.constant(w))
        with tf.Session() as s:
            s.run(tf.global_variables_initializer())
            e_v, g_v = s.run([e, g])
    assert e_v.shape == (2, 3, 2) and np.array_equal(e_v, table[ids])
    want = np.zeros_like(table)
    np.add.at(want, ids.ravel(), w.reshape(-1, 2))
    np.testing.assert_allclose(g_v, want)
    assert np.allclose(g_v[1], w[0, 0] + w[0, 2] + w[1, 0])  # id 1 three times


def _sharded(full: np.ndarray, n: int, strategy: str) -> list[np.ndarray]:
    """Split a table as TF's partitioned variables do."""
    if strategy == "mod":
        return [full[i::n] for i in range(n)]
    sizes = [len(full) // n + (1 if i < len(full) % n else 0) for i in range(n)]
    return np.split(full, np.cumsum(sizes)[:-1])


@pytest.mark.parametrize("strategy", ["mod", "div"])
@pytest.mark.parametrize("n,rows", [(2, 7), (3, 10), (3, 3), (1, 4)])
def test_sharded_tables_follow_the_partition_strategy(strategy, n, rows):
    rng = np.random.default_rng(n * rows)
    full = rng.standard_normal((rows, 3))
    ids = rng.integers(0, rows, (4, 5))
    ids[0, :2] = rows - 1  # the last id, twice
    shards = _sharded(full, n, strategy)
    with tf.Graph().as_default():
        parts = [tf.constant(s) for s in shards]
        e = tf.nn.embedding_lookup(parts if n > 1 else parts[0], ids,
                                   partition_strategy=strategy)
        w = rng.standard_normal((4, 5, 3))
        grads = tf.gradients(e, parts, grad_ys=tf.constant(w))
        e_v, *g_v = _run([e] + grads)
    np.testing.assert_array_equal(e_v, full[ids])
    want = np.zeros_like(full)
    np.add.at(want, ids.ravel(), w.reshape(-1, 3))
    for got, expect in zip(g_v, _sharded(want, n, strategy)):
        np.testing.assert_allclose(got, expect, rtol=1e-12)


def test_embedding_lookup_max_norm_and_errors():
    table = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    with tf.Graph().as_default():
        e = tf.nn.embedding_lookup(tf.constant(table), [0, 1, 2], max_norm=1.0)
        np.testing.assert_allclose(_run(e), [[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]])
        with pytest.raises(ValueError, match="Unrecognized partition strategy"):
            tf.nn.embedding_lookup(tf.constant(table), [0], partition_strategy="hash")
        with pytest.raises(TypeError, match="ids must be int32 or int64"):
            tf.nn.embedding_lookup(tf.constant(table), [0.5])
        bad = tf.nn.embedding_lookup(tf.constant(table), [0, 3])
        with tf.Session() as s, pytest.raises(errors.InvalidArgumentError, match="3"):
            s.run(bad)


# -- the sampler -------------------------------------------------------------------------------
def _log_uniform_p(c, r):
    return (np.log(c + 2.0) - np.log(c + 1.0)) / np.log(r + 1.0)


def test_sampler_draws_the_log_uniform_distribution():
    r, k = 20, 4000
    g = tf.Graph()
    with g.as_default():
        tf.set_random_seed(1234)
        s, t, e = tf.nn.log_uniform_candidate_sampler([[0]], 1, k, False, r)
        s_v, t_v, e_v = _run([s, t, e], graph=g)
    counts = np.bincount(s_v, minlength=r)
    assert s_v.min() >= 0 and s_v.max() < r
    p = _log_uniform_p(np.arange(r), r)
    assert stats.chisquare(counts, k * p).pvalue > 1e-4  # seeded: a fixed draw
    np.testing.assert_allclose(t_v, [[k * p[0]]], rtol=1e-6)  # unique=False: p * num_sampled
    np.testing.assert_allclose(e_v, k * p[s_v], rtol=1e-6)


def test_unique_sampler_expected_counts_use_the_number_of_tries():
    r, k = 10, 6
    g = tf.Graph()
    with g.as_default():
        tf.set_random_seed(7)
        s, t, e = tf.nn.log_uniform_candidate_sampler([[2, 9]], 2, k, True, r)
        s_v, t_v, e_v = _run([s, t, e], graph=g)
    assert len(set(s_v.tolist())) == k and s_v.dtype == np.int64
    p = _log_uniform_p(np.arange(r), r)
    # every expected count is 1 - (1 - p)^tries for one common number of tries >= k
    tries = np.log1p(-e_v.astype(np.float64)) / np.log1p(-p[s_v])
    assert np.allclose(tries, tries[0], rtol=1e-4) and tries[0] >= k - 1e-3
    np.testing.assert_allclose(t_v, -np.expm1(tries[0] * np.log1p(-p[[2, 9]]))[None],
                               rtol=1e-4)


def test_sampler_seeds_reproduce_and_runs_draw_anew():
    def draws(seed):
        g = tf.Graph()
        with g.as_default():
            s = tf.nn.log_uniform_candidate_sampler([[0]], 1, 8, True, 1000, seed=seed)[0]
        with tf.Session(graph=g) as session:
            return [session.run(s).tolist() for _ in range(2)]
    a, b = draws(3), draws(3)
    assert a == b and a[0] != a[1]
    assert draws(4) != a


def test_sampler_range_too_small():
    with tf.Graph().as_default(), pytest.raises(ValueError, match="range is too small"):
        tf.nn.log_uniform_candidate_sampler([[0]], 1, 5, True, 4)


def test_compute_accidental_hits():
    i, j, w = tf.nn.compute_accidental_hits([[1, 5], [2, 2], [0, 9]], [5, 2, 7, 1], 2)
    i_v, j_v, w_v = _run([i, j, w])
    assert i_v.tolist() == [0, 0, 1] and j_v.tolist() == [0, 3, 1]
    assert np.all(w_v == -np.finfo(np.float32).max) and w_v.dtype == np.float32
    assert i_v.dtype == np.int32 and j_v.dtype == np.int64
    none = _run(list(tf.nn.compute_accidental_hits([[3]], [1, 2], 1)))
    assert [a.shape for a in none] == [(0,), (0,), (0,)]
    with pytest.raises(ValueError, match="num_true = 2"):
        tf.nn.compute_accidental_hits([[3]], [1, 2], 2)


# -- the sampled losses ------------------------------------------------------------------------
def _problem(seed=0, batch=4, dim=3, classes=12, num_true=1, k=5):
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((classes, dim))
    biases = rng.standard_normal(classes)
    inputs = rng.standard_normal((batch, dim))
    labels = rng.integers(0, classes, (batch, num_true))
    sampled = rng.permutation(classes)[:k]
    sampled[0] = labels[0, 0]  # an accidental hit on purpose
    true_q = rng.uniform(0.1, 0.9, (batch, num_true))
    sampled_q = rng.uniform(0.1, 0.9, k)
    return weights, biases, inputs, labels, (sampled, true_q, sampled_q)


def _np_logits(weights, biases, inputs, labels, sv, remove_hits):
    sampled, true_q, sampled_q = sv
    true_logits = np.einsum("bd,btd->bt", inputs, weights[labels]) + biases[labels]
    sampled_logits = inputs @ weights[sampled].T + biases[sampled]
    if remove_hits:
        hits = (labels[:, :, None] == sampled[None, None, :]).any(axis=1)
        sampled_logits = sampled_logits + np.where(hits, -np.finfo(np.float32).max, 0.0)
    return np.concatenate([true_logits - np.log(true_q), sampled_logits - np.log(sampled_q)],
                          1)


@pytest.mark.parametrize("num_true", [1, 2])
@pytest.mark.parametrize("remove_hits", [False, True])
def test_nce_loss_matches_numpy(num_true, remove_hits):
    w, b, x, labels, sv = _problem(num_true=num_true)
    logits = _np_logits(w, b, x, labels, sv, remove_hits)
    target = np.concatenate([np.full((4, num_true), 1.0 / num_true), np.zeros((4, 5))], 1)
    want = np.sum(np.logaddexp(0, logits) - logits * target, axis=1)
    loss = tf.nn.nce_loss(tf.constant(w), tf.constant(b), labels, tf.constant(x), 5, 12,
                          num_true=num_true, sampled_values=tuple(tf.constant(v) for v in sv),
                          remove_accidental_hits=remove_hits)
    np.testing.assert_allclose(_run(loss), want, rtol=1e-10)


@pytest.mark.parametrize("num_true", [1, 2])
def test_sampled_softmax_loss_matches_numpy(num_true):
    w, b, x, labels, sv = _problem(seed=1, num_true=num_true)
    logits = _np_logits(w, b, x, labels, sv, remove_hits=True)  # TF's default: remove
    target = np.concatenate([np.full((4, num_true), 1.0 / num_true), np.zeros((4, 5))], 1)
    want = -np.sum(target * sp.log_softmax(logits, axis=1), axis=1)
    loss = tf.nn.sampled_softmax_loss(tf.constant(w), tf.constant(b), labels, tf.constant(x),
                                      5, 12, num_true=num_true,
                                      sampled_values=tuple(tf.constant(v) for v in sv))
    np.testing.assert_allclose(_run(loss), want, rtol=1e-10)


@pytest.mark.parametrize("loss_fn", ["nce", "sampled_softmax"])
def test_sampled_losses_gradients_check(loss_fn):
    w, b, x, labels, sv = _problem(seed=2, num_true=2)
    fn = tf.nn.nce_loss if loss_fn == "nce" else tf.nn.sampled_softmax_loss

    def f(weights, biases, inputs):
        return fn(weights, biases, labels, inputs, 5, 12, num_true=2,
                  sampled_values=tuple(tf.constant(v) for v in sv))
    report = check_gradients(f, [w, b, x], order=2, seed=0)
    assert report.verdict == PASS, report


def test_word2vec_style_training_lowers_the_loss():
    rng = np.random.default_rng(0)
    vocab, dim, batch = 50, 8, 32
    g = tf.Graph()
    with g.as_default():
        tf.set_random_seed(0)
        centers = tf.placeholder(tf.int32, [batch])
        contexts = tf.placeholder(tf.int64, [batch, 1])
        emb = tf.Variable(tf.random_uniform([vocab, dim], -1.0, 1.0))
        nce_w = tf.Variable(tf.truncated_normal([vocab, dim], stddev=0.3))
        nce_b = tf.Variable(tf.zeros([vocab]))
        loss = tf.reduce_mean(tf.nn.nce_loss(nce_w, nce_b, contexts,
                                             tf.nn.embedding_lookup(emb, centers),
                                             num_sampled=8, num_classes=vocab))
        train = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
        init = tf.global_variables_initializer()
    c = rng.integers(0, vocab, batch)
    feed = {centers: c, contexts: ((c * 7 + 3) % vocab)[:, None]}  # a learnable pairing
    with tf.Session(graph=g) as s:
        s.run(init)
        first = np.mean([s.run(loss, feed) for _ in range(5)])
        for _ in range(200):
            s.run(train, feed)
        last = np.mean([s.run(loss, feed) for _ in range(5)])
    assert last < 0.5 * first


def test_sampled_losses_with_unknown_static_dims():
    w, b, x, labels, sv = _problem(seed=3, num_true=2)
    with tf.Graph().as_default():
        wp = tf.placeholder(tf.float64, [None, None])
        xp = tf.placeholder(tf.float64, [None, None])
        lp = tf.placeholder(tf.int32, [None, 2])
        losses = [fn(wp, tf.constant(b), lp, xp, 5, 12, num_true=2,
                     sampled_values=tuple(tf.constant(v) for v in sv))
                  for fn in (tf.nn.nce_loss, tf.nn.sampled_softmax_loss)]
        got = _run(losses, {wp: w, xp: x, lp: labels})
    for fn, value in zip((tf.nn.nce_loss, tf.nn.sampled_softmax_loss), got):
        want = _run(fn(tf.constant(w), tf.constant(b), labels, tf.constant(x), 5, 12,
                       num_true=2, sampled_values=tuple(tf.constant(v) for v in sv)))
        np.testing.assert_allclose(value, want, rtol=1e-12)
