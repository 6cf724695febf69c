"""get_variable / variable_scope / initializers against TF1's documented behaviour."""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf


@pytest.fixture
def graph():
    g = tf.Graph()
    with g.as_default():
        yield g


def _init_and_run(fetches):
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        return s.run(fetches)


# -- names -------------------------------------------------------------------------------
def test_variable_names_follow_variable_scopes_nested(graph):
    with tf.variable_scope("a"):
        with tf.variable_scope("b"):
            v = tf.get_variable("v", [1])
        u = tf.get_variable("u", [1])
    assert (v.name, u.name, v.op.name) == ("a/b/v:0", "a/u:0", "a/b/v")


def test_name_scope_prefixes_ops_but_not_get_variable(graph):
    with tf.name_scope("outer"):
        v = tf.get_variable("v", [2])
        with tf.variable_scope("vs"):
            w = tf.get_variable("w", [2])
            y = w * 2.0
    assert v.name == "v:0"
    assert w.name == "vs/w:0"
    assert y.name == "outer/vs/mul:0"


def test_reopened_variable_scope_reuses_var_names_but_uniquifies_op_names(graph):
    with tf.variable_scope("foo"):
        v = tf.get_variable("v", [1])
        a = v + 1.0
    with tf.variable_scope("foo", reuse=True):
        v1 = tf.get_variable("v")
        b = v1 + 1.0
    assert v1 is v
    assert (a.name, b.name) == ("foo/add:0", "foo_1/add:0")


def test_captured_scope_reentered_keeps_absolute_name_and_reuse(graph):
    with tf.variable_scope("model") as scope:
        v = tf.get_variable("v", [1])
    with tf.variable_scope("elsewhere"), tf.variable_scope(scope, reuse=True) as again:
        assert again.name == "model"
        assert tf.get_variable("v") is v
        c = tf.constant(0.0)
    # the name scope is a new one under the current one (TF1: last component, uniquified)
    assert c.name == "elsewhere/model/Const:0"
    assert scope.original_name_scope == "model/"


def test_reuse_variables_on_scope_object(graph):
    with tf.variable_scope("rnn") as scope:
        a = tf.get_variable("w", [3])
        scope.reuse_variables()
        assert scope.reuse is True
        assert tf.get_variable("w", [3]) is a


def test_default_name_is_uniquified_and_name_is_not(graph):
    names = []
    for _ in range(3):
        with tf.variable_scope(None, default_name="dense") as s:
            names.append(s.name)
    with tf.variable_scope("dense") as explicit:
        pass
    assert names == ["dense", "dense_1", "dense_2"]
    assert explicit.name == "dense"


def test_default_name_counts_restart_inside_each_parent(graph):
    got = []
    for _ in range(2):
        with tf.variable_scope("block"), tf.variable_scope(None, default_name="layer") as s:
            got.append(s.name)
    assert got == ["block/layer", "block/layer"]


def test_get_variable_scope_reports_the_current_scope(graph):
    assert tf.get_variable_scope().name == ""
    assert tf.get_variable_scope().reuse is False
    with tf.variable_scope("x", reuse=tf.AUTO_REUSE):
        assert tf.get_variable_scope().name == "x"
        assert tf.get_variable_scope().reuse is tf.AUTO_REUSE
    assert tf.get_variable_scope().name == ""


def test_auxiliary_name_scope_false_opens_no_name_scope(graph):
    with tf.variable_scope("v", auxiliary_name_scope=False):
        c = tf.constant(1.0)
        w = tf.get_variable("w", [1])
    assert (c.name, w.name) == ("Const:0", "v/w:0")


# -- reuse -------------------------------------------------------------------------------
def test_creating_twice_without_reuse_is_tf1s_value_error(graph):
    with tf.variable_scope("s"):
        tf.get_variable("x", [2])
    with pytest.raises(ValueError, match=r"Variable s/x already exists, disallowed\. Did you "
                       r"mean to set reuse=True or reuse=tf\.AUTO_REUSE in VarScope\?"), \
            tf.variable_scope("s"):
        tf.get_variable("x", [2])


