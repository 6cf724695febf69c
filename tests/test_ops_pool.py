"""max_pool and avg_pool: forward against direct loops, TF's tie rule for the gradient,
SAME padding (never the max, not counted in the mean), the gradient ops' own gradients, errors.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.harness import PASS, check_gradients
from tests._util import evaluate


def _windows(x, ksize, strides, padding):
    """Yield (b, i, j, cells) with the real cells [(r, c), ...] of every output window."""
    n, h, w, _ = x.shape
    kh, kw, sh, sw = ksize[1], ksize[2], strides[1], strides[2]
    if padding == "SAME":
        oh, ow = -(-h // sh), -(-w // sw)
        top = max((oh - 1) * sh + kh - h, 0) // 2
        left = max((ow - 1) * sw + kw - w, 0) // 2
    else:
        oh, ow, top, left = (h - kh) // sh + 1, (w - kw) // sw + 1, 0, 0
    for b, i, j in itertools.product(range(n), range(oh), range(ow)):
        cells = [(i * sh + a - top, j * sw + e - left)
                 for a, e in itertools.product(range(kh), range(kw))]
        yield b, i, j, [(r, c) for r, c in cells if 0 <= r < h and 0 <= c < w]


def _out_shape(x, ksize, strides, padding):
    last = list(_windows(x, ksize, strides, padding))[-1]
    return (x.shape[0], last[1] + 1, last[2] + 1, x.shape[3])


def direct_pools(x, ksize, strides, padding):
    """(max, mean over real cells, max-pool input gradient for ones upstream by the first
    maximum in row-major window order)."""
    shape = _out_shape(x, ksize, strides, padding)
    mx, av, grad = np.zeros(shape), np.zeros(shape), np.zeros(x.shape)
    for b, i, j, cells in _windows(x, ksize, strides, padding):
        for ch in range(x.shape[3]):
            vals = [x[b, r, c, ch] for r, c in cells]
            mx[b, i, j, ch] = max(vals)
            av[b, i, j, ch] = sum(vals) / len(vals)
            r, c = cells[vals.index(max(vals))]  # list.index: the first occurrence
            grad[b, r, c, ch] += 1.0
    return mx, av, grad


CASES = [  # input shape, ksize, strides, padding
    ((1, 4, 4, 1), (1, 2, 2, 1), (1, 2, 2, 1), "VALID"),
    ((2, 5, 5, 3), (1, 2, 2, 1), (1, 2, 2, 1), "SAME"),
    ((1, 5, 7, 2), (1, 3, 3, 1), (1, 2, 2, 1), "SAME"),
    ((1, 6, 6, 1), (1, 3, 3, 1), (1, 1, 1, 1), "SAME"),    # overlapping windows
    ((2, 1, 6, 1), (1, 1, 3, 1), (1, 1, 2, 1), "VALID"),   # size-1 rows
    ((1, 7, 3, 2), (1, 2, 1, 1), (1, 3, 1, 1), "SAME"),    # non-square window
    ((1, 2, 2, 1), (1, 3, 3, 1), (1, 1, 1, 1), "SAME"),    # window larger than input
]


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
@pytest.mark.parametrize("ties", [False, True])
def test_pools_match_direct_loops(case, ties):
    shape, ksize, strides, padding = case
    rng = np.random.default_rng(0)
    # integers in a small range: many exact ties; negatives: padding must not win the max
    x = (rng.integers(-3, 2, shape) if ties else rng.standard_normal(shape)).astype(float)
    mx, av, grad = direct_pools(x, ksize, strides, padding)
    with tf.Graph().as_default():
        xt = tf.constant(x)
        m = tf.nn.max_pool(xt, ksize, strides, padding)
        a = tf.nn.avg_pool(xt, ksize, strides, padding)
        (g,) = tf.gradients(m, [xt])
        got = tf.Session().run([m, a, g])
    np.testing.assert_array_equal(got[0], mx)
    np.testing.assert_allclose(got[1], av, rtol=1e-14)
    np.testing.assert_array_equal(got[2], grad)


def test_tie_goes_to_the_first_maximum_in_row_major_order():
    x = np.array([[1.0, 3.0], [3.0, 0.0]]).reshape(1, 2, 2, 1)
    g = evaluate(lambda t: tf.gradients(tf.nn.max_pool(t, 2, 2, "VALID"), [t])[0], [x])
    assert g.reshape(2, 2).tolist() == [[0.0, 1.0], [0.0, 0.0]]
    x = np.full((1, 2, 2, 1), 5.0)
    g = evaluate(lambda t: tf.gradients(tf.nn.max_pool(t, 2, 2, "VALID"), [t])[0], [x])
    assert g.reshape(2, 2).tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_overlapping_windows_add_up_and_padding_gets_nothing():
    x = np.array([[-5.0, -1.0, -5.0], [-5.0, -5.0, -5.0]]).reshape(1, 2, 3, 1)
    with tf.Graph().as_default():
        xt = tf.constant(x)
        m = tf.nn.max_pool(xt, [1, 2, 2, 1], [1, 1, 1, 1], "SAME")
        (g,) = tf.gradients(m, [xt])
        mv, gv = tf.Session().run([m, g])
    # windows at row 1 see only row 1 and padding: their max is -5, not the padding
    assert mv[0, :, :, 0].tolist() == [[-1.0, -1.0, -5.0], [-5.0, -5.0, -5.0]]
    assert gv.sum() == 6.0 and gv[0, 0, 1, 0] == 2.0


def test_avg_pool_same_divides_by_real_cells():
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    got = evaluate(lambda t: tf.nn.avg_pool(t, 2, 2, "SAME"), [x])
    assert got[0, :, :, 0].tolist() == [[2.0, 3.5], [6.5, 8.0]]


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("order", [1, 2])
def test_pool_gradients_check(pool, order):
    x = np.random.default_rng(5).standard_normal((1, 5, 4, 2))  # distinct values: no ties
    fn = tf.nn.max_pool if pool == "max" else tf.nn.avg_pool
    report = check_gradients(lambda t: fn(t, [1, 3, 2, 1], [1, 2, 1, 1], "SAME"), [x],
                             order=order, seed=0)
    assert report.verdict == PASS, report


def test_second_order_through_max_pool_builds_maxpoolgradgrad():
    x = np.random.default_rng(6).standard_normal((1, 4, 4, 1))
    with tf.Graph().as_default():
        xt = tf.constant(x)
        v = tf.constant(np.random.default_rng(7).standard_normal((1, 2, 2, 1)))
        (g,) = tf.gradients(tf.nn.max_pool(xt, 2, 2, "VALID"), [xt], grad_ys=v)
        w_np = np.random.default_rng(8).standard_normal((1, 4, 4, 1))
        w = tf.constant(w_np)
        (gv,) = tf.gradients(g, [v], grad_ys=w)
        assert gv.op.type == "MaxPoolGradGrad"
        got = tf.Session().run(gv)
    # <w, MaxPoolGrad(v)> = <MaxPoolGradGrad(w), v>: w read at each window's argmax
    blocks = x.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(2, 2, 4)
    wb = w_np.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(2, 2, 4)
    want = np.take_along_axis(wb, blocks.argmax(-1)[..., None], -1)[..., 0]
    np.testing.assert_allclose(got[0, :, :, 0], want)


@pytest.mark.parametrize("kw,message", [
    ({"ksize": [2, 2, 2, 1]}, "Pooling is not yet supported on the batch dimension."),
    ({"ksize": [1, 2, 2, 2]}, "ksize and strides must be 1 in the depth dimension"),
    ({"ksize": [1, 4, 4, 1], "padding": "VALID"}, "Negative dimension size caused by "
     "subtracting 4 from 3 for 'MaxPool' (op: 'MaxPool') with input shapes: [1,3,3,1]."),
    ({"padding": "REFLECT"}, "Unknown padding"),
    ({"data_format": "NCHW"}, "only supports NHWC on device type CPU"),
])
def test_pool_errors(kw, message):
    args = {"ksize": [1, 2, 2, 1], "strides": [1, 1, 1, 1], "padding": "SAME", **kw}
    with tf.Graph().as_default(), pytest.raises(ValueError) as e:
        tf.nn.max_pool(tf.zeros([1, 3, 3, 1]), **args)
    assert message in str(e.value)


def test_rank_error_names_the_op():
    with tf.Graph().as_default(), pytest.raises(ValueError, match="Shape must be rank 4 but "
                                                "is rank 3 for 'AvgPool'"):
        tf.nn.avg_pool(tf.zeros([3, 3, 1]), 2, 2, "SAME")


@pytest.mark.parametrize("seed", range(6))
def test_tiling_fast_path_routes_like_the_scan(seed):
    from gradverify.engine.ops import _windows, pool_ops
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 2, (2, 6, 4, 3)).astype(float)  # ties everywhere
    x[0, 0, 0, 0], x[1, :2, :2, 1] = -np.inf, -np.inf    # and whole windows of -inf
    grad = rng.standard_normal((2, 3, 2, 3))
    g = _windows.geometry("MaxPool", x.shape, 2, 2, (1, 2, 2, 1), (1, 1, 1, 1), "VALID")
    assert pool_ops._tiled(g)
    np.testing.assert_array_equal(
        pool_ops._max_pool_grad_tiled(g, x, grad),
        pool_ops._route_back(g, pool_ops._first_argmax(g, x), grad))


def test_nan_windows_follow_tf_scan():
    x = np.array([[np.nan, 1.0], [2.0, 0.0]]).reshape(1, 2, 2, 1)
    g = evaluate(lambda t: tf.gradients(tf.nn.max_pool(t, 2, 2, "VALID"), [t])[0], [x])
    # TF's scan starts from the first cell and takes only strictly greater ones: NaN stays
    assert g.reshape(2, 2).tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_gradients_with_unknown_static_dims():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((2, 5, 6, 3))
    w = rng.standard_normal((2, 2, 3, 2))

    def net(t, f):
        h = tf.nn.conv2d(t, f, [1, 2, 1, 1], "SAME")
        return tf.reduce_sum(tf.nn.max_pool(h, 2, 2, "SAME") ** 2) + tf.reduce_sum(
            tf.nn.avg_pool(h, 3, 1, "SAME") ** 2)
    with tf.Graph().as_default():
        xp = tf.placeholder(tf.float64, [None, None, None, None])
        fp = tf.placeholder(tf.float64, [None, None, None, None])
        dyn = tf.gradients(net(xp, fp), [xp, fp])
        got = tf.Session().run(dyn, {xp: x, fp: w})
    want = evaluate(lambda t, f: tf.gradients(net(t, f), [t, f]), [x, w])
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12)
