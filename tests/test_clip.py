"""clip_by_norm, global_norm, clip_by_global_norm, clip_by_average_norm: TF1's formulas,
None pass-through, use_norm, names, gradients (finite differences) and use in training."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradverify.engine as tf
from tests._util import evaluate, vjp


def _ref_clip_by_norm(t, c, axes=None):
    l2 = np.sqrt(np.sum(t * t, axis=None if axes is None else tuple(axes), keepdims=True))
    return t * c / np.maximum(l2, c)


def _numeric_vjp(f, x, w, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = np.sum(w * (f(x + d) - f(x - d))) / (2 * eps)
    return g


# arrays with the hard cases on purpose: size-1 dims, exact zeros, values far from 1
_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
_values = st.one_of(st.floats(-1e6, 1e6), st.just(0.0), st.floats(-1e-6, 1e-6))
_arrays = _shapes.flatmap(lambda s: hnp.arrays(np.float64, s, elements=_values))


@settings(max_examples=60, deadline=None)
@given(t=_arrays, c=st.floats(1e-3, 1e3), use_axes=st.booleans())
def test_clip_by_norm_matches_formula(t, c, use_axes):
    axes = [t.ndim - 1] if use_axes else None
    got = evaluate(lambda x: tf.clip_by_norm(x, c, axes=axes), [t])
    np.testing.assert_allclose(got, _ref_clip_by_norm(t, c, axes), rtol=1e-12, atol=0)
    assert got.shape == t.shape


@settings(max_examples=60, deadline=None)
@given(ts=st.lists(_arrays, min_size=1, max_size=4), c=st.floats(1e-3, 1e3),
       holes=st.lists(st.booleans(), min_size=4, max_size=4))
def test_clip_by_global_norm_matches_formula_with_none_entries(ts, c, holes):
    with tf.Graph().as_default():
        tensors = [None if hole and i else tf.constant(t)
                   for i, (t, hole) in enumerate(zip(ts, holes))]
        clipped, norm = tf.clip_by_global_norm(tensors, c)
        assert [x is None for x in clipped] == [x is None for x in tensors]
        with tf.Session() as s:
            got, got_norm = s.run([[x for x in clipped if x is not None], norm])
    kept = [t for t, x in zip(ts, tensors) if x is not None]
    ref_norm = np.sqrt(sum(np.sum(t * t) for t in kept))
    np.testing.assert_allclose(got_norm, ref_norm, rtol=1e-12)
    for g, t in zip(got, kept):
        np.testing.assert_allclose(g, t * c / max(ref_norm, c), rtol=1e-12, atol=1e-300)


def test_clip_by_global_norm_use_norm_replaces_the_norm():
    with tf.Graph().as_default():
        (a,), norm = tf.clip_by_global_norm([tf.constant([3.0, 4.0])], 1.0, use_norm=10.0)
        with tf.Session() as s:
            np.testing.assert_allclose(s.run(a), [0.3, 0.4], rtol=1e-6)
            assert float(s.run(norm)) == 10.0


def test_clip_by_global_norm_of_inf_or_nan_gives_nan():
    with tf.Graph().as_default():
        (a, b), norm = tf.clip_by_global_norm(
            [tf.constant([np.inf, 1.0]), tf.constant([2.0])], 1.0)
        with tf.Session() as s:
            va, vb, n = s.run([a, b, norm])
    assert np.isinf(n) and np.all(np.isnan(va)) and np.all(np.isnan(vb))


def test_zero_tensor_is_unchanged_and_clip_by_norm_gradient_stays_finite():
    out, (g,), w = vjp(lambda x: tf.clip_by_norm(x, 1.0), [np.zeros((2, 3))])
    assert np.all(out == 0)
    np.testing.assert_allclose(g, w)  # below the clip norm: the identity
    # clip_by_global_norm of zeros is zeros (1/0 = inf is cut by the minimum), as in TF1
    (clipped,), norm = evaluate(lambda x: tf.clip_by_global_norm([x], 1.0), [np.zeros(3)])
    assert norm == 0 and np.all(clipped == 0)


def test_global_norm_and_average_norm_values():
    ts = [np.array([[1.0, 2.0]]), np.array([2.0])]
    got = evaluate(lambda a, b: tf.global_norm([a, None, b]), ts)
    assert got == pytest.approx(3.0)
    t = np.array([[3.0, 0.0], [0.0, 4.0]])  # norm 5, 4 elements: average norm 1.25
    np.testing.assert_allclose(evaluate(lambda x: tf.clip_by_average_norm(x, 0.5), [t]),
                               t * 0.5 / 1.25)
    np.testing.assert_allclose(evaluate(lambda x: tf.clip_by_average_norm(x, 2.0), [t]), t)


def test_errors_and_names():
    with tf.Graph().as_default():
        with pytest.raises(TypeError, match="t_list should be a sequence"):
            tf.clip_by_global_norm(tf.constant([1.0]), 1.0)
        with pytest.raises(TypeError, match="t_list should be a sequence"):
            tf.global_norm("abc")
        with pytest.raises(TypeError, match="one dtype"):
            tf.global_norm([tf.constant([1.0]), tf.constant([1.0], tf.float64)])
    with tf.Graph().as_default():
        y = tf.clip_by_norm(tf.constant([1.0]), 1.0)
        (c,), n = tf.clip_by_global_norm([tf.constant([1.0])], 1.0)
        assert y.op.name == "clip_by_norm"
        assert n.op.name == "global_norm/global_norm"
        assert c.op.name == "clip_by_global_norm/clip_by_global_norm/_0"


@pytest.mark.parametrize("name, fn", [
    ("clip_by_norm", lambda x: tf.clip_by_norm(x, 1.5)),
    ("clip_by_norm_axes", lambda x: tf.clip_by_norm(x, 1.5, axes=[0])),
    ("clip_by_global_norm", lambda x: tf.clip_by_global_norm([x, x * 2.0], 1.5)[0][1]),
    ("global_norm", lambda x: tf.global_norm([x, tf.sin(x)])),
    ("clip_by_average_norm", lambda x: tf.clip_by_average_norm(x, 0.1)),
])
@pytest.mark.parametrize("seed", [0, 1])
def test_gradients_match_finite_differences(name, fn, seed):
    x = np.random.default_rng(seed).normal(size=(3, 2))
    _, (g,), w = vjp(fn, [x], seed=seed)

    def f(a):
        return np.asarray(evaluate(fn, [a]))
    np.testing.assert_allclose(g, _numeric_vjp(f, x, w), rtol=1e-6, atol=1e-8)


def test_clipping_between_compute_and_apply_gradients():
    with tf.Graph().as_default():
        w = tf.Variable([10.0, -10.0])
        loss = tf.reduce_sum(w * w)
        opt = tf.train.GradientDescentOptimizer(1.0)
        grads, variables = zip(*opt.compute_gradients(loss))
        clipped, norm = tf.clip_by_global_norm(list(grads), 1.0)
        step = opt.apply_gradients(zip(clipped, variables))
        with tf.Session() as s:
            s.run(tf.global_variables_initializer())
            _, n = s.run([step, norm])
            after = s.run(w)
    assert n == pytest.approx(np.sqrt(800.0))
    np.testing.assert_allclose(after, [10.0 - 1 / np.sqrt(2), -10.0 + 1 / np.sqrt(2)],
                               rtol=1e-6)
