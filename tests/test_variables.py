"""Variables: collections, initialisation, per-session state, assignments and their errors
(spec/tf1-semantics.md section 2, errors of sections 3 and 7)."""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine import errors


# -- collections -----------------------------------------------------------------------------
def test_global_and_trainable_collections_in_creation_order(graph):
    a = tf.Variable(1.0, name="a")
    b = tf.Variable(2.0, name="b", trainable=False)
    c = tf.Variable(3.0, name="c")
    assert tf.global_variables() == [a, b, c]
    assert tf.trainable_variables() == [a, c]
    assert tf.get_collection(tf.GraphKeys.GLOBAL_VARIABLES) == [a, b, c]
    assert tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES) == [a, c]
    assert (a.trainable, b.trainable) == (True, False)
    assert [v.name for v in tf.global_variables()] == ["a:0", "b:0", "c:0"]


def test_variable_collections_are_per_graph():
    g1, g2 = tf.Graph(), tf.Graph()
    with g1.as_default():
        v1 = tf.Variable(1.0)
    with g2.as_default():
        v2 = tf.Variable(2.0)
        assert tf.global_variables() == [v2]
    with g1.as_default():
        assert tf.global_variables() == [v1]
    assert tf.global_variables() == []


def test_global_variables_returns_a_copy(graph):
    v = tf.Variable(1.0)
    got = tf.global_variables()
    got.clear()
    assert tf.global_variables() == [v]


def test_explicit_collections_argument(graph):
    v = tf.Variable(1.0, collections=["mine"])
    assert tf.get_collection("mine") == [v]
    assert tf.global_variables() == []
    assert tf.trainable_variables() == [v]  # trainable=True still adds it there


# -- identity and properties -----------------------------------------------------------------
def test_variable_properties_and_repr(graph):
    v = tf.Variable([[1.0, 2.0, 3.0]], name="w")
    assert v.name == "w:0"
    assert v.op.name == "w"
    assert v.dtype == tf.float32
    assert v.shape.as_list() == [1, 3]
    assert v.get_shape().as_list() == [1, 3]
    assert v.graph is graph
    assert repr(v) == "<tf.Variable 'w:0' shape=(1, 3) dtype=float32_ref>"
    assert v.value().name == "w/read:0"
    assert v.initial_value.name == "w/initial_value:0"
    assert v.initializer.name == "w/Assign"
    assert v.initializer.type == "Assign"


def test_variable_dtype_argument_and_tensor_initial_value(graph):
    v = tf.Variable([1, 2], dtype=tf.float64)
    assert v.dtype == tf.float64
    init = tf.zeros([2, 3])
    w = tf.Variable(init)
    assert w.initial_value is init
    assert w.shape.as_list() == [2, 3]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = sess.run(v)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, [1.0, 2.0])
        np.testing.assert_array_equal(sess.run(w), np.zeros((2, 3)))


def test_callable_initial_value(graph):
    v = tf.Variable(lambda: tf.ones([2]), name="lazy")
    assert v.initial_value.name.startswith("lazy/")
    with tf.Session() as sess:
        sess.run(v.initializer)
        np.testing.assert_array_equal(sess.run(v), [1.0, 1.0])


def test_initial_value_is_required(graph):
    with pytest.raises(ValueError, match="initial_value must be specified"):
        tf.Variable()


def test_initial_value_needs_a_known_shape_unless_validate_shape_false(graph):
    p = tf.placeholder(tf.float32, [None])
    with pytest.raises(ValueError, match="initial_value must have a shape specified"):
        tf.Variable(p)
    v = tf.Variable(p, validate_shape=False)
    assert v.shape.ndims is None
    with tf.Session() as sess:
        sess.run(v.initializer, {p: [1.0, 2.0, 3.0]})
        np.testing.assert_array_equal(sess.run(v), [1.0, 2.0, 3.0])


# -- initialisation ----------------------------------------------------------------------------
def test_uninitialized_read_is_failed_precondition(graph):
    v = tf.Variable([1.0, 2.0])
    with tf.Session() as sess, pytest.raises(errors.FailedPreconditionError) as info:
        sess.run(v)
    e = info.value
    assert e.message == "Attempting to use uninitialized value Variable"
    assert e.error_code == 9
    assert e.op is not None and "Variable" in e.op.name


