"""Math ops: arithmetic, elementwise functions, comparisons, logical ops, clip_by_value,
reductions (sum, mean, max, min, prod, logsumexp), argmax/argmin and matmul.

Forward values are compared with NumPy (float64 references); gradients with hand-derived
NumPy formulas under a random cotangent (tests/_util.vjp), at the special values on purpose
(abs at 0, exact ties of maximum/minimum/reduce_max, clip_by_value at its bounds,
reduce_prod with one and with two zeros); second order with hand-derived second
derivatives; static shapes against run-time shapes with unknown dims; error classes and
messages naming the op and the shapes.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine import errors, registry
from tests._util import evaluate, second_order, vjp

RTOL = 1e-12
TOL = {"float32": {"rtol": 2e-6, "atol": 1e-6}, "float64": {"rtol": 1e-13, "atol": 1e-14}}


def _run(fetches, feed_dict=None):
    with tf.Session() as s:
        return s.run(fetches, feed_dict)


def _values(rng, shape, dtype, lo=-3.0, hi=3.0):
    if dtype == "bool":
        return rng.uniform(size=shape) < 0.5
    if dtype in ("int32", "int64"):
        return rng.integers(int(lo), int(hi) + 1, size=shape).astype(dtype)
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def _cot(rng, shape):
    """A random cotangent (not ones: a rule ignoring the upstream gradient must fail)."""
    return rng.uniform(0.5, 1.5, shape)


def _unbroadcast(g, shape):
    """Sum ``g`` down to ``shape`` (the NumPy side of the broadcasting gradient)."""
    g = np.asarray(g)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, d in enumerate(shape):
        if d == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


def _mixed_second(fn, arrays, seed=0):
    """For f(a, b): (d<v_a, d<w,f>/da>/db, d<v_b, d<w,f>/db>/da, w, v_a, v_b)."""
    rng = np.random.default_rng(seed)
    with tf.Graph().as_default():
        a, b = (tf.constant(x) for x in arrays)
        y = fn(a, b)
        w = tf.constant(rng.uniform(0.5, 1.5, y.shape.as_list()))
        ga, gb = tf.gradients(y, [a, b], grad_ys=w)
        va = tf.constant(rng.uniform(-1.5, 1.5, arrays[0].shape))
        vb = tf.constant(rng.uniform(-1.5, 1.5, arrays[1].shape))
        (hab,) = tf.gradients(ga, [b], grad_ys=va)
        (hba,) = tf.gradients(gb, [a], grad_ys=vb)
        return _run([hab, hba, w, va, vb])


# == binary arithmetic: forward ================================================================
BROADCAST_PAIRS = [
    ((), ()), ((3,), ()), ((), (3,)), ((2, 3), (2, 3)), ((2, 1, 3), (4, 1)),
    ((4, 1), (2, 1, 3)), ((1,), (2, 3)), ((2, 3, 1), (1, 1, 4)),
]

BINARY = {  # name: (engine fn, numpy reference on float64/int, dtypes, domain of y)
    "add": (tf.add, np.add, ["float32", "float64", "int32", "int64"], "any"),
    "subtract": (tf.subtract, np.subtract, ["float32", "float64", "int32", "int64"], "any"),
    "multiply": (tf.multiply, np.multiply, ["float32", "float64", "int32", "int64"], "any"),
    "realdiv": (tf.realdiv, np.divide, ["float32", "float64"], "nonzero"),
    "maximum": (tf.maximum, np.fmax, ["float32", "float64", "int32", "int64"], "any"),
    "minimum": (tf.minimum, np.fmin, ["float32", "float64", "int32", "int64"], "any"),
    "pow": (tf.pow, lambda x, y: np.exp(y * np.log(x)), ["float32", "float64"], "any"),
    "floordiv": (tf.floordiv, lambda x, y: np.floor(x / y), ["float32", "float64"],
                 "nonzero"),
    "floormod": (tf.floormod, lambda x, y: x - y * np.floor(x / y), ["float32", "float64"],
                 "nonzero"),
}


def _binary_inputs(rng, name, sx, sy, dtype):
    if name == "pow":
        return _values(rng, sx, dtype, 0.2, 3.0), _values(rng, sy, dtype, -2.0, 2.0)
    x = _values(rng, sx, dtype)
    y = _values(rng, sy, dtype)
    if BINARY[name][3] == "nonzero":
        y = np.where(np.abs(y) < 0.25, np.asarray(1.5, y.dtype), y)
    return x, y


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize(("sx", "sy"), BROADCAST_PAIRS)
def test_binary_forward(rng, name, sx, sy):
    fn, ref, dtypes, _ = BINARY[name]
    for dtype in dtypes:
        x, y = _binary_inputs(rng, name, sx, sy, dtype)
        out = evaluate(fn, [x, y])
        expect = ref(x.astype(np.float64), y.astype(np.float64))
        assert out.dtype == np.dtype(dtype) and out.shape == np.broadcast_shapes(sx, sy)
        if dtype.startswith("int"):
            np.testing.assert_array_equal(out, expect)
        else:
            np.testing.assert_allclose(out, expect, **TOL[dtype])


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_pow_floordiv_floormod(dtype):
    x = np.array([7, -7, 7, -7, 0, 2], dtype)
    y = np.array([2, 2, -2, -2, 3, 5], dtype)
    fd, fm = evaluate(lambda a, b: [a // b, a % b], [x, y])
    assert fd.dtype == np.dtype(dtype) and fm.dtype == np.dtype(dtype)
    # floor division rounds towards -inf; the remainder has the sign of the divisor
    np.testing.assert_array_equal(fd, [3, -4, -4, 3, 0, 0])
    np.testing.assert_array_equal(fm, [1, 1, -1, -1, 0, 2])
    np.testing.assert_array_equal(fd * y + fm, x)
    p = evaluate(lambda a, b: tf.pow(a, b), [np.array([2, -3, 5, 0], dtype),
                                             np.array([10, 3, 0, 2], dtype)])
    assert p.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(p, [1024, -27, 1, 0])


def test_float_floordiv_is_floor_of_quotient():
    # TF's float FloorDiv is floor(x / y): 1 // 0.1 is 10 there (Python's // gives 9.0)
    out = evaluate(lambda a, b: a // b, [np.array([1.0, -1.0, 7.5]), np.array([0.1, 0.1, 2.0])])
    np.testing.assert_array_equal(out, [10.0, -10.0, 3.0])
    m = evaluate(lambda a, b: a % b, [np.array([7.5, -7.5, 7.5, -7.5]),
                                      np.array([2.0, 2.0, -2.0, -2.0])])
    np.testing.assert_array_equal(m, [1.5, 0.5, -0.5, -1.5])


def test_integer_division_by_zero_is_invalid_argument():
    a = tf.constant(np.array([1, 2], np.int32))
    b = tf.constant(np.array([1, 0], np.int32))
    for t in (a // b, a % b):
        with pytest.raises(errors.InvalidArgumentError, match="Integer division by zero") as e:
            _run(t)
        assert e.value.op is t.op


def test_integer_pow_negative_exponent_is_invalid_argument():
    t = tf.pow(tf.constant(np.array([2, 3], np.int32)), tf.constant(np.array([1, -1], np.int32)))
    with pytest.raises(errors.InvalidArgumentError, match="negative integer powers") as e:
        _run(t)
    assert e.value.op.type == "Pow"


def test_float_edge_values_without_warnings():
    x = np.array([0.0, -1.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lg, sq, ex, rc, l1 = evaluate(
            lambda t: [tf.log(t), tf.sqrt(t), tf.exp(t), tf.reciprocal(t), tf.log1p(t)], [x])
    assert lg[0] == -np.inf and np.isnan(lg[1])
    assert sq[0] == 0 and np.isnan(sq[1])
    assert ex[2] == np.inf
    assert rc[0] == np.inf and rc[1] == -1.0
    assert l1[1] == -np.inf


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_truediv_and_div(dtype):
    x = np.array([[7, -7], [3, 8]], dtype)
    y = np.array([2, -3], dtype)
    t1, t2, t3 = evaluate(lambda a, b: [a / b, tf.divide(a, b), tf.div(a, b)], [x, y])
    want = np.float64 if dtype == "int32" else np.dtype(dtype)
    assert t1.dtype == want and t2.dtype == want  # int / int is float64 (Python 3 division)
    np.testing.assert_allclose(t1, x.astype(np.float64) / y, **TOL["float32"])
    np.testing.assert_array_equal(t1, t2)
    if dtype == "int32":  # TF1's div keeps Python 2 semantics: floor division for ints
        assert t3.dtype == np.int32
        np.testing.assert_array_equal(t3, np.floor_divide(x, y))
    else:
        np.testing.assert_array_equal(t3, t1)


def test_truediv_names_and_python_scalars():
    x = tf.constant(np.array([1, 2], np.int32))
    t = x / 2
    assert t.op.type == "RealDiv" and t.op.name == "truediv" and t.dtype == tf.float64
    r = 3 / x
    assert r.dtype == tf.float64
    np.testing.assert_allclose(_run([t, r]), [[0.5, 1.0], [3.0, 1.5]], rtol=RTOL)


def test_python_operators_build_the_right_ops():
    x = tf.constant(np.array([7.0, -7.5]))
    y = tf.constant(np.array([2.0, 2.0]))
    a = tf.constant(np.array([True, True, False, False]))
    b = tf.constant(np.array([True, False, True, False]))
    ops = {
        "floordiv": (x // y, "FloorDiv", [3.0, -4.0]),
        "rfloordiv": (15.0 // y, "FloorDiv", [7.0, 7.0]),
        "mod": (x % y, "FloorMod", [1.0, 0.5]),
        "rmod": (5.0 % y, "FloorMod", [1.0, 1.0]),
        "pow": (y ** 3, "Pow", [8.0, 8.0]),
        "rpow": (3 ** y, "Pow", [9.0, 9.0]),
        "and": (a & b, "LogicalAnd", [True, False, False, False]),
        "or": (a | b, "LogicalOr", [True, True, True, False]),
        "rand": (True & b, "LogicalAnd", [True, False, True, False]),
        "ror": (False | b, "LogicalOr", [True, False, True, False]),
        "invert": (~a, "LogicalNot", [False, False, True, True]),
        "abs": (abs(x), "Abs", [7.0, 7.5]),
        "neg": (-x, "Neg", [-7.0, 7.5]),
    }
    vals = _run({k: v[0] for k, v in ops.items()})
    for k, (t, typ, want) in ops.items():
        assert t.op.type == typ, k
        np.testing.assert_array_equal(vals[k], want, err_msg=k)
    assert ops["floordiv"][0].op.name == "floordiv" and ops["mod"][0].op.name == "mod"
    assert ops["pow"][0].op.name == "pow"


def test_logical_ops_forward_broadcast(rng):
    a = _values(rng, (2, 1, 3), "bool")
    b = _values(rng, (4, 1), "bool")
    out = evaluate(lambda p, q: [tf.logical_and(p, q), tf.math.logical_or(p, q),
                                 tf.logical_not(p)], [a, b])
    np.testing.assert_array_equal(out[0], a & b)
    np.testing.assert_array_equal(out[1], a | b)
    np.testing.assert_array_equal(out[2], ~a)
    assert all(o.dtype == np.bool_ for o in out) and out[0].shape == (2, 4, 3)


def test_logical_ops_reject_non_bool():
    with pytest.raises(TypeError, match="not in list of allowed values: bool"):
        tf.logical_and(tf.constant([1.0]), tf.constant([True]))
    with pytest.raises(TypeError, match="not in list of allowed values: bool"):
        tf.logical_not(tf.constant([1]))


# == comparisons ================================================================================
COMPARISONS = {
    "greater": np.greater, "greater_equal": np.greater_equal, "less": np.less,
    "less_equal": np.less_equal, "equal": np.equal, "not_equal": np.not_equal,
}


@pytest.mark.parametrize("name", sorted(COMPARISONS))
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_comparisons(rng, name, dtype):
    x = _values(rng, (2, 1, 3), dtype, -2, 2)
    y = _values(rng, (4, 1), dtype, -2, 2)
    y[0, 0] = x[0, 0, 0]  # an exact tie
    out = evaluate(getattr(tf, name), [x, y])
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, COMPARISONS[name](x, y))
    typ = {"greater": "Greater", "greater_equal": "GreaterEqual", "less": "Less",
           "less_equal": "LessEqual", "equal": "Equal", "not_equal": "NotEqual"}[name]
    assert not registry.lookup(typ).differentiable


def test_comparison_operators():
    x = tf.constant([1.0, 2.0, 3.0])
    out = _run([x < 2.0, x <= 2.0, x > 2.0, x >= 2.0])
    np.testing.assert_array_equal(out, [[True, False, False], [True, True, False],
                                        [False, False, True], [False, True, True]])


# == unary elementwise: forward =================================================================
UNARY = {  # name: (engine fn, reference on float64, dtypes, input range)
    "abs": (tf.abs, np.abs, ["float32", "float64", "int32", "int64"], (-3, 3)),
    "sign": (tf.sign, np.sign, ["float32", "float64", "int32", "int64"], (-3, 3)),
    "square": (tf.square, lambda x: x * x, ["float32", "float64", "int32", "int64"], (-3, 3)),
    "negative": (tf.negative, lambda x: -x, ["float32", "float64", "int32", "int64"],
                 (-3, 3)),
    "sqrt": (tf.sqrt, lambda x: x ** 0.5, ["float32", "float64"], (0.1, 4)),
    "rsqrt": (tf.math.rsqrt, lambda x: x ** -0.5, ["float32", "float64"], (0.1, 4)),
    "exp": (tf.exp, np.exp, ["float32", "float64"], (-3, 3)),
    "log": (tf.math.log, np.log, ["float32", "float64"], (0.1, 4)),
    "log1p": (tf.log1p, lambda x: np.log(1.0 + x), ["float32", "float64"], (-0.9, 3)),
    "sin": (tf.sin, np.sin, ["float32", "float64"], (-4, 4)),
    "cos": (tf.math.cos, np.cos, ["float32", "float64"], (-4, 4)),
    "reciprocal": (tf.reciprocal, lambda x: 1.0 / x, ["float32", "float64"], (0.2, 3)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", [(), (1,), (2, 3), (2, 1, 4)])
def test_unary_forward(rng, name, shape):
    fn, ref, dtypes, (lo, hi) = UNARY[name]
    for dtype in dtypes:
        x = _values(rng, shape, dtype, lo, hi)
        if name == "reciprocal":
            x = x * np.where(rng.uniform(size=shape) < 0.5, -1, 1).astype(dtype)
        if name in ("abs", "sign") and x.size:
            x.reshape(-1)[0] = 0  # the value at the kink
        out = evaluate(fn, [x])
        assert out.dtype == np.dtype(dtype) and np.shape(out) == shape
        expect = ref(x.astype(np.float64))
        if dtype.startswith("int"):
            np.testing.assert_array_equal(out, expect)
        else:
            np.testing.assert_allclose(out, expect, **TOL[dtype])


def test_public_names_and_metadata():
    names = {
        "Abs": ["abs", "math.abs"], "Sign": ["sign", "math.sign"],
        "Square": ["square", "math.square"], "Sqrt": ["sqrt", "math.sqrt"],
        "Rsqrt": ["rsqrt", "math.rsqrt"], "Exp": ["exp", "math.exp"],
        "Log": ["log", "math.log"], "Log1p": ["log1p", "math.log1p"],
        "Pow": ["pow", "math.pow"], "Maximum": ["maximum", "math.maximum"],
        "Minimum": ["minimum", "math.minimum"], "Sin": ["sin", "math.sin"],
        "Cos": ["cos", "math.cos"], "Reciprocal": ["reciprocal", "math.reciprocal"],
        "FloorDiv": ["floordiv", "math.floordiv"], "FloorMod": ["floormod", "math.floormod"],
        "LogicalAnd": ["logical_and", "math.logical_and"],
        "LogicalOr": ["logical_or", "math.logical_or"],
        "LogicalNot": ["logical_not", "math.logical_not"],
    }
    for typ, api_names in names.items():
        od = registry.lookup(typ)
        assert set(api_names) <= set(od.api_names), typ
        for full in api_names:
            ns, _, short = full.rpartition(".")
            assert getattr(tf.math if ns else tf, short) is od, full
        assert od.reference is not None, typ
    for fn in ("reduce_max", "reduce_min", "reduce_prod", "reduce_logsumexp", "argmax",
               "argmin", "reduce_sum", "reduce_mean"):
        assert getattr(tf, fn) is getattr(tf.math, fn)
    assert callable(tf.clip_by_value)
    # tester metadata
    assert registry.lookup("Abs").kinks == (0.0,)
    for typ in ("Maximum", "Minimum", "ClipByValue", "Max", "Min"):
        assert registry.lookup(typ).ties, typ
    for typ in ("FloorDiv", "LogicalAnd", "LogicalOr", "LogicalNot", "ArgMax", "ArgMin"):
        assert not registry.lookup(typ).differentiable, typ
    for typ in ("Sqrt", "Rsqrt", "Log"):
        assert registry.lookup(typ).inputs["x"].kind == "positive", typ
    assert registry.lookup("Pow").inputs["x"].kind == "positive"
    assert registry.lookup("Sign").inputs["x"].kind == "nonzero"
    assert registry.lookup("Reciprocal").inputs["x"].kind == "nonzero"
    assert registry.lookup("Log1p").inputs["x"].lo == -1.0
    assert registry.lookup("ArgMax").out_dtype == "attr:output_type"
    assert registry.lookup("ProdExceptOne").api_names == []


def _domain_sample(rng, domain, shape, dtype):
    if domain.kind == "positive":
        return _values(rng, shape, dtype, 0.2, 3.0)
    if domain.kind == "nonzero":
        v = _values(rng, shape, dtype, 0.3, 3.0)
        return v * np.where(rng.uniform(size=shape) < 0.5, -1, 1).astype(dtype)
    if domain.kind == "bounded":
        return _values(rng, shape, dtype, max(domain.lo, -3.0) + 0.05, min(domain.hi, 3.0))
    if domain.kind == "bool":
        return _values(rng, shape, "bool")
    return _values(rng, shape, dtype)


MATH_OPS = ["Add", "Sub", "Mul", "RealDiv", "Neg", "Greater", "GreaterEqual", "Less",
            "LessEqual", "Equal", "NotEqual", "Abs", "Sign", "Square", "Sqrt", "Rsqrt",
            "Exp", "Log", "Log1p", "Sin", "Cos", "Reciprocal", "Pow", "Maximum", "Minimum",
            "FloorDiv", "FloorMod", "LogicalAnd", "LogicalOr", "LogicalNot", "ClipByValue",
            "ProdExceptOne"]


@pytest.mark.parametrize("typ", MATH_OPS)
def test_registered_reference_agrees_with_kernel(rng, typ):
    """The metadata's reference is a usable independent forward (same call convention)."""
    od = registry.lookup(typ)
    shape = (2, 3)
    args = [_domain_sample(rng, d, shape, "float64") for d in od.inputs.values()]
    got = evaluate(lambda *ts: od(*ts), args)
    np.testing.assert_allclose(np.asarray(od.reference(*args), dtype=got.dtype), got,
                               rtol=1e-12, atol=1e-12)


