"""Kernel outputs checked against the op's static dtype/shape at run time; ``use_locking``
updates atomic across threads."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine import meta
from gradverify.engine.registry import op, unregister


@pytest.fixture
def graph():
    g = tf.Graph()
    with g.as_default():
        yield g


@pytest.fixture
def broken_op():
    """Register a float op whose kernel misbehaves as ``mode`` says; unregister after."""
    made = []

    def make(mode, n_out=1):
        name = f"Broken{mode.title().replace('_', '')}{n_out}"

        @op(name, inputs={"x": meta.reals}, outputs=tuple(f"y{i}" for i in range(n_out)),
            signature="custom", dtypes=("float32", "float64"), api=None)
        def kernel(x):
            if mode == "none":
                return None
            if mode == "float32":
                return x.astype(np.float32)
            if mode == "shape":
                return np.concatenate([x, x])
            if mode == "rank":
                return x[None]
            if mode == "python_float":
                return float(x.sum())
            if mode == "count":
                return x
            if mode == "batch_dependent":  # wrong only for a batch of 3
                return x[None] if len(x) == 3 else x
            return x if n_out == 1 else (x,) * n_out

        kernel.shape_rule(lambda ctx: [ctx.input_shapes[0]] * n_out)
        made.append(name)
        return kernel
    yield make
    for name in made:
        unregister(name)


@pytest.mark.parametrize("mode, dtype, pattern", [
    ("none", tf.float64, r"returned None for output 0, which has dtype float64 and shape "
                         r"\[2\]"),
    ("float32", tf.float64, r"returned output 0 of dtype float32, but the op's output has "
                            r"dtype float64"),
    ("shape", tf.float32, r"returned output 0 of shape \[4\], but the op's static shape is "
                          r"\[2\]"),
    ("rank", tf.float32, r"returned output 0 of shape \[1,2\], but the op's static shape is "
                         r"\[2\]"),
    ("python_float", tf.float32, "of dtype float64, but the op's output has dtype float32"),
])
def test_bad_kernel_output_is_internal_error_naming_the_op(graph, broken_op, mode, dtype,
                                                           pattern):
    bad = broken_op(mode)
    x = tf.placeholder(dtype, [2])
    y = bad(x, name="culprit")
    with tf.Session() as s, pytest.raises(tf.errors.InternalError, match=pattern) as info:
        s.run(y, {x: [1.0, 2.0]})
    assert info.value.op is y.op
    assert "Kernel of 'culprit'" in info.value.message


def test_bad_kernel_is_caught_when_folded_at_compile_time(graph, broken_op):
    bad = broken_op("float32")
    y = bad(tf.constant([1.0, 2.0], tf.float64))
    with tf.Session() as s, pytest.raises(tf.errors.InternalError, match="dtype float32"):
        s.run(y)


def test_wrong_number_of_outputs(graph, broken_op):
    bad = broken_op("count", n_out=2)
    x = tf.placeholder(tf.float32, [2])
    a, _ = bad(x)
    with tf.Session() as s, pytest.raises(tf.errors.InternalError,
                                          match="returned ndarray where the op has 2 outputs"):
        s.run(a, {x: [1.0, 2.0]})


def test_unknown_dims_are_checked_for_each_new_feed_shape(graph, broken_op):
    bad = broken_op("batch_dependent")
    x = tf.placeholder(tf.float32, [None])
    y = bad(x) * 2.0
    z = tf.reshape(y, [-1, 1])
    with tf.Session() as s:
        for n in (1, 2, 4):  # right for these shapes, repeated (the fast path)
            assert s.run(z, {x: np.ones(n)}).shape == (n, 1)
            assert s.run(z, {x: np.ones(n)}).shape == (n, 1)
        with pytest.raises(tf.errors.InternalError, match=r"shape \[1,3\], but the op's "
                           r"static shape is \[\?\]"):
            s.run(y, {x: np.ones(3)})


def test_correct_kernels_pass_and_keep_their_results(graph, broken_op):
    good = broken_op("ok", n_out=2)
    x = tf.placeholder(tf.float64, [None, 2])
    a, b = good(x)
    with tf.Session() as s:
        for _ in range(3):
            va, vb = s.run([a, b], {x: np.ones((3, 2))})
            assert va.dtype == np.float64 and vb.shape == (3, 2)


# -- use_locking ---------------------------------------------------------------------------
def _hammer(session, fetch, threads=2, runs=1500):
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: races show up in a short test
    try:
        def work():
            for _ in range(runs):
                session.run(fetch)
        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    finally:
        sys.setswitchinterval(old)
    return threads * runs


@pytest.mark.parametrize("update", ["assign_add", "assign_sub", "method"])
def test_locked_assign_add_and_sub_lose_no_update(graph, update):
    v = tf.Variable(0.0)
    inc = {"assign_add": lambda: tf.assign_add(v, 1.0, use_locking=True),
           "assign_sub": lambda: tf.assign_sub(v, -1.0, use_locking=True),
           "method": lambda: v.assign_add(1.0, use_locking=True)}[update]()
    with tf.Session() as s:
        s.run(v.initializer)
        n = _hammer(s, inc)
        assert s.run(v) == n


def test_locked_assign_is_atomic_with_locked_updates(graph):
    v = tf.Variable(0.0)
    inc = tf.assign_add(v, 1.0, use_locking=True)
    with tf.Session() as s:
        s.run(v.initializer)
        n = _hammer(s, [inc, inc.op], threads=3, runs=700)
        assert s.run(v) == n


@pytest.mark.parametrize("make", [
    lambda: tf.train.GradientDescentOptimizer(0.5, use_locking=True),
    lambda: tf.train.MomentumOptimizer(0.5, 0.0, use_locking=True),
])
def test_locked_optimizer_updates_are_atomic(graph, make):
    w = tf.Variable(0.0)
    step = make().minimize(-w)  # gradient -1: each step adds exactly 0.5
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        n = _hammer(s, step, runs=800)
        assert s.run(w) == 0.5 * n


def test_locks_are_per_variable_and_per_session(graph):
    a, b = tf.Variable(0.0), tf.Variable(0.0)
    both = tf.group(tf.assign_add(a, 1.0, use_locking=True),
                    tf.assign_add(b, 2.0, use_locking=True))
    with tf.Session() as s1, tf.Session() as s2:
        s1.run([a.initializer, b.initializer])
        s2.run([a.initializer, b.initializer])
        n = _hammer(s1, both, runs=500)
        s2.run(both)
        assert (s1.run(a), s1.run(b)) == (n, 2 * n)
        assert (s2.run(a), s2.run(b)) == (1.0, 2.0)


def _blocks_on(session, fetch, var_op):
    """True if running ``fetch`` waits while the session's lock of ``var_op`` is held."""
    lock = session._variable_lock(var_op)
    done = threading.Event()
    with lock:
        worker = threading.Thread(target=lambda: (session.run(fetch), done.set()))
        worker.start()
        blocked = not done.wait(0.3)
    assert done.wait(10)  # released: the update goes through
    worker.join()
    return blocked


@pytest.mark.parametrize("make", [
    lambda v: tf.assign(v, 5.0, use_locking=True),
    lambda v: tf.assign_add(v, 1.0, use_locking=True),
    lambda v: v.assign_sub(1.0, use_locking=True),
    lambda v: tf.train.GradientDescentOptimizer(0.1, use_locking=True).minimize(v * v),
    lambda v: tf.train.AdamOptimizer(0.1, use_locking=True).minimize(v * v),
])
def test_locked_updates_take_the_variable_lock(graph, make):
    v = tf.Variable(1.0)
    update = make(v)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        assert _blocks_on(s, update, v.op)


def test_unlocked_updates_do_not_wait(graph):
    v = tf.Variable(1.0)
    update = tf.assign_add(v, 1.0)
    with tf.Session() as s:
        s.run(v.initializer)
        assert not _blocks_on(s, update, v.op)
        assert s.run(v) == 2.0


def test_momentum_locks_the_slot_too(graph):
    v = tf.Variable(1.0)
    opt = tf.train.MomentumOptimizer(0.1, 0.9, use_locking=True)
    step = opt.minimize(v * v)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        assert _blocks_on(s, step, opt.get_slot(v, "momentum").op)