def test_uninitialized_read_through_computation_and_assign_add(graph):
    v = tf.Variable(1.0, name="counter")
    y = v * 2.0
    inc = v.assign_add(1.0)
    with tf.Session() as sess:
        with pytest.raises(errors.FailedPreconditionError,
                           match="Attempting to use uninitialized value counter"):
            sess.run(y)
        with pytest.raises(errors.FailedPreconditionError,
                           match="Attempting to use uninitialized value counter"):
            sess.run(inc)
        sess.run(v.initializer)
        assert sess.run(inc) == 2.0


def test_assign_initialises_without_reading(graph):
    v = tf.Variable([1.0, 2.0])
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(v.assign([5.0, 6.0])), [5.0, 6.0])
        np.testing.assert_array_equal(sess.run(v), [5.0, 6.0])


def test_values_belong_to_a_session(graph):
    v = tf.Variable(1.0)
    inc = v.assign_add(5.0)
    init = tf.global_variables_initializer()
    with tf.Session() as s1:
        s1.run(init)
        s1.run(inc)
        assert s1.run(v) == 6.0
        with tf.Session() as s2:
            with pytest.raises(errors.FailedPreconditionError):
                s2.run(v)
            s2.run(init)
            assert s2.run(v) == 1.0
        assert s1.run(v) == 6.0


def test_global_variables_initializer_covers_only_existing_variables(graph):
    early = tf.Variable(1.0, name="early")
    init = tf.global_variables_initializer()
    late = tf.Variable(2.0, name="late")
    assert init.type == "NoOp"
    with tf.Session() as sess:
        sess.run(init)
        assert sess.run(early) == 1.0
        with pytest.raises(errors.FailedPreconditionError,
                           match="Attempting to use uninitialized value late"):
            sess.run(late)
        sess.run(tf.global_variables_initializer())
        assert sess.run(late) == 2.0


def test_global_variables_initializer_built_before_minimize_misses_nothing_for_sgd(graph):
    w = tf.Variable([1.0, 2.0])
    step = tf.train.GradientDescentOptimizer(0.5).minimize(tf.reduce_sum(w * w))
    init = tf.global_variables_initializer()
    with tf.Session() as sess:
        sess.run(init)
        sess.run(step)
        np.testing.assert_allclose(sess.run(w), [0.0, 0.0])


def test_variables_initializer_runs_only_the_listed_variables(graph):
    a = tf.Variable(1.0, name="a")
    b = tf.Variable(2.0, name="b")
    c = tf.Variable(3.0, name="c")
    init = tf.variables_initializer([a, c])
    assert [op.name for op in init.control_inputs] == ["a/Assign", "c/Assign"]
    with tf.Session() as sess:
        assert sess.run(init) is None
        assert sess.run([a, c]) == [1.0, 3.0]
        with pytest.raises(errors.FailedPreconditionError,
                           match="Attempting to use uninitialized value b"):
            sess.run(b)
        assert sess.run(tf.variables_initializer([])) is None


def test_initializer_reevaluates_the_initial_value(graph):
    p = tf.placeholder(tf.float32, [2])
    v = tf.Variable(p * 2.0)
    with tf.Session() as sess:
        sess.run(v.initializer, {p: [1.0, 2.0]})
        np.testing.assert_array_equal(sess.run(v), [2.0, 4.0])
        sess.run(v.initializer, {p: [-1.0, 5.0]})
        np.testing.assert_array_equal(sess.run(v), [-2.0, 10.0])


def test_initializer_resets_an_updated_variable(graph):
    v = tf.Variable(1.0)
    inc = v.assign_add(3.0)
    with tf.Session() as sess:
        sess.run(v.initializer)
        sess.run(inc)
        assert sess.run(v) == 4.0
        sess.run(v.initializer)
        assert sess.run(v) == 1.0


def test_truncated_normal_initializer_draws_new_samples_each_run(graph):
    v = tf.Variable(tf.truncated_normal([200]))
    with tf.Session() as sess:
        sess.run(v.initializer)
        first = sess.run(v)
        sess.run(tf.global_variables_initializer())
        second = sess.run(v)
    assert first.shape == (200,) and first.dtype == np.float32
    assert np.all(np.abs(first) <= 2.0) and np.all(np.abs(second) <= 2.0)
    assert not np.array_equal(first, second)
    assert np.std(first) > 0.5  # not constant