EXAMPLE_OPS = ["Maximum", "Minimum", "ClipByValue", "Max", "Min", "Prod", "ProdExceptOne",
               "ArgMax", "ArgMin"]


@pytest.mark.parametrize("typ", EXAMPLE_OPS)
def test_registered_examples_build_and_match_reference(rng, typ):
    """The metadata's examples are well formed: right input names, buildable, and the
    reference agrees with the kernel on them."""
    od = registry.lookup(typ)
    assert od.examples, typ
    for ex in od.examples:
        assert set(ex["shapes"]) == set(od.inputs), ex
        values = ex.get("values", {})
        args = [np.asarray(values[n], np.float64) if n in values else
                _domain_sample(rng, d, ex["shapes"][n], "float64")
                for n, d in od.inputs.items()]
        assert all(a.shape == tuple(ex["shapes"][n]) for a, n in zip(args, od.inputs))
        attrs = ex.get("attrs", {})
        got = evaluate(lambda *ts, a=attrs: od(*ts, **a), args)
        full = {**od.attrs, **attrs}
        np.testing.assert_allclose(od.reference(*args, **full), got, rtol=1e-12)


@pytest.mark.parametrize("typ", ["Sum", "Mean", "Max", "Min", "Prod", "ReduceLogSumExp"])
@pytest.mark.parametrize(("axis", "keepdims"), [(None, False), ((1,), True), ((-1, 0), False)])
def test_reduction_reference_agrees(rng, typ, axis, keepdims):
    od = registry.lookup(typ)
    x = _values(rng, (2, 3, 4), "float64")
    got = evaluate(lambda t: od(t, axis=axis, keepdims=keepdims), [x])
    np.testing.assert_allclose(od.reference(x, axis=axis, keepdims=keepdims), got,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("typ", ["ArgMax", "ArgMin"])
def test_arg_reference_agrees(typ):
    od = registry.lookup(typ)
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, -1.0]])
    for axis in (0, 1, -1):
        got = evaluate(lambda t, a=axis: od(t, axis=a, output_type=tf.int64), [x])
        np.testing.assert_array_equal(od.reference(x, axis=axis, output_type=tf.int64), got)


