"""Arithmetic, elementwise functions, comparisons, logical ops, clip_by_value and matrix
products. (Reductions and argmax/argmin are in ``reduction_ops``.)

Each op is one block: kernel + metadata, then its gradient (TF1's ``(op, grad)`` form, built
from engine ops). Gradients of broadcasting ops are returned in the output's shape; the
gradient machinery reduces them to each input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine import dtypes as _dt
from gradverify.engine import errors
from gradverify.engine import meta as m
from gradverify.engine.graph import Tensor, convert_to_tensor
from gradverify.engine.ops.core_ops import cast, zeros_like
from gradverify.engine.registry import export, op
from gradverify.engine.shapes import TensorShape, broadcast_shapes, unknown_shape

NUM = m.FLOAT + m.INT  # dtypes for arithmetic that also works on integers
_BOOL_OUT = {"out_dtype": "bool", "differentiable": False, "dtypes": NUM}


# -- binary arithmetic (broadcasting) --------------------------------------------------------
@op("Add", inputs=("x", "y"), signature="broadcast", dtypes=NUM, api=("add", "math.add"),
    reference=np.add)
def add(x, y):
    """``x + y`` with NumPy broadcasting."""
    return np.add(x, y)


@add.gradient
def _(op, grad):
    return [grad, grad]


@op("Sub", inputs=("x", "y"), signature="broadcast", dtypes=NUM,
    api=("subtract", "math.subtract"), reference=np.subtract)
def subtract(x, y):
    """``x - y`` with NumPy broadcasting."""
    return np.subtract(x, y)


@subtract.gradient
def _(op, grad):
    return [grad, negative(grad)]


@op("Mul", inputs=("x", "y"), signature="broadcast", dtypes=NUM,
    api=("multiply", "math.multiply"), reference=np.multiply)
def multiply(x, y):
    """``x * y`` with NumPy broadcasting."""
    return np.multiply(x, y)


@multiply.gradient
def _(op, grad):
    x, y = op.inputs
    return [grad * y, x * grad]


@op("RealDiv", inputs={"x": m.reals, "y": m.nonzero}, signature="broadcast",
    api=("realdiv", "math.realdiv"), reference=np.true_divide)
def realdiv(x, y):
    """``x / y`` for floating tensors."""
    return np.true_divide(x, y)


@realdiv.gradient
def _(op, grad):
    x, y = op.inputs
    # TF's order, (-x / y) / y: y * y under- or overflows in float32 (|y| < 1e-19 or
    # > 1e19) where the quotients do not
    return [grad / y, grad * (negative(x) / y / y)]


@export("truediv", "divide", "math.truediv", "math.divide")
def truediv(x: Any, y: Any, name: str | None = None) -> Tensor:
    """``x / y``; integer inputs are cast to float64 first (Python 3 division)."""
    x = convert_to_tensor(x) if isinstance(x, Tensor) or not isinstance(y, Tensor) else x
    if isinstance(x, Tensor) and x.dtype.is_integer:
        x = cast(x, _dt.float64)
        y = convert_to_tensor(y, dtype=x.dtype) if not isinstance(y, Tensor) else cast(
            y, _dt.float64)
    elif isinstance(y, Tensor) and y.dtype.is_integer and not isinstance(x, Tensor):
        y = cast(y, _dt.float64)
    return realdiv(x, y, name=name or "truediv")


# -- unary -----------------------------------------------------------------------------------
@op("Neg", dtypes=NUM, api=("negative", "math.negative", "math.neg"), reference=np.negative)
def negative(x):
    """``-x``."""
    return np.negative(x)


@negative.gradient
def _(op, grad):
    return negative(grad)


# -- comparisons (boolean, not differentiable) -----------------------------------------------
@op("Greater", inputs=("x", "y"), signature="broadcast", **_BOOL_OUT,
    api=("greater", "math.greater"), reference=np.greater)
def greater(x, y):
    """``x > y`` elementwise (bool)."""
    return np.greater(x, y)


@op("GreaterEqual", inputs=("x", "y"), signature="broadcast", **_BOOL_OUT,
    api=("greater_equal", "math.greater_equal"), reference=np.greater_equal)
def greater_equal(x, y):
    """``x >= y`` elementwise (bool)."""
    return np.greater_equal(x, y)


@op("Less", inputs=("x", "y"), signature="broadcast", **_BOOL_OUT,
    api=("less", "math.less"), reference=np.less)
def less(x, y):
    """``x < y`` elementwise (bool)."""
    return np.less(x, y)


@op("LessEqual", inputs=("x", "y"), signature="broadcast", **_BOOL_OUT,
    api=("less_equal", "math.less_equal"), reference=np.less_equal)
def less_equal(x, y):
    """``x <= y`` elementwise (bool)."""
    return np.less_equal(x, y)


@op("Equal", inputs=("x", "y"), signature="broadcast", **_BOOL_OUT,
    api=("equal", "math.equal"), reference=np.equal)
def equal(x, y):
    """``x == y`` elementwise (bool)."""
    return np.equal(x, y)


@op("NotEqual", inputs=("x", "y"), signature="broadcast", **_BOOL_OUT,
    api=("not_equal", "math.not_equal"), reference=np.not_equal)
def not_equal(x, y):
    """``x != y`` elementwise (bool)."""
    return np.not_equal(x, y)


# -- matrix product --------------------------------------------------------------------------
@op("MatMul", inputs=("a", "b"), signature="(m,n),(n,p)->(m,p)",
    attrs={"transpose_a": False, "transpose_b": False},
    choices={"transpose_a": m.TransposeFlag(of=0), "transpose_b": m.TransposeFlag(of=1)},
    dtypes=NUM, api=("matmul", "linalg.matmul"),
    reference=lambda a, b, transpose_a, transpose_b: np.einsum(
        "...ij,...jk->...ik", np.swapaxes(a, -1, -2) if transpose_a else a,
        np.swapaxes(b, -1, -2) if transpose_b else b))
def matmul(a, b, *, transpose_a, transpose_b):
    """Matrix product of the last two axes (batch axes broadcast); flags transpose first."""
    if transpose_a:
        a = np.swapaxes(a, -1, -2)
    if transpose_b:
        b = np.swapaxes(b, -1, -2)
    return np.matmul(a, b)


@matmul.shape_rule
def _(ctx):
    a, b = ctx.rank_at_least(0, 2), ctx.rank_at_least(1, 2)
    if a.ndims is None or b.ndims is None:
        return unknown_shape()
    (m_, n1), (n2, p) = a.as_list()[-2:], b.as_list()[-2:]
    if ctx.attrs["transpose_a"]:
        m_, n1 = n1, m_
    if ctx.attrs["transpose_b"]:
        n2, p = p, n2
    ctx.merge(n1, n2)
    batch = broadcast_shapes([a[:-2], b[:-2]], ctx.name, ctx.type)
    return TensorShape(batch.as_list() + [m_, p])


@matmul.gradient
def _(op, grad):
    a, b = op.inputs
    ta, tb = op.attrs["transpose_a"], op.attrs["transpose_b"]
    if not ta and not tb:
        return [matmul(grad, b, transpose_b=True), matmul(a, grad, transpose_a=True)]
    if not ta and tb:
        return [matmul(grad, b), matmul(grad, a, transpose_a=True)]
    if ta and not tb:
        return [matmul(b, grad, transpose_b=True), matmul(a, grad)]
    return [matmul(b, grad, transpose_a=True, transpose_b=True),
            matmul(grad, a, transpose_a=True, transpose_b=True)]


# -- elementwise unary functions -------------------------------------------------------------
def _quiet(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` without NumPy's floating-point warnings: TF returns inf/nan silently
    (log(0) = -inf, sqrt(-1) = nan, exp(1000) = inf)."""
    with np.errstate(all="ignore"):
        return fn(*args)


