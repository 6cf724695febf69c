"""TF1 semantics the engine got wrong before: control-dependency ordering of reads,
autopacking of lists mixing tensors and numbers (with TF's partial static shapes)."""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf


@pytest.fixture
def graph():
    g = tf.Graph()
    with g.as_default():
        yield g


# -- control_dependencies ordering -----------------------------------------------------------
def _counter(read):
    """Run ``read(v, inc)`` three times on a counter incremented by ``inc``."""
    with tf.Graph().as_default():
        v = tf.Variable(0.0)
        inc = tf.assign_add(v, 1.0)
        out = read(v, inc)
        with tf.Session() as s:
            s.run(v.initializer)
            return [float(s.run(out)) for _ in range(3)]


def _identity_after(v, inc):
    with tf.control_dependencies([inc]):
        return tf.identity(v)


def _read_value_after(v, inc):
    with tf.control_dependencies([inc]):
        return v.read_value()


def _behind_group(v, inc):
    with tf.control_dependencies([tf.group(inc)]):
        return tf.identity(v) * 2.0


def _behind_nested_group(v, inc):
    step = tf.group(tf.group(inc), name="outer")
    with tf.control_dependencies([step]):
        return tf.add(v, 0.0)  # any consumer of the variable's value


def _consumer_of_ordered_read(v, inc):
    with tf.control_dependencies([inc]):
        y = tf.identity(v)
    return y * 10.0  # ordered through y


@pytest.mark.parametrize("read, expect", [
    (_identity_after, [1.0, 2.0, 3.0]),
    (_read_value_after, [1.0, 2.0, 3.0]),
    (_behind_group, [2.0, 4.0, 6.0]),
    (_behind_nested_group, [1.0, 2.0, 3.0]),
    (_consumer_of_ordered_read, [10.0, 20.0, 30.0]),
])
def test_read_ordered_after_a_write_sees_the_written_value(read, expect):
    assert _counter(read) == expect


def test_unordered_read_keeps_the_start_of_run_value(graph):
    v = tf.Variable(0.0)
    inc = tf.assign_add(v, 1.0)
    plain = v + 0.0
    with tf.Session() as s:
        s.run(v.initializer)
        assert [s.run([inc, plain])[1] for _ in range(3)] == [0.0, 1.0, 2.0]
        assert s.run(v) == 3.0


def test_loss_beside_train_op_is_pre_update_and_ordered_loss_is_post_update(graph):
    w = tf.Variable(3.0)
    loss = w * w
    train = tf.train.GradientDescentOptimizer(0.25).minimize(loss)
    with tf.control_dependencies([train]):
        after = tf.identity(w) * tf.identity(w)
    with tf.Session() as s:
        s.run(w.initializer)
        before_loss, after_loss = s.run([loss, after])
    assert before_loss == 9.0  # start of run
    assert after_loss == pytest.approx(1.5 ** 2)  # w = 3 - 0.25 * 6


def test_ordering_is_per_variable(graph):
    a, b = tf.Variable(0.0), tf.Variable(10.0)
    inc_a = tf.assign_add(a, 1.0)
    inc_b = tf.assign_add(b, 1.0)
    with tf.control_dependencies([inc_a]):
        both = tf.stack([tf.identity(a), tf.identity(b)])
    with tf.Session() as s:
        s.run([a.initializer, b.initializer])
        # b's write is not ordered before the read: b is read at the start of the run
        assert s.run([inc_b, both])[1].tolist() == [1.0, 10.0]


def test_initializer_ordered_before_a_read_of_an_uninitialized_variable(graph):
    v = tf.Variable(5.0)
    with tf.control_dependencies([v.initializer]):
        y = tf.identity(v) * 2.0
    with tf.Session() as s:
        assert s.run(y) == 10.0


def test_uninitialized_ordered_read_is_failed_precondition(graph):
    v, u = tf.Variable(1.0, name="v"), tf.Variable(2.0, name="u")
    with tf.control_dependencies([u.initializer]):
        y = tf.identity(v)
    with tf.Session() as s, pytest.raises(tf.errors.FailedPreconditionError,
                                          match="uninitialized value v"):
        s.run(y)


def test_chain_of_ordered_writes(graph):
    v = tf.Variable(1.0)
    doubled = tf.assign(v, v * 2.0)
    with tf.control_dependencies([doubled]):
        plus = tf.assign_add(v, 1.0)
    with tf.control_dependencies([plus]):
        out = tf.identity(v)
    with tf.Session() as s:
        s.run(v.initializer)
        assert s.run(out) == 3.0
        assert s.run(out) == 7.0