def test_reuse_true_of_missing_variable_is_tf1s_value_error(graph):
    with pytest.raises(ValueError, match=r"Variable s/nope does not exist, or was not created "
                       r"with tf\.get_variable\(\)"), tf.variable_scope("s", reuse=True):
        tf.get_variable("nope", [1])


def test_plain_variable_is_not_found_by_get_variable(graph):
    tf.Variable(1.0, name="plain")
    with pytest.raises(ValueError, match="does not exist"), tf.variable_scope("", reuse=True):
        tf.get_variable("plain", [])


def test_auto_reuse_creates_then_returns(graph):
    def layer():
        with tf.variable_scope("shared", reuse=tf.AUTO_REUSE):
            return tf.get_variable("w", [2, 2])
    assert layer() is layer()
    assert len(tf.global_variables()) == 1


def test_reuse_is_inherited_and_false_cannot_undo_it(graph):
    with tf.variable_scope("p"), tf.variable_scope("q"):
        w = tf.get_variable("w", [1])
    with tf.variable_scope("p", reuse=True), tf.variable_scope("q", reuse=False) as inner:
        assert inner.reuse is True
        assert tf.get_variable("w") is w


def test_sharing_with_other_shape_or_dtype_is_a_value_error(graph):
    with tf.variable_scope("s"):
        tf.get_variable("w", [2, 3])
    with tf.variable_scope("s", reuse=True):
        with pytest.raises(ValueError, match=r"Trying to share variable s/w, but specified "
                           r"shape \(3, 2\) and found shape \(2, 3\)"):
            tf.get_variable("w", [3, 2])
        with pytest.raises(ValueError, match="specified dtype"):
            tf.get_variable("w", [2, 3], dtype=tf.float64)


def test_reuse_true_without_a_name_is_an_error(graph):
    scope = tf.variable_scope(None, default_name="d", reuse=True)
    with pytest.raises(ValueError, match="reuse=True cannot be used without a name_or_scope"):
        scope.__enter__()
    assert tf.get_default_graph().get_name_scope() == ""  # nothing left open
    with pytest.raises(TypeError, match="default_name is None then name_or_scope"):
        tf.variable_scope(None)


# -- get_variable arguments --------------------------------------------------------------
def test_new_variable_needs_a_fully_defined_shape(graph):
    with pytest.raises(ValueError, match=r"Shape of a new variable \(v\) must be fully "
                       "defined"):
        tf.get_variable("v", [None, 3])
    with pytest.raises(ValueError, match="must be fully defined"):
        tf.get_variable("u")


def test_initializer_value_gives_shape_and_dtype_and_forbids_shape(graph):
    v = tf.get_variable("v", initializer=tf.constant([[1, 2], [3, 4]]))
    assert v.shape.as_list() == [2, 2] and v.dtype == tf.int32
    with pytest.raises(ValueError, match="If initializer is a constant, do not specify shape"):
        tf.get_variable("u", [2], initializer=tf.constant([1.0, 2.0]))
    with pytest.raises(ValueError, match="don't match"):
        tf.get_variable("z", initializer=tf.constant([1.0]), dtype=tf.float64)
    assert _init_and_run(v).tolist() == [[1, 2], [3, 4]]


def test_default_initializer_glorot_uniform_bounds_and_integer_zeros(graph):
    tf.set_random_seed(11)
    w = tf.get_variable("w", [30, 50])
    n = tf.get_variable("n", [4], dtype=tf.int32)
    values, ints = _init_and_run([w, n])
    limit = np.sqrt(6.0 / (30 + 50))
    assert np.abs(values).max() <= limit
    assert np.abs(values).max() > 0.9 * limit  # spread over the whole range
    assert values.std() == pytest.approx(limit / np.sqrt(3), rel=0.1)
    assert ints.tolist() == [0, 0, 0, 0]