@op("Abs", dtypes=NUM, kinks=(0.0,), api=("abs", "math.abs"),
    reference=lambda x: np.where(x < 0, -x, x))
def abs(x):
    """``|x|`` elementwise (``abs(t)`` on a Tensor)."""
    return np.abs(x)


@abs.gradient
def _(op, grad):
    return grad * sign(op.inputs[0])  # sign(0) = 0: TF's subgradient at the kink


@op("Sign", inputs={"x": m.nonzero}, dtypes=NUM, api=("sign", "math.sign"),
    reference=lambda x: (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype))
def sign(x):
    """-1, 0 or 1 elementwise."""
    return np.sign(x)


@sign.gradient
def _(op, grad):
    return zeros_like(op.inputs[0])  # TF: piecewise constant, gradient 0 (also at 0)


@op("Square", dtypes=NUM, api=("square", "math.square"), reference=lambda x: x * x)
def square(x):
    """``x * x`` elementwise."""
    return np.square(x)


@square.gradient
def _(op, grad):
    return grad * (op.inputs[0] * 2.0)


@op("Sqrt", inputs={"x": m.positive}, api=("sqrt", "math.sqrt"),
    reference=lambda x: np.power(x, 0.5))
def sqrt(x):
    """``x ** 0.5`` elementwise (nan for x < 0, like TF)."""
    return _quiet(np.sqrt, x)


