"""Session.run: fetch structures, feeds, pruning, ordering, plan caching, default sessions and
run-time errors (spec/tf1-semantics.md sections 3 and 7)."""

from __future__ import annotations

import collections
import re

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine import errors
from gradverify.engine import meta as m
from gradverify.engine.registry import unregister

Pair = collections.namedtuple("Pair", "first second")
CLOSED = re.escape("Attempted to use a closed Session.")
FEED_TENSOR = re.escape("The value of a feed cannot be a tf.Tensor object")


@pytest.fixture
def counter():
    """A pure custom op ``CountCalls`` (x + 1) that records every kernel call; removed after."""
    calls: list[tuple] = []

    @tf.op("CountCalls", inputs={"x": m.reals})
    def count_calls(x):
        calls.append(np.shape(x))
        return x + 1

    try:
        yield count_calls, calls
    finally:
        unregister("CountCalls")


# -- fetch structures ------------------------------------------------------------------------
def test_fetch_tensor_gives_ndarray_and_scalar_gives_numpy_scalar(graph):
    c = tf.constant([[1.0, 2.0]])
    s = tf.constant(3.0, dtype=tf.float64)
    i = tf.constant(7)
    with tf.Session() as sess:
        got = sess.run(c)
        assert isinstance(got, np.ndarray)
        assert got.dtype == np.float32 and got.shape == (1, 2)
        np.testing.assert_array_equal(got, [[1.0, 2.0]])
        gs = sess.run(s)
        assert isinstance(gs, np.float64) and not isinstance(gs, np.ndarray)
        assert gs == 3.0
        gi = sess.run(i)
        assert isinstance(gi, np.int32) and gi == 7


def test_fetch_operation_gives_none(graph):
    c = tf.constant(1.0)
    noop = tf.no_op()
    with tf.Session() as sess:
        assert sess.run(noop) is None
        assert sess.run(c.op) is None
        assert sess.run([noop, c]) == [None, np.float32(1.0)]


def test_fetch_variable_gives_its_value(graph):
    v = tf.Variable([1.0, 2.0])
    with tf.Session() as sess:
        sess.run(v.initializer)
        got = sess.run(v)
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, [1.0, 2.0])


def test_fetch_by_tensor_name_and_op_name(graph):
    c = tf.constant([4.0, 5.0], name="x")
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run("x:0"), [4.0, 5.0])
        assert sess.run("x") is None  # an op name fetches the op
        got = sess.run(["x:0", c])
        np.testing.assert_array_equal(got[0], got[1])


def test_fetch_unknown_name_raises(graph):
    tf.constant(1.0, name="x")
    with tf.Session() as sess:  # TF1 turns the graph's KeyError into a ValueError
        with pytest.raises(ValueError, match="Fetch argument 'y:0' cannot be interpreted as "
                           "a Tensor"):
            sess.run("y:0")
        with pytest.raises(ValueError, match="cannot be interpreted as a Tensor"):
            sess.run("y")


def test_nested_fetch_structures_keep_structure_and_types(graph):
    a = tf.constant([1.0, 2.0])
    b = tf.constant(3.0)
    op = tf.no_op()
    fetches = {"list": [a, (b, Pair(a, op))], "pair": Pair(first=b, second=[a]), "t": (b,)}
    with tf.Session() as sess:
        got = sess.run(fetches)
    assert type(got) is dict and set(got) == {"list", "pair", "t"}
    assert type(got["list"]) is list and len(got["list"]) == 2
    np.testing.assert_array_equal(got["list"][0], [1.0, 2.0])
    inner = got["list"][1]
    assert type(inner) is tuple and len(inner) == 2
    assert inner[0] == 3.0
    assert type(inner[1]) is Pair
    np.testing.assert_array_equal(inner[1].first, [1.0, 2.0])
    assert inner[1].second is None
    assert type(got["pair"]) is Pair
    assert got["pair"].first == 3.0
    assert type(got["pair"].second) is list
    assert type(got["t"]) is tuple and got["t"] == (3.0,)