def test_collections_trainable_and_local(graph):
    a = tf.get_variable("a", [1])
    b = tf.get_variable("b", [1], trainable=False)
    c = tf.get_local_variable("c", [1])
    d = tf.get_variable("d", [1], collections=["mine"])
    assert tf.global_variables() == [a, b]
    assert tf.trainable_variables() == [a, d]
    assert tf.local_variables() == [c]
    assert tf.get_collection("mine") == [d]


def test_scope_initializer_dtype_and_regularizer_are_defaults(graph):
    reg = lambda v: tf.reduce_sum(v) * 0.5
    with tf.variable_scope("s", initializer=tf.ones_initializer(), dtype=tf.float64,
                           regularizer=reg):
        v = tf.get_variable("v", [3])
        with tf.variable_scope("inner"):
            u = tf.get_variable("u", [2])
    assert v.dtype == tf.float64 and u.dtype == tf.float64
    losses = tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)
    assert len(losses) == 2
    assert losses[0].name.startswith("s/v/Regularizer/")
    vals = _init_and_run([v, u] + losses)
    assert vals[0].tolist() == [1.0, 1.0, 1.0]
    assert [float(x) for x in vals[2:]] == [1.5, 1.0]


def test_custom_getter_wraps_creation(graph):
    seen = []

    def getter(next_getter, name, *args, **kwargs):
        seen.append(name)
        kwargs["trainable"] = False
        return next_getter(name, *args, **kwargs)
    with tf.variable_scope("g", custom_getter=getter):
        v = tf.get_variable("v", [1])
    assert seen == ["g/v"] and v not in tf.trainable_variables()


def test_partitioner_is_refused(graph):
    with pytest.raises(NotImplementedError, match="partition"):
        tf.get_variable("v", [4], partitioner=lambda *a, **k: [2])


def test_scope_variable_listing(graph):
    with tf.variable_scope("enc") as enc:
        a = tf.get_variable("a", [1])
    with tf.variable_scope("dec"):
        tf.get_variable("a", [1])
    assert enc.global_variables() == [a]
    assert enc.trainable_variables() == [a]
    assert tf.trainable_variables(scope="enc") == [a]


def test_variable_scope_values_choose_the_graph():
    g = tf.Graph()
    with g.as_default():
        x = tf.constant(1.0)
    with tf.variable_scope("s", values=[x]):
        v = tf.get_variable("v", [1])
    assert v.graph is g


# -- initializers ------------------------------------------------------------------------
@pytest.mark.parametrize("init, expect", [
    (tf.zeros_initializer(), np.zeros((2, 3))),
    (tf.ones_initializer(), np.ones((2, 3))),
    (tf.constant_initializer(2.5), np.full((2, 3), 2.5)),
    (tf.constant_initializer([1, 2, 3, 4]), [[1, 2, 3], [4, 4, 4]]),
])
def test_deterministic_initializers(graph, init, expect):
    v = tf.get_variable("v", [2, 3], initializer=init)
    np.testing.assert_array_equal(_init_and_run(v), expect)


def test_constant_initializer_with_too_many_values(graph):
    with pytest.raises(ValueError, match=r"Too many elements provided\. Needed at most 2, "
                       r"but received 3"):
        tf.get_variable("v", [2], initializer=tf.constant_initializer([1, 2, 3]))


