"""Random ops: distributions, shapes, once-per-run draws, and TF1's seed rules."""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine import errors, registry
from gradverify.engine.ops.random_ops import get_seed

MAXINT32 = 2**31 - 1


def _run(fetches, feed_dict=None, graph=None):
    with tf.Session(graph=graph) as s:
        return s.run(fetches, feed_dict)


# -- public names, metadata ----------------------------------------------------------------------
def test_public_names_and_metadata():
    assert tf.random.normal is tf.random_normal
    assert tf.random.uniform is tf.random_uniform
    assert tf.random.truncated_normal is tf.truncated_normal
    assert tf.get_seed is tf.random.get_seed is get_seed
    for t in ("RandomStandardNormal", "TruncatedNormal", "RandomUniform", "RandomUniformInt"):
        od = registry.lookup(t)
        assert od.random and not od.differentiable and od.examples
        assert set(od.attrs) >= {"seed", "seed2"}


def test_op_structure_follows_tf1():
    out = tf.truncated_normal([2, 3], mean=1.0, stddev=2.0, seed=4)
    assert out.op.name == "truncated_normal" and out.op.type == "Add"
    names = [o.name for o in tf.get_default_graph().get_operations()]
    assert names == ["truncated_normal/shape", "truncated_normal/mean",
                     "truncated_normal/stddev", "truncated_normal/TruncatedNormal",
                     "truncated_normal/mul", "truncated_normal"]
    u = tf.random_uniform([2], name="noise")
    assert u.op.name == "noise"


# -- shapes and dtypes ---------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [tf.random_normal, tf.truncated_normal, tf.random_uniform])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("shape", [[], [1], [3, 1], [2, 3, 4]])
def test_static_and_runtime_shape(fn, dtype, shape):
    out = fn(shape, dtype=dtype, seed=1)
    assert out.shape.as_list() == shape and out.dtype is dtype
    val = np.asarray(_run(out))
    assert val.shape == tuple(shape) and val.dtype == dtype.np


def test_shape_from_tensor_and_tensorshape():
    n = tf.placeholder(tf.int32, [2])
    out = tf.random_normal(n)
    assert out.shape.as_tuple() == (None, None)
    assert _run(out, {n: [3, 5]}).shape == (3, 5)
    x = tf.placeholder(tf.float32, [None, 4])
    dyn = tf.random_uniform(tf.shape(x))
    assert dyn.shape.ndims == 2
    assert _run(dyn, {x: np.zeros((2, 4))}).shape == (2, 4)
    assert tf.random_uniform(tf.TensorShape([2, 3])).shape.as_list() == [2, 3]
    assert tf.random_uniform(tf.constant([[1.0]]).shape).shape.as_list() == [1, 1]
    with pytest.raises(ValueError, match="Cannot convert a partially known TensorShape"):
        tf.random_uniform(tf.TensorShape([None, 3]))
    with pytest.raises(ValueError, match=r"Shape must be rank 1 but is rank 2.*'RandomUniform'"):
        tf.random_uniform([[2, 3]])
    with pytest.raises(ValueError, match=r"Dimension -1 must be >= 0.*'RandomStandardNormal'"):
        tf.random_normal([2, -1])


def test_negative_shape_at_run_time():
    n = tf.placeholder(tf.int32, [2])
    out = tf.random_normal(n)
    with pytest.raises(errors.InvalidArgumentError, match="Dimension -1 must be >= 0"):
        _run(out, {n: [2, -1]})


def test_dtype_errors():
    with pytest.raises(TypeError, match="DataType int32 not in list of allowed values"):
        tf.random_normal([2], dtype=tf.int32)
    with pytest.raises(TypeError, match="DataType int32 not in list of allowed values"):
        tf.truncated_normal([2], dtype=tf.int32)
    with pytest.raises(ValueError, match=r"Must specify maxval for integer dtype tf.int32"):
        tf.random_uniform([2], dtype=tf.int32)
    with pytest.raises(ValueError, match=r"Invalid dtype tf\.bool"):
        tf.random_uniform([2], dtype=tf.bool)


