"""Array ops: reshape, expand_dims, transpose, squeeze, concat, stack/unstack, slice, pad,
gather (and unsorted_segment_sum), tile, one_hot, where/select, strided slicing.

Forward values are compared with NumPy; gradients with hand-derived NumPy formulas under a
random cotangent (a rule ignoring the upstream gradient fails); second order where the
gradient is itself built from these ops; static shapes against run-time shapes, including
unknown dims; and error classes with messages naming the op and the shapes.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine import errors, registry
from tests._util import second_order, vjp

RTOL = 1e-12


def _run(fetches, feed_dict=None):
    with tf.Session() as s:
        return s.run(fetches, feed_dict)


def _values(rng, shape, dtype):
    if dtype == "bool":
        return rng.uniform(size=shape) < 0.5
    if dtype in ("int32", "int64"):
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _check_static_matches(t, value):
    """The static shape is compatible with the run-time shape (and exact where known)."""
    assert t.shape.is_compatible_with(np.shape(value)), (t.shape, np.shape(value))


def _cotangent(rng, shape):
    return rng.uniform(0.5, 1.5, shape)


DTYPES = ["float32", "float64", "int32", "bool"]


# == Reshape =================================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "target", "expect"), [
    ((2, 3), [3, 2], (3, 2)),
    ((2, 3, 4), [-1, 4], (6, 4)),
    ((2, 3, 4), [2, -1], (2, 12)),
    ((1,), [], ()),
    ((), [1, 1, -1], (1, 1, 1)),
    ((4, 1, 3), [3, -1, 2, 1], (3, 2, 2, 1)),
])
def test_reshape_forward(rng, dtype, shape, target, expect):
    x = _values(rng, shape, dtype)
    y = tf.reshape(tf.constant(x), target)
    assert y.shape.as_tuple() == expect and y.dtype.name == dtype
    out = _run(y)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, x.reshape(expect))


def test_reshape_unknown_dims_and_runtime_shape():
    p = tf.placeholder(tf.float64, [None, 3])
    y = tf.reshape(p, [-1, 6])
    assert y.shape.as_list() == [None, 6]
    x = np.arange(12.0).reshape(4, 3)
    out = _run(y, {p: x})
    _check_static_matches(y, out)
    np.testing.assert_array_equal(out, x.reshape(2, 6))
    z = tf.reshape(p, tf.shape(p)[::-1])  # a target known only at run time
    assert z.shape.as_list() == [None, None]
    assert _run(z, {p: x}).shape == (3, 4)


def test_reshape_gradient(rng):
    x = rng.standard_normal((2, 3, 4))
    _, (g,), w = vjp(lambda t: tf.reshape(t, [4, -1]), [x])
    np.testing.assert_allclose(g, w.reshape(x.shape), rtol=RTOL)


def test_reshape_errors():
    x = tf.constant(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"multiple unknown.*'Reshape'.*\[2,3\], \[2\]"):
        tf.reshape(x, [-1, -1])
    with pytest.raises(ValueError, match=r"Cannot reshape a tensor with 6 elements to shape "
                                         r"\[4\].*'Reshape_1' \(op: 'Reshape'\).*\[2,3\]"):
        tf.reshape(x, [4])
    with pytest.raises(ValueError, match=r"Cannot reshape a tensor with 6 elements to shape "
                                         r"\[4, -1\]"):
        tf.reshape(x, [4, -1])
    p = tf.placeholder(tf.float64, [None, 3])
    y = tf.reshape(p, [4])
    with pytest.raises(errors.InvalidArgumentError, match="Reshape") as e:
        _run(y, {p: np.zeros((2, 3))})
    assert e.value.op is y.op


# == ExpandDims ==============================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "axis"), [
    ((), 0), ((), -1), ((3,), 1), ((2, 3), -1), ((2, 3), -3), ((2, 1, 3), 1), ((1, 2, 3, 4), 2)])
def test_expand_dims_forward(rng, dtype, shape, axis):
    x = _values(rng, shape, dtype)
    y = tf.expand_dims(tf.constant(x), axis)
    out = _run(y)
    ref = np.expand_dims(x, axis)
    assert y.shape.as_tuple() == ref.shape
    np.testing.assert_array_equal(out, ref)


def test_expand_dims_gradient_and_errors(rng):
    x = rng.standard_normal((2, 3))
    _, (g,), w = vjp(lambda t: tf.expand_dims(t, -2), [x])
    np.testing.assert_allclose(g, w.reshape(2, 3), rtol=RTOL)
    with pytest.raises(ValueError, match=r"Invalid axis 3.*'ExpandDims'.*\[2,3\]"):
        tf.expand_dims(tf.constant(x), 3)
    p = tf.placeholder(tf.float32, [None, 3])
    assert tf.expand_dims(p, -1).shape.as_list() == [None, 3, 1]


# == Transpose ===============================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "perm"), [
    ((2, 3), None), ((2, 3, 4), None), ((2, 3, 4), (1, 2, 0)), ((1, 2, 3, 4), (3, 0, 2, 1)),
    ((), ()), ((5,), (0,))])
def test_transpose_forward(rng, dtype, shape, perm):
    x = _values(rng, shape, dtype)
    y = tf.transpose(tf.constant(x), perm)
    ref = np.transpose(x, perm)
    assert y.shape.as_tuple() == ref.shape
    np.testing.assert_array_equal(_run(y), ref)


@pytest.mark.parametrize("perm", [(1, 2, 0), (2, 0, 1), None])
def test_transpose_gradient_uses_inverse_permutation(rng, perm):
    x = rng.standard_normal((2, 3, 4))
    _, (g,), w = vjp(lambda t: tf.transpose(t, perm), [x])
    expect = np.zeros_like(x)  # element x[i, j, k] lands at y[perm-permuted index]
    for idx in np.ndindex(x.shape):
        out_idx = tuple(idx[p] for p in (perm or (2, 1, 0)))
        expect[idx] = w[out_idx]
    np.testing.assert_allclose(g, expect, rtol=RTOL)


def test_transpose_errors_and_unknown_dims():
    x = tf.constant(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Dimension must be 2 but is 3.*'transpose'.*\[2,3\]"):
        tf.transpose(x, [0, 1, 2])
    with pytest.raises(ValueError, match=r"not a permutation.*'transpose_1'"):
        tf.transpose(x, [1, 1])
    p = tf.placeholder(tf.float32, [None, 3, 4])
    assert tf.transpose(p, [2, 0, 1]).shape.as_list() == [4, None, 3]
    assert tf.transpose(p).shape.as_list() == [4, 3, None]


# == Squeeze =================================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "axis"), [
    ((1, 3, 1), None), ((1, 3, 1), [-1]), ((1, 3, 1), 0), ((2, 1, 1, 4), [2, 1]),
    ((1,), None), ((1, 1), [-2]), ((2, 3), None), ((), None)])
def test_squeeze_forward(rng, dtype, shape, axis):
    x = _values(rng, shape, dtype)
    y = tf.squeeze(tf.constant(x), axis)
    ref = np.squeeze(x, None if axis is None else tuple(np.atleast_1d(axis)))
    assert y.shape.as_tuple() == ref.shape
    np.testing.assert_array_equal(_run(y), ref)


def test_squeeze_gradient(rng):
    x = rng.standard_normal((2, 1, 3, 1))
    _, (g,), w = vjp(lambda t: tf.squeeze(t, [1]), [x])
    np.testing.assert_allclose(g, w.reshape(x.shape), rtol=RTOL)
    _, (g,), w = vjp(lambda t: tf.squeeze(t), [x])
    np.testing.assert_allclose(g, w.reshape(x.shape), rtol=RTOL)
    _, (g,), w = vjp(lambda t: tf.squeeze(t, [1, -3, 3]), [x])  # one axis named twice
    assert w.shape == (2, 3)
    np.testing.assert_allclose(g, w.reshape(x.shape), rtol=RTOL)


def test_squeeze_static_shapes_with_unknown_dims():
    p = tf.placeholder(tf.float32, [None, 1, 3])
    assert tf.squeeze(p, [1]).shape.as_list() == [None, 3]
    assert tf.squeeze(p).shape.ndims is None  # the unknown dim may be 1
    q = tf.placeholder(tf.float32, [None, 3])
    y = tf.squeeze(q, [0])
    assert y.shape.as_list() == [3]
    np.testing.assert_array_equal(_run(y, {q: [[1.0, 2.0, 3.0]]}), [1.0, 2.0, 3.0])
    with pytest.raises(errors.InvalidArgumentError,
                       match=r"Can not squeeze dim\[0\], expected a dimension of 1, got 2"):
        _run(y, {q: np.zeros((2, 3))})


def test_squeeze_errors():
    x = tf.constant(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Can not squeeze dim\[1\], expected a dimension of 1,"
                                         r" got 3 for 'Squeeze' \(op: 'Squeeze'\) with input "
                                         r"shapes: \[2,3\]"):
        tf.squeeze(x, [1])
    with pytest.raises(ValueError, match=r"Can not squeeze dim\[1\].*got 3"):
        tf.squeeze(x, -1)  # negative axes are reported normalised, like TF
    with pytest.raises(ValueError, match=r"Tried to squeeze dim index 2 for tensor with 2 "
                                         r"dimensions.*'Squeeze_2'"):
        tf.squeeze(x, [2])
    with pytest.raises(ValueError, match="Cannot specify both"):
        tf.squeeze(x, axis=[0], squeeze_dims=[0])


# == ConcatV2 ================================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shapes", "axis"), [
    ([(2, 3), (4, 3)], 0),
    ([(2, 1, 3), (2, 4, 3), (2, 2, 3)], -2),
    ([(3,), (1,)], -1),
    ([(2, 3, 1), (2, 3, 2)], 2),
    ([(1, 2, 1, 2), (1, 2, 3, 2)], -2),
])
def test_concat_forward(rng, dtype, shapes, axis):
    xs = [_values(rng, s, dtype) for s in shapes]
    y = tf.concat([tf.constant(x) for x in xs], axis)
    ref = np.concatenate(xs, axis=axis)
    assert y.shape.as_tuple() == ref.shape and y.op.type == "ConcatV2" and y.op.name == "concat"
    out = _run(y)
    assert out.dtype == ref.dtype
    np.testing.assert_array_equal(out, ref)


def test_concat_single_value_is_identity(rng):
    x = rng.standard_normal((2, 3))
    y = tf.concat([tf.constant(x)], 1)
    assert y.op.type == "Identity"
    np.testing.assert_array_equal(_run(y), x)


def test_concat_gradient_negative_axis_different_sizes(rng):
    xs = [rng.standard_normal((2, n, 3)) for n in (1, 4, 2)]
    _, gs, w = vjp(lambda a, b, c: tf.concat([a, b, c], -2), xs)
    np.testing.assert_allclose(gs[0], w[:, 0:1], rtol=RTOL)
    np.testing.assert_allclose(gs[1], w[:, 1:5], rtol=RTOL)
    np.testing.assert_allclose(gs[2], w[:, 5:7], rtol=RTOL)


def test_concat_gradient_with_unknown_sizes(rng):
    a = tf.placeholder(tf.float64, [2, None])
    b = tf.placeholder(tf.float64, [None, None])
    c = tf.placeholder(tf.float64, [2, 3])
    y = tf.concat([a, b, c], axis=1)
    assert y.shape.as_list() == [2, None]
    wt = tf.placeholder(tf.float64, [None, None])
    grads = tf.gradients(y, [a, b, c], grad_ys=wt)
    assert grads[2].shape.as_list() == [2, 3]
    av, bv, cv = (rng.standard_normal((2, n)) for n in (3, 1, 3))
    w = _cotangent(rng, (2, 7))
    out = _run([y, *grads], {a: av, b: bv, c: cv, wt: w})
    np.testing.assert_array_equal(out[0], np.concatenate([av, bv, cv], 1))
    np.testing.assert_allclose(out[1], w[:, :3], rtol=RTOL)
    np.testing.assert_allclose(out[2], w[:, 3:4], rtol=RTOL)
    np.testing.assert_allclose(out[3], w[:, 4:], rtol=RTOL)
    # the same graph with other sizes: the offsets are computed at run time
    av, bv = rng.standard_normal((2, 1)), rng.standard_normal((2, 2))
    w = _cotangent(rng, (2, 6))
    out = _run(grads, {a: av, b: bv, c: cv, wt: w})
    np.testing.assert_allclose(out[0], w[:, :1], rtol=RTOL)
    np.testing.assert_allclose(out[1], w[:, 1:3], rtol=RTOL)
    np.testing.assert_allclose(out[2], w[:, 3:], rtol=RTOL)


def test_concat_second_order(rng):
    x = rng.standard_normal((3, 2))
    # f = concat([x*x, x], -1): <w, f> = sum(w1 x^2) + sum(w2 x); hvp = 2 w1 v
    h, w, v = second_order(lambda t: tf.concat([t * t, t], -1), x)
    np.testing.assert_allclose(h, 2 * w[:, :2] * v, rtol=RTOL)


def test_concat_errors():
    a, b = tf.constant(np.zeros((2, 3))), tf.constant(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"Dimension 0 in both shapes must be equal, but are 2 "
                                         r"and 3.*'concat' \(op: 'ConcatV2'\) with input shapes:"
                                         r" \[2,3\], \[3,3\]"):
        tf.concat([a, b], 1)
    with pytest.raises(ValueError, match=r"Shape must be rank 2 but is rank 1.*\[2,3\], \[3\]"):
        tf.concat([a, tf.constant(np.zeros(3))], 0)
    with pytest.raises(ValueError, match=r"range \[-2, 2\), but got 2.*'concat_2'"):
        tf.concat([a, a], 2)
    with pytest.raises(ValueError, match="Can't concatenate scalars"):
        tf.concat([tf.constant(1.0), tf.constant(2.0)], 0)
    with pytest.raises(TypeError, match="does not match type float64"):
        tf.concat([a, tf.constant(np.zeros((2, 3), np.float32))], 0)
    p = tf.placeholder(tf.float64, [None, None])
    y = tf.concat([p, a], 0)
    assert y.shape.as_list() == [None, 3]
    with pytest.raises(errors.InvalidArgumentError, match=r"Dimensions of inputs should match: "
                                                          r"shape\[0\] = \[2,4\]") as e:
        _run(y, {p: np.zeros((2, 4))})
    assert e.value.op is y.op


# == Pack / Unpack ===========================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "n", "axis"), [
    ((2, 3), 3, 0), ((2, 3), 2, -1), ((), 3, 0), ((4, 1, 2), 1, 1), ((2, 3), 2, 1),
    ((1, 2, 3), 2, -4)])
def test_stack_forward(rng, dtype, shape, n, axis):
    xs = [_values(rng, shape, dtype) for _ in range(n)]
    y = tf.stack([tf.constant(x) for x in xs], axis=axis)
    ref = np.stack(xs, axis=axis)
    assert y.shape.as_tuple() == ref.shape and y.op.name == "stack"
    np.testing.assert_array_equal(_run(y), ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "axis"), [((3, 2), 0), ((2, 4, 3), -1), ((2, 1), 1), ((2,), 0)])
def test_unstack_forward(rng, dtype, shape, axis):
    x = _values(rng, shape, dtype)
    ys = tf.unstack(tf.constant(x), axis=axis)
    assert isinstance(ys, list) and len(ys) == x.shape[axis]
    outs = _run(ys)
    for i, (y, out) in enumerate(zip(ys, outs)):
        ref = np.take(x, i, axis=axis)
        assert y.shape.as_tuple() == ref.shape
        np.testing.assert_array_equal(out, ref)


def test_unstack_of_empty_axis_and_explicit_num(rng):
    assert tf.unstack(tf.constant(np.zeros((0, 2))), axis=0) == []
    p = tf.placeholder(tf.float64, [None, 2])
    ys = tf.unstack(p, num=3)
    assert len(ys) == 3 and ys[0].shape.as_list() == [2]
    x = rng.standard_normal((3, 2))
    np.testing.assert_array_equal(_run(ys[2], {p: x}), x[2])
    with pytest.raises(errors.InvalidArgumentError, match=r"Input shape axis 0 must equal 3, got"
                                                          r" shape \[2,2\]"):
        _run(ys[0], {p: np.zeros((2, 2))})


def test_stack_gradient(rng):
    xs = [rng.standard_normal((2, 3)) for _ in range(3)]
    _, gs, w = vjp(lambda a, b, c: tf.stack([a, b, c], axis=1), xs)
    for i, g in enumerate(gs):
        np.testing.assert_allclose(g, w[:, i, :], rtol=RTOL)


def test_unstack_gradient_with_random_cotangents_and_unused_outputs(rng):
    x_np = rng.standard_normal((2, 3, 4))
    x = tf.constant(x_np)
    ys = tf.unstack(x, axis=-2)
    ws = [_cotangent(rng, (2, 4)) for _ in ys]
    (g,) = tf.gradients(ys, x, grad_ys=[tf.constant(w) for w in ws])
    np.testing.assert_allclose(_run(g), np.stack(ws, axis=-2), rtol=RTOL)
    (g1,) = tf.gradients(ys[1], x, grad_ys=tf.constant(ws[1]))  # others get zeros
    expect = np.zeros_like(x_np)
    expect[:, 1, :] = ws[1]
    np.testing.assert_allclose(_run(g1), expect, rtol=RTOL)


def test_stack_unstack_second_order(rng):
    x = rng.standard_normal((3, 2))
    # f = stack(unstack(x) squared): same as x*x, hvp = 2 w v
    h, w, v = second_order(lambda t: tf.stack([u * u for u in tf.unstack(t, axis=1)], 1), x)
    np.testing.assert_allclose(h, 2 * w * v, rtol=RTOL)


def test_stack_unstack_errors():
    a, b = tf.constant(np.zeros((2,))), tf.constant(np.zeros((3,)))
    with pytest.raises(ValueError, match=r"Dimension 0 in both shapes must be equal, but are 2 "
                                         r"and 3.*'stack' \(op: 'Pack'\) with input shapes: "
                                         r"\[2\], \[3\]"):
        tf.stack([a, b])
    with pytest.raises(ValueError, match=r"Shapes must be equal rank, but are 1 and 2"):
        tf.stack([a, tf.constant(np.zeros((2, 2)))])
    with pytest.raises(ValueError, match=r"axis = 2 not in \[-2, 2\).*'Pack'"):
        tf.stack([a, a], axis=2)
    with pytest.raises(ValueError, match=r"Cannot infer num from shape \(\?, 2\)"):
        tf.unstack(tf.placeholder(tf.float32, [None, 2]))
    with pytest.raises(ValueError, match=r"Dimension must be 4 but is 2.*'unstack' \(op: "
                                         r"'Unpack'\).*\[2\]"):
        tf.unstack(a, num=4)
    p = tf.placeholder(tf.float64, [None])
    y = tf.stack([p, a])
    assert y.shape.as_list() == [2, 2]
    with pytest.raises(errors.InvalidArgumentError, match=r"Shapes of all inputs must match: "
                                                          r"values\[0\].shape = \[3\]"):
        _run(y, {p: np.zeros(3)})


def test_unpack_is_a_variadic_output_op():
    od = registry.lookup("Unpack")
    assert od.variadic_outputs and not registry.lookup("Pack").variadic_outputs
    x = tf.constant(np.arange(6.0).reshape(3, 2))
    ys = tf.unstack(x)
    assert [t.name for t in ys] == ["unstack:0", "unstack:1", "unstack:2"]
    assert len(ys[0].op.outputs) == 3


# == Slice ===================================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "begin", "size"), [
    ((4, 5), [1, 2], [2, -1]), ((3, 2, 4), [0, 1, 1], [3, 1, 2]), ((5,), [2], [0]),
    ((), [], []), ((1, 3, 1, 2), [0, 1, 0, 1], [-1, -1, 1, 1])])
def test_slice_forward(rng, dtype, shape, begin, size):
    x = _values(rng, shape, dtype)
    y = tf.slice(tf.constant(x), begin, size)
    index = tuple(np.s_[b:(d if s == -1 else b + s)] for d, b, s in zip(shape, begin, size))
    ref = x[index]
    assert y.shape.as_tuple() == ref.shape
    np.testing.assert_array_equal(_run(y), ref)


def test_slice_static_shapes_with_unknown_values():
    p = tf.placeholder(tf.float32, [None, 5])
    assert tf.slice(p, [1, 2], [2, -1]).shape.as_list() == [2, 3]
    assert tf.slice(p, [1, 2], [-1, 1]).shape.as_list() == [None, 1]
    b = tf.placeholder(tf.int32, [2])
    assert tf.slice(p, b, [2, -1]).shape.as_list() == [2, None]
    y = tf.slice(p, b, tf.placeholder(tf.int32, [2]))
    assert y.shape.as_list() == [None, None]


def test_slice_gradient(rng):
    x = rng.standard_normal((4, 5, 2))
    _, (g,), w = vjp(lambda t: tf.slice(t, [1, 2, 0], [2, -1, 1]), [x])
    expect = np.zeros_like(x)
    expect[1:3, 2:, 0:1] = w
    np.testing.assert_allclose(g, expect, rtol=RTOL)


def test_slice_gradient_with_unknown_dims_and_begin(rng):
    p = tf.placeholder(tf.float64, [None, None])
    b = tf.placeholder(tf.int32, [2])
    y = tf.slice(p, b, [2, -1])
    wt = tf.placeholder(tf.float64, [2, None])
    (g,) = tf.gradients(y, p, grad_ys=wt)
    for shape, begin in (((4, 5), [1, 2]), ((3, 2), [0, 1])):
        x = rng.standard_normal(shape)
        w = _cotangent(rng, (2, shape[1] - begin[1]))
        out, gv = _run([y, g], {p: x, b: begin, wt: w})
        np.testing.assert_array_equal(out, x[begin[0]:begin[0] + 2, begin[1]:])
        expect = np.zeros(shape)
        expect[begin[0]:begin[0] + 2, begin[1]:] = w
        np.testing.assert_allclose(gv, expect, rtol=RTOL)


def test_slice_second_order(rng):
    x = rng.standard_normal((4, 3))
    h, w, v = second_order(lambda t: tf.slice(t * t, [1, 0], [2, 2]), x)
    expect = np.zeros_like(x)
    expect[1:3, 0:2] = 2 * w * v[1:3, 0:2]
    np.testing.assert_allclose(h, expect, rtol=RTOL)


def test_slice_errors():
    x = tf.constant(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"Expected begin\[0\] in \[0, 3\], but got 4 for "
                                         r"'Slice' \(op: 'Slice'\) with input shapes: \[3,4\], "
                                         r"\[2\], \[2\]"):
        tf.slice(x, [4, 0], [1, 1])
    with pytest.raises(ValueError, match=r"Expected size\[1\] in \[0, 2\], but got 3.*'Slice_1'"):
        tf.slice(x, [0, 2], [1, 3])
    with pytest.raises(ValueError, match=r"Dimension must be 2 but is 3"):
        tf.slice(x, [0, 0, 0], [1, 1, 1])
    b = tf.placeholder(tf.int32, [2])
    y = tf.slice(x, b, [2, 2])
    with pytest.raises(errors.InvalidArgumentError, match=r"Expected size\[0\] in \[0, 1\], but "
                                                          r"got 2") as e:
        _run(y, {b: [2, 0]})
    assert e.value.op is y.op and "Slice" in str(e.value)


# == Pad =====================================================================================
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
@pytest.mark.parametrize(("shape", "paddings", "value"), [
    ((2, 3), [[1, 0], [2, 1]], 0), ((3,), [[0, 2]], 7), ((1, 2, 1), [[0, 0], [1, 1], [0, 3]], -1),
    ((), [], 0), ((2, 1, 2, 1), [[1, 1], [0, 2], [0, 0], [3, 0]], 2)])
def test_pad_forward(rng, dtype, shape, paddings, value):
    x = _values(rng, shape, dtype)
    y = tf.pad(tf.constant(x), np.array(paddings, np.int32).reshape(-1, 2),
               constant_values=value)
    ref = np.pad(x, np.array(paddings, int).reshape(-1, 2), constant_values=value) if shape \
        else x
    assert y.shape.as_tuple() == ref.shape
    out = _run(y)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, ref)


def test_pad_gradient_static_and_unknown(rng):
    x = rng.standard_normal((2, 3))
    _, (g,), w = vjp(lambda t: tf.pad(t, [[1, 2], [0, 3]]), [x])
    np.testing.assert_allclose(g, w[1:3, 0:3], rtol=RTOL)
    p = tf.placeholder(tf.float64, [None, 3])
    pads = tf.placeholder(tf.int32, [2, 2])
    y = tf.pad(p, pads)
    assert y.shape.as_list() == [None, None]
    wt = tf.placeholder(tf.float64, [None, None])
    (gp,) = tf.gradients(y, p, grad_ys=wt)
    assert gp.shape.as_list() == [None, 3]
    xv, pv = rng.standard_normal((4, 3)), np.array([[2, 1], [1, 0]])
    w = _cotangent(rng, (7, 4))
    out = _run([y, gp], {p: xv, pads: pv, wt: w})
    np.testing.assert_array_equal(out[0], np.pad(xv, pv))
    np.testing.assert_allclose(out[1], w[2:6, 1:4], rtol=RTOL)


def test_pad_second_order(rng):
    x = rng.standard_normal((2, 3))
    h, w, v = second_order(lambda t: tf.pad(t * t, [[1, 0], [0, 2]]), x)
    np.testing.assert_allclose(h, 2 * w[1:, :3] * v, rtol=RTOL)


def test_pad_errors():
    x = tf.constant(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Paddings must be non-negative: -1 0 for 'Pad'.*"
                                         r"\[2,3\], \[2,2\]"):
        tf.pad(x, [[0, 0], [-1, 0]])
    with pytest.raises(ValueError, match=r"Shape must be rank 1 but is rank 2.*'Pad_1'"):
        tf.pad(x, [[0, 0]])
    with pytest.raises(ValueError, match=r"paddings must be less than the dimension size: "
                                         r"3, 0 not less than 3.*'MirrorPad'"):
        tf.pad(x, [[0, 0], [3, 0]], mode="REFLECT")
    with pytest.raises(ValueError, match="Unknown padding mode: WRAP"):
        tf.pad(x, [[0, 0], [1, 1]], mode="wrap")
    pads = tf.placeholder(tf.int32, [2, 2])
    with pytest.raises(errors.InvalidArgumentError, match="Paddings must be non-negative: 0 -2"):
        _run(tf.pad(x, pads), {pads: [[0, -2], [0, 0]]})


# == GatherV2 / UnsortedSegmentSum ===========================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "indices", "axis"), [
    ((5, 3), [0, 2, 2, 4], 0), ((2, 5, 3), [[4, 0, 4], [1, 1, 3]], 1), ((3, 4), 2, -1),
    ((4,), [3, 3, 0], 0), ((2, 3, 1, 2), [[0], [1]], -3), ((1, 2), [0, 0, 0], 0)])
def test_gather_forward(rng, dtype, shape, indices, axis):
    x = _values(rng, shape, dtype)
    y = tf.gather(tf.constant(x), indices, axis=axis)
    ref = np.take(x, indices, axis=axis)
    assert y.shape.as_tuple() == ref.shape
    np.testing.assert_array_equal(_run(y), ref)


def test_gather_int64_indices_and_unknown_dims(rng):
    x = rng.standard_normal((5, 3))
    idx = tf.placeholder(tf.int64, [None])
    y = tf.gather(tf.constant(x), idx)
    assert y.shape.as_list() == [None, 3]
    np.testing.assert_array_equal(_run(y, {idx: [4, 0]}), x[[4, 0]])


def _scatter_add(shape, indices, w, axis):
    """Hand-written scatter-add: params element [.., indices[j], ..] gets w[.., j, ..]."""
    out = np.zeros(shape)
    idx = np.asarray(indices)
    for w_pos in np.ndindex(w.shape):
        j = w_pos[axis:axis + idx.ndim]
        p_pos = w_pos[:axis] + (idx[j],) + w_pos[axis + idx.ndim:]
        out[p_pos] += w[w_pos]
    return out


@pytest.mark.parametrize(("shape", "indices", "axis"), [
    ((5, 3), [0, 2, 2, 4, 2], 0), ((2, 5, 3), [[4, 0, 4], [1, 1, 3]], 1), ((3, 4), [3, 3], -1),
    ((4,), 1, 0), ((2, 3, 2), [[1, 1]], 2)])
def test_gather_gradient_accumulates_duplicates(rng, shape, indices, axis):
    x = rng.standard_normal(shape)
    _, (g,), w = vjp(lambda t: tf.gather(t, indices, axis=axis), [x])
    np.testing.assert_allclose(g, _scatter_add(shape, indices, w, axis % len(shape)),
                               rtol=RTOL)


def test_gather_gradient_float32(rng):
    x = rng.standard_normal((4, 2)).astype(np.float32)
    _, (g,), w = vjp(lambda t: tf.gather(t, [1, 1, 1]), [x])
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, _scatter_add((4, 2), [1, 1, 1], w, 0), rtol=1e-6)


def test_gather_second_order(rng):
    x = rng.standard_normal((4, 3))
    idx = [3, 0, 3, 3]
    # <w, gather(x*x)> = sum_j w_j x[idx_j]^2; hvp = 2 v * scatter_add(w)
    h, w, v = second_order(lambda t: tf.gather(t * t, idx), x)
    np.testing.assert_allclose(h, 2 * v * _scatter_add((4, 3), idx, w, 0), rtol=RTOL)
    h, w, v = second_order(lambda t: tf.gather(t * t, [[2, 2]], axis=1), x)
    np.testing.assert_allclose(h, 2 * v * _scatter_add((4, 3), [[2, 2]], w, 1), rtol=RTOL)


def test_gather_second_order_with_fed_indices(rng):
    # indices known only at run time: the scatter-add's own gradient gathers back
    x_np = rng.standard_normal((4, 3))
    idx = tf.placeholder(tf.int32, [None])
    x = tf.constant(x_np)
    w_np = _cotangent(rng, (5, 3))
    (g,) = tf.gradients(tf.gather(x * x, idx), x, grad_ys=tf.constant(w_np))
    v_np = _cotangent(rng, (4, 3))
    (h,) = tf.gradients(g, x, grad_ys=tf.constant(v_np))
    iv = [1, 1, 0, 3, 1]
    gv, hv = _run([g, h], {idx: iv})
    np.testing.assert_allclose(gv, 2 * x_np * _scatter_add((4, 3), iv, w_np, 0), rtol=RTOL)
    np.testing.assert_allclose(hv, 2 * v_np * _scatter_add((4, 3), iv, w_np, 0), rtol=RTOL)


def test_gather_errors():
    x = tf.constant(np.zeros((5, 2)))
    y = tf.gather(x, [0, 7, 9])
    with pytest.raises(errors.InvalidArgumentError, match=r"indices\[1\] = 7 is not in \[0, 5\)"
                       ) as e:
        _run(y)
    assert e.value.op.type == "GatherV2" and "GatherV2" in str(e.value)
    idx = tf.placeholder(tf.int32, [None, None])
    with pytest.raises(errors.InvalidArgumentError, match=r"indices\[1,0\] = -1 is not in "
                                                          r"\[0, 2\)"):
        _run(tf.gather(x, idx, axis=1), {idx: [[0, 1], [-1, 0]]})
    with pytest.raises(errors.InvalidArgumentError, match=r"indices = 5 is not in \[0, 5\)"):
        _run(tf.gather(x, 5))
    with pytest.raises(ValueError, match=r"Expected axis in the range \[-2, 2\), but got 2 for "
                                         r"'GatherV2_\d' \(op: 'GatherV2'\) with input shapes: "
                                         r"\[5,2\], \[1\]"):
        tf.gather(x, [0], axis=2)
    with pytest.raises(TypeError, match="indices"):
        tf.gather(x, [0.5])


def test_unsorted_segment_sum_forward_and_gradient(rng):
    data = rng.standard_normal((2, 3, 2))
    ids = np.array([[1, 1, 0], [-1, 1, 2]])
    y = tf.math.unsorted_segment_sum(tf.constant(data), ids, 4)
    assert y.shape.as_list() == [4, 2]
    expect = np.zeros((4, 2))
    for i, j in np.ndindex(2, 3):
        if ids[i, j] >= 0:
            expect[ids[i, j]] += data[i, j]
    np.testing.assert_allclose(_run(y), expect, rtol=RTOL)
    _, (g,), w = vjp(lambda d: tf.math.unsorted_segment_sum(d, ids, 4), [data])
    np.testing.assert_allclose(g, np.where(ids[..., None] >= 0, w[np.maximum(ids, 0)], 0),
                               rtol=RTOL)
    with pytest.raises(errors.InvalidArgumentError, match=r"segment_ids\[0,1\] = 4 is out of "
                                                          r"range \[0, 4\)"):
        _run(tf.math.unsorted_segment_sum(tf.constant(data), [[0, 4, 0], [0, 0, 0]], 4))


def test_unsorted_segment_sum_gradient_with_fed_negative_ids(rng):
    data_np = rng.standard_normal((4, 2))
    data = tf.constant(data_np)
    ids = tf.placeholder(tf.int32, [4])
    y = tf.math.unsorted_segment_sum(data, ids, 3)
    w = _cotangent(rng, (3, 2))
    (g,) = tf.gradients(y, data, grad_ys=tf.constant(w))
    iv = np.array([2, -1, 0, 2])
    expect = np.where(iv[:, None] >= 0, w[np.maximum(iv, 0)], 0.0)
    np.testing.assert_allclose(_run(g, {ids: iv}), expect, rtol=RTOL)


# == Tile ====================================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "multiples"), [
    ((2, 3), [2, 1]), ((1, 2, 3), [3, 1, 2]), ((3,), [4]), ((2, 2), [0, 2]), ((), []),
    ((2, 1, 1, 2), [1, 2, 3, 1])])
def test_tile_forward(rng, dtype, shape, multiples):
    x = _values(rng, shape, dtype)
    y = tf.tile(tf.constant(x), multiples)
    ref = np.tile(x, multiples) if shape else x
    assert y.shape.as_tuple() == ref.shape
    np.testing.assert_array_equal(_run(y), ref)


def _tile_sum(w, shape, multiples):
    """Sum of the tiles of ``w``: each copy of the input contributes its block."""
    out = np.zeros(shape)
    for k in itertools.product(*(range(mm) for mm in multiples)):
        block = tuple(np.s_[ki * d:(ki + 1) * d] for ki, d in zip(k, shape))
        out += w[block]
    return out


@pytest.mark.parametrize(("shape", "multiples"), [
    ((2, 3), [2, 3]), ((1, 2, 3), [3, 1, 2]), ((3,), [4]), ((2, 2), [1, 1]), ((2, 1), [0, 2])])
def test_tile_gradient(rng, shape, multiples):
    x = rng.standard_normal(shape)
    _, (g,), w = vjp(lambda t: tf.tile(t, multiples), [x])
    np.testing.assert_allclose(g, _tile_sum(w, shape, multiples), rtol=RTOL)


def test_tile_gradient_scalar(rng):
    x = np.array(1.5)
    _, (g,), w = vjp(lambda t: tf.tile(t, np.zeros(0, np.int32)), [x])
    np.testing.assert_allclose(g, w, rtol=RTOL)


def test_tile_with_unknown_dims_forward_and_gradient(rng):
    p = tf.placeholder(tf.float64, [None, 3, None])
    mult = tf.placeholder(tf.int32, [3])
    y = tf.tile(p, mult)
    assert y.shape.as_list() == [None, None, None]
    y_static_mult = tf.tile(p, [2, 2, 1])
    assert y_static_mult.shape.as_list() == [None, 6, None]
    wt = tf.placeholder(tf.float64, None)
    (g,) = tf.gradients(y, p, grad_ys=wt)
    (g2,) = tf.gradients(y_static_mult, p, grad_ys=wt)
    assert g.shape.as_list() == [None, 3, None]
    for shape, mv in (((2, 3, 1), [2, 1, 3]), ((1, 3, 2), [1, 2, 2])):
        x = rng.standard_normal(shape)
        w = _cotangent(rng, tuple(d * m for d, m in zip(shape, mv)))
        out, gv = _run([y, g], {p: x, mult: mv, wt: w})
        np.testing.assert_array_equal(out, np.tile(x, mv))
        np.testing.assert_allclose(gv, _tile_sum(w, shape, mv), rtol=RTOL)
        w2 = _cotangent(rng, (shape[0] * 2, 6, shape[2]))
        np.testing.assert_allclose(_run(g2, {p: x, wt: w2}), _tile_sum(w2, shape, [2, 2, 1]),
                                   rtol=RTOL)


def test_tile_second_order(rng):
    x = rng.standard_normal((2, 3))
    h, w, v = second_order(lambda t: tf.tile(t * t, [2, 2]), x)
    np.testing.assert_allclose(h, 2 * v * _tile_sum(w, (2, 3), [2, 2]), rtol=RTOL)


def test_tile_errors():
    x = tf.constant(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Shape must be rank 3 but is rank 2 for 'Tile' \(op: "
                                         r"'Tile'\) with input shapes: \[2,3\], \[3\]"):
        tf.tile(x, [1, 2, 3])
    with pytest.raises(ValueError, match=r"Expected multiples\[1\] >= 0, but got -1"):
        tf.tile(x, [1, -1])
    mult = tf.placeholder(tf.int32, [None])
    with pytest.raises(errors.InvalidArgumentError, match=r"Expected multiples argument to be a "
                                                          r"vector of length 2 but got length 1"):
        _run(tf.tile(x, mult), {mult: [2]})


# == OneHot ==================================================================================
def _one_hot_ref(indices, depth, on, off, axis):
    idx = np.asarray(indices)
    out = np.full(idx.shape + (depth,), off, dtype=float)
    for pos in np.ndindex(idx.shape):
        if 0 <= idx[pos] < depth:
            out[pos + (idx[pos],)] = on
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize(("indices", "depth", "axis", "on", "off"), [
    ([0, 2, -1, 3], 3, -1, None, None), ([[1, 0], [5, 2]], 3, 1, 2.0, -1.0),
    (1, 2, 0, None, None), ([[0, 1, 2]], 4, 0, 5.0, 0.5), ([0, 1], 0, -1, None, None)])
def test_one_hot_forward(indices, depth, axis, on, off):
    y = tf.one_hot(indices, depth, on_value=on, off_value=off, axis=axis)
    assert y.dtype is tf.float32
    ref = _one_hot_ref(indices, depth, 1.0 if on is None else on, 0.0 if off is None else off,
                       axis)
    assert y.shape.as_tuple() == ref.shape
    out = _run(y)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ref)


def test_one_hot_dtypes_and_unknown_dims():
    y = tf.one_hot(np.array([0, 3], np.int64), 3, dtype=tf.int32)
    assert y.dtype is tf.int32
    np.testing.assert_array_equal(_run(y), [[1, 0, 0], [0, 0, 0]])
    y = tf.one_hot([1], 2, on_value=np.float64(3.0))
    assert y.dtype is tf.float64
    np.testing.assert_array_equal(_run(y), [[0.0, 3.0]])
    p = tf.placeholder(tf.int32, [None])
    y = tf.one_hot(p, 4, axis=0)
    assert y.shape.as_list() == [4, None]
    np.testing.assert_array_equal(_run(y, {p: [3, 1, 7]}), _one_hot_ref([3, 1, 7], 4, 1, 0, 0))


def test_one_hot_is_not_differentiable_and_errors():
    assert not registry.lookup("OneHot").differentiable
    with pytest.raises(ValueError, match=r"Expected axis to be -1 or between \[0, 2\).*"
                                         r"'one_hot' \(op: 'OneHot'\).*\[3\]"):
        tf.one_hot([0, 1, 2], 3, axis=2)
    with pytest.raises(ValueError, match="depth must be non-negative, got: -1"):
        tf.one_hot([0], -1)
    with pytest.raises(TypeError, match="dtype float64 of on_value does not match dtype "
                                        "float32 of off_value"):
        tf.one_hot([0], 2, on_value=np.float64(1), off_value=np.float32(0))
    with pytest.raises(TypeError, match="not in list of allowed values"):
        tf.one_hot(tf.constant([0.0]), 2)


# == Select / SelectV2 / Where ===============================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("cshape", "shape"), [
    ((2, 3), (2, 3)), ((3,), (3, 2)), ((), (2, 2)), ((4,), (4,)), ((2,), (2, 1, 3)), ((), ())])
def test_select_forward(rng, dtype, cshape, shape):
    c = rng.uniform(size=cshape) < 0.5
    x, y = _values(rng, shape, dtype), _values(rng, shape, dtype)
    out_t = tf.where(c, x, y)
    assert out_t.op.type == "Select" and out_t.shape.as_tuple() == shape
    cb = np.reshape(c, np.shape(c) + (1,) * (len(shape) - np.ndim(c))) if np.ndim(c) else c
    ref = np.where(cb, x, y)
    np.testing.assert_array_equal(_run(out_t), ref)


@pytest.mark.parametrize(("cshape", "shape"), [((2, 3), (2, 3)), ((3,), (3, 2)), ((), (2, 2))])
def test_select_gradient(rng, cshape, shape):
    c = rng.uniform(size=cshape) < 0.5
    xs = [rng.standard_normal(shape), rng.standard_normal(shape)]
    _, (gx, gy), w = vjp(lambda a, b: tf.where(tf.constant(c), a, b), xs)
    mask = np.broadcast_to(np.reshape(c, np.shape(c) + (1,) * (len(shape) - np.ndim(c))), shape)
    np.testing.assert_allclose(gx, np.where(mask, w, 0.0), rtol=RTOL)
    np.testing.assert_allclose(gy, np.where(mask, 0.0, w), rtol=RTOL)


def test_select_masked_branch_nan_does_not_leak(rng):
    x_np = np.array([4.0, 0.0, 9.0])
    x = tf.constant(x_np)
    safe = tf.where(tf.constant([True, False, True]), x, tf.zeros_like(x))
    y = safe * safe
    w = _cotangent(rng, 3)
    (g,) = tf.gradients(y, x, grad_ys=tf.constant(w))
    np.testing.assert_allclose(_run(g), [2 * 4.0 * w[0], 0.0, 2 * 9.0 * w[2]], rtol=RTOL)


def test_select_second_order(rng):
    x = rng.standard_normal((2, 3))
    c = rng.uniform(size=(2, 3)) < 0.5
    h, w, v = second_order(lambda t: tf.where(tf.constant(c), t * t, t), x)
    np.testing.assert_allclose(h, np.where(c, 2 * w * v, 0.0), rtol=RTOL)


def test_select_errors_and_unknown_dims():
    a, b = tf.constant(np.zeros((2, 3))), tf.constant(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"Dimension 0 in both shapes must be equal, but are 2 "
                                         r"and 3.*'Select' \(op: 'Select'\) with input shapes: "
                                         r"\[2,3\], \[2,3\], \[3,3\]"):
        tf.where(np.ones((2, 3), bool), a, b)
    with pytest.raises(ValueError, match=r"Shapes must be equal rank, but are 2 and 1"):
        tf.where(np.ones(3, bool), a, tf.constant(np.zeros(3)))  # TF1 Select does not broadcast
    with pytest.raises(ValueError, match=r"Dimensions must be equal, but are 3 and 2.*'Select_2'"):
        tf.where(np.ones(3, bool), a, a)
    with pytest.raises(ValueError, match="x and y must both be non-None"):
        tf.where(np.ones(3, bool), a)
    with pytest.raises(TypeError, match="bool"):
        tf.where(np.ones((2, 3)), a, a)
    p = tf.placeholder(tf.float64, [None, 3])
    c = tf.placeholder(tf.bool, [None])
    y = tf.where(c, p, a)
    assert y.shape.as_list() == [2, 3]
    with pytest.raises(errors.InvalidArgumentError, match=r"'then' and 'else' must have the "
                                                          r"same size.*\[1,3\] vs. \[2,3\]"):
        _run(y, {c: [True, False], p: np.zeros((1, 3))})


def test_where_v2_broadcasts_and_reduces_gradients(rng):
    c = rng.uniform(size=(2, 1, 3)) < 0.5
    x, y = rng.standard_normal((4, 1)), rng.standard_normal((3,))
    out, (gx, gy), w = vjp(lambda a, b: tf.where_v2(tf.constant(c), a, b), [x, y])
    cb = np.broadcast_to(c, (2, 4, 3))
    np.testing.assert_array_equal(out, np.where(cb, np.broadcast_to(x, cb.shape),
                                                np.broadcast_to(y, cb.shape)))
    np.testing.assert_allclose(gx, np.where(cb, w, 0).sum(axis=(0, 2))[:, None], rtol=RTOL)
    np.testing.assert_allclose(gy, np.where(cb, 0, w).sum(axis=(0, 1)), rtol=RTOL)


@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 1, 3, 2)])
def test_where_coordinates(rng, shape):
    c = rng.uniform(size=shape) < 0.5
    y = tf.where(c)
    assert y.op.type == "Where" and y.dtype is tf.int64 and y.shape.as_list() == [None,
                                                                                   len(shape)]
    out = _run(y)
    assert out.dtype == np.int64
    expect = [idx for idx in np.ndindex(shape) if c[idx]]
    np.testing.assert_array_equal(out, np.array(expect, np.int64).reshape(len(expect),
                                                                          len(shape)))
    assert not registry.lookup("Where").differentiable


# == StridedSlice: t[...] ====================================================================
_E = Ellipsis
KEYS = [
    (0,), (-1,), (np.s_[1:3],), (np.s_[::-1],), (np.s_[::-2],), (np.s_[5:0:-2],),
    (np.s_[:, 1],), (np.s_[..., -1],), (None,), (np.s_[None, ..., None],),
    (np.s_[1, ..., ::2],), (np.s_[-1, None, 1:],), (np.s_[:, ::-1, 1],), (np.s_[-10:10],),
    (np.s_[2:1],), (np.s_[...],), (np.s_[:, None, -2::-1],),
]




def _valid_for(shape, key):
    try:
        np.zeros(shape)[key]
    except IndexError:
        return False
    return True


KEY_CASES = [pytest.param(shape, key[0], id=f"{shape}-{key[0]!r}")
             for shape in [(5,), (4, 3), (2, 3, 4), (3, 1, 2, 4)] for key in KEYS
             if _valid_for(shape, key[0])]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "key"), KEY_CASES)
def test_getitem_forward(rng, dtype, shape, key):
    x = _values(rng, shape, dtype)
    ref = x[key]
    y = tf.constant(x)[key]
    assert y.op.type == "StridedSlice" and y.op.name.startswith("strided_slice")
    assert y.shape.as_tuple() == np.shape(ref)
    out = _run(y)
    assert np.asarray(out).dtype == x.dtype
    np.testing.assert_array_equal(out, ref)


def test_getitem_scalar_input():
    x = tf.constant(3.5)
    assert _run(x[...]) == 3.5 and _run(x[None]).tolist() == [3.5]


@pytest.mark.parametrize("key", [np.s_[::-1, 1], np.s_[1:, ::-2], np.s_[-1, ..., None, 2::-1],
                                 np.s_[:, None, 0], np.s_[::2, -3:]])
def test_getitem_gradient(rng, key):
    x = rng.standard_normal((4, 3))
    _, (g,), w = vjp(lambda t: t[key], [x])
    expect = np.zeros_like(x)
    expect[key] = w  # basic indexing reads each position at most once
    np.testing.assert_allclose(g, expect, rtol=RTOL)


def test_getitem_second_order(rng):
    x = rng.standard_normal((4, 3, 2))
    key = np.s_[::-2, 1:, -1]
    h, w, v = second_order(lambda t: (t * t)[key], x)
    expect = np.zeros_like(x)
    expect[key] = 2 * w * v[key]
    np.testing.assert_allclose(h, expect, rtol=RTOL)


@pytest.mark.parametrize(("shape", "key", "expect"), [
    ([None, 3], np.s_[0], [3]),
    ([None, 3], np.s_[:, 1:], [None, 2]),
    ([None, 3], np.s_[1:3, ::-1], [None, 3]),
    ([None, 3], np.s_[..., None], [None, 3, 1]),
    ([None, None, 4], np.s_[..., ::2], [None, None, 2]),
    ([None, None, 4], np.s_[:, :, 1], [None, None]),
    ([2, None], np.s_[::-1, :], [2, None]),
    (None, np.s_[0], None),
])
def test_getitem_static_shapes_with_unknown_dims(rng, shape, key, expect):
    p = tf.placeholder(tf.float64, shape)
    y = p[key]
    assert y.shape.as_tuple() == (None if expect is None else tuple(expect))
    x = rng.standard_normal([5 if d is None else d for d in (shape or [5, 3])])
    out = _run(y, {p: x})
    _check_static_matches(y, out)
    np.testing.assert_array_equal(out, x[key])


def test_getitem_with_tensor_indices(rng):
    x_np = rng.standard_normal((5, 4))
    x = tf.constant(x_np)
    i = tf.placeholder(tf.int32, [])
    j = tf.placeholder(tf.int64, [])
    y, z = x[i], x[1:i, j]
    assert y.shape.as_list() == [4] and z.shape.as_list() == [None]
    out = _run([y, z], {i: 3, j: -1})
    np.testing.assert_array_equal(out[0], x_np[3])
    np.testing.assert_array_equal(out[1], x_np[1:3, -1])
    w = _cotangent(rng, 4)
    (g,) = tf.gradients(y, x, grad_ys=tf.constant(w))
    expect = np.zeros_like(x_np)
    expect[2] = w
    np.testing.assert_allclose(_run(g, {i: 2}), expect, rtol=RTOL)


def test_getitem_gradient_with_unknown_dims(rng):
    p = tf.placeholder(tf.float64, [None, None])
    y = p[::-2, 1]
    wt = tf.placeholder(tf.float64, [None])
    (g,) = tf.gradients(y, p, grad_ys=wt)
    assert g.shape.as_list() == [None, None]
    x = rng.standard_normal((5, 3))
    w = _cotangent(rng, 3)
    expect = np.zeros_like(x)
    expect[::-2, 1] = w
    np.testing.assert_allclose(_run(g, {p: x, wt: w}), expect, rtol=RTOL)


def test_strided_slice_public_masks_match_indexing(rng):
    x_np = rng.standard_normal((3, 4, 5))
    x = tf.constant(x_np)
    # x[1, ..., ::-2] as TF masks: shrink bit 0, ellipsis bit 1, begin/end mask bit 2
    y = tf.strided_slice(x, [1, 0, 0], [2, 0, 0], [1, 1, -2], begin_mask=4, end_mask=4,
                         ellipsis_mask=2, shrink_axis_mask=1)
    assert y.op.type == "StridedSlice" and y.op.name == "StridedSlice"
    np.testing.assert_array_equal(_run(y), x_np[1, ..., ::-2])
    # new axis and default strides
    z = tf.strided_slice(x, [0, 1], [0, 3], new_axis_mask=1)
    assert z.shape.as_list() == [1, 2, 4, 5]
    np.testing.assert_array_equal(_run(z), x_np[None, 1:3])
    _, (g,), w = vjp(lambda t: tf.strided_slice(t, [2, -1], [0, 0], [-1, -2], end_mask=1), [x_np])
    expect = np.zeros_like(x_np)
    expect[2::-1, -1:0:-2] = w
    np.testing.assert_allclose(g, expect, rtol=RTOL)


def test_strided_slice_grad_op_second_order(rng):
    # the gradient op's own gradient is the strided slice again: d<v, grad>/dw = v[key]
    x_np = rng.standard_normal((4, 3))
    x = tf.constant(x_np)
    w = tf.constant(_cotangent(rng, (2, 3)))
    (g,) = tf.gradients(x[1::2], x, grad_ys=w)
    assert g.op.type == "StridedSliceGrad"
    v = _cotangent(rng, (4, 3))
    (gw,) = tf.gradients(g, w, grad_ys=tf.constant(v))
    np.testing.assert_allclose(_run(gw), v[1::2], rtol=RTOL)


def test_getitem_errors():
    x = tf.constant(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"slice index 3 of dimension 0 out of bounds.*"
                                         r"'strided_slice' \(op: 'StridedSlice'\) with input "
                                         r"shapes: \[3,4\], \[1\], \[1\], \[1\]"):
        x[3]
    with pytest.raises(ValueError, match=r"slice index -5 of dimension 1 out of bounds"):
        x[:, -5]
    with pytest.raises(ValueError, match=r"Index out of range using input dim 2"):
        x[0, 0, 0]
    with pytest.raises(ValueError, match=r"strides\[0\] must be non-zero"):
        x[::0]
    with pytest.raises(ValueError, match="Multiple ellipses"):
        x[..., ...]
    for bad in ([0, 1], 1.0, True, tf.constant(1.0), tf.constant([1, 2])):
        with pytest.raises(TypeError, match=r"Only integers, slices \(`:`\), ellipsis"):
            x[bad]
    p = tf.placeholder(tf.float64, [None, 4])
    y = p[2]
    with pytest.raises(errors.InvalidArgumentError, match="slice index 2 of dimension 0 out of "
                                                          "bounds") as e:
        _run(y, {p: np.zeros((2, 4))})
    assert e.value.op is y.op


def test_tensor_iteration_uses_getitem(rng):
    x_np = rng.standard_normal((3, 2))
    rows = list(tf.constant(x_np))
    assert len(rows) == 3
    assert all(r.shape.as_list() == [2] for r in rows)
    np.testing.assert_array_equal(np.stack(_run(rows)), x_np)


# == metadata for the property suite ==========================================================
ARRAY_OPS = ["Reshape", "ExpandDims", "Squeeze", "Transpose", "ConcatV2", "Pack", "Unpack",
             "Slice", "Pad", "GatherV2", "UnsortedSegmentSum", "Tile", "OneHot", "Select",
             "SelectV2", "Where", "StridedSlice", "StridedSliceGrad"]


@pytest.mark.parametrize("name", ARRAY_OPS)
def test_examples_run_and_match_reference(rng, name):
    """Every ``examples=`` case builds, runs, agrees with the reference and the static shape;
    for differentiable ops the gradient machinery accepts it."""
    od = registry.lookup(name)
    assert od.reference is not None
    cases = od.examples or ({"shapes": {}},)
    if od.signature == "custom":
        assert od.examples, f"{name} needs examples"
    for case in cases:
        attrs = {k: v for k, v in od.attrs.items() if v is not registry.REQUIRED}
        attrs.update(case.get("attrs", {}))
        arrays = []
        for n, dom in od.inputs.items():
            shapes = case.get("shapes", {}).get(n, ())
            vals = case.get("values", {}).get(n)
            group = shapes if n == od.variadic else [shapes]
            for s in group:
                if vals is not None:
                    arrays.append(np.asarray(vals, np.int32).reshape(s))
                elif dom.kind == "bool":
                    arrays.append(rng.uniform(size=s) < 0.5)
                elif dom.kind in ("integers", "indices"):
                    arrays.append(rng.integers(0, 2, size=s).astype(np.int32))
                else:
                    arrays.append(rng.standard_normal(s))
        with tf.Graph().as_default():
            consts = [tf.constant(a) for a in arrays]
            if od.variadic:
                y = od(consts, **attrs)
            else:
                y = od(*consts, **attrs)
            ys = list(y) if isinstance(y, tuple) else [y]
            outs = _run(ys)
        ref = od.reference(*arrays, **attrs)
        refs = list(ref) if isinstance(ref, tuple) else [ref]
        assert len(refs) == len(outs)
        for t, o, r in zip(ys, outs, refs):
            _check_static_matches(t, o)
            np.testing.assert_allclose(np.asarray(o, float), np.asarray(r, float), rtol=1e-12)