def test_ordered_read_through_a_fed_tensor_is_cut(graph):
    v = tf.Variable(0.0)
    inc = tf.assign_add(v, 1.0)
    with tf.control_dependencies([inc]):
        y = tf.identity(v) + 0.0
    with tf.Session() as s:
        s.run(v.initializer)
        assert s.run(y, {y: 42.0}) == 42.0
        assert s.run(v) == 0.0  # fed: nothing upstream ran


# -- autopacking -----------------------------------------------------------------------------
def test_reshape_with_a_tensor_dim_and_minus_one(graph):
    x = tf.placeholder(tf.float32, [None, 4, 5])
    y = tf.reshape(x, [tf.shape(x)[0], -1])
    assert y.shape.as_list() == [None, None]  # two unknowns: TF cannot infer either
    s = tf.shape(x)
    z = tf.reshape(x, [s[0], s[1] * s[2]])   # slices of known dims fold: [?, 20]
    w = tf.reshape(x, [-1, s[1] * s[2]])
    assert z.shape.as_list() == [None, 20] and w.shape.as_list() == [None, 20]
    data = np.arange(40, dtype=np.float32).reshape(2, 4, 5)
    with tf.Session() as sess:
        for t in (y, z, w):
            np.testing.assert_array_equal(sess.run(t, {x: data}), data.reshape(2, 20))


def test_zeros_ones_fill_random_with_tensor_dims(graph):
    n = tf.placeholder(tf.int32, [])
    z = tf.zeros([n, 3])
    o = tf.ones([2, n], tf.float64)
    f = tf.fill([n, 2], 7)
    r = tf.random_normal([n, 3], seed=1)
    assert [t.shape.as_list() for t in (z, o, f, r)] == [[None, 3], [2, None], [None, 2],
                                                        [None, 3]]
    assert z.op.name == "zeros" and o.dtype == tf.float64
    with tf.Session() as s:
        vz, vo, vf, vr = s.run([z, o, f, r], {n: 4})
    assert vz.shape == (4, 3) and not vz.any()
    assert vo.shape == (2, 4) and vo.dtype == np.float64 and vo.all()
    assert vf.tolist() == [[7, 7]] * 4
    assert vr.shape == (4, 3)


def test_tile_with_tensor_multiples(graph):
    x = tf.placeholder(tf.float32, [None, 3])
    n = tf.placeholder(tf.int32, [])
    y = tf.tile(x, [n, 1])
    assert y.shape.as_list() == [None, 3]
    k = tf.constant(2)
    assert tf.tile(tf.ones([2, 3]), [1, k]).shape.as_list() == [2, 6]  # folded constant
    with tf.Session() as s:
        out = s.run(y, {x: np.ones((2, 3)), n: 3})
    assert out.shape == (6, 3)


def test_autopacked_list_dtype_names_nesting_and_casts(graph):
    n = tf.placeholder(tf.int32, [], name="n")
    packed = tf.convert_to_tensor([[n, 1], [2, n]])
    assert packed.op.type == "Pack" and packed.shape.as_list() == [2, 2]
    assert packed.dtype == tf.int32
    as_int64 = tf.convert_to_tensor([n, 3], dtype=tf.int64)  # tensors cast, as TF does
    assert as_int64.dtype == tf.int64
    f = tf.placeholder(tf.float32, [])
    mixed = tf.stack([f, 2.0])
    assert mixed.dtype == tf.float32
    with pytest.raises(TypeError, match="Cannot convert a list containing a tensor of dtype "
                       "bool to int32"):
        tf.convert_to_tensor([tf.constant(True), 1], dtype=tf.int32)
    with tf.Session() as s:
        assert s.run(packed, {n: 5}).tolist() == [[5, 1], [2, 5]]
        assert s.run(as_int64, {n: 5}).dtype == np.int64


def test_reshape_partial_target_still_checks_element_counts(graph):
    x = tf.placeholder(tf.float32, [3, 4])
    n = tf.placeholder(tf.int32, [])
    with pytest.raises(ValueError, match="evenly divisible by 5"):
        tf.reshape(x, [n, 5])
    assert tf.reshape(x, [n, 6]).shape.as_list() == [2, 6]


def test_shape_slice_folding_needs_the_dim_to_be_known(graph):
    x = tf.placeholder(tf.float32, [None, 4])
    assert tf.get_static_value(tf.shape(x)[1]) == 4
    assert tf.get_static_value(tf.shape(x)[0]) is None
    assert tf.get_static_value(tf.shape(x)[1] * 3) == 12


# -- namespaces ------------------------------------------------------------------------------
def test_every_registered_api_path_resolves():
    import functools
    import importlib

    from gradverify.engine import registry
    paths = registry.api_paths()
    assert "manip.reshape" in paths and "initializers.zeros" in paths
    for path, obj in paths.items():
        got = functools.reduce(getattr, path.split("."), tf)
        assert got is obj, path
        ns = path.rpartition(".")[0]
        if ns:  # the namespace imports like a module, as tf.manip does
            assert importlib.import_module(f"gradverify.engine.{ns}") is functools.reduce(
                getattr, ns.split("."), tf)