# -- distributions -------------------------------------------------------------------------------
def test_truncated_normal_within_two_stddev():
    out = tf.truncated_normal([200, 100], mean=3.0, stddev=0.5, dtype=tf.float64, seed=11)
    val = _run(out)
    assert np.all(np.abs(val - 3.0) <= 2 * 0.5)
    assert abs(val.mean() - 3.0) < 0.01
    # std of N(0,1) truncated to [-2, 2]: sqrt(1 - 4 phi(2) / (Phi(2) - Phi(-2))) = 0.8796
    assert abs(val.std() / 0.5 - 0.8796) < 0.01
    assert np.mean(np.abs(val - 3.0) > 0.9) > 0  # the tails up to 2 stddev are reached


def test_truncated_normal_float32_bound():
    val = _run(tf.truncated_normal([50000], seed=2))
    assert val.dtype == np.float32 and np.all(np.abs(val) <= 2.0)


def test_random_normal_moments():
    val = _run(tf.random_normal([40000], mean=-2.0, stddev=3.0, dtype=tf.float64, seed=3))
    assert abs(val.mean() + 2.0) < 0.06 and abs(val.std() - 3.0) < 0.05
    assert np.abs(val + 2.0).max() > 2 * 3.0  # not truncated


def test_random_uniform_float_range():
    val = _run(tf.random_uniform([20000], minval=-1.0, maxval=3.0, dtype=tf.float64, seed=5))
    assert val.min() >= -1.0 and val.max() < 3.0
    assert abs(val.mean() - 1.0) < 0.05
    default = _run(tf.random_uniform([1000], seed=6))
    assert default.min() >= 0.0 and default.max() < 1.0


@pytest.mark.parametrize("dtype", [tf.int32, tf.int64])
def test_random_uniform_int(dtype):
    out = tf.random_uniform([3000], minval=-2, maxval=3, dtype=dtype, seed=7)
    assert out.op.type == "RandomUniformInt" and out.dtype is dtype
    val = _run(out)
    assert val.dtype == dtype.np
    assert set(np.unique(val)) == {-2, -1, 0, 1, 2}


def test_random_uniform_int_bad_bounds_at_run_time():
    hi = tf.placeholder(tf.int32, [])
    out = tf.random_uniform([2], minval=5, maxval=hi, dtype=tf.int32)
    with pytest.raises(errors.InvalidArgumentError, match="Need minval < maxval: 5 >= 5"):
        _run(out, {hi: 5})
    with pytest.raises(ValueError, match=r"Shape must be rank 0 but is rank 1"):
        tf.random_uniform([2], minval=[0, 1], maxval=5, dtype=tf.int32)


def test_mean_and_stddev_tensors_get_gradients():
    mean = tf.constant(np.array([1.0, -1.0]))
    std = tf.constant(np.array(2.0))
    out = tf.random_normal([3, 2], mean=mean, stddev=std, dtype=tf.float64, seed=1)
    rnd = out.op.inputs[0].op.inputs[0]
    assert rnd.op.type == "RandomStandardNormal"
    w = np.arange(1.0, 7.0).reshape(3, 2)
    gm, gs = tf.gradients(out, [mean, std], grad_ys=tf.constant(w))
    with tf.Session() as s:
        o, r, gmv, gsv = s.run([out, rnd, gm, gs])
    np.testing.assert_allclose(o, r * 2.0 + np.array([1.0, -1.0]), rtol=1e-15)
    np.testing.assert_allclose(gmv, w.sum(axis=0), rtol=1e-15)
    np.testing.assert_allclose(gsv, np.sum(w * r), rtol=1e-12)


# -- once per run, anew each run -----------------------------------------------------------------
def test_one_draw_per_run_shared_by_consumers():
    u = tf.random_uniform([6], dtype=tf.float64)
    a = u + 0.0
    b = u * 2.0
    c = a - u  # a diamond: both paths must see the same draw
    with tf.Session() as s:
        uv, av, bv, cv = s.run([u, a, b, c])
        np.testing.assert_array_equal(av, uv)
        np.testing.assert_array_equal(bv, 2 * uv)
        np.testing.assert_array_equal(cv, np.zeros(6))
        assert not np.array_equal(s.run(u), s.run(u))  # each run draws anew


