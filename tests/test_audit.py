"""audit_step: each session.run changes exactly the variables it should, by the right amount."""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine.ops.state_ops import apply_gradient_descent
from gradverify.harness import FAIL, INCONCLUSIVE, PASS, audit_step


def _seed_model(beta=0.01, dtype=tf.float32, n=32, seed=0):
    """The seed question's model: logistic regression + beta * l2_loss(weights)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(dtype.np)
    y = np.eye(3, dtype=dtype.np)[rng.integers(0, 3, n)]
    tx = tf.placeholder(dtype, [None, 6])
    ty = tf.placeholder(dtype, [None, 3])
    weights = tf.Variable(rng.standard_normal((6, 3)).astype(dtype.np), name="weights")
    biases = tf.Variable(np.zeros(3, dtype.np), name="biases")
    logits = tf.matmul(tx, weights) + biases
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=ty, logits=logits))
    loss = loss + beta * tf.nn.l2_loss(weights)
    return {tx: x, ty: y}, weights, biases, loss


def _session():
    s = tf.Session()
    s.run(tf.global_variables_initializer())
    return s


def test_seed_question_weights_through_two_paths_biases_through_one(graph):
    feed, _, _, loss = _seed_model()
    step = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    s = _session()
    audit = audit_step(s, [step, loss], feed)
    assert audit.verdict == PASS, str(audit)
    assert sorted(audit.expected) == ["biases", "weights"]
    assert sorted(audit.changed) == ["biases", "weights"]
    w, b = audit.variable("weights"), audit.variable("biases")
    assert len(w.paths) == 2 and len(b.paths) == 1
    assert any("L2Loss" in p for p in w.paths) and any("MatMul" in p for p in w.paths)
    assert "L2Loss" not in b.paths[0]
    assert w.rule == "sgd" and w.max_error <= w.tolerance
    text = str(audit)
    assert "weights" in text and "L2Loss" in text


def test_several_steps_in_float64_and_global_step(graph):
    feed, _, _, loss = _seed_model(dtype=tf.float64)
    gs = tf.train.get_or_create_global_step()
    step = tf.train.GradientDescentOptimizer(0.1).minimize(loss, global_step=gs)
    s = _session()
    for k in range(4):
        audit = audit_step(s, [step, loss, gs], feed)
        assert audit.verdict == PASS, str(audit)
        assert audit.variable("global_step").changed
        assert audit.result[2] == k  # fetched beside the train op: the pre-step value
    assert s.run(gs) == 4


def test_non_trainable_unconnected_and_stopped_variables_must_not_change(graph):
    feed, _, _, loss = _seed_model()
    frozen = tf.Variable(1.0, trainable=False, name="frozen")
    tf.Variable(2.0, name="unconnected")
    stopped = tf.Variable(3.0, name="stopped")
    step = tf.train.GradientDescentOptimizer(0.5).minimize(
        loss + frozen + tf.stop_gradient(stopped) * 2.0)
    s = _session()
    audit = audit_step(s, step, feed)
    assert audit.verdict == PASS
    assert sorted(audit.expected) == ["biases", "weights"]
    for name in ("frozen", "unconnected", "stopped"):
        assert not audit.variable(name).changed


def test_var_list_restricts_the_update(graph):
    feed, _, biases, loss = _seed_model()
    step = tf.train.GradientDescentOptimizer(0.5).minimize(loss, var_list=[biases])
    audit = audit_step(_session(), step, feed)
    assert audit.verdict == PASS
    assert audit.expected == ["biases"] and audit.changed == ["biases"]


def test_tensor_learning_rate_fed_per_step(graph):
    feed, _, _, loss = _seed_model()
    lr = tf.placeholder(tf.float32, [])
    step = tf.train.GradientDescentOptimizer(lr).minimize(loss)
    s = _session()
    for rate in (0.5, 0.05):
        audit = audit_step(s, step, {**feed, lr: rate})
        assert audit.verdict == PASS, str(audit)


def test_directly_fetched_assignments_are_expected(graph):
    counter = tf.Variable(0.0)
    bump = counter.assign_add(2.0)
    s = _session()
    audit = audit_step(s, bump)
    assert audit.verdict == PASS and audit.changed == ["Variable"]


# -- faulty optimizers -------------------------------------------------------------------------
class UpdatesEverything(tf.train.GradientDescentOptimizer):
    """Differentiates w.r.t. every global variable, trainable or not."""

    def compute_gradients(self, loss, var_list=None, **kw):
        pairs = super().compute_gradients(loss, var_list=tf.global_variables(), **kw)
        for g, _ in pairs:  # pretend nothing was asked: the var_list defaulted
            if g is not None:
                self._origin[g] = (loss, None)
        return pairs


class StaleGradient(tf.train.GradientDescentOptimizer):
    """Applies the gradient of the previous step (kept in a shadow variable)."""

    def _apply_dense(self, grad, var):
        shadow = tf.Variable(tf.zeros(var.shape.as_list(), var.dtype), trainable=False,
                             name=var.op.name + "_stale")
        lr = self._hyper("learning_rate", self._learning_rate, var.dtype)
        update = apply_gradient_descent(var, lr, shadow.value())
        with tf.control_dependencies([update]):
            keep = shadow.assign(grad)
        return tf.group(update, keep), {"learning_rate": lr}


class LeaksOutsideVarList(tf.train.GradientDescentOptimizer):
    """Also updates every other trainable variable, whatever var_list says."""

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        pairs = list(grads_and_vars)
        loss = next(self._origin[g][0] for g, _ in pairs if g is not None)
        listed = {v for _, v in pairs}
        extra = [v for v in tf.trainable_variables() if v not in listed]
        grads = tf.gradients(loss, extra)
        for g in grads:
            if g is not None:
                self._origin[g] = self._origin[pairs[0][0]]
        return super().apply_gradients(pairs + list(zip(grads, extra)), global_step, name)


def test_faulty_optimizer_updating_a_non_trainable_variable(graph):
    feed, _, biases, loss = _seed_model()
    frozen = tf.Variable(np.ones(3, np.float32), trainable=False, name="frozen")
    step = UpdatesEverything(0.5).minimize(loss + tf.reduce_sum(frozen * biases))
    s = _session()
    audit = audit_step(s, step, feed)
    assert audit.verdict == FAIL
    assert "not trainable" in audit.variable("frozen").reason


def test_faulty_optimizer_with_a_stale_gradient(graph):
    feed, _, _, loss = _seed_model()
    step = StaleGradient(0.5).minimize(loss)
    s = _session()
    audit = audit_step(s, step, feed)
    assert audit.verdict == FAIL
    reasons = " ".join(audit.reasons)
    assert "should change but did not" in reasons  # the first step applies zeros
    assert sorted(audit.missing) == ["biases", "weights"]
    assert sorted(audit.unexpected) == [  # the shadows are written outside any record
        "GradientDescent/update_biases/biases_stale",
        "GradientDescent/update_weights/weights_stale"]
    audit_step(s, step, feed)  # weights did not move in step 1: step 2's gradient matches
    audit = audit_step(s, step, feed)  # step 3 applies step 2's gradient at other weights
    assert audit.verdict == FAIL
    assert "delta off the sgd rule" in " ".join(audit.reasons)


def test_faulty_optimizer_updating_outside_var_list(graph):
    feed, _, biases, loss = _seed_model()
    step = LeaksOutsideVarList(0.5).minimize(loss, var_list=[biases])
    s = _session()
    audit = audit_step(s, step, feed)
    assert audit.verdict == FAIL
    assert "not in the var_list" in audit.variable("weights").reason


def test_update_without_a_record_is_unexpected(graph):
    # a fused optimizer kernel run outside any optimizer: nothing says how it should move
    feed, weights, biases, loss = _seed_model()
    (gw,) = tf.gradients(loss, [weights])
    sneaky = tf.group(tf.train.GradientDescentOptimizer(0.5).minimize(loss, var_list=[biases]),
                      apply_gradient_descent(weights, tf.constant(0.5), gw))
    audit = audit_step(_session(), sneaky, feed)
    assert audit.verdict == FAIL
    assert audit.unexpected == ["weights"]
    assert "no update record declares" in audit.variable("weights").reason


def test_grouped_hand_written_update_is_predicted_from_its_own_graph(graph):
    feed, weights, biases, loss = _seed_model()
    bump = weights.assign_add(tf.ones_like(weights))
    step = tf.group(tf.train.GradientDescentOptimizer(0.5).minimize(loss, var_list=[biases]),
                    bump)
    audit = audit_step(_session(), step, feed)
    assert audit.verdict == PASS, str(audit)
    assert sorted(audit.expected) == ["biases", "weights"]
    assert audit.variable("weights").rule == "assign_add"
    assert audit.variable("weights").sources == [f"{bump.op.name} (hand-written)"]


def test_fetched_loss_must_be_the_pre_update_value(graph, monkeypatch):
    feed, _, _, loss = _seed_model()
    step = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    s = _session()
    real_run = s.run
    calls = {"n": 0}

    def post_update_run(fetches, feed_dict=None, **kw):  # an engine reading after writing
        calls["n"] += 1
        out = real_run(fetches, feed_dict, **kw)
        if isinstance(fetches, list) and fetches and fetches[0] is step:
            out[1] = real_run(loss, feed_dict)
        return out
    monkeypatch.setattr(s, "run", post_update_run)
    audit = audit_step(s, [step, loss], feed)
    assert audit.verdict == FAIL
    assert any("not the pre-update value" in r for r in audit.reasons)


# -- stochastic steps -----------------------------------------------------------------------
def _dropout_model(seed):
    if seed is not None:
        tf.set_random_seed(seed)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((16, 5)).astype(np.float32))
    w = tf.Variable(rng.standard_normal((5, 2)).astype(np.float32))
    loss = tf.reduce_sum(tf.square(tf.nn.dropout(tf.matmul(x, w), keep_prob=0.5)))
    return tf.train.GradientDescentOptimizer(0.01).minimize(loss), loss


def test_unseeded_dropout_is_inconclusive(graph):
    step, loss = _dropout_model(seed=None)
    audit = audit_step(_session(), [step, loss])
    assert audit.verdict == INCONCLUSIVE
    assert any("random ops without seeds" in n for n in audit.notes)


def test_seeded_dropout_is_replayed_and_audited(graph):
    step, loss = _dropout_model(seed=42)
    s = _session()
    for _ in range(3):
        audit = audit_step(s, [step, loss])
        assert audit.verdict == PASS, str(audit)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_audit_dict_is_json_ready(graph, dtype):
    import json
    feed, _, _, loss = _seed_model(dtype=dtype)
    step = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    audit = audit_step(_session(), [step, loss], feed)
    data = json.loads(json.dumps(audit.to_dict()))
    assert data["verdict"] == PASS
    assert {v["name"] for v in data["variables"]} == {"weights", "biases"}
