"""Learning-rate schedules and the global step, against TF1's formulas: graph ops of the
step, evaluated on every run (a training loop sees the rate change as the step advances)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradverify.engine as tf

STEPS = [0, 1, 9, 10, 11, 25, 99, 100, 101, 250]


def _values(make, dtype=tf.float32):
    """The schedule's value at each step in STEPS, the step fed through a placeholder."""
    with tf.Graph().as_default():
        step = tf.placeholder(tf.int64, [])
        lr = make(step)
        with tf.Session() as s:
            return [float(s.run(lr, {step: k})) for k in STEPS], lr


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay(staircase):
    got, lr = _values(lambda s: tf.train.exponential_decay(0.1, s, 10, 0.96, staircase))
    for k, v in zip(STEPS, got):
        p = k // 10 if staircase else k / 10
        assert v == pytest.approx(0.1 * 0.96 ** p, rel=1e-6)
    assert lr.op.name == "ExponentialDecay" and lr.dtype == tf.float32


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_and_natural_exp_decay(staircase):
    inv, _ = _values(lambda s: tf.train.inverse_time_decay(0.5, s, 7, 2.0, staircase))
    nat, _ = _values(lambda s: tf.train.natural_exp_decay(0.5, s, 7, 0.3, staircase))
    for k, a, b in zip(STEPS, inv, nat):
        p = k // 7 if staircase else k / 7
        assert a == pytest.approx(0.5 / (1 + 2.0 * p), rel=1e-6)
        assert b == pytest.approx(0.5 * math.exp(-0.3 * p), rel=1e-5)  # float32 exp of ~10


@pytest.mark.parametrize("power", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("cycle", [False, True])
def test_polynomial_decay(power, cycle):
    got, _ = _values(lambda s: tf.train.polynomial_decay(0.1, s, 100, 0.01, power, cycle))
    for k, v in zip(STEPS, got):
        if cycle:
            steps = 100 * (1 if k == 0 else math.ceil(k / 100))
            step = k
        else:
            steps, step = 100, min(k, 100)
        want = (0.1 - 0.01) * (1 - step / steps) ** power + 0.01
        assert v == pytest.approx(want, rel=1e-5), k


def test_piecewise_constant_boundaries_are_inclusive_on_the_left_interval():
    got, _ = _values(lambda s: tf.train.piecewise_constant(s, [10, 100], [1.0, 0.5, 0.25]))
    want = [1.0 if k <= 10 else 0.5 if k <= 100 else 0.25 for k in STEPS]
    assert got == want


def test_piecewise_constant_single_boundary_and_float_x():
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [])
        lr = tf.train.piecewise_constant(x, [0.5], [3, 7])
        with tf.Session() as s:
            assert [int(s.run(lr, {x: v})) for v in (-1.0, 0.5, 0.51)] == [3, 3, 7]


def test_piecewise_constant_errors():
    with tf.Graph().as_default():
        x = tf.placeholder(tf.int32, [])
        with pytest.raises(ValueError, match="length of boundaries should be 1 less"):
            tf.train.piecewise_constant(x, [1, 2], [1.0, 2.0])
        with pytest.raises(ValueError, match=r"Boundaries \(float32\) must have the same "
                           r"dtype as x \(int32\)"):
            tf.train.piecewise_constant(x, [1.5], [1.0, 2.0])
        with pytest.raises(ValueError, match="Values must have elements all with the same"):
            tf.train.piecewise_constant(x, [1], [1.0, 2])


def test_float64_learning_rate_keeps_its_dtype():
    with tf.Graph().as_default():
        step = tf.constant(5, tf.int64)
        lr = tf.train.exponential_decay(np.float64(0.1), step, 10, 0.5)
        assert lr.dtype == tf.float64
        assert tf.Session().run(lr) == pytest.approx(0.1 * 0.5 ** 0.5, rel=1e-15)


def test_global_step_is_required():
    for fn in (tf.train.exponential_decay, tf.train.inverse_time_decay):
        with pytest.raises(ValueError, match="global_step is required"):
            fn(0.1, None, 10, 0.5)
    with pytest.raises(ValueError, match="global_step is required for polynomial_decay"):
        tf.train.polynomial_decay(0.1, None, 10)


# -- global step -----------------------------------------------------------------------------
def test_get_or_create_global_step_is_int64_scalar_in_its_collection():
    with tf.Graph().as_default() as g:
        assert tf.train.get_global_step() is None
        step = tf.train.get_or_create_global_step()
        assert tf.train.get_or_create_global_step() is step
        assert tf.train.get_global_step(g) is step
        assert (step.op.name, step.dtype, step.shape.as_list()) == ("global_step",
                                                                   tf.int64, [])
        assert g.get_collection(tf.GraphKeys.GLOBAL_STEP) == [step]
        assert step in tf.global_variables() and step not in tf.trainable_variables()
        with pytest.raises(ValueError, match='"global_step" already exists'):
            tf.train.create_global_step()


def test_get_global_step_finds_a_variable_named_global_step():
    with tf.Graph().as_default():
        step = tf.Variable(0, name="global_step", trainable=False)
        assert tf.train.get_global_step() is step
    with tf.Graph().as_default():
        tf.Variable(0.0, name="global_step")
        with pytest.raises(TypeError, match="does not have integer type"):
            tf.train.get_global_step()


def test_global_step_value_helper():
    with tf.Graph().as_default():
        step = tf.train.get_or_create_global_step()
        with tf.Session() as s:
            s.run(step.initializer)
            s.run(step.assign_add(3))
            assert tf.train.global_step(s, step) == 3


def test_schedule_is_evaluated_on_every_run_of_a_training_loop():
    with tf.Graph().as_default():
        step = tf.train.get_or_create_global_step()
        lr = tf.train.exponential_decay(1.0, step, 1, 0.5, staircase=True)
        w = tf.Variable(0.0)
        train = tf.train.GradientDescentOptimizer(lr).minimize(-w, global_step=step)
        with tf.Session() as s:
            s.run(tf.global_variables_initializer())
            seen = []
            for _ in range(4):
                seen.append(float(s.run(lr)))
                s.run(train)
            assert seen == [1.0, 0.5, 0.25, 0.125]
            assert float(s.run(w)) == pytest.approx(1.875)
            assert int(s.run(step)) == 4
