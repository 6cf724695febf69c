"""Gradient pipelines at their edges: scalar variables under clip_by_global_norm, gradient
accumulation (stored, but accumulated: not stale), several increments of one variable,
gradients mixed entry by entry, and a decoupled weight decay (no L2 in the loss)."""

from __future__ import annotations

import numpy as np

import gradverify.engine as tf
from gradverify.harness import FAIL, PASS, audit_step


def _session():
    s = tf.Session()
    s.run(tf.global_variables_initializer())
    return s


def _scalars():
    a = tf.Variable(np.float64(1.5), name="a")
    b = tf.Variable(np.float64(-0.5), name="b")
    c = tf.Variable(np.array([0.3, -0.2, 0.9]), name="c")
    loss = tf.square(a * b - 2.0) + a * tf.reduce_sum(c * c)
    return a, b, c, loss


def test_scalar_variables_under_clip_by_global_norm_pass(graph):
    a, b, c, loss = _scalars()
    grads, _ = tf.clip_by_global_norm(tf.gradients(loss, [a, b, c]), 0.5)
    step = tf.train.MomentumOptimizer(0.1, 0.9).apply_gradients(zip(grads, [a, b, c]))
    s = _session()
    for _ in range(4):
        audit = audit_step(s, step)
        assert audit.verdict == PASS, str(audit)
    assert audit.variable("a").pipeline == ["loss", "gradients", "clip_by_global_norm",
                                            "apply(momentum)"]


def test_scalar_gradients_swapped_fail(graph):
    a, b, c, loss = _scalars()
    ga, gb, gc = tf.gradients(loss, [a, b, c])
    step = tf.train.GradientDescentOptimizer(0.1).apply_gradients([(gb, a), (ga, b), (gc, c)])
    audit = audit_step(_session(), step)
    assert "(rule: gradient pairing)" in audit.variable("a").reason
    assert "(rule: gradient pairing)" in audit.variable("b").reason
    assert audit.variable("c").verdict == PASS


def test_gradients_mixed_entry_by_entry_fail(graph):
    u = tf.Variable(np.array([1.0, 2.0]), name="u")
    v = tf.Variable(np.array([-1.0, 0.5]), name="v")
    loss = tf.reduce_sum(tf.square(u - v * 3.0))
    gu, gv = tf.gradients(loss, [u, v])
    step = tf.train.GradientDescentOptimizer(0.1).apply_gradients([(gu + gv, u), (gv, v)])
    audit = audit_step(_session(), step)
    assert audit.verdict == FAIL
    assert "mixes the gradients of" in audit.variable("u").reason
    assert audit.variable("v").verdict == PASS


def test_gradient_accumulation_is_not_stale(graph):
    x = tf.placeholder(tf.float64, [None, 2])
    w = tf.Variable(np.array([[0.5], [-0.3]]), name="w")
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w) - 1.0))
    (gw,) = tf.gradients(loss, [w])
    acc = tf.Variable(tf.zeros([2, 1], tf.float64), trainable=False, name="acc")
    accumulate = acc.assign_add(gw)
    step = tf.train.GradientDescentOptimizer(0.1).apply_gradients([(acc.value() / 4.0, w)])
    reset = acc.assign(tf.zeros([2, 1], tf.float64))
    s = _session()
    rng = np.random.default_rng(0)
    for _ in range(2):
        for _ in range(4):
            s.run(accumulate, {x: rng.standard_normal((3, 2))})
        audit = audit_step(s, step)
        assert audit.verdict == PASS, str(audit)
        s.run(reset)


def test_two_increments_of_one_variable_add_up(graph):
    w = tf.Variable(np.array([1.0, 2.0]), name="w")
    first = w.assign_add(np.array([0.5, 0.5]))
    with tf.control_dependencies([first]):
        second = w.assign_sub(np.array([0.25, 1.0]))
    audit = audit_step(_session(), second)
    assert audit.verdict == PASS, str(audit)
    assert audit.variable("w").sources == [f"{first.op.name} (hand-written)",
                                           f"{second.op.name} (hand-written)"]


def test_decoupled_weight_decay_without_l2_in_the_loss_passes(graph):
    w = tf.Variable(np.array([1.0, -2.0]), name="w")
    loss = tf.reduce_sum(tf.sin(w))
    (g,) = tf.gradients(loss, [w])
    step = w.assign_sub(0.1 * (g + 0.01 * w))   # AdamW-style: the loss has no L2 term
    audit = audit_step(_session(), step)
    assert audit.verdict == PASS, str(audit)