def test_ordered_dict_fetch_keeps_type_and_order(graph):
    a, b = tf.constant(1.0), tf.constant(2.0)
    with tf.Session() as sess:
        got = sess.run(collections.OrderedDict([("z", a), ("a", b)]))
    assert type(got) is collections.OrderedDict
    assert list(got.items()) == [("z", 1.0), ("a", 2.0)]


def test_empty_fetch_structures(graph):
    with tf.Session() as sess:
        assert sess.run([]) == []
        assert sess.run({}) == {}


def test_none_fetch_is_type_error(graph):
    c = tf.constant(1.0)
    with tf.Session() as sess:
        with pytest.raises(TypeError, match="Fetch argument None has invalid type"):
            sess.run(None)
        with pytest.raises(TypeError, match="Fetch argument None has invalid type"):
            sess.run([c, None])
        with pytest.raises(TypeError, match="Fetch argument None"):
            sess.run({"a": None})


def test_bad_fetch_type_is_type_error(graph):
    with tf.Session() as sess:
        with pytest.raises(TypeError, match="Fetch argument 3 has invalid type <class 'int'>"):
            sess.run(3)
        with pytest.raises(TypeError, match="has invalid type"):
            sess.run(object())


def test_fetch_from_another_graph_is_value_error(graph):
    other = tf.Graph()
    with other.as_default():
        c = tf.constant(1.0)
    with tf.Session(graph=graph) as sess, pytest.raises(
            ValueError, match="cannot be interpreted as a Tensor"):
        sess.run(c)


def test_tensor_fetched_twice_is_computed_once(graph, counter):
    count_calls, calls = counter
    x = tf.placeholder(tf.float32, [2])
    y = count_calls(x)
    doubled = y * 2.0
    with tf.Session() as sess:
        got = sess.run([y, y, doubled, {"again": y}], {x: [1.0, 2.0]})
        assert len(calls) == 1
        np.testing.assert_array_equal(got[0], [2.0, 3.0])
        np.testing.assert_array_equal(got[1], [2.0, 3.0])
        np.testing.assert_array_equal(got[2], [4.0, 6.0])
        np.testing.assert_array_equal(got[3]["again"], [2.0, 3.0])
        sess.run(y, {x: [0.0, 0.0]})
        assert len(calls) == 2  # once per run


def test_each_node_runs_at_most_once_per_run_with_fan_out(graph, counter):
    count_calls, calls = counter
    x = tf.placeholder(tf.float32, [3])
    y = count_calls(x)
    a, b = y * 2.0, y + 1.0
    total = tf.reduce_sum(a + b + y)
    with tf.Session() as sess:
        got = sess.run(total, {x: [0.0, 1.0, 2.0]})
    assert len(calls) == 1
    yv = np.array([1.0, 2.0, 3.0])
    assert got == pytest.approx(float(np.sum(yv * 2 + yv + 1 + yv)))


def test_random_op_draws_once_per_run_shared_by_consumers(graph):
    r = tf.random_uniform([4])
    plus = r + 1.0
    with tf.Session() as sess:
        r1, r2, p = sess.run([r, r, plus])
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_allclose(p, r1 + 1.0, rtol=1e-6)
        r3 = sess.run(r)
    assert not np.array_equal(r1, r3)  # a new draw in the next run


# -- feeds -------------------------------------------------------------------------------------
def test_feed_value_converted_to_key_dtype(graph):
    x = tf.placeholder(tf.float32, [2])
    y = x * 1.0
    d = tf.placeholder(tf.float64, [])
    i = tf.placeholder(tf.int32, [2])
    with tf.Session() as sess:
        got = sess.run(y, {x: [1, 2]})  # Python ints into float32
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, [1.0, 2.0])
        got64 = sess.run(y, {x: np.array([0.1, 0.2], dtype=np.float64)})
        assert got64.dtype == np.float32
        np.testing.assert_array_equal(got64, np.array([0.1, 0.2], dtype=np.float32))
        gd = sess.run(d, {d: 0.1})
        assert isinstance(gd, np.float64) and gd == 0.1
        gi = sess.run(i, {i: np.array([3.0, 4.0])})
        assert gi.dtype == np.int32
        np.testing.assert_array_equal(gi, [3, 4])
        with pytest.raises(TypeError):
            sess.run(i, {i: [1.5, 2.0]})


