"""Conv2D, its backprop ops and conv2d_transpose.

Forward values against a direct-loop reference written here from TF's padding rule (output
``ceil(in / stride)`` for SAME, the odd padding cell after); the two backprop ops against the
adjoint identities they must satisfy (<conv(x, w), dy> = <x, dx> = <w, dw>); gradients of
every order through the checker; TF's build-time errors and messages.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine import errors
from gradverify.harness import PASS, check_gradients
from tests._util import evaluate


def _same_pads(size: int, k: int, s: int, d: int) -> tuple[int, int, int]:
    eff = (k - 1) * d + 1
    out = (size + s - 1) // s
    total = max((out - 1) * s + eff - size, 0)
    return out, total // 2, total - total // 2


def direct_conv(x, w, strides, padding, dilations):
    """Cross-correlation by explicit padding and loops over every output pixel."""
    n, h, wd, c = x.shape
    kh, kw, _, o = w.shape
    _, sh, sw, _ = strides
    _, dh, dw, _ = dilations
    if padding == "SAME":
        oh, top, bottom = _same_pads(h, kh, sh, dh)
        ow, left, right = _same_pads(wd, kw, sw, dw)
    else:
        oh = (h - (kh - 1) * dh - 1) // sh + 1
        ow = (wd - (kw - 1) * dw - 1) // sw + 1
        top = bottom = left = right = 0
    xp = np.zeros((n, h + top + bottom, wd + left + right, c))
    xp[:, top:top + h, left:left + wd, :] = x
    out = np.zeros((n, oh, ow, o))
    for b, i, j, f in itertools.product(range(n), range(oh), range(ow), range(o)):
        acc = 0.0
        for a, e, ch in itertools.product(range(kh), range(kw), range(c)):
            acc += xp[b, i * sh + a * dh, j * sw + e * dw, ch] * w[a, e, ch, f]
        out[b, i, j, f] = acc
    return out


CASES = [  # input shape, filter shape, strides, padding, dilations
    ((1, 5, 5, 1), (3, 3, 1, 1), (1, 1, 1, 1), "SAME", (1, 1, 1, 1)),
    ((2, 7, 6, 3), (3, 2, 3, 4), (1, 2, 2, 1), "SAME", (1, 1, 1, 1)),
    ((2, 7, 6, 3), (3, 2, 3, 4), (1, 2, 3, 1), "VALID", (1, 1, 1, 1)),
    ((1, 4, 4, 2), (3, 3, 2, 1), (1, 2, 2, 1), "SAME", (1, 1, 1, 1)),   # odd pad: after
    ((1, 1, 6, 1), (1, 3, 1, 2), (1, 1, 1, 1), "VALID", (1, 1, 1, 1)),  # size-1 rows
    ((3, 6, 1, 2), (2, 1, 2, 2), (1, 3, 1, 1), "SAME", (1, 1, 1, 1)),   # size-1 cols
    ((1, 8, 7, 1), (3, 3, 1, 2), (1, 1, 1, 1), "SAME", (1, 2, 2, 1)),   # dilated
    ((1, 8, 7, 2), (2, 3, 2, 1), (1, 1, 1, 1), "VALID", (1, 3, 2, 1)),
    ((2, 9, 9, 1), (3, 3, 1, 3), (1, 2, 2, 1), "SAME", (1, 2, 2, 1)),   # stride and dilation
    ((1, 3, 3, 1), (3, 3, 1, 1), (1, 1, 1, 1), "VALID", (1, 1, 1, 1)),  # filter = input
    ((1, 2, 3, 1), (5, 5, 1, 1), (1, 1, 1, 1), "SAME", (1, 1, 1, 1)),   # filter > input
    ((1, 5, 5, 1), (1, 1, 1, 3), (1, 4, 4, 1), "VALID", (1, 1, 1, 1)),  # 1x1, big stride
]


def _data(case, seed=0):
    x_shape, w_shape = case[0], case[1]
    rng = np.random.default_rng(seed)
    return rng.standard_normal(x_shape), rng.standard_normal(w_shape)


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_conv2d_matches_direct_loops(case):
    x, w = _data(case)
    _, _, strides, padding, dilations = case
    got = evaluate(lambda a, b: tf.nn.conv2d(a, b, strides, padding, dilations=dilations),
                   [x, w])
    np.testing.assert_allclose(got, direct_conv(x, w, strides, padding, dilations),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_backprop_ops_are_the_adjoints(case):
    x, w = _data(case, seed=1)
    _, _, strides, padding, dilations = case
    with tf.Graph().as_default():
        xt, wt = tf.constant(x), tf.constant(w)
        y = tf.nn.conv2d(xt, wt, strides, padding, dilations=dilations)
        dy = np.random.default_rng(2).standard_normal(y.shape.as_list())
        dx, dw = tf.gradients(y, [xt, wt], grad_ys=tf.constant(dy))
        assert dx.op.type == "Conv2DBackpropInput" and dw.op.type == "Conv2DBackpropFilter"
        y_v, dx_v, dw_v = tf.Session().run([y, dx, dw])
    inner = np.sum(y_v * dy)
    np.testing.assert_allclose(np.sum(x * dx_v), inner, rtol=1e-10, atol=1e-10)
    # <conv(x, w), dy> is linear in w, so <w, dw> is the same number
    np.testing.assert_allclose(np.sum(w * dw_v), inner, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[6], CASES[9]],
                         ids=["stride2", "oddpad", "dilated", "filter_eq_input"])
def test_conv2d_gradients_check(case, order):
    x, w = _data(case, seed=3)
    x = x[:1, :5, :5]  # keep the Jacobian small
    _, _, strides, padding, dilations = case
    report = check_gradients(
        lambda a, b: tf.nn.conv2d(a, b, strides, padding, dilations=dilations), [x, w],
        order=order, seed=0)
    assert report.verdict == PASS, report


def test_backprop_ops_have_gradients_of_their_own():
    x = np.random.default_rng(0).standard_normal((1, 4, 5, 2))
    w = np.random.default_rng(1).standard_normal((2, 3, 2, 2))
    dy = np.random.default_rng(2).standard_normal((1, 2, 3, 2))
    kw = {"strides": [1, 2, 2, 1], "padding": "SAME"}
    r1 = check_gradients(lambda f, g: tf.nn.conv2d_backprop_input([1, 4, 5, 2], f, g, **kw),
                         [w, dy], order=2, seed=0)
    r2 = check_gradients(lambda a, g: tf.nn.conv2d_backprop_filter(a, [2, 3, 2, 2], g, **kw),
                         [x, dy], order=2, seed=0)
    assert r1.verdict == PASS, r1
    assert r2.verdict == PASS, r2


def test_same_padding_puts_the_odd_cell_after():
    x, w = np.ones((1, 4, 4, 1)), np.ones((3, 3, 1, 1))
    got = evaluate(lambda a, b: tf.nn.conv2d(a, b, [1, 2, 2, 1], "SAME"), [x, w])
    assert got[0, :, :, 0].tolist() == [[9.0, 6.0], [6.0, 4.0]]


@pytest.mark.parametrize("size,k,s,d,padding,want", [
    (28, 5, 1, 1, "SAME", 28), (28, 5, 2, 1, "SAME", 14), (7, 3, 2, 1, "SAME", 4),
    (7, 3, 2, 1, "VALID", 3), (7, 3, 1, 2, "VALID", 3), (5, 5, 1, 1, "VALID", 1),
    (1, 3, 1, 1, "SAME", 1), (10, 1, 3, 1, "VALID", 4)])
def test_static_output_shapes(size, k, s, d, padding, want):
    with tf.Graph().as_default():
        y = tf.nn.conv2d(tf.zeros([2, size, size + 1, 3]), tf.zeros([k, 1, 3, 4]),
                         [1, s, 1, 1], padding, dilations=[1, d, 1, 1])
        assert y.shape.as_list()[:2] == [2, want]


def test_unknown_dims_stay_unknown_and_run():
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float64, [None, None, 6, 2])
        y = tf.nn.conv2d(x, tf.ones([3, 3, 2, 5], tf.float64), 2, "SAME")
        assert y.shape.as_list() == [None, None, 3, 5]
        out = tf.Session().run(y, {x: np.ones((3, 5, 6, 2))})
        assert out.shape == (3, 3, 3, 5)


def test_conv2d_accepts_tf_stride_spellings_and_filters_alias():
    x, w = _data(CASES[1])
    a = evaluate(lambda p, q: tf.nn.conv2d(p, q, [1, 2, 2, 1], "SAME"), [x, w])
    b = evaluate(lambda p, q: tf.nn.conv2d(p, filters=q, strides=2, padding="same"), [x, w])
    c = evaluate(lambda p, q: tf.nn.conv2d(p, q, [2, 2], "SAME"), [x, w])
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_float32_stays_float32():
    with tf.Graph().as_default():
        y = tf.nn.conv2d(tf.ones([1, 4, 4, 1]), tf.ones([2, 2, 1, 1]), 1, "VALID")
        assert y.dtype == tf.float32
        assert tf.Session().run(y).dtype == np.float32


# -- errors as TF's ---------------------------------------------------------------------------
@pytest.mark.parametrize("x,w,kw,message", [
    ([1, 5, 5, 3], [3, 3, 2, 8], {}, "Dimensions must be equal, but are 3 and 2 for 'Conv2D' "
     "(op: 'Conv2D') with input shapes: [1,5,5,3], [3,3,2,8]."),
    ([1, 3, 3, 1], [5, 5, 1, 1], {"padding": "VALID"}, "Negative dimension size caused by "
     "subtracting 5 from 3 for 'Conv2D' (op: 'Conv2D') with input shapes: [1,3,3,1], "
     "[5,5,1,1]."),
    ([1, 5, 5, 1], [3, 3, 1, 1], {"padding": "VALID", "dilations": [1, 3, 3, 1]},
     "Negative dimension size caused by subtracting 7 from 5"),
    ([5, 5, 1], [3, 3, 1, 1], {}, "Shape must be rank 4 but is rank 3 for 'Conv2D'"),
    ([1, 5, 5, 1], [3, 3, 1], {}, "Shape must be rank 4 but is rank 3"),
    ([1, 5, 5, 1], [3, 3, 1, 1], {"strides": [2, 1, 1, 1]},
     "does not yet support strides in the batch and depth dimensions"),
    ([1, 5, 5, 1], [3, 3, 1, 1], {"strides": [1, 1, 1]}, "strides should be of length 1, 2 "
     "or 4"),
    ([1, 5, 5, 1], [3, 3, 1, 1], {"padding": "FULL"}, "Unknown padding"),
    ([1, 5, 5, 1], [3, 3, 1, 1], {"data_format": "NCHW"}, "only supports the NHWC tensor "
     "format on the CPU"),
])
def test_build_time_errors_name_the_op_and_shapes(x, w, kw, message):
    args = {"strides": [1, 1, 1, 1], "padding": "SAME", **kw}
    with tf.Graph().as_default(), pytest.raises(ValueError) as e:
        tf.nn.conv2d(tf.zeros(x), tf.zeros(w), **args)
    assert message in str(e.value)


def test_run_time_shape_conflict_is_invalid_argument():
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None, None, None, None])
        y = tf.nn.conv2d(x, tf.zeros([3, 3, 2, 1]), 1, "VALID")
        with tf.Session() as s, pytest.raises(errors.InvalidArgumentError) as e:
            s.run(y, {x: np.zeros((1, 5, 5, 3), np.float32)})
    assert "Conv2D" in str(e.value) and "[1,5,5,3]" in str(e.value)


# -- conv2d_transpose -------------------------------------------------------------------------
def test_conv2d_transpose_is_the_input_gradient():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((3, 3, 2, 4))
    v = rng.standard_normal((2, 4, 4, 4))
    with tf.Graph().as_default():
        x = tf.zeros([2, 7, 8, 2], tf.float64)
        wt = tf.constant(w)
        y = tf.nn.conv2d(x, wt, [1, 2, 2, 1], "SAME")
        (dx,) = tf.gradients(y, [x], grad_ys=tf.constant(v))
        t = tf.nn.conv2d_transpose(tf.constant(v), wt, [2, 7, 8, 2], [1, 2, 2, 1], "SAME")
        assert t.shape.as_list() == [2, 7, 8, 2]
        a, b = tf.Session().run([dx, t])
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_conv2d_transpose_output_shape_may_hold_a_tensor():
    with tf.Graph().as_default():
        v = tf.placeholder(tf.float32, [None, 4, 4, 3])
        n = tf.shape(v)[0]
        t = tf.nn.conv2d_transpose(v, tf.ones([2, 2, 5, 3]), [n, 8, 8, 5], [1, 2, 2, 1])
        out = tf.Session().run(t, {v: np.ones((3, 4, 4, 3), np.float32)})
    assert out.shape == (3, 8, 8, 5)
    assert np.all(out == 3.0)  # each output cell meets exactly one filter tap per channel


def test_conv2d_transpose_errors():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="input channels does not match filter's input "
                                             "channels, 3 != 4"):
            tf.nn.conv2d_transpose(tf.zeros([1, 4, 4, 3]), tf.zeros([2, 2, 5, 4]),
                                   [1, 8, 8, 5], [1, 2, 2, 1])
        with pytest.raises(ValueError, match="output_shape does not match filter's output "
                                             "channels, 6 != 5"):
            tf.nn.conv2d_transpose(tf.zeros([1, 4, 4, 3]), tf.zeros([2, 2, 5, 3]),
                                   [1, 8, 8, 6], [1, 2, 2, 1])
        with pytest.raises(ValueError, match="Size of out_backprop doesn't match computed"):
            tf.nn.conv2d_transpose(tf.zeros([1, 4, 4, 3]), tf.zeros([2, 2, 5, 3]),
                                   [1, 12, 12, 5], [1, 2, 2, 1])


@pytest.mark.parametrize("order", [1, 2])
def test_small_conv_pool_network_gradients(order):
    """conv -> bias -> tanh -> max_pool -> conv_transpose -> avg_pool, the filter used twice
    (fan-out): the whole composite checks, every input, at both orders."""
    rng = np.random.default_rng(11)
    x, w, b = rng.standard_normal((1, 5, 4, 2)), rng.standard_normal((3, 2, 2, 2)), \
        rng.standard_normal(2)

    def net(x, w, b):
        h = tf.tanh(tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "SAME"), b))
        p = tf.nn.max_pool(h, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
        u = tf.nn.conv2d_transpose(p, w, [1, 5, 4, 2], [1, 2, 2, 1], "SAME")
        return tf.nn.avg_pool(u * x, 2, 1, "VALID")
    report = check_gradients(net, [x, w, b], order=order, seed=0)
    assert report.verdict == PASS, report


def test_patch_reuse_never_serves_stale_values():
    from gradverify.engine.ops import _windows
    x = np.random.default_rng(12).standard_normal((2, 5, 4, 3))
    g = _windows.geometry("Conv2D", x.shape, 3, 2, (1, 2, 1, 1), (1, 1, 1, 1), "SAME")
    first = _windows.im2col(g, x)
    assert _windows.im2col(g, x) is first and not first.flags.writeable
    x += 1.0  # the same array, updated in place
    again = _windows.im2col(g, x)
    np.testing.assert_array_equal(again, _windows._patches(g, x))
    assert not np.array_equal(again, first)


def test_filter_gradient_after_an_in_place_variable_update():
    rng = np.random.default_rng(13)
    x0, w0 = rng.standard_normal((1, 4, 4, 2)), rng.standard_normal((2, 2, 2, 3))
    c = rng.standard_normal((1, 3, 3, 3))
    with tf.Graph().as_default():
        v, w = tf.Variable(x0), tf.Variable(w0)
        y = tf.nn.conv2d(v, w, 1, "VALID")
        (dw,) = tf.gradients(tf.reduce_sum(y * c), [w])  # needs v, not y
        bump = tf.assign_add(v, tf.ones_like(v))
        with tf.Session() as s:
            s.run(tf.global_variables_initializer())
            s.run([y, dw])
            s.run(bump)
            got = s.run(dw)
    want = np.einsum("nhwc,nhwo->co", np.lib.stride_tricks.sliding_window_view(
        x0 + 1.0, (2, 2), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3).reshape(1, 3, 3, 8), c)
    np.testing.assert_allclose(got.reshape(8, 3), want, rtol=1e-12)


def test_deep_mnist_style_cnn_trains():
    """The classic program shape: placeholders, reshape, conv/pool twice, dropout, dense,
    softmax cross-entropy, Adam; the minibatch loss falls."""
    rng = np.random.default_rng(14)
    images = rng.uniform(0, 1, (32, 64)).astype(np.float32)
    labels = np.eye(4, dtype=np.float32)[(images[:, :32].sum(1) > images[:, 32:].sum(1))
                                         .astype(int) + 2 * (images[:, 0] > 0.5)]
    g = tf.Graph()
    with g.as_default():
        tf.set_random_seed(0)
        x = tf.placeholder(tf.float32, [None, 64])
        y_ = tf.placeholder(tf.float32, [None, 4])
        keep = tf.placeholder(tf.float32)

        def weight(shape):
            return tf.Variable(tf.truncated_normal(shape, stddev=0.1))
        h = tf.reshape(x, [-1, 8, 8, 1])
        h = tf.nn.relu(tf.nn.conv2d(h, weight([3, 3, 1, 8]), [1, 1, 1, 1], "SAME")
                       + tf.Variable(tf.constant(0.1, shape=[8])))
        h = tf.nn.max_pool(h, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
        h = tf.nn.relu(tf.nn.conv2d(h, weight([3, 3, 8, 16]), [1, 1, 1, 1], "SAME"))
        h = tf.nn.avg_pool(h, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
        h = tf.nn.dropout(tf.reshape(h, [-1, 2 * 2 * 16]), keep)
        logits = tf.matmul(h, weight([64, 4]))
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y_,
                                                                         logits=logits))
        train = tf.train.AdamOptimizer(1e-2).minimize(loss)
        init = tf.global_variables_initializer()
    with tf.Session(graph=g) as s:
        s.run(init)
        feed = {x: images, y_: labels}
        before = s.run(loss, {**feed, keep: 1.0})
        for _ in range(60):
            s.run(train, {**feed, keep: 0.9})
        after = s.run(loss, {**feed, keep: 1.0})
    assert after < 0.5 * before
