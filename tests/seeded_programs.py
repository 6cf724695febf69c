"""Seeded training programs for the step auditor: each faulty program is a TF1 program a
user could write, with one realistic bug in how it updates its variables, and a correct
twin that differs only in that bug.

``PROGRAMS`` lists them: ``build(dtype)`` builds the program in the default graph and
returns ``(fetches, feed(step))``; ``fails`` names, for a faulty program, the variable whose
audit must FAIL and the rule its reason must name (``None`` for a correct program, which
must PASS on every step). The data come from fixed seeds.

>>> [p.name for p in PROGRAMS if p.fails is None][:3]
['clip_by_global_norm_adam', 'clip_by_value_and_scale', 'clip_by_norm_with_seeded_noise']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import gradverify.engine as tf


@dataclass(frozen=True)
class Program:
    name: str
    build: Callable[[Any], tuple[Any, Callable[[int], dict]]]
    fails: tuple[str, str] | None = None   # (variable, rule) for a faulty program


def _data(dtype: Any, n: int = 8, d: int = 3, k: int = 2):
    """A regression problem: placeholders, a two-variable linear model and its loss."""
    x = tf.placeholder(dtype, [None, d], name="x")
    y = tf.placeholder(dtype, [None, k], name="y")
    rng = np.random.default_rng(7)
    w = tf.Variable(rng.standard_normal((d, k)).astype(dtype.np), name="w")
    b = tf.Variable(np.full(k, 0.1, dtype.np), name="b")
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + b - y))

    def feed(step: int) -> dict:
        r = np.random.default_rng([11, step])
        return {x: r.standard_normal((n, d)).astype(dtype.np),
                y: r.standard_normal((n, k)).astype(dtype.np)}
    return x, w, b, loss, feed


def _with_l2(dtype: Any):
    x, w, b, loss, feed = _data(dtype)
    return x, w, b, loss + 0.1 * tf.nn.l2_loss(w), feed


# -- gradient pipelines: compute_gradients -> transformation -> apply_gradients ---------------
def clip_by_global_norm_adam(dtype):
    loss, feed = _data(dtype)[3:]
    opt = tf.train.AdamOptimizer(0.05)
    grads, tvars = zip(*opt.compute_gradients(loss))
    clipped, _ = tf.clip_by_global_norm(grads, 0.5)
    return [opt.apply_gradients(zip(clipped, tvars)), loss], feed


def clip_by_value_and_scale(dtype):
    loss, feed = _data(dtype)[3:]
    opt = tf.train.MomentumOptimizer(0.05, 0.9)
    pairs = [(tf.clip_by_value(g, -0.2, 0.2) * 0.5, v) for g, v in opt.compute_gradients(loss)]
    return [opt.apply_gradients(pairs), loss], feed


def clip_by_norm_with_seeded_noise(dtype):
    loss, feed = _data(dtype)[3:]
    tf.set_random_seed(5)
    opt = tf.train.GradientDescentOptimizer(0.1)
    pairs = [(tf.clip_by_norm(g, 1.0) + tf.random_normal(g.shape.as_list(), stddev=0.01,
                                                          seed=k, dtype=dtype), v)
             for k, (g, v) in enumerate(opt.compute_gradients(loss))]
    return [opt.apply_gradients(pairs), loss], feed


def tf_gradients_clipped_then_applied(dtype):  # the PTB-language-model pattern
    loss, feed = _data(dtype)[3:]
    tvars = tf.trainable_variables()
    grads, _ = tf.clip_by_global_norm(tf.gradients(loss, tvars), 1.0)
    opt = tf.train.GradientDescentOptimizer(0.2)
    step = opt.apply_gradients(zip(grads, tvars),
                               global_step=tf.train.get_or_create_global_step())
    return [step, loss], feed


def gradient_paired_with_wrong_variable(dtype):
    x = tf.placeholder(dtype, [None, 2], name="x")
    rng = np.random.default_rng(3)
    enc = tf.Variable(rng.standard_normal((2, 2)).astype(dtype.np), name="enc")
    dec = tf.Variable(rng.standard_normal((2, 2)).astype(dtype.np), name="dec")
    loss = tf.reduce_mean(tf.square(tf.matmul(tf.tanh(tf.matmul(x, enc)), dec) - x))
    grads, _ = tf.clip_by_global_norm(tf.gradients(loss, [enc, dec]), 5.0)
    step = tf.train.GradientDescentOptimizer(0.1).apply_gradients(
        zip(grads, [dec, enc]))  # the variables listed in another order than the gradients

    def feed(step):
        return {x: np.random.default_rng([2, step]).standard_normal((6, 2)).astype(dtype.np)}
    return [step, loss], feed


def stale_gradient_from_an_earlier_run(dtype):
    _, w, _, loss, feed = _data(dtype)
    (gw,) = tf.gradients(loss, [w])
    kept = tf.Variable(tf.zeros(w.shape.as_list(), dtype), trainable=False, name="kept_grad")
    save = kept.assign(gw)   # run in an earlier session.run, applied later
    step = tf.train.GradientDescentOptimizer(0.1).apply_gradients([(kept.value(), w)])
    return [step, loss], feed, save


# -- learning-rate schedules -----------------------------------------------------------------
def exponential_decay_on_the_global_step(dtype):
    loss, feed = _data(dtype)[3:]
    gs = tf.train.get_or_create_global_step()
    lr = tf.cast(tf.train.exponential_decay(0.3, gs, 2, 0.5, staircase=False), dtype)
    step = tf.train.GradientDescentOptimizer(lr).minimize(loss, global_step=gs)
    return [step, loss], feed


def schedule_at_the_post_step_global_step(dtype):
    loss, feed = _data(dtype)[3:]
    gs = tf.train.get_or_create_global_step()
    increment = tf.assign_add(gs, 1)
    lr = tf.cast(tf.train.exponential_decay(0.3, increment, 2, 0.5), dtype)
    step = tf.train.GradientDescentOptimizer(lr).minimize(loss)
    return [step, loss], feed


def schedule_one_step_ahead(dtype):
    loss, feed = _data(dtype)[3:]
    gs = tf.train.get_or_create_global_step()
    lr = tf.cast(tf.train.piecewise_constant(gs + 1, [1, 2], [0.3, 0.1, 0.05]), dtype)
    step = tf.train.GradientDescentOptimizer(lr).minimize(loss, global_step=gs)
    return [step, loss], feed


# -- hand-written updates --------------------------------------------------------------------
def hand_written_sgd_with_l2(dtype):
    _, w, b, loss, feed = _with_l2(dtype)
    gw, gb = tf.gradients(loss, [w, b])
    update_w = w.assign_sub(0.1 * gw)
    with tf.control_dependencies([update_w]):   # ordered, as people write them
        update_b = tf.assign_sub(b, 0.1 * gb, use_locking=True)
    return [update_b, loss], feed


def hand_written_update_double_counts_l2(dtype):
    _, w, b, loss, feed = _with_l2(dtype)
    gw, gb = tf.gradients(loss, [w, b])
    step = tf.group(w.assign(w - 0.1 * (gw + 0.1 * w)), b.assign_sub(0.1 * gb))
    return [step, loss], feed


def max_norm_after_the_update(dtype):
    # a max-norm constraint run in the same session.run as the update, ordered after it,
    # reading the updated w: a new read under the control dependency
    _, w, _, loss, feed = _data(dtype)
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf.control_dependencies([train]):
        constrain = w.assign(tf.clip_by_norm(w.read_value(), 1.0, axes=[0]))
    return [constrain, loss], feed


def max_norm_reads_the_pre_step_value(dtype):
    # the same constraint on ``w`` itself: its read is not ordered after the update, so the
    # assign computes from the pre-step w and overwrites the optimizer's update
    _, w, _, loss, feed = _data(dtype)
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf.control_dependencies([train]):
        constrain = w.assign(tf.clip_by_norm(w, 1.0, axes=[0]))
    return [constrain, loss], feed


def locked_updates(dtype):
    _, w, b, loss, feed = _data(dtype)
    adam = tf.train.AdamOptimizer(0.05, use_locking=True).minimize(loss, var_list=[w])
    momentum = tf.train.MomentumOptimizer(0.05, 0.9, use_locking=True).minimize(
        loss, var_list=[b])
    return [adam, momentum, loss], feed


# -- several train ops -----------------------------------------------------------------------
def _gan(dtype):
    rng = np.random.default_rng(4)
    z = tf.placeholder(dtype, [None, 2], name="z")
    real = tf.placeholder(dtype, [None, 2], name="real")
    with tf.variable_scope("generator"):
        g_w = tf.get_variable("w", initializer=rng.standard_normal((2, 2)).astype(dtype.np))
    with tf.variable_scope("discriminator"):
        d_w = tf.get_variable("w", initializer=rng.standard_normal((2, 1)).astype(dtype.np))
    with tf.variable_scope("discriminator", reuse=True):   # one variable, two uses
        d_same = tf.get_variable("w", dtype=dtype)
    fake = tf.matmul(z, g_w)
    d_real = tf.matmul(real, d_w)
    d_fake = tf.matmul(fake, d_same)
    d_loss = tf.reduce_mean(tf.nn.softplus(-d_real) + tf.nn.softplus(d_fake))
    g_loss = tf.reduce_mean(tf.nn.softplus(-d_fake))

    def feed(step):
        r = np.random.default_rng([5, step])
        return {z: r.standard_normal((6, 2)).astype(dtype.np),
                real: (r.standard_normal((6, 2)) + 1.0).astype(dtype.np)}
    return g_w, d_w, d_loss, g_loss, feed


def gan_two_optimizers(dtype):
    g_w, d_w, d_loss, g_loss, feed = _gan(dtype)
    d_step = tf.train.AdamOptimizer(0.01, name="D").minimize(d_loss, var_list=[d_w])
    g_step = tf.train.RMSPropOptimizer(0.01, name="G").minimize(g_loss, var_list=[g_w])
    return [d_step, g_step, d_loss, g_loss], feed


def second_optimizer_touches_the_first(dtype):
    _, d_w, d_loss, g_loss, feed = _gan(dtype)
    d_step = tf.train.GradientDescentOptimizer(0.01, name="D").minimize(d_loss,
                                                                         var_list=[d_w])
    g_step = tf.train.GradientDescentOptimizer(0.01, name="G").minimize(g_loss)  # all vars
    return [d_step, g_step, d_loss, g_loss], feed


# -- tf.layers on get_variable: one variable, several uses (its gradients add up) -------------
def layers_dense_shared_by_two_towers(dtype):
    x, _, _, _, feed = _data(dtype)
    y = tf.get_default_graph().get_tensor_by_name("y:0")
    with tf.variable_scope("tower", reuse=tf.AUTO_REUSE):
        a = tf.layers.dense(x, 4, activation=tf.nn.tanh, name="hidden")
        b = tf.layers.dense(2.0 * x, 4, activation=tf.nn.tanh, name="hidden")  # same kernel
        out = tf.layers.dense(a + b, 2, name="out")
    loss = tf.reduce_mean(tf.square(out - y))
    return [tf.train.AdamOptimizer(0.01).minimize(loss), loss], feed


def layers_cnn_with_momentum(dtype):
    images = tf.placeholder(dtype, [None, 6, 6, 1], name="images")
    labels = tf.placeholder(tf.int64, [None], name="labels")
    h = tf.layers.conv2d(images, 3, 3, padding="same", activation=tf.nn.relu)
    h = tf.layers.max_pooling2d(h, 2, 2)
    logits = tf.layers.dense(tf.layers.flatten(h), 4)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits))
    step = tf.train.MomentumOptimizer(0.05, 0.9).minimize(loss)

    def feed(k: int) -> dict:
        r = np.random.default_rng([13, k])
        return {images: r.standard_normal((5, 6, 6, 1)).astype(dtype.np),
                labels: r.integers(0, 4, 5)}
    return [step, loss], feed


PROGRAMS: tuple[Program, ...] = (
    Program("layers_dense_shared_by_two_towers", layers_dense_shared_by_two_towers),
    Program("layers_cnn_with_momentum", layers_cnn_with_momentum),
    Program("clip_by_global_norm_adam", clip_by_global_norm_adam),
    Program("clip_by_value_and_scale", clip_by_value_and_scale),
    Program("clip_by_norm_with_seeded_noise", clip_by_norm_with_seeded_noise),
    Program("tf_gradients_clipped_then_applied", tf_gradients_clipped_then_applied),
    Program("exponential_decay_on_the_global_step", exponential_decay_on_the_global_step),
    Program("hand_written_sgd_with_l2", hand_written_sgd_with_l2),
    Program("gan_two_optimizers", gan_two_optimizers),
    Program("locked_updates", locked_updates),
    Program("max_norm_after_the_update", max_norm_after_the_update),
    Program("gradient_paired_with_wrong_variable", gradient_paired_with_wrong_variable,
            ("enc", "gradient pairing")),
    Program("stale_gradient_from_an_earlier_run", stale_gradient_from_an_earlier_run,
            ("w", "fresh gradient")),
    Program("schedule_at_the_post_step_global_step", schedule_at_the_post_step_global_step,
            ("w", "schedule step")),
    Program("schedule_one_step_ahead", schedule_one_step_ahead, ("w", "schedule step")),
    Program("hand_written_update_double_counts_l2", hand_written_update_double_counts_l2,
            ("w", "L2 once")),
    Program("max_norm_reads_the_pre_step_value", max_norm_reads_the_pre_step_value,
            ("w", "lost update")),
    Program("second_optimizer_touches_the_first", second_optimizer_touches_the_first,
            ("discriminator/w", "one write per variable")),
)


def build(program: Program, dtype: Any) -> tuple[Any, Callable[[int], dict], Any]:
    """Build ``program`` in the default graph: (fetches, feed, op to run once first)."""
    out = program.build(dtype)
    return (out[0], out[1], out[2] if len(out) > 2 else None)