def test_feed_shape_contradiction_is_value_error_with_tf_message(graph):
    x = tf.placeholder(tf.float32, [None, 784])
    y = tf.reduce_sum(x)
    with tf.Session() as sess:
        with pytest.raises(ValueError) as info:
            sess.run(y, {x: np.zeros((2, 3))})
        assert str(info.value) == ("Cannot feed value of shape (2, 3) for Tensor "
                                   "'Placeholder:0', which has shape '(?, 784)'")
        with pytest.raises(ValueError, match=r"Cannot feed value of shape \(784,\)"):
            sess.run(y, {x: np.zeros(784)})
        assert sess.run(y, {x: np.ones((3, 784))}) == 3 * 784  # None matches any size


def test_tensor_as_feed_value_is_type_error(graph):
    x = tf.placeholder(tf.float32, [2])
    c = tf.constant([1.0, 2.0])
    v = tf.Variable([1.0, 2.0])
    with tf.Session() as sess:
        with pytest.raises(TypeError, match=FEED_TENSOR):
            sess.run(x, {x: c})
        with pytest.raises(TypeError, match=FEED_TENSOR):
            sess.run(x, {x: v})


def test_bad_feed_key_is_type_error(graph):
    x = tf.placeholder(tf.float32, [2])
    with tf.Session() as sess, pytest.raises(TypeError, match="Cannot interpret feed_dict "
                                              "key as Tensor: Can not convert a int into a "
                                              r"Tensor\."):
        sess.run(x, {3: [1.0, 2.0]})


def test_feed_by_name_string(graph):
    x = tf.placeholder(tf.float32, [2], name="inp")
    y = x + 1.0
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(y, {"inp:0": [1.0, 2.0]}), [2.0, 3.0])


def test_feeding_intermediate_tensor_cuts_its_ancestors(graph, counter):
    count_calls, calls = counter
    p = tf.placeholder(tf.float32, [2])
    mid = count_calls(p) * 3.0
    out = mid + 1.0
    with tf.Session() as sess:
        got = sess.run(out, {mid: [10.0, 20.0]})  # p is not fed and not needed
        np.testing.assert_array_equal(got, [11.0, 21.0])
        assert calls == []
        fed = sess.run(mid, {mid: [5.0, 6.0]})
        np.testing.assert_array_equal(fed, [5.0, 6.0])
        both = sess.run([mid, out], {p: [1.0, 2.0]})
        np.testing.assert_array_equal(both[0], [6.0, 9.0])
        np.testing.assert_array_equal(both[1], [7.0, 10.0])
        assert len(calls) == 1


def test_fetching_a_fed_placeholder_returns_the_fed_value(graph):
    p = tf.placeholder(tf.float32, [None])
    with tf.Session() as sess:
        got = sess.run(p, {p: [1.5, -2.0, 3.0]})
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [1.5, -2.0, 3.0])


def test_unfed_placeholder_is_invalid_argument_error(graph):
    x = tf.placeholder(tf.float32, [None, 784])
    y = tf.reduce_sum(x)
    with tf.Session() as sess, pytest.raises(errors.InvalidArgumentError) as info:
        sess.run(y)
    e = info.value
    assert e.message == ("You must feed a value for placeholder tensor 'Placeholder' with "
                         "dtype float and shape [?,784]")
    assert e.error_code == 3
    assert e.op is x.op
    assert isinstance(e, errors.OpError)
    assert "Placeholder" in str(e)


def test_unfed_placeholder_message_for_other_dtypes_and_unknown_shape(graph):
    d = tf.placeholder(tf.float64, [2], name="d")
    i = tf.placeholder(tf.int32, name="i")
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match="You must feed a value for "
                           "placeholder tensor 'd' with dtype double and shape \\[2\\]"):
            sess.run(d)
        with pytest.raises(errors.InvalidArgumentError) as info:
            sess.run(i)
    assert info.value.message == ("You must feed a value for placeholder tensor 'i' with "
                                  "dtype int32")


