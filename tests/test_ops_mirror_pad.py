"""pad modes REFLECT and SYMMETRIC (MirrorPad/MirrorPadGrad); reduce_mean and clip_by_value
on integer tensors (TF truncates the integer mean toward zero).

Forward against index arithmetic written here (REFLECT: index ``-i`` maps to ``i``, SYMMETRIC:
to ``i - 1``); gradients against the adjoint identity and the checker, every order.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine import errors
from gradverify.harness import PASS, check_gradients
from tests._util import evaluate


def _mirror_index(i: int, n: int, mode: str) -> int:
    """The source index of padded position ``i`` (relative to the first real cell)."""
    while not 0 <= i < n:
        if i < 0:
            i = -i if mode == "REFLECT" else -i - 1
        else:
            i = 2 * (n - 1) - i if mode == "REFLECT" else 2 * n - 1 - i
    return i


def direct_mirror_pad(x, paddings, mode):
    out_shape = [d + a + b for d, (a, b) in zip(x.shape, paddings)]
    out = np.empty(out_shape, x.dtype)
    for idx in np.ndindex(*out_shape):
        src = tuple(_mirror_index(i - a, d, mode) for i, (a, _), d in
                    zip(idx, paddings, x.shape))
        out[idx] = x[src]
    return out


CASES = [((3,), [[2, 2]], "REFLECT"), ((3,), [[3, 3]], "SYMMETRIC"),
         ((2, 4), [[1, 1], [3, 0]], "REFLECT"), ((2, 4), [[2, 0], [0, 4]], "SYMMETRIC"),
         ((1, 3, 2), [[0, 0], [2, 1], [1, 1]], "REFLECT"),
         ((1, 3, 2), [[1, 1], [0, 3], [2, 2]], "SYMMETRIC"), ((4,), [[0, 0]], "REFLECT")]


@pytest.mark.parametrize("shape,paddings,mode", CASES)
def test_mirror_pad_forward_and_gradient_adjoint(shape, paddings, mode):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    with tf.Graph().as_default():
        xt = tf.constant(x)
        y = tf.pad(xt, paddings, mode=mode)
        assert y.op.type == "MirrorPad" and y.shape.as_list() == [
            d + a + b for d, (a, b) in zip(shape, paddings)]
        w = rng.standard_normal(y.shape.as_list())
        (g,) = tf.gradients(y, [xt], grad_ys=tf.constant(w))
        y_v, g_v = tf.Session().run([y, g])
    np.testing.assert_array_equal(y_v, direct_mirror_pad(x, paddings, mode))
    np.testing.assert_allclose(np.sum(x * g_v), np.sum(y_v * w), rtol=1e-12)


@pytest.mark.parametrize("mode", ["REFLECT", "SYMMETRIC"])
def test_mirror_pad_integer_and_lowercase_mode(mode):
    got = evaluate(lambda t: tf.pad(t, [[2, 2]], mode.lower()), [np.array([1, 2, 3])])
    want = [3, 2, 1, 2, 3, 2, 1] if mode == "REFLECT" else [2, 1, 1, 2, 3, 3, 2]
    assert got.tolist() == want and got.dtype == np.int64


@pytest.mark.parametrize("mode", ["REFLECT", "SYMMETRIC"])
def test_mirror_pad_gradients_check_every_order(mode):
    x = np.random.default_rng(1).standard_normal((2, 3))
    report = check_gradients(lambda t: tf.pad(t, [[1, 1], [2, 1]], mode=mode) ** 2, [x],
                             order=2, seed=0)
    assert report.verdict == PASS, report


def test_mirror_pad_limits_are_tf_errors():
    x = tf.zeros([2, 3])
    with pytest.raises(ValueError, match="paddings must be no greater than the dimension size: "
                                         "0, 4 not no greater than 3"):
        tf.pad(x, [[0, 0], [0, 4]], mode="SYMMETRIC")
    tf.pad(x, [[0, 0], [0, 3]], mode="SYMMETRIC")  # equal to the size: allowed
    with pytest.raises(ValueError, match="Paddings must be non-negative: -1 0"):
        tf.pad(x, [[-1, 0], [0, 0]], mode="REFLECT")
    pads = tf.placeholder(tf.int32, [2, 2])
    y = tf.pad(x, pads, mode="REFLECT")
    assert y.shape.as_list() == [None, None]
    with tf.Session() as s, pytest.raises(errors.InvalidArgumentError,
                                          match="paddings must be less than"):
        s.run(y, {pads: [[2, 0], [0, 0]]})


# -- integer mean and clip -------------------------------------------------------------------
@pytest.mark.parametrize("values,axis,want", [
    ([1, 2], None, 1), ([-1, -2], None, -1), ([3, 4, 4], None, 3), ([-7, 0], None, -3),
    ([[-7, 2], [5, 5]], 0, [-1, 3]), ([[-7, 2], [5, 5]], 1, [-2, 5]),
    ([[1, 2, 2]], None, 1)])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_reduce_mean_on_integers_truncates_toward_zero(values, axis, want, dtype):
    got = evaluate(lambda t: tf.reduce_mean(t, axis), [np.array(values, dtype)])
    assert np.asarray(got).tolist() == want and np.asarray(got).dtype == dtype


def test_integer_mean_sum_wraps_like_tf():
    big = np.array([2**31 - 1, 2**31 - 1], np.int32)
    assert evaluate(lambda t: tf.reduce_mean(t), [big]) == -1  # int32 sum wraps to -2


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_clip_by_value_on_integers(dtype):
    x = np.array([[-5, 0, 5], [9, 3, 2]], dtype)
    got = evaluate(lambda t: tf.clip_by_value(t, 0, 4), [x])
    assert got.tolist() == [[0, 0, 4], [4, 3, 2]] and got.dtype == dtype
    got = evaluate(lambda t, lo: tf.clip_by_value(t, lo, 3), [x, np.array([1, 2, 0], dtype)])
    assert got.tolist() == [[1, 2, 3], [3, 3, 2]]


def test_integer_mean_and_clip_carry_no_gradient():
    with tf.Graph().as_default():
        x = tf.constant([1, 2, 3])
        y = tf.cast(tf.reduce_mean(tf.clip_by_value(x, 0, 2)), tf.float32)
        assert tf.gradients(y, [x]) == [None]