# == unary elementwise: gradients ================================================================
UNARY_GRADS = {  # name: (engine fn, input, d f / d x by hand)
    "abs": (tf.abs, [-2.0, -0.5, 0.0, 0.0, 1.5, 3.0], np.sign),
    "sign": (tf.sign, [-2.0, 0.0, 1.5], lambda x: np.zeros_like(x)),
    "square": (tf.square, [-2.0, 0.0, 1.5, 3.0], lambda x: 2 * x),
    "negative": (tf.negative, [-2.0, 0.0, 1.5], lambda x: -np.ones_like(x)),
    "sqrt": (tf.sqrt, [0.25, 1.0, 4.0, 9.0], lambda x: 0.5 / np.sqrt(x)),
    "rsqrt": (tf.rsqrt, [0.25, 1.0, 4.0, 9.0], lambda x: -0.5 * x ** -1.5),
    "exp": (tf.exp, [-2.0, 0.0, 1.5, 3.0], np.exp),
    "log": (tf.log, [0.25, 1.0, 4.0, 9.0], lambda x: 1 / x),
    "log1p": (tf.log1p, [-0.75, 0.0, 1e-10, 4.0], lambda x: 1 / (1 + x)),
    "sin": (tf.sin, [-2.0, 0.0, 1.5, 3.0], np.cos),
    "cos": (tf.cos, [-2.0, 0.0, 1.5, 3.0], lambda x: -np.sin(x)),
    "reciprocal": (tf.reciprocal, [-2.0, -0.5, 0.25, 3.0], lambda x: -1 / x ** 2),
}