# -- pruning and ordering ----------------------------------------------------------------------
def test_only_ancestors_of_fetches_run(graph, counter):
    count_calls, calls = counter
    unrelated = tf.placeholder(tf.float32, [2], name="unrelated")
    side = count_calls(tf.constant([1.0, 2.0]) * tf.placeholder_with_default(
        tf.constant([1.0, 1.0]), [2]))
    bad = tf.reduce_sum(unrelated)
    c = tf.constant([1.0, 2.0])
    y = c * 2.0
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(y), [2.0, 4.0])
        assert calls == []
        with pytest.raises(errors.InvalidArgumentError):
            sess.run(bad)
        np.testing.assert_array_equal(sess.run(side), [2.0, 3.0])
        assert len(calls) == 1


def test_control_dependency_ancestors_run(graph):
    v = tf.Variable(0.0)
    inc = v.assign_add(1.0)
    with tf.control_dependencies([inc]):
        out = tf.constant(5.0) + 0.0
    plain = tf.constant(5.0) + 0.0
    with tf.Session() as sess:
        sess.run(v.initializer)
        assert sess.run(out) == 5.0
        assert sess.run(v) == 1.0
        assert sess.run(out) == 5.0
        assert sess.run(v) == 2.0
        assert sess.run(plain) == 5.0
        assert sess.run(v) == 2.0


def test_group_runs_all_its_inputs(graph):
    a = tf.Variable(0.0)
    b = tf.Variable(10.0)
    step = tf.group(a.assign_add(1.0), b.assign_sub(2.0))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(step) is None
        assert sess.run([a, b]) == [1.0, 8.0]


def test_reads_happen_before_writes_in_one_run(graph):
    v = tf.Variable(1.0)
    inc = v.assign_add(1.0)
    with tf.Session() as sess:
        sess.run(v.initializer)
        new, old = sess.run([inc, v])
        assert (new, old) == (2.0, 1.0)
        old2, new2 = sess.run([v, inc])
        assert (old2, new2) == (2.0, 3.0)
        assert sess.run(v) == 3.0


def test_train_op_and_loss_fetched_together_give_pre_update_loss(graph):
    w = tf.Variable([1.0, -2.0])
    loss = tf.reduce_sum(w * w)
    train = tf.train.GradientDescentOptimizer(0.25).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        none, fetched = sess.run([train, loss])
        assert none is None
        assert fetched == pytest.approx(5.0)  # loss at w = [1, -2]
        w1 = sess.run(w)
        np.testing.assert_allclose(w1, [0.5, -1.0])  # w - 0.25 * 2w
        assert sess.run(loss) == pytest.approx(1.25)
        _, fetched2 = sess.run([train, loss])
        assert fetched2 == pytest.approx(1.25)


# -- run-time errors -----------------------------------------------------------------------
def test_runtime_broadcast_shape_error_names_op(graph):
    a = tf.placeholder(tf.float32, [None, 3])
    b = tf.placeholder(tf.float32, [None, 3])
    c = tf.add(a, b, name="plus")
    assert c.shape.as_list() == [None, 3]
    with tf.Session() as sess, pytest.raises(errors.InvalidArgumentError) as info:
        sess.run(c, {a: np.zeros((2, 3)), b: np.zeros((4, 3))})
    e = info.value
    assert e.message == "Incompatible shapes: [2,3] vs. [4,3]"
    assert e.error_code == 3
    assert e.op is c.op
    assert "plus" in str(e)


def test_runtime_matmul_mismatch_is_invalid_argument(graph):
    a = tf.placeholder(tf.float32, [2, None], name="A")
    b = tf.placeholder(tf.float32, [None, 2], name="B")
    mm = tf.matmul(a, b)
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError) as info:
            sess.run(mm, {a: np.zeros((2, 3)), b: np.zeros((4, 2))})
        assert info.value.op is mm.op
        assert "Dimensions must be equal, but are 3 and 4" in info.value.message
        assert "MatMul" in str(info.value)
        ok = sess.run(mm, {a: np.ones((2, 3)), b: np.ones((3, 2))})
        np.testing.assert_array_equal(ok, np.full((2, 2), 3.0))


