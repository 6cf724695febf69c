"""tf.layers (TF1): names and variables as TF1 makes them, default initializers, reuse,
regularizers, training flag, and values against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf


def _run(fetches, feed=None):
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        return s.run(fetches, feed)


# -- dense -----------------------------------------------------------------------------------
def test_dense_names_shapes_and_values(graph, rng):
    x = tf.placeholder(tf.float64, [None, 4], name="x")
    y = tf.layers.dense(x, 3, activation=tf.nn.relu)
    z = tf.layers.dense(y, 2, use_bias=False, name="logits")
    names = [(v.name, v.shape.as_list(), v.dtype.name) for v in tf.trainable_variables()]
    assert names == [("dense/kernel:0", [4, 3], "float64"), ("dense/bias:0", [3], "float64"),
                     ("logits/kernel:0", [3, 2], "float64")]
    assert y.shape.as_list() == [None, 3] and z.shape.as_list() == [None, 2]
    assert y.op.name.startswith("dense/") and z.op.name.startswith("logits/")
    xv = rng.normal(size=(5, 4))
    k1, b1, k2, yv, zv = _run(tf.trainable_variables() + [y, z], {x: xv})
    np.testing.assert_allclose(yv, np.maximum(xv @ k1 + b1, 0), rtol=1e-12)
    np.testing.assert_allclose(zv, yv @ k2, rtol=1e-12)
    assert np.all(b1 == 0)  # bias: zeros


def test_dense_kernel_default_is_glorot_uniform(graph):
    tf.set_random_seed(3)
    fan_in, fan_out = 300, 200
    tf.layers.dense(tf.zeros([1, fan_in]), fan_out)
    (kernel,) = _run([tf.trainable_variables()[0]])
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    assert np.all(np.abs(kernel) <= limit)
    # uniform on [-limit, limit]: variance limit^2 / 3; 60 000 draws pin it to ~1%
    assert kernel.var() == pytest.approx(limit**2 / 3, rel=0.03)
    assert abs(kernel.mean()) < 0.01 * limit


def test_dense_on_rank_3_inputs_contracts_the_last_axis(graph, rng):
    x = tf.placeholder(tf.float32, [None, 5, 4])
    y = tf.layers.dense(x, 3, bias_initializer=tf.constant_initializer(0.5))
    assert y.shape.as_list() == [None, 5, 3]
    xv = rng.normal(size=(2, 5, 4)).astype(np.float32)
    k, b, yv = _run([*tf.trainable_variables(), y], {x: xv})
    want = np.einsum("bti,io->bto", xv.astype(np.float64), k.astype(np.float64)) + 0.5
    # float32 products summed in any order: a few roundings of the terms' magnitudes (an
    # entry near 0 made by cancellation has no relative accuracy to speak of).
    bound = 8 * np.finfo(np.float32).eps * (np.einsum("bti,io->bto", abs(xv), abs(k)) + 0.5)
    assert np.all(np.abs(yv - want) <= bound), np.max(np.abs(yv - want) / bound)
    assert np.all(b == 0.5)


def test_dense_reuse_shares_variables(graph, rng):
    a = tf.placeholder(tf.float32, [None, 2])
    ya = tf.layers.dense(a, 3, name="fc")
    yb = tf.layers.dense(a, 3, name="fc", reuse=True)
    yc = tf.layers.dense(a, 3, name="fc", reuse=tf.AUTO_REUSE)
    assert [v.name for v in tf.global_variables()] == ["fc/kernel:0", "fc/bias:0"]
    va, vb, vc = _run([ya, yb, yc], {a: rng.normal(size=(4, 2))})
    np.testing.assert_array_equal(va, vb)
    np.testing.assert_array_equal(va, vc)
    with pytest.raises(ValueError, match="fc/kernel already exists"):
        tf.layers.dense(a, 3, name="fc")
    with pytest.raises(ValueError, match="fc/kernel"):  # shape differs from the shared one
        tf.layers.dense(a, 4, name="fc", reuse=True)


def test_dense_regularizer_trainable_and_bad_inputs(graph):
    x = tf.ones([2, 3])
    tf.layers.dense(x, 4, kernel_regularizer=lambda w: 0.1 * tf.nn.l2_loss(w),
                    trainable=False, name="frozen")
    assert tf.trainable_variables() == []
    (reg,) = tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)
    k, r = _run([tf.global_variables()[0], reg])
    assert r == pytest.approx(0.1 * 0.5 * np.sum(k.astype(np.float64) ** 2), rel=1e-6)
    with pytest.raises(ValueError, match="last dimension of the inputs to `Dense`"):
        tf.layers.dense(tf.placeholder(tf.float32, [None, None]), 2)
    with pytest.raises(ValueError, match="expected min_ndim=2, found ndim=1"):
        tf.layers.dense(tf.ones([3]), 2)


def test_dense_network_trains(graph, rng):
    x = tf.placeholder(tf.float32, [None, 3])
    t = tf.placeholder(tf.float32, [None, 1])
    h = tf.layers.dense(x, 8, activation=tf.nn.tanh)
    loss = tf.reduce_mean(tf.square(tf.layers.dense(h, 1) - t))
    step = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    xv = rng.normal(size=(32, 3)).astype(np.float32)
    feed = {x: xv, t: xv @ np.array([[1.0], [-2.0], [0.5]], np.float32)}
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        first = s.run(loss, feed)
        for _ in range(50):
            s.run(step, feed)
        assert s.run(loss, feed) < 0.5 * first


# -- flatten and dropout ---------------------------------------------------------------------
def test_flatten_static_and_dynamic(graph, rng):
    a = tf.placeholder(tf.float32, [None, 2, 3, 4])
    b = tf.placeholder(tf.float32, [None, None, 3])
    fa, fb = tf.layers.flatten(a), tf.layers.flatten(b)
    assert fa.shape.as_list() == [None, 24] and fa.op.name.startswith("flatten/")
    av, bv = rng.normal(size=(5, 2, 3, 4)), rng.normal(size=(2, 7, 3))
    ra, rb = _run([fa, fb], {a: av, b: bv})
    np.testing.assert_array_equal(ra, av.reshape(5, 24).astype(np.float32))
    np.testing.assert_array_equal(rb, bv.reshape(2, 21).astype(np.float32))


def test_dropout_training_flag(graph):
    tf.set_random_seed(7)
    x = tf.ones([100, 100])
    off = tf.layers.dropout(x, rate=0.3)
    on = tf.layers.dropout(x, rate=0.3, training=True)
    flag = tf.placeholder(tf.bool, [])
    fed = tf.layers.dropout(x, rate=0.3, training=flag)
    v_off, v_on = _run([off, on])
    assert np.all(v_off == 1.0)
    assert set(np.unique(v_on)) <= {0.0, np.float32(1 / 0.7)}
    assert np.mean(v_on == 0) == pytest.approx(0.3, abs=0.02)
    assert np.all(_run(fed, {flag: False}) == 1.0)
    dropped = _run(fed, {flag: True})
    assert np.mean(dropped == 0) == pytest.approx(0.3, abs=0.02)
    assert np.allclose(dropped[dropped != 0], 1 / 0.7)


# -- conv2d and max_pooling2d (need nn.conv2d / nn.max_pool) ---------------------------------
def _conv_reference(x, k, stride, padding):
    n, h, w, _ = x.shape
    kh, kw, _, f = k.shape
    if padding == "same":
        oh, ow = -(-h // stride), -(-w // stride)
        ph = max((oh - 1) * stride + kh - h, 0)
        pw = max((ow - 1) * stride + kw - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, k, axes=([1, 2, 3], [0, 1, 2]))
    return out


@pytest.mark.parametrize(("padding", "stride"), [("same", 1), ("valid", 1), ("same", 2),
                                                  ("valid", 2)])
def test_conv2d_layer_matches_numpy(graph, rng, padding, stride):
    if not hasattr(tf.nn, "conv2d"):
        pytest.fail("nn.conv2d is not merged yet")
    x = tf.placeholder(tf.float64, [None, 7, 6, 2])
    y = tf.layers.conv2d(x, 3, 3, strides=stride, padding=padding, activation=tf.nn.relu)
    assert [v.name for v in tf.trainable_variables()] == ["conv2d/kernel:0", "conv2d/bias:0"]
    assert tf.trainable_variables()[0].shape.as_list() == [3, 3, 2, 3]
    xv = rng.normal(size=(2, 7, 6, 2))
    k, b, yv = _run([*tf.trainable_variables(), y], {x: xv})
    np.testing.assert_allclose(yv, np.maximum(_conv_reference(xv, k, stride, padding) + b, 0),
                               rtol=1e-10, atol=1e-12)
    assert y.shape.as_list()[1:] == list(yv.shape[1:])


def test_max_pooling2d_layer_matches_numpy(graph, rng):
    if not hasattr(tf.nn, "max_pool"):
        pytest.fail("nn.max_pool is not merged yet")
    x = tf.placeholder(tf.float32, [None, 4, 6, 3])
    y = tf.layers.max_pooling2d(x, pool_size=2, strides=2)
    assert y.shape.as_list() == [None, 2, 3, 3] and y.op.name.startswith("max_pooling2d/")
    xv = rng.normal(size=(2, 4, 6, 3)).astype(np.float32)
    expected = xv.reshape(2, 2, 2, 3, 2, 3).max(axis=(2, 4))
    np.testing.assert_array_equal(_run(y, {x: xv}), expected)


def test_conv_layers_reject_bad_arguments(graph):
    x = tf.placeholder(tf.float32, [None, 8, 8, 1])
    with pytest.raises(ValueError, match="padding"):
        tf.layers.conv2d(x, 2, 3, padding="full")
    with pytest.raises(ValueError, match="kernel_size"):
        tf.layers.conv2d(x, 2, (3, 3, 3))
    with pytest.raises(ValueError, match="channels_last"):
        tf.layers.max_pooling2d(x, 2, 2, data_format="channels_first")
    with pytest.raises(ValueError, match="expected ndim=4"):
        tf.layers.conv2d(tf.ones([2, 3]), 2, 3)