# -- assignments -----------------------------------------------------------------------------
def test_assign_assign_add_assign_sub_return_the_new_value(graph):
    v = tf.Variable([1.0, 2.0])
    a = v.assign([10.0, 20.0])
    add = v.assign_add([1.0, 1.0])
    sub = tf.assign_sub(v, [0.5, 0.5])
    add2 = tf.assign_add(v, 2.0 * np.ones(2, np.float32))
    asg = tf.assign(v, [0.0, 0.0])
    with tf.Session() as sess:
        sess.run(v.initializer)
        np.testing.assert_array_equal(sess.run(a), [10.0, 20.0])
        np.testing.assert_array_equal(sess.run(add), [11.0, 21.0])
        np.testing.assert_array_equal(sess.run(sub), [10.5, 20.5])
        np.testing.assert_array_equal(sess.run(add2), [12.5, 22.5])
        np.testing.assert_array_equal(sess.run(v), [12.5, 22.5])
        np.testing.assert_array_equal(sess.run(asg), [0.0, 0.0])
        np.testing.assert_array_equal(sess.run(v), [0.0, 0.0])


def test_assign_op_types_and_shapes(graph):
    v = tf.Variable([[1.0, 2.0]])
    a, b, c = v.assign([[3.0, 4.0]]), v.assign_add([[1.0, 1.0]]), v.assign_sub([[1.0, 1.0]])
    assert (a.op.type, b.op.type, c.op.type) == ("Assign", "AssignAdd", "AssignSub")
    assert a.shape.as_list() == b.shape.as_list() == c.shape.as_list() == [1, 2]
    assert a.dtype == b.dtype == c.dtype == tf.float32


def test_assign_from_another_variable(graph):
    a = tf.Variable([1.0, 2.0])
    b = tf.Variable([0.0, 0.0])
    copy = b.assign(a)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(copy), [1.0, 2.0])
        np.testing.assert_array_equal(sess.run(b), [1.0, 2.0])