@pytest.mark.parametrize("name", sorted(UNARY_GRADS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unary_gradient(rng, name, dtype):
    fn, values, deriv = UNARY_GRADS[name]
    x = np.array(values, dtype).reshape(2, -1) if len(values) % 2 == 0 else np.array(
        values, dtype)
    _, (g,), w = vjp(fn, [x], cotangent=_cot(rng, x.shape))
    assert g.dtype == np.dtype(dtype) and g.shape == x.shape
    np.testing.assert_allclose(g, w * deriv(x.astype(np.float64)), **TOL[dtype])


def test_abs_gradient_is_zero_at_zero():
    _, (g,), w = vjp(tf.abs, [np.array([0.0, -0.0, 1e-300, -1e-300])])
    np.testing.assert_array_equal(g, [0.0, 0.0, w[2], -w[3]])


def test_unary_gradient_rank0():
    _, (g,), w = vjp(tf.exp, [np.array(0.7)])
    assert g.shape == () and g == pytest.approx(w * np.exp(0.7), rel=RTOL)


# == binary arithmetic: gradients ================================================================
@pytest.mark.parametrize(("sx", "sy"), BROADCAST_PAIRS)
def test_arithmetic_gradients_broadcast(rng, sx, sy):
    x = _values(rng, sx, "float64")
    y = _values(rng, sy, "float64", 0.5, 2.0)
    out_shape = np.broadcast_shapes(sx, sy)
    w = _cot(rng, out_shape)
    X, Y = np.broadcast_to(x, out_shape), np.broadcast_to(y, out_shape)
    cases = {
        "add": (tf.add, w, w),
        "sub": (tf.subtract, w, -w),
        "mul": (tf.multiply, w * Y, w * X),
        "div": (tf.truediv, w / Y, -w * X / Y ** 2),
        "floormod": (tf.floormod, w, -w * np.floor(X / Y)),
    }
    for name, (fn, gx, gy) in cases.items():
        _, (ax, ay), _ = vjp(fn, [x, y], cotangent=w)
        assert ax.shape == sx and ay.shape == sy, name
        np.testing.assert_allclose(ax, _unbroadcast(gx, sx), rtol=RTOL, err_msg=name)
        np.testing.assert_allclose(ay, _unbroadcast(gy, sy), rtol=RTOL, err_msg=name)


def test_float32_arithmetic_gradients(rng):
    x = _values(rng, (2, 3), "float32")
    y = _values(rng, (3,), "float32", 0.5, 2.0)
    w = _cot(rng, (2, 3)).astype(np.float32)
    _, (ax, ay), _ = vjp(tf.truediv, [x, y], cotangent=w)
    assert ax.dtype == np.float32 and ay.dtype == np.float32
    np.testing.assert_allclose(ax, w / y, rtol=1e-6)
    np.testing.assert_allclose(ay, (-w * x / y ** 2).sum(0), rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_floormod_gradient_uses_the_quotient_of_its_forward(dtype):
    # float32 x / y rounds to -0 at x = -1.4e-45, y = 2 (floor: 0), yet the forward's result
    # 2.0 = x - (-1) * 2: the slope in y is 1, as differences of the forward show.
    x = np.array([-1.4e-45, 1.4e-45, -3.5, 7.25, 5.0], dtype)
    y = np.array([2.0, -2.0, 2.0, -2.5, 2.5], dtype)
    out, (ax, ay), _ = vjp(tf.floormod, [x, y], cotangent=np.ones(5, dtype))
    q = np.round((x.astype(np.float64) - out) / y)
    np.testing.assert_array_equal(ax, np.ones(5))
    np.testing.assert_array_equal(ay, -q)
    assert ay[0] == 1.0 and ay[1] == 1.0


def test_integer_inputs_get_no_gradient():
    x = tf.constant(np.array([1, 2], np.int32))
    f = tf.constant(np.array([1.0, 2.0]))
    y = tf.cast(x * 2, tf.float64) * f
    gx, gf = tf.gradients(y, [x, f])
    assert gx is None and gf is not None


def test_floordiv_is_not_differentiable():
    x = tf.constant(np.array([3.0, 4.5]))
    y = tf.constant(np.array([2.0, 2.0]))
    assert tf.gradients(x // y, [x, y]) == [None, None]
    # but the graph still differentiates around it
    (g,) = tf.gradients(x * (x // y), [x])
    np.testing.assert_array_equal(_run(g), [1.0, 2.0])


@pytest.mark.parametrize(("sx", "sy"), [((2, 3), (2, 3)), ((2, 3), ()), ((3,), (2, 1))])
def test_pow_gradient(rng, sx, sy):
    x = _values(rng, sx, "float64", 0.3, 3.0)
    y = _values(rng, sy, "float64", -2.0, 2.0)
    out_shape = np.broadcast_shapes(sx, sy)
    w = _cot(rng, out_shape)
    X, Y = np.broadcast_to(x, out_shape), np.broadcast_to(y, out_shape)
    _, (gx, gy), _ = vjp(tf.pow, [x, y], cotangent=w)
    np.testing.assert_allclose(gx, _unbroadcast(w * Y * X ** (Y - 1), sx), rtol=RTOL)
    np.testing.assert_allclose(gy, _unbroadcast(w * X ** Y * np.log(X), sy), rtol=RTOL)


def test_pow_gradient_guard_at_nonpositive_base():
    # d/dy x^y = x^y log x has no real value for x <= 0: TF gives 0 there (not nan)
    x = np.array([0.0, -2.0, 2.0, 0.0])
    y = np.array([2.0, 3.0, 1.5, 0.5])
    w = np.array([0.7, 1.1, 1.3, 0.9])
    _, (gx, gy), _ = vjp(tf.pow, [x, y], cotangent=w)
    np.testing.assert_allclose(gy, [0.0, 0.0, w[2] * 2.0 ** 1.5 * np.log(2.0), 0.0],
                               rtol=RTOL)
    np.testing.assert_allclose(gx[:3], w[:3] * y[:3] * x[:3] ** (y[:3] - 1), rtol=RTOL)
    assert gx[3] == np.inf  # d/dx sqrt(x) at 0: the true (infinite) derivative


def test_pow_integer_forward_has_no_gradient():
    x = tf.constant(np.array([2, 3], np.int64))
    assert tf.gradients(tf.cast(x ** 2, tf.float64), [x]) == [None]


@pytest.mark.parametrize(("fn", "x_wins"), [(tf.maximum, np.greater_equal),
                                              (tf.minimum, np.less_equal)])
def test_maximum_minimum_gradient_with_ties(rng, fn, x_wins):
    x = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    y = np.array([[1.0, 3.0, 2.0], [0.0, -1.0, 4.0]])  # exact ties at [0,0], [1,0], [1,1]
    w = _cot(rng, x.shape)
    _, (gx, gy), _ = vjp(fn, [x, y], cotangent=w)
    mask = x_wins(x, y)  # TF: x takes the whole gradient on a tie, y none
    np.testing.assert_array_equal(gx, np.where(mask, w, 0.0))
    np.testing.assert_array_equal(gy, np.where(mask, 0.0, w))
    assert gx[0, 0] == w[0, 0] and gy[0, 0] == 0.0


@pytest.mark.parametrize(("fn", "x_wins"), [(tf.maximum, np.greater_equal),
                                              (tf.minimum, np.less_equal)])
def test_maximum_minimum_gradient_broadcast(rng, fn, x_wins):
    x = np.array([[-1.0, 0.0, 2.0], [0.5, 0.0, -3.0]])
    y = np.array(0.0)  # relu-like: exact ties at the zeros
    w = _cot(rng, x.shape)
    _, (gx, gy), _ = vjp(fn, [x, y], cotangent=w)
    mask = x_wins(x, y)
    np.testing.assert_array_equal(gx, np.where(mask, w, 0.0))
    assert gy.shape == () and gy == pytest.approx(np.where(mask, 0.0, w).sum(), rel=RTOL)


# == clip_by_value ===============================================================================
def test_clip_by_value_forward(rng):
    for dtype in ("float32", "float64"):
        t = _values(rng, (2, 3, 4), dtype)
        out = evaluate(lambda a: tf.clip_by_value(a, -1.0, 0.5), [t])
        assert out.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(out, np.minimum(np.maximum(t, -1.0), 0.5))
    t = _values(rng, (2, 3), "float64")
    lo = np.array([-1.0, 0.0, -0.5])
    hi = np.array([[0.5], [2.0]])
    out = evaluate(tf.clip_by_value, [t, lo, hi])
    np.testing.assert_array_equal(out, np.where(t < lo, lo, np.where(t > hi, hi, t)))
    # rank 0 and inverted bounds (the result is clip_value_min, as TF's max(min(t, hi), lo))
    assert evaluate(lambda a: tf.clip_by_value(a, 2.0, 1.0), [np.array(5.0)]) == 2.0


def test_clip_by_value_gradient_at_bounds(rng):
    t = np.array([-2.0, -1.0, -0.5, 0.0, 1.0, 1.5])
    w = _cot(rng, t.shape)
    _, (g,), _ = vjp(lambda a: tf.clip_by_value(a, -1.0, 1.0), [t], cotangent=w)
    # exactly at a bound the gradient passes to t (TF2 ClipByValue convention)
    np.testing.assert_array_equal(g, w * np.array([0, 1, 1, 1, 1, 0]))


def test_clip_by_value_gradient_to_bounds(rng):
    t = np.array([[-2.0, -1.0, 0.0], [1.0, 3.0, 0.5]])
    lo = np.array(-1.0)
    hi = np.array([1.0, 2.0, 0.5])
    w = _cot(rng, t.shape)
    _, (gt, glo, ghi), _ = vjp(tf.clip_by_value, [t, lo, hi], cotangent=w)
    np.testing.assert_array_equal(gt, w * ((t >= lo) & (t <= hi)))
    assert glo.shape == () and glo == pytest.approx((w * (t < lo)).sum(), rel=RTOL)
    np.testing.assert_allclose(ghi, (w * (t > hi)).sum(0), rtol=RTOL)
    # every entry's gradient goes to exactly one input
    np.testing.assert_allclose(gt.sum() + glo + ghi.sum(), w.sum(), rtol=RTOL)


def test_clip_by_value_gradient_inverted_bounds(rng):
    t = np.array([-3.0, 0.0, 3.0])
    lo, hi = np.array(1.0), np.array(-1.0)  # output is lo everywhere
    w = _cot(rng, t.shape)
    _, (gt, glo, ghi), _ = vjp(tf.clip_by_value, [t, lo, hi], cotangent=w)
    np.testing.assert_array_equal(gt, [0.0, 0.0, 0.0])
    assert glo == pytest.approx(w.sum(), rel=RTOL) and ghi == 0.0


def test_clip_by_value_shape_errors():
    t = tf.constant(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Dimensions must be equal, but are 3 and 4 for "
                       r"'clip_by_value' \(op: 'ClipByValue'\) with input shapes: \[2,3\], "
                       r"\[4\], \[\]"):
        tf.clip_by_value(t, np.zeros(4), 1.0)
    # like TF1, the bounds may not broadcast t to a larger shape
    with pytest.raises(ValueError, match=r"Shapes \(3,\) and \(2, 3\) are not compatible"):
        tf.clip_by_value(tf.constant(np.zeros(3)), np.zeros((2, 3)), 1.0)


# == reductions: forward =========================================================================
REDUCTIONS = {
    "reduce_sum": (np.sum, ["float32", "float64", "int32", "int64"]),
    "reduce_mean": (np.mean, ["float32", "float64"]),
    "reduce_max": (np.max, ["float32", "float64", "int32", "int64"]),
    "reduce_min": (np.min, ["float32", "float64", "int32", "int64"]),
    "reduce_prod": (np.prod, ["float32", "float64", "int32", "int64"]),
    "reduce_logsumexp": (lambda x, axis, keepdims: np.log(np.sum(
        np.exp(x), axis=axis, keepdims=keepdims)), ["float32", "float64"]),
}
AXES = [((2, 3, 4), None), ((2, 3, 4), 0), ((2, 3, 4), -1), ((2, 3, 4), (0, 2)),
        ((2, 3, 4), [-1, -3]), ((2, 3, 4), (0, 1, 2)), ((1, 3, 1), 1), ((1, 3, 1), (0, -1)),
        ((5,), 0), ((), None), ((2, 3), [])]


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize(("shape", "axis"), AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_forward(rng, name, shape, axis, keepdims):
    ref, dtypes = REDUCTIONS[name]
    np_axis = axis if not isinstance(axis, list) else tuple(axis)
    for dtype in dtypes:
        x = _values(rng, shape, dtype, -2, 2)
        if name == "reduce_prod" and dtype.startswith("float"):
            x = x * 0.7
        out = evaluate(lambda t: getattr(tf, name)(t, axis=axis, keepdims=keepdims), [x])
        expect = ref(x.astype(np.float64), axis=np_axis, keepdims=keepdims)
        assert out.dtype == np.dtype(dtype), (name, dtype)
        assert np.shape(out) == np.shape(expect)
        if dtype.startswith("int"):
            np.testing.assert_array_equal(out, expect)
        else:
            np.testing.assert_allclose(out, expect, **TOL[dtype])


def test_reduction_old_spellings():
    x = np.arange(6.0).reshape(2, 3)
    a, b = evaluate(lambda t: [tf.reduce_max(t, reduction_indices=[1], keep_dims=True),
                               tf.reduce_prod(t + 1, reduction_indices=0)], [x])
    np.testing.assert_array_equal(a, [[2.0], [5.0]])
    np.testing.assert_array_equal(b, [4.0, 10.0, 18.0])
    with pytest.raises(ValueError, match="Can not specify both 'axis' and 'reduction_indices'"):
        tf.reduce_min(tf.constant(x), axis=0, reduction_indices=0)


def test_reduce_prod_with_zeros_forward():
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(evaluate(lambda t: tf.reduce_prod(t, 1), [x]), [0, 0, 6])


def test_reduce_max_min_empty_and_nan():
    x = np.zeros((2, 0))
    mx, mn = evaluate(lambda t: [tf.reduce_max(t, 1), tf.reduce_min(t, 1)], [x])
    np.testing.assert_array_equal(mx, [-np.inf, -np.inf])  # TF: the reduction's identity
    np.testing.assert_array_equal(mn, [np.inf, np.inf])
    xi = np.zeros((0,), np.int32)
    assert evaluate(lambda t: tf.reduce_max(t), [xi]) == np.iinfo(np.int32).min
    assert np.isnan(evaluate(lambda t: tf.reduce_max(t), [np.array([1.0, np.nan])]))


def test_reduce_logsumexp_is_stable():
    x = np.array([[1000.0, 1000.0, -np.inf], [-1000.0, -1001.0, -1002.0],
                  [-np.inf, -np.inf, -np.inf], [np.inf, 0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = evaluate(lambda t: tf.reduce_logsumexp(t, axis=1), [x])
    np.testing.assert_allclose(out[0], 1000.0 + np.log(2.0), rtol=RTOL)
    np.testing.assert_allclose(out[1], -1000.0 + np.log(1 + np.exp(-1) + np.exp(-2)),
                               rtol=RTOL)
    assert out[2] == -np.inf and out[3] == np.inf
    f32 = evaluate(lambda t: tf.reduce_logsumexp(t), [np.array([88.0, 89.0], np.float32)])
    assert f32.dtype == np.float32 and np.isfinite(f32)
    np.testing.assert_allclose(f32, 89.0 + np.log1p(np.exp(-1.0)), rtol=1e-6)


# == reductions: gradients =======================================================================
def _expand(g, shape, axis, keepdims):
    """A reduction's cotangent broadcast back to the input shape (NumPy)."""
    rank = len(shape)
    axes = range(rank) if axis is None else [a % rank for a in np.atleast_1d(axis)]
    if not keepdims:
        for a in sorted(axes):
            g = np.expand_dims(g, a)
    return np.broadcast_to(g, shape)


RED_AXES = [(None, False), (None, True), (1, False), (-1, True), ((0, 2), False),
            ([-3, -2], True)]


@pytest.mark.parametrize(("axis", "keepdims"), RED_AXES)
def test_sum_mean_gradient(rng, axis, keepdims):
    x = _values(rng, (2, 3, 4), "float64")
    ys = evaluate(lambda t: tf.reduce_sum(t, axis=axis, keepdims=keepdims), [x])
    w = _cot(rng, np.shape(ys))
    _, (gs,), _ = vjp(lambda t: tf.reduce_sum(t, axis=axis, keepdims=keepdims), [x],
                      cotangent=w)
    _, (gm,), _ = vjp(lambda t: tf.reduce_mean(t, axis=axis, keepdims=keepdims), [x],
                      cotangent=w)
    n = x.size // np.size(ys)
    np.testing.assert_allclose(gs, _expand(w, x.shape, axis, keepdims), rtol=RTOL)
    np.testing.assert_allclose(gm, _expand(w, x.shape, axis, keepdims) / n, rtol=RTOL)


def _np_max_grad(x, w, axis, keepdims, pick):
    axis = tuple(axis) if isinstance(axis, list) else axis
    m = pick(x, axis=axis, keepdims=True)
    ind = (x == m).astype(float)
    count = ind.sum(axis=axis, keepdims=True)
    return _expand(w, x.shape, axis, keepdims) * ind / count


@pytest.mark.parametrize(("name", "pick"), [("reduce_max", np.max), ("reduce_min", np.min)])
@pytest.mark.parametrize(("axis", "keepdims"), RED_AXES)
def test_max_min_gradient_ties_split_evenly(rng, name, pick, axis, keepdims):
    x = rng.integers(-2, 3, size=(2, 3, 4)).astype(np.float64)  # many exact ties
    fn = lambda t: getattr(tf, name)(t, axis=axis, keepdims=keepdims)
    y = evaluate(fn, [x])
    w = _cot(rng, np.shape(y))
    _, (g,), _ = vjp(fn, [x], cotangent=w)
    np.testing.assert_allclose(g, _np_max_grad(x, w, axis, keepdims, pick), rtol=RTOL)


def test_reduce_max_tie_split_explicit():
    x = np.array([[3.0, 1.0, 3.0, 3.0], [0.0, 2.0, 1.0, -1.0]])
    w = np.array([0.9, 1.2])
    _, (g,), _ = vjp(lambda t: tf.reduce_max(t, axis=1), [x], cotangent=w)
    np.testing.assert_allclose(g, [[0.3, 0.0, 0.3, 0.3], [0.0, 1.2, 0.0, 0.0]], rtol=RTOL)
    _, (g,), _ = vjp(lambda t: tf.reduce_min(t), [np.array([1.0, -1.0, -1.0])],
                     cotangent=np.array(0.8))
    np.testing.assert_allclose(g, [0.0, 0.4, 0.4], rtol=RTOL)


def _np_prod_grad(x, w, axis, keepdims):
    """Brute force: the product of all the other elements of each reduced slice."""
    rank = x.ndim
    axes = list(range(rank)) if axis is None else sorted(
        a % rank for a in np.atleast_1d(axis))
    wb = _expand(w, x.shape, axis, keepdims)
    g = np.zeros_like(x)
    for idx in itertools.product(*[range(d) for d in x.shape]):
        others = 1.0
        for jdx in itertools.product(*[range(d) for d in x.shape]):
            if jdx != idx and all(jdx[k] == idx[k] for k in range(rank) if k not in axes):
                others *= x[jdx]
        g[idx] = wb[idx] * others
    return g


@pytest.mark.parametrize("x", [
    np.array([2.0, -3.0, 0.5, 4.0]),
    np.array([2.0, 0.0, 0.5, 4.0]),   # one zero: only the zero's entry is nonzero
    np.array([0.0, 3.0, 0.0, 4.0]),   # two zeros: the gradient is all zero
    np.array([0.0]), np.array([1.5]),
], ids=["no_zero", "one_zero", "two_zeros", "single_zero", "single"])
def test_reduce_prod_gradient_with_zeros(x):
    w = np.array(1.3)
    _, (g,), _ = vjp(tf.reduce_prod, [x], cotangent=w)
    want = np.array([w * np.prod(np.delete(x, i)) for i in range(x.size)])
    np.testing.assert_allclose(g, want, rtol=RTOL)
    assert np.all(np.isfinite(g))
    zeros = np.flatnonzero(x == 0)
    if len(zeros) == 1:
        assert np.count_nonzero(g) == 1 and g[zeros[0]] != 0
    if len(zeros) >= 2:
        np.testing.assert_array_equal(g, 0.0)


@pytest.mark.parametrize(("axis", "keepdims"), RED_AXES + [((2, 0), True), ((1,), False)])
def test_reduce_prod_gradient_rank3(rng, axis, keepdims):
    x = rng.uniform(-2.0, 2.0, (2, 3, 4))
    x[0, 1, 2] = 0.0
    x[1, 2, 0] = 0.0
    x[1, 2, 3] = 0.0   # two zeros in some slices, one in others
    fn = lambda t: tf.reduce_prod(t, axis=axis, keepdims=keepdims)
    y = evaluate(fn, [x])
    w = _cot(rng, np.shape(y))
    _, (g,), _ = vjp(fn, [x], cotangent=w)
    np.testing.assert_allclose(g, _np_prod_grad(x, w, axis, keepdims), rtol=RTOL, atol=1e-300)


def test_reduce_prod_gradient_float32_and_empty_axis(rng):
    x = np.array([[1.5, 0.0, 2.0], [0.5, -1.0, 4.0]], np.float32)
    w = np.array([0.7, 1.1], np.float32)
    _, (g,), _ = vjp(lambda t: tf.reduce_prod(t, 1), [x], cotangent=w)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, [[0.0, 0.7 * 3.0, 0.0], [-4.4, 2.2, -0.55]], rtol=1e-6)
    _, (g,), w = vjp(lambda t: tf.reduce_prod(t, axis=[]), [x.astype(np.float64)])
    np.testing.assert_array_equal(g, w)  # reducing no axis is the identity
    _, (g,), _ = vjp(lambda t: tf.reduce_prod(t, axis=1), [np.zeros((2, 0))])
    assert g.shape == (2, 0)


def test_prod_except_one_kernel(rng):
    x = rng.uniform(-2, 2, (3, 5))
    x[0, 1] = 0.0
    x[1, 1] = x[1, 3] = 0.0
    od = registry.lookup("ProdExceptOne")
    out = evaluate(od, [x])
    want = np.array([[np.prod(np.delete(row, i)) for i in range(5)] for row in x])
    np.testing.assert_allclose(out, want, rtol=RTOL)
    np.testing.assert_array_equal(out[1], 0.0)
    assert evaluate(od, [np.array([4.0])]) == 1.0
    xi = np.array([[2, 0, 3]], np.int32)
    np.testing.assert_array_equal(evaluate(od, [xi]), [[0, 6, 0]])
    assert evaluate(od, [np.zeros((2, 0))]).shape == (2, 0)
    with pytest.raises(ValueError, match="Shape must be at least rank 1"):
        od(tf.constant(1.0))


def test_prod_except_one_gradient(rng):
    x = np.array([[2.0, 0.0, 3.0, 0.5], [0.0, 1.5, 0.0, 2.0], [1.0, -2.0, 3.0, 4.0]])
    w = _cot(rng, x.shape)
    _, (g,), _ = vjp(registry.lookup("ProdExceptOne"), [x], cotangent=w)
    # d y_i / d x_k = prod_{j not in {i, k}} x_j for i != k, and 0 for i == k
    want = np.zeros_like(x)
    for r in range(3):
        for k in range(4):
            want[r, k] = sum(w[r, i] * np.prod(np.delete(x[r], [i, k]))
                             for i in range(4) if i != k)
    np.testing.assert_allclose(g, want, rtol=RTOL)


def test_reduce_prod_gradient_empty_reduced_axis_at_run_time():
    p = tf.placeholder(tf.float64, [None, None])
    (g,) = tf.gradients(tf.reduce_prod(p, axis=1), [p])
    assert _run(g, {p: np.zeros((3, 0))}).shape == (3, 0)
    np.testing.assert_array_equal(_run(g, {p: np.array([[2.0, 5.0]])}), [[5.0, 2.0]])


@pytest.mark.parametrize(("axis", "keepdims"), [(None, False), (1, True), ((0, 2), False),
                                                 (-1, False)])
def test_reduce_logsumexp_gradient(rng, axis, keepdims):
    x = rng.uniform(-3, 3, (2, 3, 4))
    x[0, 0, 0] = 500.0   # large: the gradient must still be a finite softmax
    fn = lambda t: tf.reduce_logsumexp(t, axis=axis, keepdims=keepdims)
    y = evaluate(fn, [x])
    w = _cot(rng, np.shape(y))
    _, (g,), _ = vjp(fn, [x], cotangent=w)
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    softmax = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(g, _expand(w, x.shape, axis, keepdims) * softmax, rtol=1e-12)


# == argmax / argmin =============================================================================
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_argmax_argmin(rng, dtype):
    x = _values(rng, (3, 4, 5), dtype, -2, 2)   # small ints: many ties
    for axis in (0, 1, 2, -1, -3):
        amax, amin = evaluate(lambda t, a=axis: [tf.argmax(t, a), tf.math.argmin(t, axis=a)],
                              [x])
        assert amax.dtype == np.int64 and amin.dtype == np.int64
        # numpy also returns the first index on ties
        np.testing.assert_array_equal(amax, np.argmax(x, axis))
        np.testing.assert_array_equal(amin, np.argmin(x, axis))


def test_argmax_ties_and_signature():
    x = np.array([[1.0, 5.0, 5.0], [7.0, 7.0, 7.0]])
    t = tf.constant(x)
    a0 = tf.argmax(t)                          # axis None means 0
    a1 = tf.argmax(t, dimension=1)             # TF1's old spelling
    a2 = tf.argmin(t, axis=-1, output_type=tf.int32)
    a3 = tf.argmax(t, tf.constant(1))
    out = _run([a0, a1, a2, a3])
    np.testing.assert_array_equal(out[0], [1, 1, 1])
    np.testing.assert_array_equal(out[1], [1, 0])
    np.testing.assert_array_equal(out[2], [0, 0])
    np.testing.assert_array_equal(out[3], [1, 0])
    assert a0.dtype == tf.int64 and a2.dtype == tf.int32 and out[2].dtype == np.int32
    assert a0.op.type == "ArgMax" and a2.op.type == "ArgMin"
    assert a0.shape.as_list() == [3] and a1.shape.as_list() == [2]
    with pytest.raises(ValueError, match="Cannot specify both 'axis' and 'dimension'"):
        tf.argmax(t, axis=0, dimension=0)
    with pytest.raises(TypeError, match="output_type"):
        tf.argmax(t, output_type=tf.float32)


def test_argmax_axis_out_of_range():
    t = tf.constant(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Expected dimension in the range \[-2, 2\), but got "
                       r"2 for 'ArgMax' \(op: 'ArgMax'\) with input shapes: \[2,3\]"):
        tf.argmax(t, 2)
    with pytest.raises(ValueError, match=r"but got -3 for 'ArgMin'"):
        tf.argmin(t, -3)
    with pytest.raises(ValueError, match=r"range \[0, 0\)"):
        tf.argmax(tf.constant(1.0))


def test_argmax_not_differentiable():
    x = tf.constant(np.array([1.0, 3.0]))
    y = tf.cast(tf.argmax(x), tf.float64) * x
    (g,) = tf.gradients(y, [x])
    np.testing.assert_array_equal(_run(g), [1.0, 1.0])  # only the direct path


def test_argmax_empty_axis_is_invalid_argument():
    p = tf.placeholder(tf.float32, [None, None])
    a = tf.argmax(p, 1)
    with pytest.raises(errors.InvalidArgumentError, match="Reduction axis 1 is empty"):
        _run(a, {p: np.zeros((2, 0))})


# == matmul ======================================================================================
@pytest.mark.parametrize(("ta", "tb"), list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_matmul_forward(rng, ta, tb, dtype):
    a = _values(rng, (3, 2) if ta else (2, 3), dtype)
    b = _values(rng, (4, 3) if tb else (3, 4), dtype)
    out = evaluate(lambda x, y: tf.matmul(x, y, transpose_a=ta, transpose_b=tb), [a, b])
    A = a.T if ta else a
    B = b.T if tb else b
    expect = np.einsum("ij,jk->ik", A.astype(np.float64), B.astype(np.float64))
    assert out.dtype == np.dtype(dtype) and out.shape == (2, 4)
    np.testing.assert_allclose(out, expect, **TOL.get(dtype, {"rtol": 0}))


@pytest.mark.parametrize(("ta", "tb"), list(itertools.product([False, True], repeat=2)))
def test_matmul_gradient(rng, ta, tb):
    a = rng.standard_normal((3, 2) if ta else (2, 3))
    b = rng.standard_normal((4, 3) if tb else (3, 4))
    w = _cot(rng, (2, 4))
    _, (ga, gb), _ = vjp(lambda x, y: tf.matmul(x, y, transpose_a=ta, transpose_b=tb),
                         [a, b], cotangent=w)
    A = a.T if ta else a
    B = b.T if tb else b
    gA = w @ B.T   # d<w, A B>/dA
    gB = A.T @ w
    np.testing.assert_allclose(ga, gA.T if ta else gA, rtol=RTOL)
    np.testing.assert_allclose(gb, gB.T if tb else gB, rtol=RTOL)


@pytest.mark.parametrize(("sa", "sb", "ta", "tb"), [
    ((2, 1, 3, 4), (5, 4, 2), False, False),
    ((3, 4), (2, 4, 5), False, False),
    ((2, 3, 4), (4, 5), False, False),
    ((2, 1, 4, 3), (1, 3, 2, 4), True, True),
    ((1, 3, 4), (2, 5, 4), False, True),
])
def test_matmul_batched_broadcast(rng, sa, sb, ta, tb):
    a = rng.standard_normal(sa)
    b = rng.standard_normal(sb)
    A = np.swapaxes(a, -1, -2) if ta else a
    B = np.swapaxes(b, -1, -2) if tb else b
    expect = np.einsum("...ij,...jk->...ik", A, B)
    fn = lambda x, y: tf.matmul(x, y, transpose_a=ta, transpose_b=tb)
    with tf.Graph().as_default():
        t = fn(tf.constant(a), tf.constant(b))
        assert t.shape.as_tuple() == expect.shape
    w = _cot(rng, expect.shape)
    out, (ga, gb), _ = vjp(fn, [a, b], cotangent=w)
    np.testing.assert_allclose(out, expect, rtol=1e-12)
    gA = np.einsum("...ik,...jk->...ij", w, np.broadcast_to(B, expect.shape[:-2] + B.shape[-2:]))
    gB = np.einsum("...ij,...ik->...jk", np.broadcast_to(A, expect.shape[:-2] + A.shape[-2:]),
                   w)
    gA = np.swapaxes(gA, -1, -2) if ta else gA
    gB = np.swapaxes(gB, -1, -2) if tb else gB
    np.testing.assert_allclose(ga, _unbroadcast(gA, sa), rtol=1e-12)
    np.testing.assert_allclose(gb, _unbroadcast(gB, sb), rtol=1e-12)


def test_matmul_operator_and_static_shape():
    a = tf.placeholder(tf.float64, [None, 3])
    b = tf.placeholder(tf.float64, [3, None])
    c = a @ b
    assert c.op.type == "MatMul" and c.shape.as_list() == [None, None]
    av, bv = np.ones((2, 3)), np.ones((3, 5))
    out = _run(c, {a: av, b: bv})
    assert out.shape == (2, 5) and c.shape.is_compatible_with(out.shape)


# == second order ================================================================================
def test_second_order_exp_log_sqrt_rsqrt_reciprocal():
    x = np.array([0.3, 1.0, 2.5, 4.0])
    cases = {
        "exp": (tf.exp, np.exp),                         # (e^x)'' = e^x
        "log": (tf.log, lambda x: -1 / x ** 2),
        "sqrt": (tf.sqrt, lambda x: -0.25 * x ** -1.5),
        "rsqrt": (tf.rsqrt, lambda x: 0.75 * x ** -2.5),
        "reciprocal": (tf.reciprocal, lambda x: 2 / x ** 3),
        "sin": (tf.sin, lambda x: -np.sin(x)),
        "cos": (tf.cos, lambda x: -np.cos(x)),
        "square": (tf.square, lambda x: 2 + 0 * x),
        "log1p": (tf.log1p, lambda x: -1 / (1 + x) ** 2),
    }
    for name, (fn, d2) in cases.items():
        h, w, v = second_order(fn, x)
        np.testing.assert_allclose(h, w * v * d2(x), rtol=1e-12, err_msg=name)


def _second_or_zero(fn, x):
    """d/dx <v, d<w, fn(x)>/dx>, with None (no differentiable path: piecewise-constant
    first derivative, as in TF) reported as None."""
    with tf.Graph().as_default():
        t = tf.constant(x)
        y = fn(t)
        w = tf.constant(np.random.default_rng(0).uniform(0.5, 1.5, y.shape.as_list()))
        (g,) = tf.gradients(y, [t], grad_ys=w)
        (h,) = tf.gradients(g, [t], grad_ys=tf.constant(np.ones(x.shape)))
        return None if h is None else _run(h)


def test_second_order_abs_and_sign_are_zero():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(_second_or_zero(tf.abs, x), 0.0)
    assert _second_or_zero(tf.sign, x) is None  # the first derivative is a constant


def test_second_order_multiply():
    x = np.array([[0.5, -1.0, 2.0]])
    h, w, v = second_order(lambda t: t * t, x)        # d2(x^2) = 2
    np.testing.assert_allclose(h, 2 * w * v, rtol=RTOL)
    a, b = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]), np.array([0.3, -0.7, 1.1])
    hab, hba, w, va, vb = _mixed_second(tf.multiply, [a, b])
    # d/db <va, w * b> = sum over the broadcast axis of w * va; d/da <vb, w * a> = w * vb
    np.testing.assert_allclose(hab, (w * va).sum(0), rtol=RTOL)
    np.testing.assert_allclose(hba, w * vb, rtol=RTOL)


def test_second_order_matmul():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 3))
    h, w, v = second_order(lambda t: tf.matmul(t, t), x)
    # g = w x^T + x^T w; d<v, g>/dx = v^T w + w v^T
    np.testing.assert_allclose(h, v.T @ w + w @ v.T, rtol=1e-12)
    x = rng.standard_normal((2, 3))
    h, w, v = second_order(lambda t: tf.matmul(t, t, transpose_b=True), x)
    # g = (w + w^T) x; d<v, g>/dx = (w + w^T)^T v
    np.testing.assert_allclose(h, (w + w.T) @ v, rtol=1e-12)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    hab, hba, w, va, vb = _mixed_second(tf.matmul, [a, b])
    # ga = w b^T: d<va, w b^T>/db = va^T w; gb = a^T w: d<vb, a^T w>/da = w vb^T
    np.testing.assert_allclose(hab, va.T @ w, rtol=1e-12)
    np.testing.assert_allclose(hba, w @ vb.T, rtol=1e-12)


def _np_prod_hessian(x):
    n = x.size
    h = np.zeros((n, n))
    for k in range(n):
        for ell in range(n):
            if k != ell:
                h[k, ell] = np.prod(np.delete(x, [k, ell]))
    return h


@pytest.mark.parametrize("x", [np.array([2.0, -3.0, 0.5, 4.0]), np.array([2.0, 0.0, 3.0, 4.0]),
                               np.array([0.0, 1.5, 0.0, 4.0]), np.array([0.0, 0.0, 0.0]),
                               np.array([1.5, 2.0])],
                         ids=["no_zero", "one_zero", "two_zeros", "three_zeros", "pair"])
def test_second_order_reduce_prod(x):
    h, w, v = second_order(tf.reduce_prod, x)
    np.testing.assert_allclose(h, w * (_np_prod_hessian(x) @ v), rtol=1e-12, atol=1e-300)


def test_second_order_reduce_prod_along_axes(rng):
    x = rng.uniform(-2, 2, (2, 3, 2))
    x[0, 1, 0] = 0.0
    x[1, 0, 1] = x[1, 2, 1] = 0.0
    h, w, v = second_order(lambda t: tf.reduce_prod(t, axis=(0, 1)), x)
    want = np.zeros_like(x)
    for j in range(2):  # independent slices x[:, :, j]
        s = x[:, :, j].reshape(-1)
        want[:, :, j] = (w[j] * (_np_prod_hessian(s) @ v[:, :, j].reshape(-1))).reshape(2, 3)
    np.testing.assert_allclose(h, want, rtol=1e-12, atol=1e-300)


def test_third_order_reduce_prod():
    x = np.array([2.0, 0.0, 3.0, 5.0])
    with tf.Graph().as_default():
        t = tf.constant(x)
        y = tf.reduce_prod(t)
        (g,) = tf.gradients(y, [t])
        (h0,) = tf.gradients(g[0], [t])      # row 0 of the Hessian
        (d3,) = tf.gradients(h0[1], [t])     # d^3 y / dx0 dx1 dxk = prod of the others
        out = _run(d3)
    np.testing.assert_allclose(out, [0.0, 0.0, 5.0, 3.0], rtol=RTOL)


def test_second_order_reduce_logsumexp(rng):
    x = rng.uniform(-2, 2, (3, 4))
    h, w, v = second_order(lambda t: tf.reduce_logsumexp(t, axis=1), x)
    s = np.exp(x - x.max(1, keepdims=True))
    s /= s.sum(1, keepdims=True)
    # the Hessian of logsumexp is diag(s) - s s^T, row by row
    want = w[:, None] * (s * v - s * (s * v).sum(1, keepdims=True))
    np.testing.assert_allclose(h, want, rtol=1e-12, atol=1e-15)
    h, w, v = second_order(lambda t: tf.reduce_logsumexp(t, keepdims=True), x)
    sf = np.exp(x - np.log(np.exp(x).sum()))
    np.testing.assert_allclose(h, w.reshape(()) * (sf * v - sf * (sf * v).sum()),
                               rtol=1e-12, atol=1e-15)


def test_second_order_pow():
    x = np.array([0.5, 1.0, 2.5])
    c = 2.7
    h, w, v = second_order(lambda t: tf.pow(t, c), x)
    np.testing.assert_allclose(h, w * v * c * (c - 1) * x ** (c - 2), rtol=1e-12)
    b = 1.8
    h, w, v = second_order(lambda t: tf.pow(b, t), x)
    np.testing.assert_allclose(h, w * v * b ** x * np.log(b) ** 2, rtol=1e-12)
    y = np.array([0.3, -1.2, 2.0])
    hxy, hyx, w, vx, vy = _mixed_second(tf.pow, [x, y])
    # d2 (x^y) / dx dy = x^(y-1) (1 + y log x)
    mixed = x ** (y - 1) * (1 + y * np.log(x))
    np.testing.assert_allclose(hxy, w * vx * mixed, rtol=1e-12)
    np.testing.assert_allclose(hyx, w * vy * mixed, rtol=1e-12)


def test_second_order_max_and_clip_are_zero():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.5, -1.0]])
    for fn in (lambda t: tf.reduce_max(t, 1), lambda t: tf.maximum(t, 1.0),
               lambda t: tf.clip_by_value(t, 0.0, 2.5), lambda t: tf.reduce_min(t)):
        h = _second_or_zero(fn, x)
        assert h is None or np.all(h == 0.0)


def test_second_order_divide():
    x = np.array([0.5, -1.5, 2.0])
    h, w, v = second_order(lambda t: 3.0 / t, x)   # (3/x)'' = 6/x^3
    np.testing.assert_allclose(h, w * v * 6 / x ** 3, rtol=1e-12)


# == static vs run-time shapes with unknown dims =================================================
def _shape_case(build, feeds):
    """Build with placeholders, run, and check every output's static shape against its value."""
    phs = [tf.placeholder(tf.float64, s) for s, _ in feeds]
    outs = build(*phs)
    vals = _run(outs, {p: v for p, (_, v) in zip(phs, feeds)})
    for t, v in zip(outs, vals):
        assert t.shape.is_compatible_with(np.shape(v)), (t, np.shape(v))
    return outs, vals


def test_static_shapes_with_unknown_dims(rng):
    x = rng.uniform(0.5, 2.0, (2, 3, 4))
    outs, _ = _shape_case(lambda p, q: [
        tf.maximum(p, q), tf.pow(p, q), p // q, tf.clip_by_value(p, q, 3.0),
        tf.reduce_max(p, axis=1), tf.reduce_prod(p, axis=[0, -1], keepdims=True),
        tf.reduce_logsumexp(p, axis=-1), tf.reduce_min(p), tf.argmax(p, 1),
        tf.exp(p), tf.square(q),
    ], [([None, 3, None], x), ([4], x[0, 0])])
    assert outs[0].shape.as_list() == [None, 3, 4]
    assert outs[4].shape.as_list() == [None, None]
    assert outs[5].shape.as_list() == [1, 3, 1]
    assert outs[6].shape.as_list() == [None, 3]
    assert outs[7].shape.as_list() == []
    assert outs[8].shape.as_list() == [None, None]
    assert outs[9].shape.as_list() == [None, 3, None]
    # unknown rank: reductions and elementwise ops still build and run
    u = tf.placeholder(tf.float64, None)
    r = [tf.reduce_prod(u, axis=1), tf.abs(u), tf.argmax(u, 0)]
    assert r[0].shape.ndims is None and r[1].shape.ndims is None
    vals = _run(r, {u: x})
    np.testing.assert_allclose(vals[0], np.prod(x, 1), rtol=RTOL)


def test_gradients_with_unknown_dims(rng):
    x = rng.uniform(-2.0, 2.0, (2, 3, 4))
    x[0, 0, 0] = 0.0
    p = tf.placeholder(tf.float64, [None, 3, None])
    q = tf.placeholder(tf.float64, [None])
    ys = {
        "prod": tf.reduce_prod(p, axis=[0, 2]),
        "prod_kept": tf.reduce_prod(p, axis=1),
        "max": tf.reduce_max(p, axis=-1, keepdims=True),
        "lse": tf.reduce_logsumexp(p, axis=0),
        "clip": tf.clip_by_value(p, q, 1.0),
        "pow": tf.pow(tf.abs(p) + 0.5, q),
    }
    grads = {k: tf.gradients(y, [p])[0] for k, y in ys.items()}
    vals = _run(grads, {p: x, q: np.array([-0.5, 0.0, 0.3, 1.0])})
    for k, g in vals.items():
        assert g.shape == x.shape and grads[k].shape.is_compatible_with(x.shape), k
    want = _np_prod_grad(x, np.ones(3), (0, 2), False)
    np.testing.assert_allclose(vals["prod"], want, rtol=RTOL)
    np.testing.assert_allclose(vals["prod_kept"], _np_prod_grad(x, np.ones((2, 4)), 1, False),
                               rtol=RTOL)


def test_reduce_prod_second_order_needs_static_reduced_size():
    p = tf.placeholder(tf.float64, [2, None])
    (g,) = tf.gradients(tf.reduce_prod(p, axis=1), [p])
    with pytest.raises(ValueError, match=r"'ProdExceptOne'\).*size of the last axis"):
        tf.gradients(g, [p])
    # a static reduced size is enough, even with unknown kept dims
    p2 = tf.placeholder(tf.float64, [None, 3])
    (g2,) = tf.gradients(tf.reduce_prod(p2, axis=1), [p2])
    (h2,) = tf.gradients(g2, [p2])
    x = np.array([[1.0, 2.0, 0.0]])
    np.testing.assert_allclose(_run(h2, {p2: x}), [[2.0, 1.0, 3.0]], rtol=RTOL)


# == errors ======================================================================================
def test_matmul_inner_dim_mismatch_message():
    a = tf.constant(np.zeros((2, 3), np.float32))
    b = tf.constant(np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError) as e:
        tf.matmul(a, b)
    assert str(e.value) == ("Dimensions must be equal, but are 3 and 4 for 'MatMul' (op: "
                            "'MatMul') with input shapes: [2,3], [4,2].")


def test_bad_reduction_axis():
    x = tf.constant(np.zeros((2, 3)))
    for fn, typ in ((tf.reduce_max, "Max"), (tf.reduce_prod, "Prod"), (tf.reduce_sum, "Sum"),
                    (tf.reduce_logsumexp, "ReduceLogSumExp"), (tf.reduce_min, "Min")):
        with pytest.raises(ValueError, match=rf"Invalid reduction dimension 2 for input with 2 "
                           rf"dimensions for '{typ}(_\d+)?' \(op: '{typ}'\) with input shapes: "
                           r"\[2,3\]"):
            fn(x, axis=2)
    with pytest.raises(ValueError, match="Invalid reduction dimension -3"):
        tf.reduce_max(x, axis=[0, -3])
    with pytest.raises(ValueError, match="Invalid reduction dimension 0 for input with 0"):
        tf.reduce_sum(tf.constant(1.0), axis=0)
    with pytest.raises(TypeError, match="axis must be an int"):
        tf.reduce_max(x, axis=0.5)


def test_dtype_mismatch_message():
    a = tf.constant(np.zeros(2, np.float32))
    b = tf.constant(np.zeros(2, np.float64))
    with pytest.raises(TypeError) as e:
        tf.add(a, b)
    assert str(e.value) == ("Input 'y' of 'Add' Op has type float64 that does not match type "
                            "float32 of argument 'x'.")
    with pytest.raises(TypeError, match="Input 'y' of 'Maximum' Op has type float64"):
        tf.maximum(a, b)


@pytest.mark.parametrize("fn", [tf.add, tf.maximum, tf.pow, tf.floormod, tf.multiply])
def test_runtime_broadcast_mismatch(fn):
    p = tf.placeholder(tf.float32, [None, 3])
    q = tf.placeholder(tf.float32, [None, 3])
    t = fn(p, q)
    with pytest.raises(errors.InvalidArgumentError) as e:
        _run(t, {p: np.ones((2, 3)), q: np.ones((4, 3))})
    assert e.value.message.startswith("Incompatible shapes: [2,3] vs. [4,3]")
    assert e.value.op is t.op


def test_static_broadcast_mismatch():
    with pytest.raises(ValueError, match=r"Dimensions must be equal, but are 3 and 4 for "
                       r"'Maximum' \(op: 'Maximum'\) with input shapes: \[2,3\], \[4\]"):
        tf.maximum(tf.zeros([2, 3]), tf.zeros([4]))
