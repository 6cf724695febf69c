"""The seed program: notMNIST logistic regression with L2 (``examples/notmnist_l2.py``).

(a) the example runs and learns; (b) one step of the same model in float64 is exactly the
hand-derived SGD update, and the fetched loss is the pre-update loss; (c) K steps follow a
NumPy reimplementation. The NumPy references use scipy.special, independent of the engine.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.special as sp

import gradverify.engine as tf

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "notmnist_l2.py"
BETA, LR = 0.01, 0.5


def _load_example():
    spec = importlib.util.spec_from_file_location("notmnist_l2_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    return _load_example()


# -- (a) the example runs and the loss falls ---------------------------------------------------
def test_example_runs_and_loss_falls(example, capsys):
    history = example.main(num_steps=120, seed=3, train_subset=1000, report_every=40)
    out = capsys.readouterr().out
    assert "Initialized" in out and "Loss at step 0:" in out and "Test accuracy:" in out
    losses = np.array(history["loss"])
    assert losses.shape == (120,) and np.all(np.isfinite(losses))
    assert losses[-1] < 0.3 * losses[0]
    assert np.mean(np.diff(losses) < 0) > 0.8          # mostly monotone decrease
    assert history["train_accuracy"][-1] > history["train_accuracy"][0] + 40
    assert history["report_steps"] == [0, 40, 80, 119]
    assert history["valid_accuracy"][-1] > history["valid_accuracy"][0] + 20
    assert 0.0 <= history["test_accuracy"] <= 100.0


def test_example_is_reproducible_with_a_seed(example):
    a = example.main(num_steps=5, seed=7, train_subset=300, verbose=False)
    b = example.main(num_steps=5, seed=7, train_subset=300, verbose=False)
    c = example.main(num_steps=5, seed=8, train_subset=300, verbose=False)
    assert a["loss"] == b["loss"]
    assert a["loss"] != c["loss"]


def test_example_data_shapes(example):
    (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = example.make_dataset(
        0, train_size=50, valid_size=20, test_size=10)
    x, y = example.reformat(tr_x, tr_y)
    assert x.shape == (50, 784) and x.dtype == np.float32
    assert y.shape == (50, 10) and y.dtype == np.float32
    np.testing.assert_array_equal(y.sum(axis=1), 1.0)
    np.testing.assert_array_equal(np.argmax(y, 1), tr_y)
    assert va_x.shape == (20, 28, 28) and te_x.shape == (10, 28, 28)
    assert va_y.shape == (20,) and te_y.shape == (10,)
    assert set(np.unique(np.concatenate([tr_y, va_y, te_y]))) <= set(range(10))
    assert x.min() >= -0.5 and x.max() <= 0.5


# -- the seed model in float64 -----------------------------------------------------------------
def _data(example, n, seed=11):
    (images, labels), _, _ = example.make_dataset(seed, train_size=n, valid_size=1,
                                                  test_size=1)
    x, y = example.reformat(images, labels)
    rng = np.random.default_rng(seed)
    w0 = np.clip(rng.standard_normal((784, 10)), -2, 2) * 0.1
    b0 = rng.standard_normal(10) * 0.1
    return x.astype(np.float64), y.astype(np.float64), w0, b0


class SeedModel:
    """The example's graph with float64 placeholders and known initial values."""

    def __init__(self, w0, b0):
        self.X = tf.placeholder(tf.float64, [None, 784])
        self.Y = tf.placeholder(tf.float64, [None, 10])
        self.weights = tf.Variable(tf.constant(w0))
        self.biases = tf.Variable(tf.constant(b0))
        logits = tf.matmul(self.X, self.weights) + self.biases
        self.loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
            labels=self.Y, logits=logits)) + tf.multiply(BETA, tf.nn.l2_loss(self.weights))
        self.optimizer = tf.train.GradientDescentOptimizer(LR).minimize(self.loss)
        self.prediction = tf.nn.softmax(logits)


def _loss_np(x, y, w, b):
    logits = x @ w + b
    return -np.mean(np.sum(y * sp.log_softmax(logits, axis=1), axis=1)) + BETA * 0.5 * np.sum(
        w * w)


def _step_np(x, y, w, b):
    p = sp.softmax(x @ w + b, axis=1)
    n = x.shape[0]
    return (w - LR * (x.T @ (p - y) / n + BETA * w),
            b - LR * np.mean(p - y, axis=0))


def test_one_step_in_float64_is_the_exact_sgd_update(example):
    x, y, w0, b0 = _data(example, 64)
    m = SeedModel(w0, b0)
    assert m.loss.dtype is tf.float64
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        _, loss = s.run([m.optimizer, m.loss], {m.X: x, m.Y: y})
        w1, b1 = s.run([m.weights, m.biases])
    np.testing.assert_allclose(loss, _loss_np(x, y, w0, b0), rtol=1e-12)   # pre-update
    w_ref, b_ref = _step_np(x, y, w0, b0)
    np.testing.assert_allclose(w1, w_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b1, b_ref, rtol=1e-12, atol=1e-14)
    # the step is not trivially small: the checks above are not just "w1 == w0"
    assert np.max(np.abs(w1 - w0)) > 1e-3 and np.max(np.abs(b1 - b0)) > 1e-3


def test_l2_term_enters_the_update(example):
    """Without the beta * W term the update differs by LR * BETA * W: a dropped or doubled
    regulariser gradient must not pass the 1e-12 check."""
    x, y, w0, b0 = _data(example, 32)
    m = SeedModel(w0, b0)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        s.run(m.optimizer, {m.X: x, m.Y: y})
        w1 = s.run(m.weights)
    p = sp.softmax(x @ w0 + b0, axis=1)
    no_l2 = w0 - LR * (x.T @ (p - y) / 32)
    assert np.max(np.abs(w1 - no_l2)) > 1e-4
    np.testing.assert_allclose(w1 - no_l2, -LR * BETA * w0, rtol=1e-9, atol=1e-14)


def test_k_steps_follow_the_numpy_trajectory(example):
    x, y, w0, b0 = _data(example, 200)
    m = SeedModel(w0, b0)
    w, b = w0, b0
    feed = {m.X: x, m.Y: y}
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for _ in range(12):
            _, loss, pred = s.run([m.optimizer, m.loss, m.prediction], feed)
            np.testing.assert_allclose(loss, _loss_np(x, y, w, b), rtol=1e-10)
            np.testing.assert_allclose(pred, sp.softmax(x @ w + b, axis=1), rtol=1e-10,
                                       atol=1e-14)
            w, b = _step_np(x, y, w, b)
        w_e, b_e = s.run([m.weights, m.biases])
    np.testing.assert_allclose(w_e, w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b_e, b, rtol=1e-10, atol=1e-12)
    assert _loss_np(x, y, w, b) < _loss_np(x, y, w0, b0)


def test_fed_batch_size_changes_between_runs(example):
    """The placeholders have a None batch dim: minibatches of different sizes in one
    session each get their own mean (1/N)."""
    x, y, w0, b0 = _data(example, 50)
    m = SeedModel(w0, b0)
    w, b = w0, b0
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for lo, hi in ((0, 50), (0, 7), (10, 11)):
            s.run(m.optimizer, {m.X: x[lo:hi], m.Y: y[lo:hi]})
            w, b = _step_np(x[lo:hi], y[lo:hi], w, b)
        w_e, b_e = s.run([m.weights, m.biases])
    np.testing.assert_allclose(w_e, w, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(b_e, b, rtol=1e-11, atol=1e-13)