def test_hand_written_momentum_reads_this_runs_accumulator(graph):
    # acc <- 0.9 acc + g, then w -= lr * acc (the assign's output, or a read ordered after
    # it): a gradient stored in THIS run is fresh
    w = tf.Variable(np.array([1.0, -2.0]), name="w")
    u = tf.Variable(np.array([0.5]), name="u")
    loss = tf.reduce_sum(tf.sin(w)) + tf.reduce_sum(u * u)
    gw, gu = tf.gradients(loss, [w, u])
    acc_w = tf.Variable(np.zeros(2), trainable=False, name="acc_w")
    acc_u = tf.Variable(np.zeros(1), trainable=False, name="acc_u")
    new_acc_w = acc_w.assign(0.9 * acc_w + gw)
    new_acc_u = acc_u.assign(0.9 * acc_u + gu)
    with tf.control_dependencies([new_acc_u]):
        step_u = u.assign_sub(0.1 * acc_u.read_value())
    step = tf.group(w.assign_sub(0.1 * new_acc_w), step_u)
    s = _session()
    for _ in range(3):
        audit = audit_step(s, step)
        assert audit.verdict == PASS, str(audit)


def test_a_variable_of_another_train_op_is_noted(graph):
    d = tf.Variable(np.array([0.3, 0.1]), name="d")
    g = tf.Variable(np.array([1.0]), name="g")
    d_loss = tf.reduce_sum(tf.square(d - g))
    g_loss = -d_loss
    tf.train.GradientDescentOptimizer(0.1, name="D").minimize(d_loss, var_list=[d])
    g_step = tf.train.GradientDescentOptimizer(0.1, name="G").minimize(g_loss)  # d too
    audit = audit_step(_session(), g_step)
    assert audit.verdict == PASS
    assert any(n.startswith("d: updated here by G and, in another train op, by D")
               for n in audit.notes)


def test_hand_rolled_staircase_on_the_global_step_passes(graph):
    w = tf.Variable(np.array([1.0, -2.0]), name="w")
    gs = tf.train.get_or_create_global_step()
    lr = 0.1 * tf.pow(tf.constant(0.5, tf.float64), tf.cast(gs // 2, tf.float64))
    step = tf.train.GradientDescentOptimizer(lr).minimize(tf.reduce_sum(tf.sin(w)),
                                                           global_step=gs)
    s = _session()
    for _ in range(5):
        audit = audit_step(s, step)
        assert audit.verdict == PASS, str(audit)


def test_a_read_of_the_global_step_ordered_after_its_increment_is_post_step(graph):
    w = tf.Variable(np.array([1.0, -2.0]), name="w")
    gs = tf.train.get_or_create_global_step()
    inc = tf.assign_add(gs, 1)
    with tf.control_dependencies([inc]):
        lr = 0.1 * tf.pow(tf.constant(0.5, tf.float64), tf.cast(gs.read_value(), tf.float64))
    step = tf.train.GradientDescentOptimizer(lr).minimize(tf.reduce_sum(tf.sin(w)))
    audit = audit_step(_session(), step)
    assert audit.verdict == FAIL
    reason = audit.variable("w").reason
    assert "post-step global_step" in reason and "(rule: schedule step)" in reason


def test_any_variable_passed_as_global_step_is_a_counter(graph):
    w = tf.Variable(np.array([1.0, -2.0]), name="w")
    steps = tf.Variable(np.int64(0), trainable=False, name="my_steps")
    step = tf.train.GradientDescentOptimizer(0.1).minimize(tf.reduce_sum(tf.sin(w)),
                                                           global_step=steps)
    s = _session()
    for _ in range(2):
        audit = audit_step(s, step)
        assert audit.verdict == PASS, str(audit)
        assert audit.variable("my_steps").rule == "assign_add"


def test_l2_as_a_sum_of_squares_counted_twice_fails(graph):
    w = tf.Variable(np.array([1.0, -2.0]), name="w")
    loss = tf.reduce_sum(tf.sin(w)) + 0.05 * tf.reduce_sum(tf.square(w))
    (g,) = tf.gradients(loss, [w])
    opt = tf.train.MomentumOptimizer(0.1, 0.9)
    step = opt.apply_gradients([(g + 0.1 * w, w)])
    audit = audit_step(_session(), step)
    assert audit.verdict == FAIL and "(rule: L2 once)" in audit.variable("w").reason
