"""``tf.gradients`` semantics (spec section 4): the walk, aggregation, blocking, errors,
broadcasting reduction, second order, variables and naming.

Every expected value is derived by hand in NumPy; cotangents are random (not ones), so a
rule that ignores the upstream gradient fails.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine import meta, registry

RTOL = 1e-12


def _run(fetches, feed_dict=None):
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        return s.run(fetches, feed_dict)


def _const(rng, *shape):
    return tf.constant(rng.standard_normal(shape))


# -- one entry per x, sum over ys, grad_ys -----------------------------------------------------
def test_one_entry_per_x_in_order(rng):
    a_np, b_np, c_np = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3)
    a, b, c = tf.constant(a_np), tf.constant(b_np), tf.constant(c_np)
    y = tf.reduce_sum(a * b * 2.0)
    grads = tf.gradients(y, [b, c, a])
    assert isinstance(grads, list) and len(grads) == 3
    assert grads[1] is None
    gb, ga = _run([grads[0], grads[2]])
    np.testing.assert_allclose(gb, 2.0 * a_np, rtol=RTOL)
    np.testing.assert_allclose(ga, 2.0 * b_np, rtol=RTOL)


def test_single_x_not_in_list_gives_list(rng):
    x = _const(rng, 2)
    out = tf.gradients(tf.reduce_sum(x * 3.0), x)
    assert isinstance(out, list) and len(out) == 1
    np.testing.assert_allclose(_run(out[0]), [3.0, 3.0], rtol=RTOL)


def test_sum_over_ys(rng):
    x_np = rng.standard_normal((2, 3))
    x = tf.constant(x_np)
    y1 = tf.reduce_sum(x * x)           # d/dx = 2x
    y2 = tf.reduce_sum(x * 5.0)         # d/dx = 5
    (g,) = tf.gradients([y1, y2], [x])
    np.testing.assert_allclose(_run(g), 2 * x_np + 5.0, rtol=RTOL)


def test_grad_ys_default_is_ones_of_y_shape(rng):
    x_np = rng.standard_normal((2, 3))
    x = tf.constant(x_np)
    y = x * x                            # non-scalar y: default cotangent is ones
    (g,) = tf.gradients(y, x)
    np.testing.assert_allclose(_run(g), 2 * x_np, rtol=RTOL)


def test_custom_grad_ys_random_cotangent(rng):
    x_np, w_np = rng.standard_normal((2, 3)), rng.uniform(0.5, 1.5, (2, 3))
    x = tf.constant(x_np)
    y = x * x * 3.0
    (g,) = tf.gradients(y, x, grad_ys=tf.constant(w_np))
    np.testing.assert_allclose(_run(g), 6 * x_np * w_np, rtol=RTOL)
    # grad_ys may be a plain array (converted with y's dtype) or a one-element list
    (g2,) = tf.gradients([y], [x], grad_ys=[w_np])
    assert g2.dtype is tf.float64
    np.testing.assert_allclose(_run(g2), 6 * x_np * w_np, rtol=RTOL)


def test_custom_grad_ys_for_several_ys(rng):
    x_np = rng.standard_normal(4)
    w1, w2 = rng.uniform(0.5, 1.5, 4), rng.uniform(0.5, 1.5, ())
    x = tf.constant(x_np)
    y1 = x * x                            # vector
    y2 = tf.reduce_sum(x * 7.0)           # scalar
    (g,) = tf.gradients([y1, y2], x, grad_ys=[tf.constant(w1), tf.constant(w2)])
    np.testing.assert_allclose(_run(g), 2 * x_np * w1 + 7.0 * w2, rtol=RTOL)


def test_grad_ys_none_entry_defaults_to_ones(rng):
    x_np, w = rng.standard_normal(3), rng.uniform(0.5, 1.5, 3)
    x = tf.constant(x_np)
    (g,) = tf.gradients([x * 2.0, x * x], x, grad_ys=[tf.constant(w), None])
    np.testing.assert_allclose(_run(g), 2 * w + 2 * x_np, rtol=RTOL)


@pytest.mark.parametrize("grad_ys_count", [1, 3])
def test_wrong_count_of_grad_ys_is_value_error(rng, grad_ys_count):
    x = _const(rng, 3)
    ys = [x * 2.0, x * 3.0]
    with pytest.raises(ValueError, match=r"grad_ys"):
        tf.gradients(ys, x, grad_ys=[tf.ones([3], tf.float64)] * grad_ys_count)


def test_grad_ys_shape_incompatible_is_value_error(rng):
    x = _const(rng, 2, 3)
    with pytest.raises(ValueError, match=r"grad_ys"):
        tf.gradients(x * 2.0, x, grad_ys=tf.ones([3, 2], tf.float64))


def test_gradient_of_x_wrt_itself_is_the_cotangent(rng):
    x = _const(rng, 2, 2)
    w = rng.uniform(0.5, 1.5, (2, 2))
    (g,) = tf.gradients(x, x)
    (gw,) = tf.gradients(x, x, grad_ys=tf.constant(w))
    g_val, gw_val = _run([g, gw])
    np.testing.assert_array_equal(g_val, np.ones((2, 2)))
    np.testing.assert_array_equal(gw_val, w)


# -- unconnected -------------------------------------------------------------------------------
def test_x_with_no_path_gives_none(rng):
    x, unrelated = _const(rng, 3), _const(rng, 3)
    y = tf.reduce_sum(x * 2.0)
    downstream = y * 4.0                   # a path from y to it, not from it to y
    gx, gu, gd = tf.gradients(y, [x, unrelated, downstream])
    assert gx is not None
    assert gu is None
    assert gd is None


def test_unconnected_gradients_zero(rng):
    x = _const(rng, 3)
    unrelated = tf.constant(rng.standard_normal((2, 4)).astype(np.float32))
    y = tf.reduce_sum(x * 2.0)
    gx, gu = tf.gradients(y, [x, unrelated], unconnected_gradients="zero")
    assert gu is not None
    gx_val, gu_val = _run([gx, gu])
    np.testing.assert_array_equal(gx_val, np.full(3, 2.0))
    assert gu_val.shape == (2, 4) and gu_val.dtype == np.float32
    np.testing.assert_array_equal(gu_val, 0.0)


def test_unconnected_gradients_bad_value(rng):
    x = _const(rng, 3)
    with pytest.raises(ValueError, match="unconnected_gradients"):
        tf.gradients(x * 2.0, x, unconnected_gradients="bogus")


# -- blocking: stop_gradient op and stop_gradients argument ------------------------------------
def test_stop_gradient_op_blocks_the_walk(rng):
    x_np = rng.standard_normal(5)
    x = tf.constant(x_np)
    y = tf.reduce_sum(x * tf.stop_gradient(x))   # d/dx = x only (not 2x)
    (g,) = tf.gradients(y, x)
    np.testing.assert_allclose(_run(g), x_np, rtol=RTOL)


def test_stop_gradient_only_path_gives_none(rng):
    x = _const(rng, 3)
    y = tf.reduce_sum(tf.stop_gradient(x * 2.0) * 3.0)
    assert tf.gradients(y, x) == [None]


def test_stop_gradients_argument_gives_ones_not_the_chain():
    """TF's documented example: a and b with b depending on a; with both stopped, the
    gradient of a + b is ones for each (the chain a -> b is not followed)."""
    a = tf.constant([1.5, -2.0, 3.0], tf.float64)
    b = a * a * 4.0                        # db/da = 8a: must not be added to da
    ga, gb = tf.gradients(a + b, [a, b], stop_gradients=[a, b])
    ga_val, gb_val = _run([ga, gb])
    np.testing.assert_array_equal(ga_val, np.ones(3))
    np.testing.assert_array_equal(gb_val, np.ones(3))
    # without stop_gradients the chain is followed: 1 + 8a
    ga_full, gb_full = tf.gradients(a + b, [a, b])
    ga_val, gb_val = _run([ga_full, gb_full])
    np.testing.assert_allclose(ga_val, 1 + 8 * np.array([1.5, -2.0, 3.0]), rtol=RTOL)
    np.testing.assert_array_equal(gb_val, np.ones(3))


def test_stop_gradients_on_intermediate_tensor(rng):
    x_np = rng.standard_normal(3)
    x = tf.constant(x_np)
    h = x * x
    y = tf.reduce_sum(h * 3.0 + x)
    gx, gh = tf.gradients(y, [x, h], stop_gradients=[h])
    gx_val, gh_val = _run([gx, gh])
    np.testing.assert_array_equal(gx_val, np.ones(3))       # only the direct + x term
    np.testing.assert_array_equal(gh_val, np.full(3, 3.0))
    # a single stopped tensor (not a list) is accepted too
    (gx2,) = tf.gradients(y, x, stop_gradients=h)
    np.testing.assert_array_equal(_run(gx2), np.ones(3))


# -- integer tensors ---------------------------------------------------------------------------
def test_integer_tensors_carry_no_gradient(rng):
    xi = tf.constant([1, 2, 3])
    xf = _const(rng, 3)
    y = tf.reduce_sum(tf.cast(xi, tf.float64) * xf)
    gi, gf = tf.gradients(y, [xi, xf])
    assert gi is None
    np.testing.assert_array_equal(_run(gf), [1.0, 2.0, 3.0])


def test_path_through_integer_cast_gives_none(rng):
    x = _const(rng, 3)
    y = tf.reduce_sum(tf.cast(tf.cast(x * 10.0, tf.int32), tf.float64))
    assert tf.gradients(y, x) == [None]
    # an extra floating path still flows, the integer path adds nothing
    x_np = np.array([0.25, -1.5, 2.0])
    x2 = tf.constant(x_np)
    y2 = tf.reduce_sum(tf.cast(tf.cast(x2 * 10.0, tf.int32), tf.float64) + x2 * x2)
    (g,) = tf.gradients(y2, x2)
    np.testing.assert_allclose(_run(g), 2 * x_np, rtol=RTOL)


# -- ops without gradients ---------------------------------------------------------------------
def test_reached_op_without_gradient_is_lookup_error(rng):
    @tf.op("GvTestNoGradient", inputs={"x": meta.reals}, api=None)
    def no_grad(x):
        return x * 2.0

    try:
        x = _const(rng, 3)
        h = no_grad(x, name="nograd_here")
        y = tf.reduce_sum(h * 3.0)
        with pytest.raises(LookupError) as info:
            tf.gradients(y, x)
        assert str(info.value).strip("'\"") == (
            "No gradient defined for operation 'nograd_here' (op type: GvTestNoGradient)")
        # not reached (no gradient arrives: it sits behind a stop_gradient): no error
        y2 = tf.reduce_sum(tf.stop_gradient(no_grad(x)) + x * 3.0)
        (g,) = tf.gradients(y2, x)
        np.testing.assert_array_equal(_run(g), np.full(3, 3.0))
        # not on a path from x to y: no error either
        _ = no_grad(x * 5.0)
        (g3,) = tf.gradients(tf.reduce_sum(x * 4.0), x)
        np.testing.assert_array_equal(_run(g3), np.full(3, 4.0))
    finally:
        registry.unregister("GvTestNoGradient")
    with pytest.raises(KeyError):
        registry.lookup("GvTestNoGradient")


def test_op_declared_not_differentiable_passes_none(rng):
    @tf.op("GvTestNotDifferentiable", inputs={"x": meta.reals}, differentiable=False,
           api=None)
    def not_diff(x):
        return np.floor(x)

    try:
        x_np = rng.standard_normal(4)
        x = tf.constant(x_np)
        assert tf.gradients(tf.reduce_sum(not_diff(x)), x) == [None]
        y = tf.reduce_sum(not_diff(x) * 10.0 + x * x)
        (g,) = tf.gradients(y, x)
        np.testing.assert_allclose(_run(g), 2 * x_np, rtol=RTOL)
    finally:
        registry.unregister("GvTestNotDifferentiable")


def test_gradient_of_wrong_shape_is_value_error(rng):
    @tf.op("GvTestBadGradient", inputs={"x": meta.reals}, api=None)
    def bad(x):
        return x * 1.0

    @bad.gradient
    def _(op, grad):
        return tf.transpose(grad)          # [3, 2] for a [2, 3] input

    try:
        x = _const(rng, 2, 3)
        with pytest.raises(ValueError) as info:
            tf.gradients(tf.reduce_sum(bad(x, name="badop")), x)
        msg = str(info.value)
        assert "Incompatible shapes between op input and calculated input gradient" in msg
        assert "badop" in msg and "(2, 3)" in msg and "(3, 2)" in msg
    finally:
        registry.unregister("GvTestBadGradient")


# -- aggregation -------------------------------------------------------------------------------
def test_tensor_used_twice_in_one_op_x_times_x(rng):
    x_np, w = rng.standard_normal((3, 2)), rng.uniform(0.5, 1.5, (3, 2))
    x = tf.constant(x_np)
    (g,) = tf.gradients(x * x, x, grad_ys=tf.constant(w))
    np.testing.assert_allclose(_run(g), 2 * x_np * w, rtol=RTOL)


def test_tensor_used_twice_x_plus_x(rng):
    x_np, w = rng.standard_normal(4), rng.uniform(0.5, 1.5, 4)
    x = tf.constant(x_np)
    (g,) = tf.gradients(x + x, x, grad_ys=tf.constant(w))
    np.testing.assert_allclose(_run(g), 2 * w, rtol=RTOL)


def test_fan_out_to_three_consumers(rng):
    x_np, a_np = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    m_np = rng.standard_normal((3, 4))
    w = rng.uniform(0.5, 1.5, (2, 4))
    x, a, m = tf.constant(x_np), tf.constant(a_np), tf.constant(m_np)
    h = x * 2.0                           # h feeds three consumers
    c1 = tf.matmul(h, m)                  # [2, 4]
    c2 = tf.reduce_sum(h * a, axis=1, keepdims=True)   # [2, 1]
    c3 = tf.reduce_sum(h * h)             # scalar
    y = c1 + c2 + c3
    gx, gh = tf.gradients(y, [x, h], grad_ys=tf.constant(w))
    h_np = 2 * x_np
    gh_ref = (w @ m_np.T
              + w.sum(axis=1, keepdims=True) * a_np
              + w.sum() * 2 * h_np)
    gx_val, gh_val = _run([gx, gh])
    np.testing.assert_allclose(gh_val, gh_ref, rtol=RTOL)
    np.testing.assert_allclose(gx_val, 2 * gh_ref, rtol=RTOL)


def test_diamond_with_shared_intermediate(rng):
    x_np = rng.standard_normal(3)
    x = tf.constant(x_np)
    h = x * x
    y = tf.reduce_sum(h * x + h)          # x^3 + x^2
    (g,) = tf.gradients(y, x)
    np.testing.assert_allclose(_run(g), 3 * x_np**2 + 2 * x_np, rtol=RTOL)


# -- broadcasting chains -----------------------------------------------------------------------
def _broadcast_reference(x, y, z, w):
    """Hand-derived VJP of (x[2,1,3] * y[4,3] + z[3]) with cotangent w[2,4,3]."""
    gx = np.sum(w * y, axis=1, keepdims=True)             # over the broadcast axis 1
    gy = np.sum(w * x, axis=0)                            # over the leading axis
    gz = np.sum(w, axis=(0, 1))
    return gx, gy, gz


def test_broadcasting_chain_static_shapes(rng):
    x_np, y_np, z_np = (rng.standard_normal((2, 1, 3)), rng.standard_normal((4, 3)),
                        rng.standard_normal(3))
    w = rng.uniform(0.5, 1.5, (2, 4, 3))
    x, y, z = tf.constant(x_np), tf.constant(y_np), tf.constant(z_np)
    out = x * y + z
    assert out.shape.as_list() == [2, 4, 3]
    grads = tf.gradients(out, [x, y, z], grad_ys=tf.constant(w))
    for g, t in zip(grads, (x, y, z)):
        assert g.shape.as_list() == t.shape.as_list()
    vals = _run(grads)
    for got, ref in zip(vals, _broadcast_reference(x_np, y_np, z_np, w)):
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=RTOL)


def test_broadcasting_chain_float32(rng):
    x_np = rng.standard_normal((2, 1, 3)).astype(np.float32)
    y_np = rng.standard_normal((4, 3)).astype(np.float32)
    z_np = rng.standard_normal(3).astype(np.float32)
    w = rng.uniform(0.5, 1.5, (2, 4, 3)).astype(np.float32)
    x, y, z = tf.constant(x_np), tf.constant(y_np), tf.constant(z_np)
    vals = _run(tf.gradients(x * y + z, [x, y, z], grad_ys=tf.constant(w)))
    refs = _broadcast_reference(*(a.astype(np.float64) for a in (x_np, y_np, z_np, w)))
    for got, ref in zip(vals, refs):
        assert got.dtype == np.float32 and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-5)


@pytest.mark.parametrize("shapes", [
    ((2, 1, 3), (4, 3), (3,)),          # as built statically
    ((2, 4, 3), (1, 3), (3,)),          # y's unknown leading dim is 1 at run time
    ((1, 4, 3), (4, 3), (1,)),          # x's unknown leading dim is 1; z broadcast from 1
    ((2, 1, 3), (1, 3), (3,)),          # several run-time size-1 dims at once
])
def test_broadcasting_chain_with_unknown_dims_fed_at_run_time(rng, shapes):
    sx, sy, sz = shapes
    x = tf.placeholder(tf.float64, [None, None, 3])
    y = tf.placeholder(tf.float64, [None, 3])
    z = tf.placeholder(tf.float64, [None])
    w = tf.placeholder(tf.float64, [None, None, 3])
    out = x * y + z
    grads = tf.gradients(out, [x, y, z], grad_ys=w)
    for g, t in zip(grads, (x, y, z)):
        assert g.shape.is_compatible_with(t.shape)
    x_np, y_np, z_np = (rng.standard_normal(sx), rng.standard_normal(sy),
                        rng.standard_normal(sz))
    out_shape = np.broadcast_shapes(sx, sy, sz)
    w_np = rng.uniform(0.5, 1.5, out_shape)
    vals = _run(grads, {x: x_np, y: y_np, z: z_np, w: w_np})
    gx_ref = np.sum(w_np * y_np, axis=tuple(i for i, d in enumerate(sx) if d == 1 and
                                            out_shape[i] != 1), keepdims=True)
    gy_ref = np.sum(w_np * x_np, axis=0).reshape(out_shape[1:])
    gy_ref = np.sum(gy_ref, axis=tuple(i for i, d in enumerate(sy) if d == 1 and
                                       out_shape[1 + i] != 1), keepdims=True)
    gz_ref = np.sum(w_np, axis=(0, 1))
    if sz == (1,):
        gz_ref = gz_ref.sum(keepdims=True)
    for got, ref, s in zip(vals, (gx_ref, gy_ref, gz_ref), shapes):
        assert got.shape == s
        np.testing.assert_allclose(got, ref.reshape(s), rtol=RTOL)


def test_broadcast_scalar_against_matrix(rng):
    x_np, s_np = rng.standard_normal((3, 4)), np.float64(1.7)
    w = rng.uniform(0.5, 1.5, (3, 4))
    x, s = tf.constant(x_np), tf.constant(s_np)
    gx, gs = tf.gradients(x * s - s, [x, s], grad_ys=tf.constant(w))
    gx_val, gs_val = _run([gx, gs])
    np.testing.assert_allclose(gx_val, w * s_np, rtol=RTOL)
    assert np.shape(gs_val) == ()
    np.testing.assert_allclose(gs_val, np.sum(w * x_np) - np.sum(w), rtol=RTOL)


# -- second order ------------------------------------------------------------------------------
def test_second_order_of_cube_via_multiply(rng):
    x_np = rng.standard_normal(5)
    w, v = rng.uniform(0.5, 1.5, 5), rng.uniform(0.5, 1.5, 5)
    x = tf.constant(x_np)
    y = x * x * x
    (g,) = tf.gradients(y, x, grad_ys=tf.constant(w))         # 3 x^2 w
    (h,) = tf.gradients(g, x, grad_ys=tf.constant(v))         # 6 x w v
    (h_default,) = tf.gradients(tf.gradients(tf.reduce_sum(y), x)[0], x)   # 6 x
    (t,) = tf.gradients(h_default, x)                          # third order: 6
    g_val, h_val, hd_val, t_val = _run([g, h, h_default, t])
    np.testing.assert_allclose(g_val, 3 * x_np**2 * w, rtol=RTOL)
    np.testing.assert_allclose(h_val, 6 * x_np * w * v, rtol=RTOL)
    np.testing.assert_allclose(hd_val, 6 * x_np, rtol=RTOL)
    np.testing.assert_allclose(t_val, np.full(5, 6.0), rtol=RTOL)


def test_second_order_of_matmul_quadratic_form(rng):
    n = 4
    a_np = rng.standard_normal((n, n))             # not symmetric on purpose
    x_np = rng.standard_normal((n, 1))
    v_np = rng.standard_normal((n, 1))
    w = float(rng.uniform(0.5, 1.5))
    a, x = tf.constant(a_np), tf.constant(x_np)
    f = tf.matmul(tf.matmul(x, a, transpose_a=True), x)          # x^T A x, shape [1, 1]
    (g,) = tf.gradients(f, x, grad_ys=tf.constant(np.array([[w]])))  # w (A + A^T) x
    hx, ha = tf.gradients(g, [x, a], grad_ys=tf.constant(v_np))
    g_val, hx_val, ha_val = _run([g, hx, ha])
    sym = a_np + a_np.T
    np.testing.assert_allclose(g_val, w * sym @ x_np, rtol=RTOL)
    np.testing.assert_allclose(hx_val, w * sym @ v_np, rtol=RTOL)          # Hessian . v
    np.testing.assert_allclose(ha_val, w * (v_np @ x_np.T + x_np @ v_np.T), rtol=RTOL)


def test_second_order_of_batched_quadratic_form(rng):
    """sum_i x_i^T A x_i over the rows of X [m, n]: gradient X (A + A^T), Hessian-vector
    V (A + A^T) — a non-square batch, so a missing transpose shows."""
    m, n = 3, 5
    a_np, x_np, v_np = (rng.standard_normal((n, n)), rng.standard_normal((m, n)),
                        rng.standard_normal((m, n)))
    a, x = tf.constant(a_np), tf.constant(x_np)
    f = tf.reduce_sum(tf.matmul(x, a) * x)
    (g,) = tf.gradients(f, x)
    (h,) = tf.gradients(g, x, grad_ys=tf.constant(v_np))
    g_val, h_val = _run([g, h])
    np.testing.assert_allclose(g_val, x_np @ (a_np + a_np.T), rtol=RTOL)
    np.testing.assert_allclose(h_val, v_np @ (a_np + a_np.T), rtol=RTOL)


def test_gradients_are_graph_ops(rng):
    x = _const(rng, 3)
    (g,) = tf.gradients(tf.reduce_sum(x * x), x)
    assert isinstance(g, tf.Tensor)
    assert g.graph is x.graph
    assert g.op in x.graph.get_operations()


# -- variables ---------------------------------------------------------------------------------
def test_gradient_wrt_variable_flows_through_every_read(rng):
    v_np, a_np, b_np, c_np = (rng.standard_normal((2, 3)) for _ in range(4))
    v = tf.Variable(v_np)
    a, b, c = tf.constant(a_np), tf.constant(b_np), tf.constant(c_np)
    y = (tf.reduce_sum(v.value() * a) + tf.reduce_sum(v.read_value() * b)
         + tf.reduce_sum(v * c))        # the Python operator reads the variable too
    gv, g_value, g_read = tf.gradients(y, [v, v.value(), v.read_value()])
    assert g_read is None               # a fresh read op that y does not use
    gv_val, g_value_val = _run([gv, g_value])
    np.testing.assert_allclose(gv_val, a_np + b_np + c_np, rtol=RTOL)
    # v.value() is the tensor both `v.value()` and `v * c` use
    np.testing.assert_allclose(g_value_val, a_np + c_np, rtol=RTOL)


def test_gradient_wrt_variable_depends_on_its_value(rng):
    v_np = rng.standard_normal(3)
    v = tf.Variable(v_np)
    (g,) = tf.gradients(tf.reduce_sum(v * v), v)
    assert g.shape.as_list() == [3] and g.dtype is tf.float64
    np.testing.assert_allclose(_run(g), 2 * v_np, rtol=RTOL)


def test_unconnected_variable_gives_none(rng):
    v = tf.Variable(rng.standard_normal(3))
    u = tf.Variable(rng.standard_normal(3))
    gv, gu = tf.gradients(tf.reduce_sum(v * 2.0), [v, u])
    assert gv is not None and gu is None


# -- names and accepted arguments --------------------------------------------------------------
def test_gradient_op_names_live_under_gradients_and_op_grad_scopes(rng):
    g = tf.get_default_graph()
    x = _const(rng, 3)
    with tf.name_scope("layer"):
        y = tf.multiply(x, x, name="prod")
    y2 = tf.reduce_sum(y, name="total")
    before = {op.name for op in g.get_operations()}
    (gx,) = tf.gradients(y2, x)
    new = [op.name for op in g.get_operations() if op.name not in before]
    assert new and all(n.startswith("gradients/") for n in new), new
    assert any(n.startswith("gradients/layer/prod_grad/") for n in new), new
    assert any(n.startswith("gradients/total_grad/") for n in new), new
    assert gx.name.startswith("gradients/")
    # a second call opens a fresh scope; a custom name is honoured
    before = {op.name for op in g.get_operations()}
    tf.gradients(y2, x)
    assert all(op.name.startswith("gradients_1/") for op in g.get_operations()
               if op.name not in before)
    before = {op.name for op in g.get_operations()}
    tf.gradients(y2, x, name="my_grads")
    assert all(op.name.startswith("my_grads/") for op in g.get_operations()
               if op.name not in before)


def test_colocate_gate_and_aggregation_args_accepted(rng):
    x_np = rng.standard_normal(3)
    x = tf.constant(x_np)
    y = tf.reduce_sum(x * x + x)
    (g,) = tf.gradients(y, x, colocate_gradients_with_ops=True, gate_gradients=True,
                        aggregation_method=None)
    (g2,) = tf.gradients(y, x, None, "grads", True, False)     # positional, TF1 order
    g_val, g2_val = _run([g, g2])
    np.testing.assert_allclose(g_val, 2 * x_np + 1, rtol=RTOL)
    np.testing.assert_allclose(g2_val, 2 * x_np + 1, rtol=RTOL)
    assert g2.name.startswith("grads/")


def test_tensors_from_another_graph_rejected(rng):
    x = _const(rng, 3)
    with tf.Graph().as_default():
        other = tf.constant([1.0, 2.0, 3.0], tf.float64)
    with pytest.raises(ValueError, match="same graph"):
        tf.gradients(x * 2.0, other)


def test_unbroadcast_and_broadcast_like_reject_incompatible_static_shapes():
    from gradverify.engine.ops.core_ops import _unbroadcast, broadcast_like
    g = tf.placeholder(tf.float64, [2, 3])
    with pytest.raises(ValueError, match=r"Cannot sum a gradient of shape .* 'Unbroadcast'"):
        _unbroadcast(g, tf.placeholder(tf.float64, [4]), op_name="x")
    with pytest.raises(ValueError, match=r"Cannot broadcast shape .* 'BroadcastLike'"):
        broadcast_like(tf.placeholder(tf.float64, [4]), g)
    # unknown dims stay allowed; the run-time check names the shapes
    out = _unbroadcast(g, tf.placeholder(tf.float64, [None]), op_name="x")
    assert out.shape.as_list() == [None]