@sqrt.gradient
def _(op, grad):
    return grad * 0.5 / op.outputs[0]  # 0.5 g / y; y depends on x, so second order flows


@op("Rsqrt", inputs={"x": m.positive}, api=("rsqrt", "math.rsqrt"),
    reference=lambda x: np.power(x, -0.5))
def rsqrt(x):
    """``1 / sqrt(x)`` elementwise."""
    return _quiet(lambda v: 1 / np.sqrt(v), x)


@rsqrt.gradient
def _(op, grad):
    y = op.outputs[0]
    return grad * -0.5 * (y * y * y)  # d x^-1/2 = -1/2 x^-3/2 = -1/2 y^3


@op("Exp", api=("exp", "math.exp"), reference=lambda x: np.power(np.e, x))
def exp(x):
    """``e ** x`` elementwise."""
    return _quiet(np.exp, x)


@exp.gradient
def _(op, grad):
    return grad * op.outputs[0]


@op("Log", inputs={"x": m.positive}, api=("log", "math.log"),
    reference=lambda x: np.log2(x) / np.log2(np.e))
def log(x):
    """Natural logarithm elementwise (-inf at 0, nan below)."""
    return _quiet(np.log, x)


@log.gradient
def _(op, grad):
    return grad / op.inputs[0]


@op("Log1p", inputs={"x": m.bounded(-1.0, float("inf"))}, api=("log1p", "math.log1p"),
    reference=lambda x: np.log(1 + x.astype(np.float64)))
def log1p(x):
    """``log(1 + x)`` elementwise, accurate for small x."""
    return _quiet(np.log1p, x)


@log1p.gradient
def _(op, grad):
    return grad / (op.inputs[0] + 1.0)


@op("Sin", api=("sin", "math.sin"), reference=lambda x: np.cos(x - np.pi / 2))
def sin(x):
    """Sine elementwise."""
    return np.sin(x)


@sin.gradient
def _(op, grad):
    return grad * cos(op.inputs[0])


@op("Cos", api=("cos", "math.cos"), reference=lambda x: np.sin(x + np.pi / 2))
def cos(x):
    """Cosine elementwise."""
    return np.cos(x)


@cos.gradient
def _(op, grad):
    return negative(grad) * sin(op.inputs[0])


@op("Reciprocal", inputs={"x": m.nonzero}, api=("reciprocal", "math.reciprocal"),
    reference=lambda x: np.power(x.astype(np.float64), -1))
def reciprocal(x):
    """``1 / x`` elementwise."""
    return _quiet(np.reciprocal, x)


@reciprocal.gradient
def _(op, grad):
    y = op.outputs[0]
    # d(1/x) = -1/x^2 = -y^2, grouped as TF's kernel does ((-g y) y): y y alone overflows
    # float32 at |x| < 5.4e-20 where -g y^2 fits
    return (negative(grad) * y) * y


# -- binary functions (broadcasting) ---------------------------------------------------------
def _int_pow(x, y):
    if np.any(np.asarray(y) < 0):
        raise errors.InvalidArgumentError(
            None, None, "Integers to negative integer powers are not allowed")
    return np.power(x, y)