def test_fed_random_tensor_is_not_drawn():
    u = tf.random_uniform([2], dtype=tf.float64)
    np.testing.assert_array_equal(_run(u * 1.0, {u: [5.0, 6.0]}), [5.0, 6.0])


# -- seeds ---------------------------------------------------------------------------------------
def test_get_seed_rules():
    assert get_seed(None) == (None, None)
    assert get_seed(5) == (87654321, 5)
    assert get_seed(0) == (87654321, 0)
    assert get_seed(2**31 + 3) == (87654321, (2**31 + 3) % MAXINT32)
    tf.set_random_seed(7)
    tf.constant(1.0)
    tf.constant(2.0)
    assert get_seed(None) == (7, 2)   # ops created so far
    assert get_seed(9) == (7, 9)
    tf.set_random_seed(0)
    assert get_seed(0) == (0, MAXINT32)  # (0, 0) is reserved


def test_seed_attrs_set_at_build_time():
    tf.set_random_seed(42)
    first = tf.random_normal([2])
    second = tf.random_normal([2])
    s1 = first.op.inputs[0].op.inputs[0].op.attrs
    s2 = second.op.inputs[0].op.inputs[0].op.attrs
    assert s1["seed"] == s2["seed"] == 42
    assert s1["seed2"] == 3 and s2["seed2"] == 9  # ops created before each draw op
    with tf.Graph().as_default():
        r = tf.random_uniform([2], seed=3)
        attrs = r.op.inputs[0].op.inputs[0].op.attrs
        assert (attrs["seed"], attrs["seed2"]) == (87654321, 3)
        r2 = tf.random_uniform([2])
        attrs2 = r2.op.inputs[0].op.inputs[0].op.attrs
        assert (attrs2["seed"], attrs2["seed2"]) == (None, None)


def _build(seed_graph, seed_op=None):
    g = tf.Graph()
    with g.as_default():
        if seed_graph is not None:
            tf.set_random_seed(seed_graph)
        a = tf.truncated_normal([5], seed=seed_op)
        b = tf.random_uniform([5], seed=seed_op)
    return g, [a, b]


def test_graph_seed_two_sessions_identical_sequences():
    g, fetches = _build(123)
    with tf.Session(graph=g) as s:
        first = [s.run(fetches) for _ in range(3)]
    with tf.Session(graph=g) as s:
        second = [s.run(fetches) for _ in range(3)]
    for x, y in zip(first, second):
        for p, q in zip(x, y):
            np.testing.assert_array_equal(p, q)
    assert not np.array_equal(first[0][0], first[1][0])  # the sequence moves on


def test_graph_seed_gives_each_op_its_own_stream():
    tf.set_random_seed(5)
    a = tf.random_uniform([8], dtype=tf.float64)
    b = tf.random_uniform([8], dtype=tf.float64)
    av, bv = _run([a, b])
    assert not np.array_equal(av, bv)


def test_two_graphs_built_alike_draw_alike():
    g1, f1 = _build(99)
    g2, f2 = _build(99)
    g3, f3 = _build(100)
    v1, v2, v3 = _run(f1, graph=g1), _run(f2, graph=g2), _run(f3, graph=g3)
    np.testing.assert_array_equal(v1[0], v2[0])
    np.testing.assert_array_equal(v1[1], v2[1])
    assert not np.array_equal(v1[0], v3[0])


def test_op_seed_alone_is_reproducible():
    g1, f1 = _build(None, seed_op=5)
    g2, f2 = _build(None, seed_op=5)
    np.testing.assert_array_equal(_run(f1, graph=g1)[0], _run(f2, graph=g2)[0])
    g3, f3 = _build(None, seed_op=6)
    assert not np.array_equal(_run(f1, graph=g1)[0], _run(f3, graph=g3)[0])


def test_no_seed_sessions_differ():
    g, fetches = _build(None)
    a = _run(fetches, graph=g)
    b = _run(fetches, graph=g)
    assert not np.array_equal(a[0], b[0])
    assert not np.array_equal(a[1], b[1])
