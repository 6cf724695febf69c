"""``tf.train.GradientDescentOptimizer`` and the global step (spec section 5).

The model: a least-squares layer ``loss = 0.5 * sum((X W + b - T)^2)`` in float64, whose
gradients are derived by hand: ``dW = X^T r``, ``db = sum_rows(r)`` with ``r = X W + b - T``.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine.train import UPDATE_RECORDS, UpdateRecord

RTOL = 1e-12


class Model:
    """Trainable W, b; a trainable variable u unconnected to the loss; a frozen scale s
    (non-trainable, but on the loss path)."""

    def __init__(self, rng, dtype=np.float64):
        self.X = rng.standard_normal((5, 3)).astype(dtype)
        self.T = rng.standard_normal((5, 2)).astype(dtype)
        self.W0 = rng.standard_normal((3, 2)).astype(dtype)
        self.b0 = rng.standard_normal(2).astype(dtype)
        self.u0 = rng.standard_normal(4).astype(dtype)
        self.s0 = dtype(1.3)
        self.W = tf.Variable(self.W0, name="W")
        self.b = tf.Variable(self.b0, name="b")
        self.u = tf.Variable(self.u0, name="u")
        self.s = tf.Variable(self.s0, trainable=False, name="s")
        r = (tf.matmul(tf.constant(self.X), self.W) + self.b) * self.s - tf.constant(self.T)
        self.loss = tf.reduce_sum(r * r) * 0.5

    def residual(self, w, b):
        return (self.X @ w + b) * self.s0 - self.T

    def loss_np(self, w, b):
        return 0.5 * np.sum(self.residual(w, b) ** 2)

    def grads_np(self, w, b):
        r = self.residual(w, b) * self.s0
        return self.X.T @ r, r.sum(axis=0)


@pytest.fixture
def model(rng):
    return Model(rng)


def _session():
    s = tf.Session()
    s.run(tf.global_variables_initializer())
    return s


# -- compute_gradients -------------------------------------------------------------------------
def test_compute_gradients_default_var_list_is_trainable_variables(model):
    pairs = tf.train.GradientDescentOptimizer(0.1).compute_gradients(model.loss)
    assert [v for _, v in pairs] == [model.W, model.b, model.u]       # creation order
    assert model.s not in [v for _, v in pairs]                        # not trainable
    (gW, _), (gb, _), (gu, _) = pairs
    assert gu is None                                                  # unconnected
    with _session() as s:
        gW_val, gb_val = s.run([gW, gb])
    dW, db = model.grads_np(model.W0, model.b0)
    np.testing.assert_allclose(gW_val, dW, rtol=RTOL)
    np.testing.assert_allclose(gb_val, db, rtol=RTOL)


def test_compute_gradients_var_list_subset_and_non_trainable(model):
    pairs = tf.train.GradientDescentOptimizer(0.1).compute_gradients(
        model.loss, var_list=[model.b, model.s])
    assert [v for _, v in pairs] == [model.b, model.s]
    (gb, _), (gs, _) = pairs
    with _session() as s:
        gb_val, gs_val = s.run([gb, gs])
    r = model.residual(model.W0, model.b0)
    np.testing.assert_allclose(gb_val, (r * model.s0).sum(axis=0), rtol=RTOL)
    np.testing.assert_allclose(gs_val, np.sum(r * (model.X @ model.W0 + model.b0)),
                               rtol=RTOL)


def test_compute_gradients_empty_var_list_raises(model):
    opt = tf.train.GradientDescentOptimizer(0.1)
    with pytest.raises(ValueError, match=r"^No variables to optimize\.$"):
        opt.compute_gradients(model.loss, var_list=[])
    with pytest.raises(ValueError, match=r"^No variables to optimize\.$"):
        opt.minimize(model.loss, var_list=[])


def test_no_trainable_variables_raises():
    v = tf.Variable(2.0, trainable=False)
    with pytest.raises(ValueError, match=r"^No variables to optimize\.$"):
        tf.train.GradientDescentOptimizer(0.1).minimize(v * v)


def test_non_float_loss_raises():
    v = tf.Variable(3)
    with pytest.raises(ValueError, match="int32"):
        tf.train.GradientDescentOptimizer(0.1).compute_gradients(v * v, var_list=[v])


# -- minimize: which variables change ----------------------------------------------------------
def test_minimize_updates_trainable_connected_variables_only(model):
    train = tf.train.GradientDescentOptimizer(0.1).minimize(model.loss)
    with _session() as s:
        s.run(train)
        W, b, u, sc = s.run([model.W, model.b, model.u, model.s])
    dW, db = model.grads_np(model.W0, model.b0)
    np.testing.assert_allclose(W, model.W0 - 0.1 * dW, rtol=RTOL)
    np.testing.assert_allclose(b, model.b0 - 0.1 * db, rtol=RTOL)
    np.testing.assert_array_equal(u, model.u0)          # unconnected: untouched
    assert sc == model.s0                                # non-trainable: untouched


def test_minimize_var_list_subset(model):
    train = tf.train.GradientDescentOptimizer(0.1).minimize(model.loss, var_list=[model.b])
    with _session() as s:
        s.run(train)
        W, b = s.run([model.W, model.b])
    _, db = model.grads_np(model.W0, model.b0)
    np.testing.assert_array_equal(W, model.W0)
    np.testing.assert_allclose(b, model.b0 - 0.1 * db, rtol=RTOL)


def test_minimize_non_trainable_in_explicit_var_list_is_updated(model):
    """TF: an explicit var_list overrides trainability."""
    train = tf.train.GradientDescentOptimizer(0.01).minimize(model.loss, var_list=[model.s])
    with _session() as s:
        s.run(train)
        sc, W = s.run([model.s, model.W])
    r = model.residual(model.W0, model.b0)
    ds = np.sum(r * (model.X @ model.W0 + model.b0))
    np.testing.assert_allclose(sc, model.s0 - 0.01 * ds, rtol=RTOL)
    np.testing.assert_array_equal(W, model.W0)


def test_apply_gradients_skips_none_pairs(model):
    opt = tf.train.GradientDescentOptimizer(0.1)
    pairs = opt.compute_gradients(model.loss)
    assert pairs[2][0] is None
    train = opt.apply_gradients(pairs)
    records = tf.get_default_graph().get_collection(UPDATE_RECORDS)
    assert [r.variable for r in records] == [model.W, model.b]
    with _session() as s:
        s.run(train)
        u = s.run(model.u)
    np.testing.assert_array_equal(u, model.u0)


def test_all_none_gradients_raise(model):
    opt = tf.train.GradientDescentOptimizer(0.1)
    with pytest.raises(ValueError, match=r"^No gradients provided for any variable"):
        opt.minimize(model.loss, var_list=[model.u])
    with pytest.raises(ValueError, match=r"^No gradients provided for any variable"):
        opt.apply_gradients([(None, model.W), (None, model.u)])
    stopped = tf.stop_gradient(model.W) * 2.0
    with pytest.raises(ValueError, match=r"^No gradients provided for any variable"):
        opt.minimize(tf.reduce_sum(stopped), var_list=[model.W])


def test_several_runs_follow_the_sgd_trajectory(model):
    train = tf.train.GradientDescentOptimizer(0.05).minimize(model.loss)
    W, b = model.W0.copy(), model.b0.copy()
    with _session() as s:
        for _ in range(4):
            s.run(train)
            dW, db = model.grads_np(W, b)
            W, b = W - 0.05 * dW, b - 0.05 * db
        W_e, b_e = s.run([model.W, model.b])
    np.testing.assert_allclose(W_e, W, rtol=1e-11)
    np.testing.assert_allclose(b_e, b, rtol=1e-11)


# -- reads before writes -----------------------------------------------------------------------
def test_loss_fetched_beside_train_op_is_pre_update(model):
    train = tf.train.GradientDescentOptimizer(0.1).minimize(model.loss)
    with _session() as s:
        _, l0 = s.run([train, model.loss])
        l1 = s.run(model.loss)
        _, l1_again = s.run([train, model.loss])
    np.testing.assert_allclose(l0, model.loss_np(model.W0, model.b0), rtol=RTOL)
    dW, db = model.grads_np(model.W0, model.b0)
    np.testing.assert_allclose(l1, model.loss_np(model.W0 - 0.1 * dW, model.b0 - 0.1 * db),
                               rtol=RTOL)
    np.testing.assert_allclose(l1_again, l1, rtol=RTOL)


def test_variable_fetched_beside_train_op_is_pre_update(model):
    train = tf.train.GradientDescentOptimizer(0.1).minimize(model.loss)
    with _session() as s:
        _, W_before = s.run([train, model.W])
        W_after = s.run(model.W)
    np.testing.assert_array_equal(W_before, model.W0)
    assert not np.allclose(W_after, model.W0)


# -- learning rate forms -----------------------------------------------------------------------
def _one_step_delta(model, lr, feed=None):
    train = tf.train.GradientDescentOptimizer(lr).minimize(model.loss)
    with _session() as s:
        s.run(train, feed)
        return s.run(model.W) - model.W0


def test_learning_rate_python_float(model):
    dW, _ = model.grads_np(model.W0, model.b0)
    np.testing.assert_allclose(_one_step_delta(model, 0.25), -0.25 * dW, rtol=1e-10)


def test_learning_rate_tensor(model):
    dW, _ = model.grads_np(model.W0, model.b0)
    lr = tf.constant(np.float64(0.2)) * 1.5
    np.testing.assert_allclose(_one_step_delta(model, lr), -0.3 * dW, rtol=1e-10)


def test_learning_rate_float32_tensor_is_cast_to_the_variable_dtype(model):
    dW, _ = model.grads_np(model.W0, model.b0)
    lr = tf.constant(np.float32(0.5))
    np.testing.assert_allclose(_one_step_delta(model, lr), -0.5 * dW, rtol=1e-10)
    (rec,) = [r for r in tf.get_default_graph().get_collection(UPDATE_RECORDS)
              if r.variable is model.W]
    assert rec.hyper["learning_rate"].dtype is tf.float64


def test_learning_rate_placeholder_changes_between_runs(model):
    lr = tf.placeholder(tf.float64, [])
    train = tf.train.GradientDescentOptimizer(lr).minimize(model.loss)
    W, b = model.W0, model.b0
    with _session() as s:
        for rate in (0.1, 0.0, 0.03):
            s.run(train, {lr: rate})
            dW, db = model.grads_np(W, b)
            W, b = W - rate * dW, b - rate * db
            np.testing.assert_allclose(s.run(model.W), W, rtol=1e-11)
        with pytest.raises(tf.errors.InvalidArgumentError, match="must feed"):
            s.run(train)


def test_learning_rate_python_float_is_exact_in_float64(model):
    """0.1 is not representable in float32: a float32 round trip would give a relative error
    of ~1.5e-8 in the step; the float64 update must be W - 0.1 * g to 1e-15."""
    dW, db = model.grads_np(model.W0, model.b0)
    train = tf.train.GradientDescentOptimizer(0.1).minimize(model.loss)
    with _session() as s:
        s.run(train)
        W, b = s.run([model.W, model.b])
    np.testing.assert_allclose(W, model.W0 - 0.1 * dW, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(b, model.b0 - 0.1 * db, rtol=1e-15, atol=1e-15)
    (rec,) = [r for r in tf.get_default_graph().get_collection(UPDATE_RECORDS)
              if r.variable is model.W]
    with tf.Session() as s:
        assert s.run(rec.hyper["learning_rate"]) == 0.1      # the exact float64 0.1


def test_learning_rate_float64_variable(model):
    lr = tf.Variable(np.float64(0.1), trainable=False, name="lr")
    dW, _ = model.grads_np(model.W0, model.b0)
    train = tf.train.GradientDescentOptimizer(lr).minimize(model.loss)
    with _session() as s:
        s.run(train)
        np.testing.assert_allclose(s.run(model.W), model.W0 - 0.1 * dW, rtol=1e-15,
                                   atol=1e-15)
        s.run(lr.assign(0.0))                                   # read on every run
        before = s.run(model.W)
        s.run(train)
        np.testing.assert_array_equal(s.run(model.W), before)


def test_float32_model_updates_in_float32(rng):
    m = Model(rng, dtype=np.float32)
    train = tf.train.GradientDescentOptimizer(0.1).minimize(m.loss)
    with _session() as s:
        s.run(train)
        W = s.run(m.W)
    assert W.dtype == np.float32
    dW, _ = Model.grads_np(m, m.W0.astype(np.float64), m.b0.astype(np.float64))
    np.testing.assert_allclose(W, m.W0 - 0.1 * dW, rtol=1e-5, atol=1e-6)


# -- the train op ------------------------------------------------------------------------------
def test_minimize_returns_operation_named_like_tf_and_in_train_op_collection(model):
    g = tf.get_default_graph()
    train = tf.train.GradientDescentOptimizer(0.1).minimize(model.loss)
    assert isinstance(train, tf.Operation)
    assert train.name == "GradientDescent"
    assert g.get_collection(tf.GraphKeys.TRAIN_OP) == [train]
    train2 = tf.train.GradientDescentOptimizer(0.1).minimize(model.loss)
    assert train2.name == "GradientDescent_1"
    train3 = tf.train.GradientDescentOptimizer(0.1).minimize(model.loss, name="step")
    assert train3.name == "step"
    assert g.get_collection(tf.GraphKeys.TRAIN_OP) == [train, train2, train3]
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        assert s.run(train) is None
    assert tf.train.GradientDescentOptimizer(0.1).get_name() == "GradientDescent"


def test_optimizer_reused_in_a_new_graph(rng):
    """TF1 converts the learning rate per apply_gradients call: one optimizer object can
    serve two graphs."""
    opt = tf.train.GradientDescentOptimizer(0.5)
    for start in (2.0, -4.0):
        with tf.Graph().as_default():
            w = tf.Variable(np.float64(start))
            train = opt.minimize(w * w)
            with tf.Session() as s:
                s.run(tf.global_variables_initializer())
                s.run(train)
                assert s.run(w) == 0.0             # w - 0.5 * 2w


# -- update records ----------------------------------------------------------------------------
def test_update_records_describe_each_update(model):
    g = tf.get_default_graph()
    train = tf.train.GradientDescentOptimizer(0.1).minimize(model.loss)
    records = g.get_collection(UPDATE_RECORDS)
    assert len(records) == 2
    assert all(isinstance(r, UpdateRecord) for r in records)
    assert [r.variable for r in records] == [model.W, model.b]
    for r in records:
        assert r.rule == "sgd"
        assert set(r.hyper) == {"learning_rate"}
        assert r.gradient.dtype is r.variable.dtype
        assert r.gradient.shape.as_list() == r.variable.shape.as_list()
        assert r.op in g.get_operations()
        assert r.op in train.control_inputs or any(
            r.op in c.control_inputs for c in train.control_inputs)
    dW, db = model.grads_np(model.W0, model.b0)
    with _session() as s:
        gW, gb, lrW, lrb = s.run([records[0].gradient, records[1].gradient,
                                  records[0].hyper["learning_rate"],
                                  records[1].hyper["learning_rate"]])
    np.testing.assert_allclose(gW, dW, rtol=RTOL)
    np.testing.assert_allclose(gb, db, rtol=RTOL)
    assert lrW == 0.1 and lrb == 0.1


def test_update_record_gradient_follows_the_feed(rng):
    x = tf.placeholder(tf.float64, [None, 2])
    w = tf.Variable(np.array([0.5, -1.0]))
    loss = tf.reduce_sum(x * w * w)
    tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    (rec,) = tf.get_default_graph().get_collection(UPDATE_RECORDS)
    x_np = rng.standard_normal((3, 2))
    with _session() as s:
        g = s.run(rec.gradient, {x: x_np})
    np.testing.assert_allclose(g, 2 * np.array([0.5, -1.0]) * x_np.sum(axis=0), rtol=RTOL)


# -- global step -------------------------------------------------------------------------------
def test_global_step_helpers():
    g = tf.get_default_graph()
    assert tf.train.get_global_step() is None
    step = tf.train.create_global_step()
    assert step.name == "global_step:0"
    assert step.dtype is tf.int64 and step.shape.as_list() == []
    assert not step.trainable
    assert step in tf.global_variables() and step not in tf.trainable_variables()
    assert g.get_collection(tf.GraphKeys.GLOBAL_STEP) == [step]
    assert tf.train.get_global_step() is step
    assert tf.train.get_or_create_global_step() is step
    with pytest.raises(ValueError, match="global_step"):
        tf.train.create_global_step()
    with tf.Session() as s:
        s.run(step.initializer)
        assert s.run(step) == 0


def test_get_or_create_global_step_creates_once():
    other = tf.Graph()
    step = tf.train.get_or_create_global_step()
    assert tf.train.get_or_create_global_step() is step
    other_step = tf.train.get_or_create_global_step(other)
    assert other_step is not step and other_step.graph is other
    assert tf.train.get_global_step(other) is other_step


def test_global_step_increments_once_per_run_after_the_updates(model):
    step = tf.train.get_or_create_global_step()
    train = tf.train.GradientDescentOptimizer(0.1).minimize(model.loss, global_step=step)
    assert isinstance(train, tf.Operation) and train.name == "GradientDescent"
    assert tf.get_default_graph().get_collection(tf.GraphKeys.TRAIN_OP) == [train]
    with _session() as s:
        for k in range(3):
            _, before, W_before = s.run([train, step, model.W])
            assert before == k                                   # pre-run value
            assert s.run(step) == k + 1                          # exactly +1
        W_now = s.run(model.W)
    assert not np.allclose(W_now, W_before)
    # the increment runs after the updates: it depends on every update op
    records = tf.get_default_graph().get_collection(UPDATE_RECORDS)
    deps, stack = set(), list(train.control_inputs) + [t.op for t in train.inputs]
    while stack:
        op = stack.pop()
        if op not in deps:
            deps.add(op)
            stack.extend(op.control_inputs)
            stack.extend(t.op for t in op.inputs)
    assert all(r.op in deps for r in records)


def test_global_step_with_apply_gradients(model):
    step = tf.train.create_global_step()
    opt = tf.train.GradientDescentOptimizer(0.1)
    train = opt.apply_gradients(opt.compute_gradients(model.loss), global_step=step)
    with _session() as s:
        s.run(train)
        s.run(train)
        assert s.run(step) == 2