def test_assign_static_shape_mismatch_is_value_error(graph):
    v = tf.Variable([[1.0, 2.0]], name="w")
    with pytest.raises(ValueError, match="'Assign' \\(op: 'Assign'\\)"):
        v.assign([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="\\[1,2\\], \\[1,3\\]"):
        v.assign([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="op: 'AssignAdd'"):
        v.assign_add([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="op: 'AssignSub'"):
        tf.assign_sub(v, [[1.0], [2.0]])


def test_assign_dtype_mismatch_is_type_error(graph):
    v = tf.Variable([1.0, 2.0])
    d = tf.constant([1.0, 2.0], dtype=tf.float64)
    with pytest.raises(TypeError, match="float64"):
        v.assign(d)
    with pytest.raises(TypeError, match="float64"):
        v.assign_add(d)
    with pytest.raises(TypeError, match="float64"):
        tf.assign_sub(v, d)
    w64 = tf.Variable([1.0, 2.0], dtype=tf.float64)
    with pytest.raises(TypeError, match="float64"):
        tf.assign(v, w64)


def test_assign_python_values_are_converted_to_the_variable_dtype(graph):
    v = tf.Variable([1.0, 2.0], dtype=tf.float64)
    a = v.assign([3, 4])
    assert a.dtype == tf.float64
    i = tf.Variable([1, 2])
    with pytest.raises(TypeError):
        i.assign([1.5, 2.0])
    with tf.Session() as sess:
        sess.run(v.initializer)
        got = sess.run(a)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, [3.0, 4.0])


def test_assign_needs_a_variable(graph):
    c = tf.constant([1.0])
    with pytest.raises(TypeError, match="needs a Variable"):
        tf.assign(c, [2.0])


def test_validate_shape_false_allows_a_new_shape(graph):
    v = tf.Variable([1.0, 2.0], name="u")
    grow = tf.assign(v, [1.0, 2.0, 3.0], validate_shape=False)
    assert grow.shape.as_list() == [3]
    with tf.Session() as sess:
        sess.run(v.initializer)
        np.testing.assert_array_equal(sess.run(grow), [1.0, 2.0, 3.0])
    w = tf.Variable([1.0, 2.0], validate_shape=False, name="free")
    assert w.shape.ndims is None
    grow_w = tf.assign(w, [[1.0], [2.0], [3.0]], validate_shape=False)
    with tf.Session() as sess:
        sess.run(w.initializer)
        np.testing.assert_array_equal(sess.run(w), [1.0, 2.0])
        sess.run(grow_w)
        np.testing.assert_array_equal(sess.run(w), [[1.0], [2.0], [3.0]])


def test_assign_runtime_shape_mismatch_is_invalid_argument(graph):
    v = tf.Variable([1.0, 2.0])
    p = tf.placeholder(tf.float32, [None])
    a = v.assign(p)
    with tf.Session() as sess:
        sess.run(v.initializer)
        with pytest.raises(errors.InvalidArgumentError,
                           match="Assign requires shapes of both tensors to match"):
            sess.run(a, {p: [1.0, 2.0, 3.0]})
        np.testing.assert_array_equal(sess.run(v), [1.0, 2.0])


# -- reading and loading -----------------------------------------------------------------------
def test_value_read_value_initial_value_and_eval(graph):
    v = tf.Variable([1.0, 2.0], name="w")
    rv = v.read_value()
    assert rv.op.type == "Identity" and rv is not v.value()
    inc = v.assign_add([1.0, 1.0])
    with tf.Session() as sess:
        sess.run(v.initializer)
        sess.run(inc)
        np.testing.assert_array_equal(sess.run(v.value()), [2.0, 3.0])
        np.testing.assert_array_equal(sess.run(rv), [2.0, 3.0])
        np.testing.assert_array_equal(sess.run(v.initial_value), [1.0, 2.0])
        np.testing.assert_array_equal(v.eval(), [2.0, 3.0])
        np.testing.assert_array_equal(v.eval(session=sess), [2.0, 3.0])


def test_load_sets_the_value_without_new_ops(graph):
    v = tf.Variable([[1.0, 2.0]])
    with tf.Session() as sess:
        n_ops = len(graph.get_operations())
        v.load([[7.0, 8.0]], sess)
        assert len(graph.get_operations()) == n_ops
        got = sess.run(v)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, [[7.0, 8.0]])
        v.load(np.array([[1, 2]]))  # default session
        np.testing.assert_array_equal(v.eval(), [[1.0, 2.0]])
        with pytest.raises(ValueError, match="Cannot load value of shape"):
            v.load([1.0, 2.0, 3.0])


def test_load_without_session_is_value_error(graph):
    v = tf.Variable(1.0)
    with pytest.raises(ValueError, match="No default session"):
        v.load(2.0)
    with pytest.raises(ValueError, match="No default session"):
        v.eval()


# -- Variables as operands ---------------------------------------------------------------------
def test_variables_in_python_arithmetic(graph):
    w = tf.Variable([[1.0, 2.0], [3.0, 4.0]])
    x = tf.constant([[1.0], [-1.0]])
    times = w * 2.0
    rsub = 2.0 - w
    prod = w @ x
    plus = w + w
    neg = -w
    assert (times.op.name, rsub.op.name, prod.op.name) == ("mul", "sub", "matmul")
    assert times.op.inputs[0] is w.value()
    assert prod.shape.as_list() == [2, 1]
    wv = np.array([[1.0, 2.0], [3.0, 4.0]])
    with tf.Session() as sess:
        sess.run(w.initializer)
        got = sess.run([times, rsub, prod, plus, neg])
    np.testing.assert_array_equal(got[0], wv * 2.0)
    np.testing.assert_array_equal(got[1], 2.0 - wv)
    np.testing.assert_array_equal(got[2], wv @ np.array([[1.0], [-1.0]]))
    np.testing.assert_array_equal(got[3], wv + wv)
    np.testing.assert_array_equal(got[4], -wv)


def test_variables_as_op_inputs(graph):
    w = tf.Variable([[1.0, 2.0]])
    s = tf.reduce_sum(w)
    t = tf.transpose(w)
    m = tf.matmul(w, w, transpose_b=True)
    assert t.shape.as_list() == [2, 1]
    with tf.Session() as sess:
        sess.run(w.initializer)
        assert sess.run(s) == 3.0
        np.testing.assert_array_equal(sess.run(t), [[1.0], [2.0]])
        np.testing.assert_array_equal(sess.run(m), [[5.0]])


def test_gradient_with_respect_to_a_variable(graph):
    w = tf.Variable([1.0, -2.0, 3.0])
    loss = tf.reduce_sum(w * w) + tf.nn.l2_loss(w)
    (g,) = tf.gradients(loss, [w])
    with tf.Session() as sess:
        sess.run(w.initializer)
        np.testing.assert_allclose(sess.run(g), 3.0 * np.array([1.0, -2.0, 3.0]), rtol=1e-6)


def test_variables_are_hashable_by_identity(graph):
    a = tf.Variable(1.0)
    b = tf.Variable(1.0)
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b"
    same = a
    assert a != b and a == same