@pytest.mark.parametrize("make, check", [
    (lambda: tf.random_normal_initializer(1.0, 2.0, seed=5),
     lambda a: abs(a.mean() - 1.0) < 0.2 and abs(a.std() - 2.0) < 0.2),
    (lambda: tf.truncated_normal_initializer(0.0, 1.0, seed=5),
     lambda a: np.abs(a).max() <= 2.0 and abs(a.std() - 0.88) < 0.08),
    (lambda: tf.random_uniform_initializer(-3.0, -1.0, seed=5),
     lambda a: a.min() >= -3.0 and a.max() < -1.0 and abs(a.mean() + 2.0) < 0.15),
    (lambda: tf.glorot_uniform_initializer(seed=5),
     lambda a: np.abs(a).max() <= np.sqrt(6.0 / 80)),
    (lambda: tf.glorot_normal_initializer(seed=5),
     lambda a: abs(a.std() - np.sqrt(2.0 / 80)) < 0.03),
    (lambda: tf.variance_scaling_initializer(2.0, "fan_in", "untruncated_normal", seed=5),
     lambda a: abs(a.std() - np.sqrt(2.0 / 30)) < 0.03),
    (lambda: tf.variance_scaling_initializer(1.0, "fan_out", "uniform", seed=5),
     lambda a: np.abs(a).max() <= np.sqrt(3.0 / 50)),
])
def test_random_initializers_statistics(graph, make, check):
    v = tf.get_variable("v", [30, 50], initializer=make())
    assert check(_init_and_run(v))


def test_variance_scaling_uses_receptive_field_for_conv_kernels(graph):
    # [5, 5, 4, 8]: fan_in = 5*5*4 = 100
    v = tf.get_variable("k", [5, 5, 4, 8], initializer=tf.variance_scaling_initializer(
        1.0, "fan_in", "untruncated_normal", seed=1))
    assert _init_and_run(v).std() == pytest.approx(0.1, rel=0.1)


def test_seeded_initializer_is_reproducible_across_graphs_and_redraws_each_init():
    def build():
        g = tf.Graph()
        with g.as_default():
            v = tf.get_variable("v", [5], initializer=tf.random_normal_initializer(seed=7))
        return g, v
    (g1, v1), (g2, v2) = build(), build()
    with tf.Session(graph=g1) as s1, tf.Session(graph=g2) as s2:
        s1.run(v1.initializer)
        s2.run(v2.initializer)
        first = s1.run(v1)
        np.testing.assert_array_equal(first, s2.run(v2))
        s1.run(v1.initializer)
        assert not np.array_equal(first, s1.run(v1))


def test_random_initializers_refuse_integer_dtypes():
    with pytest.raises(ValueError, match="Expected floating point type, got int32"):
        tf.random_normal_initializer(dtype=tf.int32)
    with pytest.raises(ValueError, match="Invalid `mode`"):
        tf.variance_scaling_initializer(mode="fan_sideways")
    with pytest.raises(ValueError, match="`scale` must be positive"):
        tf.variance_scaling_initializer(scale=0.0)


def test_initializer_called_directly_and_config(graph):
    t = tf.ones_initializer()([2], dtype=tf.float64)
    assert t.dtype == tf.float64
    init = tf.glorot_uniform_initializer(seed=3)
    assert init.get_config() == {"seed": 3, "dtype": "float32"}
    assert tf.initializers.glorot_uniform is tf.glorot_uniform_initializer


def test_float64_variable_with_float_initializer(graph):
    v = tf.get_variable("v", [2], dtype=tf.float64, initializer=tf.random_uniform_initializer(
        seed=1))
    assert v.dtype == tf.float64
    assert _init_and_run(v).dtype == np.float64


def test_get_variable_trains_with_an_optimizer(graph):
    with tf.variable_scope("lin"):
        w = tf.get_variable("w", [3, 1], initializer=tf.zeros_initializer())
        b = tf.get_variable("b", [1], initializer=tf.zeros_initializer())
    x = tf.constant(np.eye(3, dtype=np.float32))
    loss = tf.reduce_sum(tf.square(tf.matmul(x, w) + b - 1.0))
    step = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        before = s.run(loss)
        for _ in range(20):
            s.run(step)
        assert s.run(loss) < 0.05 * before