def test_kernel_invalid_argument_gets_op_attached(graph):
    def bad(x):
        raise errors.InvalidArgumentError(None, None, "custom failure")

    tf.op("FailingKernel", inputs={"x": m.reals})(bad)
    try:
        p = tf.placeholder(tf.float32, [1])
        y = tf.registry.lookup("FailingKernel")(p, name="boom")
        with tf.Session() as sess, pytest.raises(errors.InvalidArgumentError) as info:
            sess.run(y, {p: [1.0]})
        assert info.value.op is y.op
        assert info.value.message == "custom failure"
        assert "boom" in str(info.value)
    finally:
        unregister("FailingKernel")


# -- session lifetime and defaults -------------------------------------------------------------
def test_closed_session_raises_runtime_error(graph):
    c = tf.constant(1.0)
    sess = tf.Session()
    assert sess.run(c) == 1.0
    sess.close()
    assert sess.closed
    with pytest.raises(RuntimeError, match=f"^{CLOSED}$"):
        sess.run(c)
    with pytest.raises(RuntimeError, match=CLOSED):
        sess.make_callable(c)


def test_with_session_closes_it(graph):
    c = tf.constant(1.0)
    with tf.Session() as sess:
        pass
    with pytest.raises(RuntimeError, match=CLOSED):
        sess.run(c)


def test_with_session_makes_graph_and_session_default():
    g = tf.Graph()
    with g.as_default():
        c = tf.constant([1.0, 2.0])
        v = tf.Variable(3.0)
    outer = tf.get_default_graph()
    assert tf.get_default_session() is None
    with tf.Session(graph=g) as sess:
        assert sess.graph is g
        assert tf.get_default_graph() is g
        assert tf.get_default_session() is sess
        np.testing.assert_array_equal(c.eval(), [1.0, 2.0])
        assert v.initializer.run() is None
        assert v.eval() == 3.0
        d = tf.constant(4.0)  # built in g, the default inside the block
        assert d.graph is g
        assert d.eval() == 4.0
    assert tf.get_default_graph() is outer
    assert tf.get_default_session() is None


def test_eval_with_feed_dict_and_explicit_session(graph):
    p = tf.placeholder(tf.float32, [])
    y = p * 2.0
    sess = tf.Session()
    try:
        assert y.eval(feed_dict={p: 3.0}, session=sess) == 6.0
        with sess.as_default():
            assert tf.get_default_session() is sess
            assert y.eval({p: 1.5}) == 3.0
        assert tf.get_default_session() is None
    finally:
        sess.close()


def test_eval_without_default_session_is_value_error(graph):
    c = tf.constant(1.0)
    with pytest.raises(ValueError, match="No default session is registered"):
        c.eval()
    with pytest.raises(ValueError, match="No default session is registered"):
        c.op.run()


def test_eval_in_session_of_other_graph_is_value_error(graph):
    c = tf.constant(1.0)
    other = tf.Graph()
    with tf.Session(graph=other) as sess, pytest.raises(ValueError, match="graph"):
        c.eval(session=sess)


def test_session_without_graph_uses_default_graph(graph):
    sess = tf.Session()
    try:
        assert sess.graph is graph
    finally:
        sess.close()


def test_interactive_session_is_default_on_creation(graph):
    c = tf.constant(2.0)
    sess = tf.InteractiveSession()
    try:
        assert tf.get_default_session() is sess
        assert c.eval() == 2.0
    finally:
        sess.close()
    assert tf.get_default_session() is None
    with pytest.raises(RuntimeError, match=CLOSED):
        sess.run(c)