def _ref_pow(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind != "f":
        return x ** y
    # exp(y log x) in extended precision: in float64 the rounding of y log x (~eps |y log x|)
    # is a relative error of the result, 4e-14 at 1.109 ** 3600 - the oracle must be better
    ld = np.longdouble
    return np.exp(y.astype(ld) * np.log(x.astype(ld))).astype(np.result_type(x, y))


@op("Pow", inputs={"x": m.positive, "y": m.reals}, signature="broadcast", dtypes=NUM,
    api=("pow", "math.pow"), reference=_ref_pow)
def pow(x, y):
    """``x ** y`` elementwise with broadcasting (``**`` on Tensors)."""
    if np.asarray(x).dtype.kind in "iu":
        return _int_pow(x, y)
    return _quiet(np.power, x, y)


@pow.gradient
def _(op, grad):
    x, y = op.inputs
    z = op.outputs[0]
    gx = grad * y * pow(x, y - 1.0)
    # d/dy x^y = x^y log x; no real value for x <= 0: 0 there (TF's guard). log sees 1 in
    # place of x <= 0 (no -inf/nan to leak through the mask), and the mask zeroes it.
    mask = cast(greater(x, 0.0), x.dtype)
    log_x = log(x * mask + (1.0 - mask)) * mask
    return [gx, grad * z * log_x]


_BINARY_TIES = ({"shapes": {"x": (4,), "y": (4,)},
                  "values": {"x": [1.0, 2.0, -3.0, 0.0], "y": [1.0, 0.5, -3.0, 0.0]}},
                 {"shapes": {"x": (2, 3), "y": ()},
                  "values": {"x": [[0.0, 1.0, -1.0], [0.0, 2.0, 0.0]], "y": 0.0}})


@op("Maximum", inputs=("x", "y"), signature="broadcast", dtypes=NUM, ties=True,
    examples=_BINARY_TIES,
    api=("maximum", "math.maximum"),
    reference=lambda x, y: np.where(np.asarray(x) >= y, x, y))
def maximum(x, y):
    """Elementwise maximum with broadcasting."""
    return np.maximum(x, y)


@maximum.gradient
def _(op, grad):
    x, y = op.inputs
    # TF: x gets the gradient where x >= y (ties too), y where x < y.
    return [grad * cast(greater_equal(x, y), grad.dtype), grad * cast(less(x, y), grad.dtype)]


@op("Minimum", inputs=("x", "y"), signature="broadcast", dtypes=NUM, ties=True,
    examples=_BINARY_TIES,
    api=("minimum", "math.minimum"),
    reference=lambda x, y: np.where(np.asarray(x) <= y, x, y))
def minimum(x, y):
    """Elementwise minimum with broadcasting."""
    return np.minimum(x, y)


@minimum.gradient
def _(op, grad):
    x, y = op.inputs
    # TF: x gets the gradient where x <= y (ties too), y where x > y.
    return [grad * cast(less_equal(x, y), grad.dtype), grad * cast(greater(x, y), grad.dtype)]


def _check_int_divisor(y) -> None:
    if np.any(np.asarray(y) == 0):
        raise errors.InvalidArgumentError(None, None, "Integer division by zero")


def _ref_floordiv(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind in "iu":
        return np.asarray((x - np.mod(x, y)) // y)  # exact for ints
    return np.floor(x.astype(np.float64) / y.astype(np.float64))


@op("FloorDiv", inputs={"x": m.reals, "y": m.nonzero}, signature="broadcast", dtypes=NUM,
    differentiable=False, api=("floordiv", "floor_div", "math.floordiv", "math.floor_div"),
    reference=_ref_floordiv)
def floordiv(x, y):
    """``floor(x / y)`` elementwise (``//`` on Tensors); integer division by 0 is an error."""
    if np.asarray(x).dtype.kind in "iu":
        _check_int_divisor(y)
        return np.floor_divide(x, y)
    return _quiet(lambda a, b: np.floor(a / b), x, y)  # TF: floor(x / y), not Python's //


def _ref_floormod(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind in "iu":
        return x - y * _ref_floordiv(x, y)
    r = np.fmod(x, y)  # TF's kernel: fmod, shifted by y when the signs differ
    return np.where((r != 0) & ((r < 0) != (y < 0)), r + y, r)


@op("FloorMod", inputs={"x": m.reals, "y": m.nonzero}, signature="broadcast", dtypes=NUM,
    api=("floormod", "mod", "math.floormod", "math.mod"), reference=_ref_floormod)
def floormod(x, y):
    """``x - floor(x / y) * y`` elementwise, sign of y (``%`` on Tensors)."""
    if np.asarray(x).dtype.kind in "iu":
        _check_int_divisor(y)
    return _quiet(np.mod, x, y)


@floormod.gradient
def _(op, grad):
    x, y = op.inputs
    # TF: (g, -g * floor(x / y)), with the quotient the forward used: out = x - q y, so
    # q = (x - out) / y rounded to an integer. floor(x / y) itself can disagree where x / y
    # rounds (float32 x = -1.4e-45, y = 2: out = 2.0 and q = -1, but x / y rounds to -0).
    q = floordiv(realdiv(x - op.outputs[0], y) + 0.5, 1.0)
    return [grad, negative(grad) * q]


@export("div")
def div(x: Any, y: Any, name: str | None = None) -> Tensor:
    """TF1's ``div``: Python 2 division — floor division for integers, else ``x / y``."""
    def is_integer(v: Any) -> bool:
        d = getattr(v, "dtype", None)  # Tensors and Variables
        return np.asarray(v).dtype.kind in "iu" if d is None else _dt.as_dtype(d).is_integer
    if is_integer(y if hasattr(y, "dtype") and not hasattr(x, "dtype") else x):
        return floordiv(x, y, name=name or "div")
    return realdiv(x, y, name=name or "div")


# -- logical (bool, not differentiable) ------------------------------------------------------
_LOGICAL = {"dtypes": ("bool",), "out_dtype": "bool", "differentiable": False}


@op("LogicalAnd", inputs={"x": m.boolean, "y": m.boolean}, signature="broadcast", **_LOGICAL,
    api=("logical_and", "math.logical_and"), reference=lambda x, y: np.minimum(x, y))
def logical_and(x, y):
    """``x AND y`` elementwise with broadcasting (``&`` on Tensors)."""
    return np.logical_and(x, y)


@op("LogicalOr", inputs={"x": m.boolean, "y": m.boolean}, signature="broadcast", **_LOGICAL,
    api=("logical_or", "math.logical_or"), reference=lambda x, y: np.maximum(x, y))
def logical_or(x, y):
    """``x OR y`` elementwise with broadcasting (``|`` on Tensors)."""
    return np.logical_or(x, y)


@op("LogicalNot", inputs={"x": m.boolean}, **_LOGICAL,
    api=("logical_not", "math.logical_not"), reference=lambda x: x == np.False_)
def logical_not(x):
    """``NOT x`` elementwise (``~`` on Tensors)."""
    return np.logical_not(x)


# -- clip_by_value ---------------------------------------------------------------------------
@op("ClipByValue", inputs={"t": m.reals, "clip_value_min": m.reals, "clip_value_max": m.reals},
    signature="broadcast", ties=True, dtypes=NUM,
    reference=lambda t, lo, hi: np.where(np.where(t > hi, hi, t) < lo, lo,
                                         np.where(t > hi, hi, t)),
    examples=({"shapes": {"t": (2, 3), "clip_value_min": (), "clip_value_max": ()}},
              {"shapes": {"t": (2, 3), "clip_value_min": (3,), "clip_value_max": (2, 1)}},
              {"shapes": {"t": (4,), "clip_value_min": (4,), "clip_value_max": (4,)}},
              {"shapes": {"t": (5,), "clip_value_min": (), "clip_value_max": ()},
               "values": {"t": [-2.0, -1.0, 0.0, 1.0, 2.0], "clip_value_min": -1.0,
                          "clip_value_max": 1.0}}))
def _clip_by_value(t, clip_value_min, clip_value_max):
    """``max(min(t, clip_value_max), clip_value_min)`` with broadcasting."""
    return np.maximum(np.minimum(t, clip_value_max), clip_value_min)


@_clip_by_value.gradient
def _(op, grad):
    t, lo, hi = op.inputs
    # TF1's composition maximum(minimum(t, hi), lo) with Minimum/Maximum's tie conventions:
    # t gets the gradient where lo <= t <= hi (the bounds included), lo where t < lo, hi where
    # t > hi -- the TF2 ClipByValue masks, also right when lo > hi (the output is then lo).
    dt = grad.dtype
    to_lo = logical_or(less(t, lo), less(hi, lo))
    to_hi = logical_and(greater(t, hi), greater_equal(hi, lo))
    to_t = logical_and(greater_equal(t, lo), less_equal(t, hi))
    return [grad * cast(to_t, dt), grad * cast(to_lo, dt), grad * cast(to_hi, dt)]


@export("clip_by_value")
def clip_by_value(t: Any, clip_value_min: Any, clip_value_max: Any,
                  name: str | None = None) -> Tensor:
    """``t`` clipped to [clip_value_min, clip_value_max] (bounds broadcast against ``t``).

    Like TF1, the bounds may not make the result larger than ``t``: ValueError.
    """
    out = _clip_by_value(t, clip_value_min, clip_value_max, name=name or "clip_by_value")
    t_shape = out.op.inputs[0].shape
    if not out.shape.is_compatible_with(t_shape):
        raise ValueError(f"Shapes {t_shape} and {out.shape} are not compatible")
    return out
