"""NN ops: activations, softmax family, cross-entropies, bias_add, l2_loss, dropout.

Forward values are checked against independent NumPy/SciPy formulas (float64 references);
gradients against hand-derived formulas with random cotangents (tests/_util.vjp), including
the exact kinks; second order against hand-derived second derivatives.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.special as sp

import gradverify.engine as tf
from gradverify.engine import errors, registry
from tests._util import evaluate, second_order, vjp

RTOL = 1e-12
TOL = {np.float32: {"rtol": 2e-6, "atol": 1e-6}, np.float64: {"rtol": 1e-13, "atol": 1e-13}}
SHAPES = [(), (1,), (5,), (2, 1, 3), (1, 2, 3, 4)]
HUGE = np.array([-1e4, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1e4])


def _run(fetches, feed_dict=None):
    with tf.Session() as s:
        return s.run(fetches, feed_dict)


def _no_warnings(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args)


def _mixed_second(fn, arrays, seed=0):
    """For f(a, b): w random over the output, v_i random over input i. Returns
    (d<v_a, d<w,f>/da>/db, d<v_b, d<w,f>/db>/da, w, v_a, v_b)."""
    rng = np.random.default_rng(seed)
    with tf.Graph().as_default():
        a, b = (tf.constant(x) for x in arrays)
        y = fn(a, b)
        w = tf.constant(rng.uniform(0.5, 1.5, y.shape.as_list()).astype(arrays[0].dtype))
        ga, gb = tf.gradients(y, [a, b], grad_ys=w)
        va = tf.constant(rng.uniform(-1.5, 1.5, arrays[0].shape))
        vb = tf.constant(rng.uniform(-1.5, 1.5, arrays[1].shape))
        (hab,) = tf.gradients(ga, [b], grad_ys=va)
        (hba,) = tf.gradients(gb, [a], grad_ys=vb)
        return _run([hab, hba, w, va, vb])


# -- elementwise activations: forward ------------------------------------------------------------
def _np_elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


ACTIVATIONS = {
    "relu": (lambda x: tf.nn.relu(x), lambda x: np.maximum(x, 0.0)),
    "relu6": (lambda x: tf.nn.relu6(x), lambda x: np.minimum(np.maximum(x, 0.0), 6.0)),
    "elu": (lambda x: tf.nn.elu(x), _np_elu),
    "softplus": (lambda x: tf.nn.softplus(x), lambda x: np.logaddexp(0.0, x)),
    "sigmoid": (lambda x: tf.sigmoid(x), sp.expit),
    "tanh": (lambda x: tf.tanh(x), np.tanh),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_activation_forward(name, dtype, shape, rng):
    fn, ref = ACTIVATIONS[name]
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    out = evaluate(fn, [x])
    assert out.dtype == dtype and np.shape(out) == shape
    np.testing.assert_allclose(out, ref(x.astype(np.float64)), **TOL[dtype])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_huge_magnitudes_no_overflow(name, dtype):
    fn, ref = ACTIVATIONS[name]
    x = HUGE.astype(dtype)
    out = _no_warnings(evaluate, fn, [x])
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, ref(x.astype(np.float64)), **TOL[dtype])


def test_special_values_exact():
    x = np.array([-1e4, -2.0, 0.0, 2.0, 6.0, 7.0, 1e4])
    np.testing.assert_array_equal(evaluate(tf.nn.relu, [x]), [0, 0, 0, 2, 6, 7, 1e4])
    np.testing.assert_array_equal(evaluate(tf.nn.relu6, [x]), [0, 0, 0, 2, 6, 6, 6])
    np.testing.assert_array_equal(evaluate(tf.nn.softplus, [x])[[0, -1]], [0.0, 1e4])
    np.testing.assert_array_equal(evaluate(tf.sigmoid, [x])[[0, 2, -1]], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(evaluate(tf.nn.elu, [x])[[0, 2, -1]], [-1.0, 0.0, 1e4])


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_relu_integer_forward(dtype):
    x = np.array([[-3, 0, 2], [7, 6, -1]], dtype=dtype)
    out = evaluate(tf.nn.relu, [x])
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, [[0, 0, 2], [7, 6, 0]])
    np.testing.assert_array_equal(evaluate(tf.nn.relu6, [x]), [[0, 0, 2], [6, 6, 0]])


def test_public_names():
    assert tf.sigmoid is tf.nn.sigmoid is tf.math.sigmoid
    assert tf.tanh is tf.nn.tanh is tf.math.tanh
    assert tf.nn.softplus is tf.math.softplus
    assert tf.nn.softmax is tf.math.softmax and tf.nn.log_softmax is tf.math.log_softmax
    x = tf.constant([1.0])
    assert tf.nn.relu(x, name="act").op.name == "act"
    assert tf.nn.relu(x).op.type == "Relu" and tf.nn.relu6(x).op.type == "Relu6"
    assert tf.nn.elu(x).op.type == "Elu" and tf.tanh(x).op.type == "Tanh"


def test_activation_metadata():
    assert registry.lookup("Relu").kinks == (0.0,)
    assert registry.lookup("Relu6").kinks == (0.0, 6.0)
    assert registry.lookup("Elu").kinks == (0.0,)
    for t in ("Relu", "Relu6", "Elu", "Softplus", "Sigmoid", "Tanh"):
        od = registry.lookup(t)
        assert od.grad_fn is not None and od.reference is not None
        x = np.linspace(-5, 8, 11)
        np.testing.assert_allclose(od.reference(x), od.kernel(x), rtol=1e-12, atol=1e-15)


# -- elementwise activations: gradients ----------------------------------------------------------
def _grad_formulas():
    return {
        "relu": lambda x: (x > 0).astype(float),
        "relu6": lambda x: ((x > 0) & (x < 6)).astype(float),
        "elu": lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0))),
        "softplus": sp.expit,
        "sigmoid": lambda x: sp.expit(x) * (1 - sp.expit(x)),
        "tanh": lambda x: 1 - np.tanh(x) ** 2,
    }


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradient_with_kinks(name):
    x = np.array([[-7.0, -1.0, 0.0, 1e-300, 0.5], [3.0, 6.0, 6.5, -1e-300, 1e4]])
    fn, _ = ACTIVATIONS[name]
    _, (g,), w = vjp(fn, [x], seed=3)
    np.testing.assert_allclose(g, w * _grad_formulas()[name](x), rtol=RTOL, atol=0)


def test_relu_family_tf_kink_convention():
    x = np.array([0.0, 6.0, -0.0])
    _, (g,), w = vjp(tf.nn.relu, [x], seed=1)
    np.testing.assert_array_equal(g, [0.0, w[1], 0.0])   # 0 at exactly 0
    _, (g6,), _ = vjp(tf.nn.relu6, [x], seed=1)
    np.testing.assert_array_equal(g6, [0.0, 0.0, 0.0])   # 0 at both kinks


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_gradient_dtype_kept(dtype):
    x = np.array([-1.0, 2.0, 7.0], dtype=dtype)
    for fn, _ in ACTIVATIONS.values():
        _, (g,), _ = vjp(fn, [x])
        assert g.dtype == dtype


SECOND = {
    "tanh": lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2),
    "sigmoid": lambda x: sp.expit(x) * (1 - sp.expit(x)) * (1 - 2 * sp.expit(x)),
    "softplus": lambda x: sp.expit(x) * (1 - sp.expit(x)),
    "elu": lambda x: np.where(x > 0, 0.0, np.exp(np.minimum(x, 0))),
}


@pytest.mark.parametrize("name", sorted(SECOND))
def test_activation_second_order(name):
    x = np.array([[-3.0, -0.5, 0.25], [1.0, 2.5, -1e-3]])
    h, w, v = second_order(ACTIVATIONS[name][0], x, seed=7)
    np.testing.assert_allclose(h, w * v * SECOND[name](x), rtol=1e-12, atol=1e-15)


def test_relu6_second_order_is_zero():
    x = np.array([-1.0, 2.0, 7.0])
    with tf.Graph().as_default():
        xt = tf.constant(x)
        (g,) = tf.gradients(tf.nn.relu6(xt), [xt], grad_ys=tf.constant(np.array([1.0, 2.0, 3.0])))
        (h,) = tf.gradients(g, [xt])
        assert h is None or np.all(_run(h) == 0)
        np.testing.assert_array_equal(_run(g), [0.0, 2.0, 0.0])


# -- softmax / log_softmax -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (4,), (3, 1), (2, 5), (2, 3, 4), (1, 2, 2, 3)])
def test_softmax_forward(dtype, shape, rng):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(-1, keepdims=True))
    ref = e / e.sum(-1, keepdims=True)
    out = evaluate(tf.nn.softmax, [x])
    assert out.dtype == dtype
    np.testing.assert_allclose(out, ref, **TOL[dtype])
    lout = evaluate(tf.nn.log_softmax, [x])
    np.testing.assert_allclose(lout, np.log(ref), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_huge_and_dominant_logits(dtype):
    x = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4], [-1e4, -1e4, 0.0]], dtype=dtype)
    p = _no_warnings(evaluate, tf.nn.softmax, [x])
    np.testing.assert_allclose(p, [[1, 0, 0], [1 / 3] * 3, [0, 0, 1]], rtol=1e-6, atol=0)
    lp = _no_warnings(evaluate, tf.nn.log_softmax, [x])
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(lp, [[0, -1e4, -2e4], [-np.log(3)] * 3, [-1e4, -1e4, 0]],
                               rtol=1e-6)


def test_softmax_axis_and_dim(rng):
    x = rng.standard_normal((2, 3, 4))
    for axis in (0, 1, -2, 2, -1):
        np.testing.assert_allclose(evaluate(lambda t, a=axis: tf.nn.softmax(t, axis=a), [x]),
                                   sp.softmax(x, axis=axis), rtol=1e-13)
        np.testing.assert_allclose(
            evaluate(lambda t, a=axis: tf.nn.log_softmax(t, dim=a), [x]),
            sp.log_softmax(x, axis=axis), rtol=1e-13)
    _, (g,), w = vjp(lambda t: tf.nn.softmax(t, axis=0), [x])
    y = sp.softmax(x, axis=0)
    np.testing.assert_allclose(g, y * (w - np.sum(w * y, axis=0, keepdims=True)), rtol=1e-12)
    with pytest.raises(ValueError, match="Cannot specify both 'dim' and 'axis'"):
        tf.nn.softmax(tf.constant(x), axis=0, dim=0)
    with pytest.raises(errors.InvalidArgumentError, match=r"Dimension \(3\) must be in the "
                       r"range \[-3, 3\) where 3 is the number of dimensions"):
        tf.nn.softmax(tf.constant(x), axis=3)


def test_softmax_gradient(rng):
    x = rng.standard_normal((3, 4))
    _, (g,), w = vjp(tf.nn.softmax, [x], seed=2)
    y = sp.softmax(x, axis=-1)
    np.testing.assert_allclose(g, y * (w - np.sum(w * y, -1, keepdims=True)), rtol=1e-12)


def test_log_softmax_gradient_and_second_order(rng):
    x = rng.standard_normal((3, 4))
    _, (g,), w = vjp(tf.nn.log_softmax, [x], seed=2)
    p = sp.softmax(x, axis=-1)
    np.testing.assert_allclose(g, w - np.sum(w, -1, keepdims=True) * p, rtol=1e-12)
    h, w, v = second_order(tf.nn.log_softmax, x, seed=5)
    # d/dx <v, w - sum(w) p> = -sum(w) * p * (v - <v, p>)
    want = -np.sum(w, -1, keepdims=True) * p * (v - np.sum(v * p, -1, keepdims=True))
    np.testing.assert_allclose(h, want, rtol=1e-12, atol=1e-15)


def test_softmax_rank0_is_shape_error():
    with pytest.raises(ValueError, match=r"at least rank 1.*'Softmax'"):
        tf.nn.softmax(tf.constant(1.0))


# -- dense softmax cross-entropy -----------------------------------------------------------------
def _xent_ref(labels, logits):
    return -np.sum(labels * sp.log_softmax(logits, axis=-1), axis=-1)


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3,), (1, 1), (4, 3), (2, 3, 5)])
def test_softmax_xent_forward(version, dtype, shape, rng):
    fn = (tf.nn.softmax_cross_entropy_with_logits if version == "v1"
          else tf.nn.softmax_cross_entropy_with_logits_v2)
    logits = (rng.standard_normal(shape) * 3).astype(dtype)
    labels = sp.softmax(rng.standard_normal(shape), axis=-1).astype(dtype)
    out = evaluate(lambda z, y: fn(labels=y, logits=z), [logits, labels])
    assert out.dtype == dtype and out.shape == shape[:-1]
    np.testing.assert_allclose(out, _xent_ref(labels.astype(float), logits.astype(float)),
                               **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_xent_huge_logits(dtype):
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    labels = np.array([[0.0, 0.0, 1.0], [0.5, 0.25, 0.25]], dtype=dtype)
    out = _no_warnings(evaluate, lambda z, y: tf.nn.softmax_cross_entropy_with_logits_v2(
        labels=y, logits=z), [logits, labels])
    np.testing.assert_allclose(out, [2e4, np.log(3)], rtol=1e-6)


def test_softmax_xent_v1_vs_v2_gradients(rng):
    z = rng.standard_normal((4, 3))
    y = sp.softmax(rng.standard_normal((4, 3)), axis=-1)
    p, logp = sp.softmax(z, axis=-1), sp.log_softmax(z, axis=-1)
    _, (gz1, gy1), w = vjp(lambda a, b: tf.nn.softmax_cross_entropy_with_logits(
        labels=b, logits=a), [z, y], seed=4)
    assert gy1 is None  # v1 stops the gradient to labels
    np.testing.assert_allclose(gz1, w[:, None] * (p - y), rtol=1e-12)
    _, (gz2, gy2), w = vjp(lambda a, b: tf.nn.softmax_cross_entropy_with_logits_v2(
        labels=b, logits=a), [z, y], seed=4)
    np.testing.assert_allclose(gz2, w[:, None] * (p - y), rtol=1e-12)
    np.testing.assert_allclose(gy2, -w[:, None] * logp, rtol=1e-12)


def test_softmax_xent_labels_not_summing_to_one_exact_gradient():
    # Engine choice: the logits gradient is the true derivative sum(y) * p - y (TF's fused
    # kernel returns p - y, which equals it only on rows of labels summing to 1).
    z = np.array([[0.3, -1.0, 2.0]])
    y = np.array([[0.5, 1.0, 0.5]])
    _, (gz, _), w = vjp(lambda a, b: tf.nn.softmax_cross_entropy_with_logits_v2(
        labels=b, logits=a), [z, y], seed=1)
    h = 1e-6
    num = np.array([(_xent_ref(y, z + h * e) - _xent_ref(y, z - h * e))[0] / (2 * h)
                    for e in np.eye(3)[:, None, :]])
    np.testing.assert_allclose(gz[0], w[0] * num, rtol=1e-7)


def test_softmax_xent_second_order_logits(rng):
    y = sp.softmax(rng.standard_normal((3, 4)), axis=-1)
    z = rng.standard_normal((3, 4))
    h, w, v = second_order(lambda a: tf.nn.softmax_cross_entropy_with_logits_v2(
        labels=tf.constant(y), logits=a), z, seed=9)
    p = sp.softmax(z, axis=-1)
    want = w[:, None] * p * (v - np.sum(v * p, -1, keepdims=True))
    np.testing.assert_allclose(h, want, rtol=1e-12, atol=1e-15)


def test_softmax_xent_second_order_mixed_both_inputs(rng):
    z = rng.standard_normal((3, 4))
    y = sp.softmax(rng.standard_normal((3, 4)), axis=-1)
    hzy, hyz, w, vz, vy = _mixed_second(
        lambda a, b: tf.nn.softmax_cross_entropy_with_logits_v2(labels=b, logits=a), [z, y])
    p = sp.softmax(z, axis=-1)
    # d^2 L / dz_j dy_k = p_j - delta_jk (per row), so the Hessian blocks are transposes.
    np.testing.assert_allclose(hzy, w[:, None] * (np.sum(vz * p, -1, keepdims=True) - vz),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(hyz, w[:, None] * (np.sum(vy, -1, keepdims=True) * p - vy),
                               rtol=1e-12, atol=1e-15)


def test_softmax_xent_axis(rng):
    z = rng.standard_normal((4, 2, 3))
    y = sp.softmax(rng.standard_normal((4, 2, 3)), axis=0)
    for kw in ({"axis": 0}, {"dim": 0}):
        out = evaluate(lambda a, b, kw=kw: tf.nn.softmax_cross_entropy_with_logits_v2(
            labels=b, logits=a, **kw), [z, y])
        assert out.shape == (2, 3)  # the other axes keep their order
        np.testing.assert_allclose(out, -np.sum(y * sp.log_softmax(z, axis=0), axis=0),
                                   rtol=1e-12)


@pytest.mark.parametrize("fn_name", ["softmax_cross_entropy_with_logits",
                                     "softmax_cross_entropy_with_logits_v2",
                                     "sparse_softmax_cross_entropy_with_logits",
                                     "sigmoid_cross_entropy_with_logits"])
def test_xent_keyword_only(fn_name):
    fn = getattr(tf.nn, fn_name)
    logits = tf.constant([[1.0, 2.0]])
    with pytest.raises(ValueError, match=f"Only call `{fn_name}` with named arguments "
                       r"\(labels=\.\.\., logits=\.\.\., \.\.\.\)"):
        fn(tf.constant([[0.0, 1.0]]), logits)
    with pytest.raises(ValueError, match="Both labels and logits must be provided"):
        fn(logits=logits)


def test_softmax_xent_labels_converted_to_logits_dtype():
    z = tf.constant(np.array([[1.0, 2.0]]))
    loss = tf.nn.softmax_cross_entropy_with_logits(labels=[[0.0, 1.0]], logits=z)
    loss2 = tf.nn.softmax_cross_entropy_with_logits_v2(labels=tf.constant([[0.0, 1.0]]),
                                                       logits=z)
    assert loss.dtype == tf.float64 and loss2.dtype == tf.float64
    np.testing.assert_allclose(_run(loss), [np.log1p(np.exp(-1.0))], rtol=1e-12)


# -- sparse softmax cross-entropy ----------------------------------------------------------------
def _sparse(labels, logits):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ldtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape", [(3,), (1, 1), (4, 3), (2, 3, 5), (1, 2, 1, 4)])
def test_sparse_xent_forward(dtype, ldtype, shape, rng):
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    y = rng.integers(0, shape[-1], shape[:-1]).astype(ldtype)
    with tf.Graph().as_default():
        loss = _sparse(tf.constant(y), tf.constant(z))
        assert loss.shape.as_tuple() == shape[:-1]
        out = _run(loss)
    assert np.asarray(out).dtype == dtype
    logp = sp.log_softmax(z.astype(np.float64), axis=-1)
    np.testing.assert_allclose(out, np.take_along_axis(-logp, y[..., None], -1)[..., 0],
                               **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_xent_huge_logits(dtype):
    z = np.array([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4], [5.0, 5.0, 5.0]], dtype=dtype)
    y = np.array([0, 2, 1], dtype=np.int32)
    out = _no_warnings(evaluate, lambda a, b: _sparse(b, a), [z, y])
    np.testing.assert_allclose(out, [0.0, 2e4, np.log(3)], rtol=1e-6, atol=0)


def test_sparse_xent_gradient(rng):
    z = rng.standard_normal((4, 3))
    y = np.array([0, 2, 2, 1])
    _, (gz, gy), w = vjp(lambda a, b: _sparse(b, a), [z, y], seed=6)
    assert gy is None
    np.testing.assert_allclose(gz, w[:, None] * (sp.softmax(z, -1) - np.eye(3)[y]),
                               rtol=1e-12, atol=1e-15)


def test_sparse_xent_gradient_rank3(rng):
    z = rng.standard_normal((2, 3, 4))
    y = rng.integers(0, 4, (2, 3))
    _, (gz, _), w = vjp(lambda a, b: _sparse(b, a), [z, y], seed=2)
    np.testing.assert_allclose(gz, w[..., None] * (sp.softmax(z, -1) - np.eye(4)[y]),
                               rtol=1e-12, atol=1e-15)


def test_sparse_xent_second_order(rng):
    z = rng.standard_normal((3, 5))
    y = np.array([4, 0, 4])
    h, w, v = second_order(lambda a: _sparse(tf.constant(y), a), z, seed=8)
    p = sp.softmax(z, -1)
    np.testing.assert_allclose(h, w[:, None] * p * (v - np.sum(v * p, -1, keepdims=True)),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("bad, shown", [(10, "10"), (-1, "-1")])
def test_sparse_xent_label_out_of_range(bad, shown):
    labels = tf.placeholder(tf.int32, [3])
    loss = _sparse(labels, tf.constant(np.zeros((3, 10))))
    with pytest.raises(errors.InvalidArgumentError) as e:
        _run(loss, {labels: [1, bad, 3]})
    assert e.value.message == (f"Received a label value of {shown} which is outside the valid "
                               f"range of [0, 10).  Label values: 1 {bad} 3")
    assert e.value.op is loss.op
    assert "SparseSoftmaxCrossEntropyWithLogits" in str(e.value)


def test_sparse_xent_build_time_errors():
    z = tf.constant(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Rank mismatch: Rank of labels \(received 2\) "
                       r"should equal rank of logits minus 1 \(received 2\)"):
        _sparse(tf.constant([[0, 1]]), z)
    with pytest.raises(ValueError, match=r"Shape mismatch: The shape of labels \(received "
                       r"\(3,\)\) should equal the shape of logits except for the last "
                       r"dimension \(received \(2, 3\)\)"):
        _sparse(tf.constant([0, 1, 2]), z)
    with pytest.raises(ValueError, match="Logits cannot be scalars"):
        _sparse(tf.constant(0), tf.constant(1.0))
    with pytest.raises(TypeError, match="labels"):
        _sparse(tf.constant([0.0, 1.0]), z)


def test_sparse_xent_unknown_dims():
    z = tf.placeholder(tf.float64, [None, 3])
    y = tf.placeholder(tf.int64, [None])
    loss = _sparse(y, z)
    assert loss.shape.as_tuple() == (None,)
    out = _run(loss, {z: np.zeros((2, 3)), y: [0, 2]})
    np.testing.assert_allclose(out, [np.log(3)] * 2, rtol=1e-12)
    with pytest.raises(errors.InvalidArgumentError, match=r"Dimensions must be equal, but are "
                       r"2 and 4.*SparseSoftmaxCrossEntropyWithLogits"):
        _run(loss, {z: np.zeros((2, 3)), y: [0, 1, 2, 0]})
    with pytest.raises(errors.InvalidArgumentError, match=r"but are 2 and 1"):
        _run(loss, {z: np.zeros((2, 3)), y: [0]})  # no silent broadcasting of labels
    # the raw op on partial shapes merges the batch dims statically
    op = registry.lookup("SparseSoftmaxCrossEntropyWithLogits")
    loss2, bp = op(tf.placeholder(tf.float32, [None, 5]), tf.placeholder(tf.int32, [7]))
    assert loss2.shape.as_tuple() == (7,) and bp.shape.as_tuple() == (7, 5)


# -- sigmoid cross-entropy -----------------------------------------------------------------------
def _sig(labels, logits):
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def _sig_ref(z, x):
    # -z log(sigmoid(x)) - (1 - z) log(1 - sigmoid(x)), stably in float64
    return z * np.logaddexp(0.0, -x) + (1 - z) * np.logaddexp(0.0, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_sigmoid_xent_forward(dtype, shape, rng):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    z = rng.uniform(0, 1, shape).astype(dtype)
    out = evaluate(lambda a, b: _sig(b, a), [x, z])
    assert out.dtype == dtype and np.shape(out) == shape
    np.testing.assert_allclose(out, _sig_ref(z.astype(float), x.astype(float)), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_xent_huge(dtype):
    x = HUGE.astype(dtype)
    z = np.tile([0.0, 1.0, 0.5], 3).astype(dtype)
    out = _no_warnings(evaluate, lambda a, b: _sig(b, a), [x, z])
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, _sig_ref(z.astype(float), x.astype(float)), **TOL[dtype])


def test_sigmoid_xent_gradients_both_inputs(rng):
    x = np.array([[-1e4, -2.0, 0.0], [0.5, 3.0, 1e4]])
    z = np.array([[0.0, 1.0, 0.5], [0.2, 0.0, 1.0]])
    _, (gx, gz), w = vjp(lambda a, b: _sig(b, a), [x, z], seed=11)
    np.testing.assert_allclose(gx, w * (sp.expit(x) - z), rtol=RTOL, atol=0)
    np.testing.assert_allclose(gz, -w * x, rtol=RTOL)


def test_sigmoid_xent_second_order(rng):
    x = rng.standard_normal((2, 3))
    z = rng.uniform(0, 1, (2, 3))
    h, w, v = second_order(lambda a: _sig(tf.constant(z), a), x, seed=3)
    s = sp.expit(x)
    np.testing.assert_allclose(h, w * v * s * (1 - s), rtol=1e-12)
    hxz, hzx, w, vx, vz = _mixed_second(lambda a, b: _sig(b, a), [x, z])
    np.testing.assert_allclose(hxz, -w * vx, rtol=1e-12)
    np.testing.assert_allclose(hzx, -w * vz, rtol=1e-12)


def test_sigmoid_xent_shape_errors():
    with pytest.raises(ValueError, match=r"^logits and labels must have the same shape "
                       r"\(\(2, 3\) vs \(2, 4\)\)$"):
        _sig(tf.constant(np.zeros((2, 4))), tf.constant(np.zeros((2, 3))))
    x = tf.placeholder(tf.float64, [None, 3])
    z = tf.placeholder(tf.float64, [None, 3])
    loss = _sig(z, x)
    assert loss.shape.as_tuple() == (None, 3) and loss.op.name == "logistic_loss"
    with pytest.raises(errors.InvalidArgumentError, match=r"same shape.*\[2,3\], \[1,3\]"):
        _run(loss, {x: np.zeros((2, 3)), z: np.zeros((1, 3))})  # no silent broadcasting


# -- bias_add ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("shape, fmt", [((2, 3), None), ((1, 1), "NHWC"), ((2, 4, 5, 3), None),
                                        ((2, 3, 4), "NCHW"), ((2, 3, 4, 5), "NCHW"),
                                        ((1, 2, 1, 1), "NCHW"), ((2, 3, 4, 5, 2), "NCDHW"),
                                        ((2, 3, 4, 5, 2), "NDHWC")])
def test_bias_add_forward(dtype, shape, fmt, rng):
    value = (rng.standard_normal(shape) * 5).astype(dtype)
    nc = fmt is not None and fmt.startswith("NC")
    c = shape[1] if nc else shape[-1]
    bias = (rng.standard_normal(c) * 5).astype(dtype)
    out = evaluate(lambda v, b: tf.nn.bias_add(v, b, data_format=fmt), [value, bias])
    want = value.copy()
    for k in range(c):
        if nc:
            want[:, k] += bias[k]
        else:
            want[..., k] += bias[k]
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("shape, fmt", [((2, 3), "NHWC"), ((2, 4, 5, 3), "NHWC"),
                                        ((2, 3, 4), "NCHW"), ((2, 3, 4, 5), "NCHW"),
                                        ((1, 1, 1, 1), "NCHW")])
def test_bias_add_gradient(shape, fmt, rng):
    value = rng.standard_normal(shape)
    c = shape[1] if fmt == "NCHW" else shape[-1]
    bias = rng.standard_normal(c)
    _, (gv, gb), w = vjp(lambda v, b: tf.nn.bias_add(v, b, data_format=fmt), [value, bias],
                         seed=5)
    np.testing.assert_array_equal(gv, w)
    axis = 1 if fmt == "NCHW" else len(shape) - 1
    want = np.array([np.sum(np.take(w, k, axis=axis)) for k in range(c)])
    assert gb.shape == (c,)
    np.testing.assert_allclose(gb, want, rtol=1e-12)


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
def test_bias_add_grad_op_gradient(fmt, rng):
    shape = (2, 3, 4)
    g = rng.standard_normal(shape)
    op = registry.lookup("BiasAddGrad")
    out, (gg,), w = vjp(lambda t: op(t, data_format=fmt), [g], seed=1)
    axis = 1 if fmt == "NCHW" else 2
    np.testing.assert_allclose(out, g.sum(axis=tuple(i for i in range(3) if i != axis)),
                               rtol=1e-12)
    np.testing.assert_array_equal(gg, np.broadcast_to(np.expand_dims(
        w, tuple(i for i in range(3) if i != axis)), shape))


def test_bias_add_second_order_through_bias():
    # d/db <v, d<w, bias_add(x, b)>/dx> = 0, but d/dw of the bias gradient is BiasAddGrad's
    # own gradient: check it via gradients of the bias gradient w.r.t. the cotangent.
    x = tf.constant(np.ones((2, 3, 2)))
    b = tf.constant(np.zeros(3))
    w = tf.constant(np.arange(12.0).reshape(2, 3, 2))
    (gb,) = tf.gradients(tf.nn.bias_add(x, b, data_format="NCHW"), [b], grad_ys=w)
    v = tf.constant(np.array([1.0, -2.0, 0.5]))
    (gw,) = tf.gradients(gb, [w], grad_ys=v)
    np.testing.assert_array_equal(_run(gb), [0 + 1 + 6 + 7, 2 + 3 + 8 + 9, 4 + 5 + 10 + 11])
    np.testing.assert_array_equal(_run(gw), np.broadcast_to(np.array(
        [1.0, -2.0, 0.5])[None, :, None], (2, 3, 2)))


def test_bias_add_errors():
    v = tf.constant(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Dimensions must be equal, but are 3 and 4 for "
                       r"'BiasAdd' \(op: 'BiasAdd'\) with input shapes: \[2,3\], \[4\]"):
        tf.nn.bias_add(v, np.zeros(4))
    with pytest.raises(ValueError, match=r"Shape must be rank 1 but is rank 2.*\[2,3\], "
                       r"\[1,3\]"):
        tf.nn.bias_add(v, np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"at least rank 3.*'BiasAdd'"):
        tf.nn.bias_add(v, np.zeros(3), data_format="NCHW")
    with pytest.raises(ValueError, match=r"at least rank 2.*'BiasAdd'"):
        tf.nn.bias_add(tf.constant(np.zeros(3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"data_format must be of the form `N\.\.\.C` or "
                       r"`NC\.\.\.`"):
        tf.nn.bias_add(v, np.zeros(3), data_format="HWCN")


def test_bias_add_unknown_dims():
    v = tf.placeholder(tf.float64, [None, None, 4])
    b = tf.placeholder(tf.float64, [None])
    out = tf.nn.bias_add(v, b, data_format="NCHW")
    assert out.shape.as_tuple() == (None, None, 4)
    out2 = tf.nn.bias_add(v, b)
    assert out2.shape.as_tuple() == (None, None, 4)
    val = _run(out, {v: np.zeros((2, 3, 4)), b: [1.0, 2.0, 3.0]})
    np.testing.assert_array_equal(val[1, :, 0], [1.0, 2.0, 3.0])
    (gb,) = tf.gradients(out, [b])
    assert gb.shape.as_tuple() == (None,)
    with pytest.raises(errors.InvalidArgumentError, match=r"Dimensions must be equal, but are "
                       r"3 and 1.*'BiasAdd'"):
        _run(out, {v: np.zeros((2, 3, 4)), b: [1.0]})  # no silent broadcasting of bias


# -- l2_loss -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_l2_loss(dtype, shape, rng):
    t = rng.standard_normal(shape).astype(dtype)
    out = evaluate(tf.nn.l2_loss, [t])
    assert np.shape(out) == () and out.dtype == dtype
    np.testing.assert_allclose(out, np.sum(t.astype(float) ** 2) / 2, **TOL[dtype])


def test_l2_loss_gradient_and_overflow(rng):
    t = rng.standard_normal((2, 3))
    _, (g,), _ = vjp(tf.nn.l2_loss, [t], cotangent=np.array(1.7))
    np.testing.assert_allclose(g, 1.7 * t, rtol=RTOL)
    big = _no_warnings(evaluate, tf.nn.l2_loss, [np.array([1e30], np.float32)])
    assert big == np.inf


# -- dropout -------------------------------------------------------------------------------------
def test_dropout_statistics_and_mask():
    tf.set_random_seed(1234)
    x_np = np.random.default_rng(0).uniform(1.0, 2.0, (200, 50))
    x = tf.constant(x_np)
    out = tf.nn.dropout(x, keep_prob=0.4)
    assert out.shape.as_tuple() == (200, 50) and out.dtype == tf.float64
    val = _run(out)
    kept = val != 0
    np.testing.assert_allclose(val[kept], x_np[kept] / 0.4, rtol=1e-15)
    frac = kept.mean()
    assert abs(frac - 0.4) < 4 * np.sqrt(0.4 * 0.6 / x_np.size)
    assert abs(val.mean() / x_np.mean() - 1) < 0.05  # the expectation is preserved


def test_dropout_gradient_uses_the_same_mask():
    x_np = np.arange(1.0, 61.0).reshape(6, 10)
    x = tf.constant(x_np)
    out = tf.nn.dropout(x, keep_prob=0.5, seed=3)
    w = np.random.default_rng(1).uniform(0.5, 1.5, x_np.shape)
    (g,) = tf.gradients(out, [x], grad_ys=tf.constant(w))
    with tf.Session() as s:
        for _ in range(3):
            val, gv = s.run([out, g])
            mask = val != 0
            assert 0 < mask.sum() < mask.size
            np.testing.assert_allclose(gv, np.where(mask, w / 0.5, 0.0), rtol=1e-15)


def test_dropout_draws_anew_each_run_and_reproducible_by_seed():
    tf.set_random_seed(7)
    x = tf.ones([20, 20])
    out = tf.nn.dropout(x, keep_prob=0.5)
    with tf.Session() as s:
        a, b = s.run(out), s.run(out)
    with tf.Session() as s:
        a2 = s.run(out)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, a2)


def test_dropout_keep_prob_placeholder():
    x = tf.constant(np.ones((100, 100)))
    kp = tf.placeholder(tf.float64, [])
    out = tf.nn.dropout(x, keep_prob=kp, seed=1)
    with tf.Session() as s:
        quarter = s.run(out, {kp: 0.25})
        one = s.run(out, {kp: 1.0})
    assert set(np.unique(quarter)) == {0.0, 4.0}
    assert abs((quarter != 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(one, np.ones((100, 100)))
    with pytest.raises(ValueError, match="incompatible"):
        tf.nn.dropout(x, keep_prob=tf.placeholder(tf.float64, [2]))


def test_dropout_rate_argument():
    x = tf.constant(np.ones((100, 100)))
    val = _run(tf.nn.dropout(x, rate=0.75, seed=2))
    assert set(np.unique(val)) == {0.0, 4.0}
    assert abs((val != 0).mean() - 0.25) < 0.02
    assert tf.nn.dropout(x, rate=0.0) is x


def test_dropout_noise_shape_broadcasts():
    x = tf.constant(np.ones((50, 8)))
    out = tf.nn.dropout(x, keep_prob=0.5, noise_shape=[50, 1], seed=5)
    val = _run(out)
    for row in val:
        assert np.all(row == 0) or np.all(row == 2.0)
    assert 0 < (val[:, 0] != 0).sum() < 50
    out2 = tf.nn.dropout(x, keep_prob=0.5, noise_shape=[None, 1], seed=5)
    assert out2.shape.as_tuple() == (50, 8)
    val2 = _run(out2)
    for row in val2:
        assert np.all(row == 0) or np.all(row == 2.0)


def test_dropout_unknown_shape():
    x = tf.placeholder(tf.float32, [None, 4])
    out = tf.nn.dropout(x, keep_prob=0.5, seed=1)
    assert out.shape.as_tuple() == (None, 4)
    val = _run(out, {x: np.ones((3, 4))})
    assert val.shape == (3, 4) and set(np.unique(val)) <= {0.0, 2.0}


def test_dropout_keep_prob_one_returns_x_and_errors():
    x = tf.constant([1.0, 2.0])
    assert tf.nn.dropout(x, keep_prob=1.0) is x
    assert tf.nn.dropout(x, keep_prob=tf.constant(1.0)) is x
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"keep_prob must be a scalar tensor or a float "
                           r"in the range \(0, 1\], got"):
            tf.nn.dropout(x, keep_prob=bad)
    with pytest.raises(ValueError, match=r"rate must be a scalar tensor or a float in the "
                       r"range \[0, 1\), got 1"):
        tf.nn.dropout(x, rate=1.0)
    with pytest.raises(ValueError, match="Cannot specify both 'keep_prob' and 'rate'"):
        tf.nn.dropout(x, keep_prob=0.5, rate=0.5)
    with pytest.raises(ValueError, match="You must provide a rate to dropout"):
        tf.nn.dropout(x)
    with pytest.raises(ValueError, match="x has to be a floating point tensor"):
        tf.nn.dropout(tf.constant([1, 2]), keep_prob=0.5)