# -- execution plans -------------------------------------------------------------------------
def test_execution_plans_are_cached_per_fetches_and_feed_keys(graph):
    p = tf.placeholder(tf.float32, [2])
    y = p * 2.0
    z = y + 1.0
    with tf.Session() as sess:
        assert len(sess._plans) == 0
        np.testing.assert_array_equal(sess.run(y, {p: [1.0, 2.0]}), [2.0, 4.0])
        assert len(sess._plans) == 1
        plan = next(iter(sess._plans.values()))
        np.testing.assert_array_equal(sess.run(y, {p: [3.0, 4.0]}), [6.0, 8.0])
        assert len(sess._plans) == 1  # same fetches and feed keys: reused
        assert next(iter(sess._plans.values())) is plan
        np.testing.assert_array_equal(sess.run(z, {p: [1.0, 1.0]}), [3.0, 3.0])
        assert len(sess._plans) == 2  # a different fetch: a new plan
        sess.run([y, z], {p: [1.0, 1.0]})
        assert len(sess._plans) == 3
        sess.run(z, {y: [0.0, 0.0]})  # different feed keys
        assert len(sess._plans) == 4
        sess.run(z, {p: [0.0, 0.0]})
        assert len(sess._plans) == 4


def test_cached_plan_sees_variable_updates(graph):
    v = tf.Variable(1.0)
    y = v * 10.0
    with tf.Session() as sess:
        sess.run(v.initializer)
        assert sess.run(y) == 10.0
        sess.run(v.assign(2.0))
        assert sess.run(y) == 20.0  # same plan, new state


def test_fetched_arrays_do_not_alias_engine_state(graph):
    c = tf.constant([1.0, 2.0])
    v = tf.Variable([1.0, 2.0])
    with tf.Session() as sess:
        sess.run(v.initializer)
        got = sess.run(c)
        got[0] = 100.0
        np.testing.assert_array_equal(sess.run(c), [1.0, 2.0])
        gv = sess.run(v)
        gv[0] = 100.0
        np.testing.assert_array_equal(sess.run(v), [1.0, 2.0])


def test_make_callable(graph):
    p = tf.placeholder(tf.float32, [2])
    q = tf.placeholder(tf.float32, [])
    y = p * q
    with tf.Session() as sess:
        f = sess.make_callable(y, [p, q])
        np.testing.assert_array_equal(f([1.0, 2.0], 3.0), [3.0, 6.0])
        np.testing.assert_array_equal(f(np.array([0.5, 1.0]), 2), [1.0, 2.0])
        g = sess.make_callable({"y": y, "s": [tf.reduce_sum(y)]}, feed_list=[p, q])
        got = g([1.0, 1.0], 2.0)
        assert set(got) == {"y", "s"}
        np.testing.assert_array_equal(got["y"], [2.0, 2.0])
        assert type(got["s"]) is list and got["s"][0] == 4.0
        with pytest.raises(TypeError):
            f([1.0, 2.0])
        with pytest.raises(ValueError, match="Cannot feed value of shape"):
            f([1.0, 2.0, 3.0], 1.0)
        c = sess.make_callable(tf.constant(7.0))
        assert c() == 7.0
    with pytest.raises(RuntimeError, match=CLOSED):
        f([1.0, 2.0], 3.0)


# -- errors module ---------------------------------------------------------------------------
@pytest.mark.parametrize("name, code", [
    ("CancelledError", 1), ("UnknownError", 2), ("InvalidArgumentError", 3),
    ("DeadlineExceededError", 4), ("NotFoundError", 5), ("AlreadyExistsError", 6),
    ("PermissionDeniedError", 7), ("ResourceExhaustedError", 8),
    ("FailedPreconditionError", 9), ("AbortedError", 10), ("OutOfRangeError", 11),
    ("UnimplementedError", 12), ("InternalError", 13), ("UnavailableError", 14),
    ("DataLossError", 15), ("UnauthenticatedError", 16),
])
def test_op_error_subclasses_have_tf_error_codes(name, code):
    cls = getattr(errors, name)
    assert issubclass(cls, errors.OpError)
    e = cls(None, None, "something failed")
    assert e.error_code == code
    assert e.message == "something failed"
    assert e.op is None and e.node_def is None
    assert str(e) == "something failed"
    constant = {1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
                5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED",
                8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
                11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
                15: "DATA_LOSS", 16: "UNAUTHENTICATED"}[code]
    assert getattr(errors, constant) == code


def test_op_error_str_names_the_node(graph):
    c = tf.constant(1.0, name="node")
    e = errors.InvalidArgumentError(None, c.op, "bad value")
    assert e.op is c.op
    assert "bad value" in str(e)
    assert "node" in str(e) and "Const" in str(e)