def test_a_name_exported_later_into_a_new_namespace_resolves():
    from gradverify.engine import registry

    def helper():
        return 1
    registry.export("brand_new_ns.helper")(helper)
    try:
        assert tf.brand_new_ns.helper is helper
    finally:
        import sys
        registry._API.pop("brand_new_ns", None)
        registry._API_SOURCE.pop("brand_new_ns.helper", None)
        sys.modules.pop("gradverify.engine.brand_new_ns", None)
        vars(tf).pop("brand_new_ns", None)


def test_manip_ops_work_through_their_namespace(graph):
    x = tf.constant([[1, 2, 3]])
    with tf.Session() as s:
        assert s.run(tf.manip.reshape(x, [3, 1])).tolist() == [[1], [2], [3]]
        assert s.run(tf.manip.tile(x, [2, 1])).shape == (2, 3)


# -- error classes and messages ----------------------------------------------------------
def test_unknown_fetch_name_is_value_error(graph):
    tf.constant(1.0, name="x")
    with tf.Session() as s:
        with pytest.raises(ValueError, match=r"Fetch argument 'nope:0' cannot be interpreted "
                           r"as a Tensor\. \(The name 'nope:0' refers to a Tensor which does "
                           "not exist"):
            s.run("nope:0")
        with pytest.raises(ValueError, match="cannot be interpreted as a Tensor"):
            s.run(["x:0", "x:7"])


def test_unknown_or_bad_feed_key_is_type_error(graph):
    x = tf.placeholder(tf.float32, [2], name="x")
    y = x * 2.0
    with tf.Session() as s:
        with pytest.raises(TypeError, match="Cannot interpret feed_dict key as Tensor: The "
                           "name 'nope:0' refers to a Tensor which does not exist"):
            s.run(y, {"nope:0": [1.0, 2.0]})
        with pytest.raises(TypeError, match="Cannot interpret feed_dict key as Tensor: Name "
                           "'x' appears to refer to an Operation"):
            s.run(y, {"x": [1.0, 2.0]})
        with pytest.raises(TypeError, match="Can not convert a Operation into a Tensor"):
            s.run(y, {y.op: [1.0, 2.0]})
        assert s.run(y, {"x:0": [1.0, 2.0]}).tolist() == [2.0, 4.0]


def test_fetching_a_numpy_array_is_tfs_type_error(graph):
    x = tf.constant([1.0])
    with tf.Session() as s:
        for fetches in (np.array([1, 2]), [x, np.zeros(2)], {"a": np.ones(1)}):
            with pytest.raises(TypeError, match=r"Fetch argument array\(.*\) has invalid type "
                               r"<class 'numpy\.ndarray'>, must be a string or Tensor\. \(Can "
                               r"not convert a ndarray into a Tensor or Operation\.\)"):
                s.run(fetches)


def test_constant_with_shape_pads_with_last_value_or_rejects_too_many(graph):
    with pytest.raises(ValueError, match=r"Too many elements provided\. Needed at most 2, but "
                       "received 3"):
        tf.constant([1, 2, 3], shape=[2])
    with pytest.raises(TypeError, match=r"Expected Tensor's shape: \(3,\), got \(2,\)"):
        tf.constant([1, 2], shape=[3], verify_shape=True)
    padded = tf.constant([1, 2], shape=[3])
    grid = tf.constant([[1.0, 2.0], [3.0, 4.0]], shape=[3, 2])
    scalar = tf.constant(7, shape=[2, 2])
    same = tf.constant(np.arange(6), shape=[2, 3])
    with tf.Session() as s:
        assert s.run(padded).tolist() == [1, 2, 2]
        assert s.run(grid).tolist() == [[1, 2], [3, 4], [4, 4]]
        assert s.run(scalar).tolist() == [[7, 7], [7, 7]]
        assert s.run(same).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert tf.constant([], shape=[0]).shape.as_list() == [0]


def test_gradients_of_integer_tensors_are_none(graph):
    i = tf.constant([1, 2])
    f = tf.constant([1.0, 2.0])
    assert tf.gradients(i * 2, [i]) == [None]
    assert tf.gradients(tf.cast(f, tf.int32), [f]) == [None]
    assert tf.gradients(tf.reduce_sum(tf.cast(i, tf.float32)), [i]) == [None]
    n = tf.cast(f, tf.int32)
    mixed = tf.reduce_sum(f * tf.cast(n, tf.float32))  # float path still differentiates
    (g,) = tf.gradients(mixed, [f])
    with tf.Session() as s:
        assert s.run(g).tolist() == [1.0, 2.0]
