"""Seeded gradient faults: one per bug pattern of ``gradient-bugs.md`` (rows 1-22).

Each fault is a registered engine op (``Fault*``) whose kernel is right and whose gradient
is wrong in one realistic way, with its tester metadata, so the property suite can also
put it through the generated checks. ``register()`` adds them to the registry and returns
the catalogue; ``unregister()`` removes them. Machinery faults (aggregation, stop_gradient)
and user-level composites are in ``MACHINERY`` and ``COMPOSITES``.

>>> faults = register()
>>> len(faults) >= 25, all(f.op.startswith("Fault") for f in faults)
(True, True)
>>> unregister()
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import gradverify.engine as tf
from gradverify.engine import meta as m
from gradverify.engine import registry
from gradverify.engine.registry import op


@dataclass
class Fault:
    """A seeded fault: the op, its bug-pattern row, how to call it and what must be found.

    expect: substrings that must appear in the report's diagnosis or in a failing check's
    name/reason. order: the derivative order that exposes it (1 or 2).
    """

    op: str
    row: int
    call: Callable[..., Any]
    inputs: Callable[[np.random.Generator], list[np.ndarray]]
    expect: tuple[str, ...]
    order: int = 1
    mode: str = "auto"
    note: str = ""
    check: dict[str, Any] = field(default_factory=dict)


FAULTS: list[Fault] = []


def _fault(name: str, row: int, call: Callable, inputs: Callable, *expect: str,
           order: int = 1, mode: str = "auto", **kw: Any) -> None:
    FAULTS.append(Fault(name, row, call, inputs, tuple(expect), order, mode, **kw))


def _normal(*shape: int) -> Callable[[np.random.Generator], list[np.ndarray]]:
    return lambda rng: [rng.standard_normal(shape)]


def _define() -> None:
    from gradverify.engine.ops.array_ops import expand_dims, reshape, transpose
    from gradverify.engine.ops.core_ops import broadcast_like, cast, shape, stop_gradient
    from gradverify.engine.ops.math_ops import matmul
    from gradverify.engine.ops.reduction_ops import reduce_sum

    fop = registry.lookup  # real ops, to build correct parts of the rules

    # -- row 1: matrix rules: a missing transpose, a transposed result, a swapped order ----
    @op("FaultMatMulNoTranspose", inputs=("a", "b"), signature="(m,n),(n,p)->(m,p)",
        reference=np.matmul)
    def fault_matmul_no_transpose(a, b):
        return np.matmul(a, b)

    @fault_matmul_no_transpose.gradient
    def _(op, grad):
        a, b = op.inputs
        return [matmul(grad, b), matmul(a, grad, transpose_a=True)]  # forgot b^T

    _fault("FaultMatMulNoTranspose", 1, fault_matmul_no_transpose,
           lambda rng: [rng.standard_normal((3, 3)), rng.standard_normal((3, 3))],
           "wrong for input 0")

    @op("FaultMatMulTransposedGrad", inputs=("a", "b"), signature="(m,n),(n,p)->(m,p)",
        reference=np.matmul)
    def fault_matmul_transposed(a, b):
        return np.matmul(a, b)

    @fault_matmul_transposed.gradient
    def _(op, grad):
        a, b = op.inputs
        return [transpose(matmul(grad, b, transpose_b=True)), matmul(a, grad, transpose_a=True)]

    _fault("FaultMatMulTransposedGrad", 1, fault_matmul_transposed,
           lambda rng: [rng.standard_normal((4, 4)), rng.standard_normal((4, 4))],
           "transposed (x0)")

    @op("FaultMatMulFactorOrder", inputs=("a", "b"), signature="(m,n),(n,p)->(m,p)",
        reference=np.matmul)
    def fault_matmul_order(a, b):
        return np.matmul(a, b)

    @fault_matmul_order.gradient
    def _(op, grad):
        a, b = op.inputs
        return [matmul(grad, b, transpose_b=True), matmul(grad, a, transpose_b=True)]

    _fault("FaultMatMulFactorOrder", 1, fault_matmul_order,
           lambda rng: [rng.standard_normal((3, 3)), rng.standard_normal((3, 3))],
           "wrong for input 1")

    # -- row 2: sign flips --------------------------------------------------------------
    @op("FaultTanhSign", reference=np.tanh)
    def fault_tanh_sign(x):
        return np.tanh(x)

    @fault_tanh_sign.gradient
    def _(op, grad):
        y = op.outputs[0]
        return grad * (y * y - 1.0)

    _fault("FaultTanhSign", 2, fault_tanh_sign, _normal(3, 4), "sign flipped")

    @op("FaultSubSign", inputs=("x", "y"), signature="broadcast", reference=np.subtract)
    def fault_sub_sign(x, y):
        return np.subtract(x, y)

    @fault_sub_sign.gradient
    def _(op, grad):
        return [grad, grad]

    _fault("FaultSubSign", 2, fault_sub_sign,
           lambda rng: [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))],
           "sign flipped", "wrong for input 1")

    # -- row 3: constant factors --------------------------------------------------------
    @op("FaultL2LossDouble", inputs={"t": m.reals}, signature="custom",
        reference=lambda t: np.sum(t * t) / 2)
    def fault_l2(t):
        return np.asarray(np.sum(t * t) / 2, dtype=t.dtype)

    fault_l2.shape_rule(lambda ctx: tf.TensorShape([]))

    @fault_l2.gradient
    def _(op, grad):
        return 2.0 * op.inputs[0] * grad  # the derivative of sum(t^2), not sum(t^2)/2

    _fault("FaultL2LossDouble", 3, fault_l2, _normal(5), "scaled by a constant (2x)")

    @op("FaultSquareHalf", reference=np.square)
    def fault_square_half(x):
        return x * x

    @fault_square_half.gradient
    def _(op, grad):
        return grad * op.inputs[0]  # x used twice, one use forgotten

    _fault("FaultSquareHalf", 3, fault_square_half, _normal(6), "scaled by a constant (0.5x)")

    # -- row 4: the upstream gradient ignored -------------------------------------------
    @op("FaultSigmoidNoUpstream", reference=lambda x: 1 / (1 + np.exp(-x)))
    def fault_sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    @fault_sigmoid.gradient
    def _(op, grad):
        y = op.outputs[0]
        return y * (1.0 - y)

    _fault("FaultSigmoidNoUpstream", 4, fault_sigmoid, _normal(4),
           "ignores the upstream gradient")

    @op("FaultScaleNoUpstream", inputs=("x", "y"), signature="broadcast",
        reference=np.multiply)
    def fault_mul_upstream(x, y):
        return np.multiply(x, y)

    @fault_mul_upstream.gradient
    def _(op, grad):
        x, y = op.inputs
        return [grad * y, x + 0.0 * grad]  # input 1 assumes an upstream of ones

    _fault("FaultScaleNoUpstream", 4, fault_mul_upstream,
           lambda rng: [rng.standard_normal(4), rng.standard_normal(4)],
           "ignores the upstream gradient")

    # -- row 5: a formula valid on part of the domain only ------------------------------
    @op("FaultEluOneBranch", kinks=(0.0,),
        reference=lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))))
    def fault_elu(x):
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))

    @fault_elu.gradient
    def _(op, grad):
        return grad * (op.outputs[0] + 1.0)  # right for x < 0 only (y + 1 = e^x there)

    _fault("FaultEluOneBranch", 5, fault_elu,
           lambda rng: [np.array([-2.0, -0.5, 0.7, 1.5, 3.0])], "gradient")

    @op("FaultAbsPositive", kinks=(0.0,), reference=np.abs)
    def fault_abs(x):
        return np.abs(x)

    @fault_abs.gradient
    def _(op, grad):
        return grad * 1.0  # d|x|/dx = 1: true for x > 0 only

    _fault("FaultAbsPositive", 5, fault_abs,
           lambda rng: [np.array([-2.0, -0.5, 0.7, 1.5])], "gradient")

    # FloorMod's quotient unfloored: the harness must FAIL a wrong rule at ordinary inputs
    # (periods far above the step), whatever it says where the period is below the step
    @op("FaultFloorModQuotient", inputs={"x": m.reals, "y": m.nonzero}, signature="broadcast",
        reference=np.mod)
    def fault_floormod(x, y):
        return np.mod(x, y)

    @fault_floormod.gradient
    def _(op, grad):
        x, y = op.inputs
        return [grad, -grad * x / y]  # the quotient unfloored: right where y divides x only

    _fault("FaultFloorModQuotient", 5, fault_floormod,
           lambda rng: [np.array([1.3, -2.2, 5.5, 0.4]), np.array([0.7, 0.9, -2.0, 3.0])],
           "gradient", "wrong for input 1 (x1) only")
    _fault("FaultFloorModQuotient", 5, fault_floormod,
           lambda rng: [np.array([1.3, -2.2, 5.5, 0.4]), np.array([0.7, 0.9, -2.0, 3.0])],
           "gradient", mode="fast")

    # A function WITH jumps, wrong at ordinary inputs: x's gradient scaled by 1.5. The
    # entries whose period is far below the step (x / y ~ 1e6 .. 1e15) jump within every
    # step and are left out of the probes; the ordinary entries beside them still FAIL -
    # a slope error is not a jump.
    @op("FaultFloorModSlope", inputs={"x": m.reals, "y": m.nonzero}, signature="broadcast",
        reference=np.mod)
    def fault_floormod_slope(x, y):
        return np.mod(x, y)

    @fault_floormod_slope.gradient
    def _(op, grad):
        x, y = op.inputs
        return [grad * 1.5, -grad * fop("FloorDiv")(x, y)]

    def _with_jumps(rng: np.random.Generator) -> list[np.ndarray]:
        y = rng.uniform(0.5, 3.0, 6) * rng.choice([-1.0, 1.0], 6)
        x = rng.uniform(-4.0, 4.0, 6)
        x[:2] = [893672.5, -3e15]  # periods far below the step
        return [x, y]

    _fault("FaultFloorModSlope", 5, fault_floormod_slope, _with_jumps, "gradient")
    _fault("FaultFloorModSlope", 5, fault_floormod_slope, _with_jumps, "gradient",
           mode="fast")

    # -- row 6: an attribute's branch ignored ---------------------------------------------
    @op("FaultMatMulIgnoresFlag", inputs=("a", "b"), attrs={"transpose_a": False},
        signature="(m,n),(n,p)->(m,p)", choices={"transpose_a": m.TransposeFlag(of=0)},
        reference=lambda a, b, transpose_a: (a.T if transpose_a else a) @ b)
    def fault_matmul_flag(a, b, *, transpose_a):
        return np.matmul(a.T if transpose_a else a, b)

    @fault_matmul_flag.shape_rule
    def _(ctx):
        a, b = ctx.input_shapes
        rows = a[1] if ctx.attrs["transpose_a"] else a[0]
        return tf.TensorShape([rows.value, b[1].value])

    @fault_matmul_flag.gradient
    def _(op, grad):
        a, b = op.inputs  # as if transpose_a were False, whatever it is
        return [matmul(grad, b, transpose_b=True), matmul(a, grad, transpose_a=True)]

    _fault("FaultMatMulIgnoresFlag", 6,
           lambda a, b: fault_matmul_flag(a, b, transpose_a=True),
           lambda rng: [rng.standard_normal((3, 3)), rng.standard_normal((3, 3))], "gradient")

    @op("FaultSumWrongAxis", attrs={"axis": 1}, signature="custom",
        choices={"axis": m.AxisChoice(of=0)},
        reference=lambda x, axis: np.sum(x, axis=axis))
    def fault_sum_axis(x, *, axis):
        return np.sum(x, axis=axis, dtype=x.dtype)

    @fault_sum_axis.shape_rule
    def _(ctx):
        dims = ctx.input_shapes[0].as_list()
        del dims[ctx.attrs["axis"]]
        return tf.TensorShape(dims)

    @fault_sum_axis.gradient
    def _(op, grad):
        return broadcast_like(expand_dims(grad, 0), op.inputs[0])  # axis 0, not op's axis

    _fault("FaultSumWrongAxis", 6, fault_sum_axis, _normal(4, 4), "gradient")

    # -- row 7: normalisation of a mean -------------------------------------------------
    @op("FaultMeanNormalisation", attrs={"axis": 1}, signature="custom",
        reference=lambda x, axis: np.mean(x, axis=axis))
    def fault_mean(x, *, axis):
        return np.mean(x, axis=axis, dtype=x.dtype)

    fault_mean.shape_rule(lambda ctx: tf.TensorShape(
        [d for i, d in enumerate(ctx.input_shapes[0].as_list()) if i != ctx.attrs["axis"]]))

    @fault_mean.gradient
    def _(op, grad):
        x = op.inputs[0]
        n = float(np.prod(x.shape.as_list()))  # all elements, not the reduced count
        return broadcast_like(expand_dims(grad, op.attrs["axis"]), x) / n

    _fault("FaultMeanNormalisation", 7, fault_mean, _normal(3, 5),
           "scaled by a constant (0.3333333x)")

    # -- row 8: broadcast reductions over the wrong axes --------------------------------
    @op("FaultBiasAddWrongAxis", inputs=("value", "bias"), signature="custom",
        reference=lambda v, b: v + b)
    def fault_bias_add(value, bias):
        return value + bias

    fault_bias_add.shape_rule(lambda ctx: ctx.input_shapes[0])

    @fault_bias_add.gradient
    def _(op, grad):
        return [grad, reduce_sum(grad, axis=1)]  # should sum over the batch axis 0

    _fault("FaultBiasAddWrongAxis", 8, fault_bias_add,
           lambda rng: [rng.standard_normal((4, 4)), rng.standard_normal(4)],
           "wrong for input 1")

    # -- row 9: right only for rank 2 ---------------------------------------------------
    @op("FaultTransposeRank2", attrs={"perm": (1, 0)}, signature="custom",
        reference=lambda x, perm: np.transpose(x, perm))
    def fault_transpose(x, *, perm):
        return np.transpose(x, perm)

    fault_transpose.shape_rule(lambda ctx: tf.TensorShape(
        [ctx.input_shapes[0].as_list()[p] for p in ctx.attrs["perm"]]))

    @fault_transpose.gradient
    def _(op, grad):
        return transpose(grad, op.attrs["perm"])  # the perm, not its inverse

    _fault("FaultTransposeRank2", 9, lambda x: fault_transpose(x, perm=(1, 2, 0)),
           _normal(2, 2, 2), "gradient")

    @op("FaultSoftmaxAxis1", signature="custom",
        reference=lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True))
    def fault_softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    fault_softmax.shape_rule(lambda ctx: ctx.input_shapes[0])

    @fault_softmax.gradient
    def _(op, grad):
        y = op.outputs[0]
        return (grad - reduce_sum(grad * y, 1, keepdims=True)) * y  # axis 1, not -1

    _fault("FaultSoftmaxAxis1", 9, fault_softmax, _normal(2, 3, 3), "gradient")

    # -- row 10: a negative axis mishandled ---------------------------------------------
    @op("FaultLogSumExpNegAxis", attrs={"axis": -1}, signature="custom",
        reference=lambda x, axis: np.log(np.sum(np.exp(x), axis=axis)))
    def fault_lse(x, *, axis):
        mx = np.max(x, axis=axis, keepdims=True)
        return np.squeeze(mx, axis) + np.log(np.sum(np.exp(x - mx), axis=axis))

    fault_lse.shape_rule(lambda ctx: tf.TensorShape(
        [d for i, d in enumerate(ctx.input_shapes[0].as_list())
         if i != ctx.attrs["axis"] % ctx.input_shapes[0].ndims]))

    @fault_lse.gradient
    def _(op, grad):
        x, y = op.inputs[0], op.outputs[0]
        axis = abs(op.attrs["axis"])  # -1 taken as axis 1
        return broadcast_like(expand_dims(grad, axis), x) * tf.exp(
            x - broadcast_like(expand_dims(y, axis), x))

    _fault("FaultLogSumExpNegAxis", 10, fault_lse, _normal(3, 3, 3), "gradient")

    # -- row 11: duplicate indices overwritten ------------------------------------------
    @op("FaultGatherOverwrite", inputs={"params": m.reals, "indices": m.indices(of="params")},
        signature="custom", reference=lambda p, i: p[i])
    def fault_gather(params, indices):
        return params[indices]

    fault_gather.shape_rule(lambda ctx: tf.TensorShape(
        ctx.input_shapes[1].as_list() + ctx.input_shapes[0].as_list()[1:]))

    @op("FaultScatterOverwrite", inputs={"grad": m.reals, "indices": m.indices(of="like"),
                                         "like": m.Domain("reals", differentiable=False)},
        signature="custom", differentiable=False)
    def fault_scatter(grad, indices, like):
        out = np.zeros_like(like)
        out[indices] = grad  # duplicates: the last write wins
        return out

    fault_scatter.shape_rule(lambda ctx: ctx.input_shapes[2])

    @fault_gather.gradient
    def _(op, grad):
        return [fault_scatter(grad, op.inputs[1], op.inputs[0]), None]

    _fault("FaultGatherOverwrite", 11,
           lambda p: fault_gather(p, np.array([0, 2, 2, 1, 2], np.int32)),
           _normal(4, 3), "gradient")

    # -- row 12: NaN at 0 where a finite derivative exists -----------------------------
    @op("FaultSquareRatio", reference=np.square)
    def fault_square_ratio(x):
        return x * x

    @fault_square_ratio.gradient
    def _(op, grad):
        x, y = op.inputs[0], op.outputs[0]
        return grad * 2.0 * y / x  # 0/0 at x == 0

    _fault("FaultSquareRatio", 12, fault_square_ratio,
           lambda rng: [np.array([0.0, 1.5, -2.0])], "hygiene.finite")

    # -- row 13: the x/out trick with zeros ---------------------------------------------
    @op("FaultProdQuotient", signature="custom", reference=lambda x: np.prod(x))
    def fault_prod(x):
        return np.asarray(np.prod(x), dtype=x.dtype)

    fault_prod.shape_rule(lambda ctx: tf.TensorShape([]))

    @fault_prod.gradient
    def _(op, grad):
        return grad * op.outputs[0] / op.inputs[0]  # prod / x: 0/0 where x == 0

    _fault("FaultProdQuotient", 13, fault_prod,
           lambda rng: [np.array([2.0, 0.0, 3.0, -1.0])], "gradient")

    # -- row 15: a tie convention outside the subgradient ------------------------------
    @op("FaultMaxTies", signature="custom", ties=True, reference=lambda x: np.max(x))
    def fault_max(x):
        return np.asarray(np.max(x), dtype=x.dtype)

    fault_max.shape_rule(lambda ctx: tf.TensorShape([]))

    @fault_max.gradient
    def _(op, grad):
        x, y = op.inputs[0], op.outputs[0]
        hit = cast(tf.equal(x, y), x.dtype)
        return grad * hit * reduce_sum(hit)  # times the tie count instead of divided by it

    _fault("FaultMaxTies", 15, fault_max, lambda rng: [np.array([1.0, 3.0, 3.0, -2.0])],
           "gradient")

    # The joint tie faults: each coordinate alone stays inside its one-sided bracket
    # [0, 1]; only the joint (Clarke) judgement sees that (1, 1) and (0, 0) are outside
    # the hull {(s, 1 - s)} of the pieces' gradients.
    @op("FaultMaximumTieBoth", inputs=("x", "y"), signature="broadcast", ties=True,
        reference=np.maximum)
    def fault_max_both(x, y):
        return np.maximum(x, y)

    @fault_max_both.gradient
    def _(op, grad):
        x, y = op.inputs
        return [grad * cast(tf.greater_equal(x, y), grad.dtype),
                grad * cast(tf.greater_equal(y, x), grad.dtype)]  # a tie: both get it all

    _fault("FaultMaximumTieBoth", 15, fault_max_both,
           lambda rng: [np.array([1.0, 2.0, -3.0, 0.5]), np.array([1.0, 0.5, -3.0, 0.5])],
           "gradient")
    _fault("FaultMaximumTieBoth", 15, fault_max_both,
           lambda rng: [np.array([1.0, 2.0, -3.0, 0.5]), np.array([1.0, 0.5, -3.0, 0.5])],
           "gradient", mode="fast")

    @op("FaultMaximumTieNone", inputs=("x", "y"), signature="broadcast", ties=True,
        reference=np.maximum)
    def fault_max_none(x, y):
        return np.maximum(x, y)

    @fault_max_none.gradient
    def _(op, grad):
        x, y = op.inputs
        return [grad * cast(tf.greater(x, y), grad.dtype),
                grad * cast(tf.greater(y, x), grad.dtype)]  # a tie: nobody gets anything

    _fault("FaultMaximumTieNone", 15, fault_max_none,
           lambda rng: [np.array([[0.0, 1.0], [2.0, -1.0]]), np.array([[0.0, 1.0], [1.0, 3.0]])],
           "gradient")
    _fault("FaultMaximumTieNone", 15, fault_max_none,
           lambda rng: [np.array([[0.0, 1.0], [2.0, -1.0]]), np.array([[0.0, 1.0], [1.0, 3.0]])],
           "gradient", mode="fast")

    @op("FaultReduceMaxTieAll", signature="custom", ties=True, reference=lambda x: np.max(x))
    def fault_rmax_all(x):
        return np.asarray(np.max(x), dtype=x.dtype)

    fault_rmax_all.shape_rule(lambda ctx: tf.TensorShape([]))

    @fault_rmax_all.gradient
    def _(op, grad):
        x, y = op.inputs[0], op.outputs[0]
        return grad * cast(tf.equal(x, y), x.dtype)  # every tied maximum gets all of it

    _fault("FaultReduceMaxTieAll", 15, fault_rmax_all,
           lambda rng: [np.array([0.5, 3.0, 3.0, 3.0, -2.0])], "gradient")

    # -- probes must not cancel: a fault on two entries with opposite signs -------------
    @op("FaultTanhTwoEntries", reference=np.tanh)
    def fault_tanh_two(x):
        return np.tanh(x)

    @fault_tanh_two.gradient
    def _(op, grad):
        y = op.outputs[0]
        n = int(np.prod(y.shape.as_list()))
        bump = np.zeros(n)
        bump[n // 3], bump[2 * n // 3] = 0.01, -0.01  # +1% and -1% on two entries
        return grad * (1.0 - y * y) * (1.0 + tf.constant(bump.reshape(y.shape.as_list())))

    _fault("FaultTanhTwoEntries", 2, fault_tanh_two,
           lambda rng: [np.full((40, 50), 0.3)], "gradient", mode="fast")

    # -- resolution: every entry off by 1e-6 relative on 1e5 elements ---------------------
    @op("FaultTanhMicro", reference=np.tanh)
    def fault_tanh_micro(x):
        return np.tanh(x)

    @fault_tanh_micro.gradient
    def _(op, grad):
        y = op.outputs[0]
        return grad * (1.0 - y * y) * (1.0 + 1e-6)

    _fault("FaultTanhMicro", 3, fault_tanh_micro, _normal(100_000), "gradient",
           mode="fast")

    # -- rows 16/17: right first order, wrong second order -------------------------------
    @op("FaultTanhSecondOrder", reference=np.tanh)
    def fault_tanh2(x):
        return np.tanh(x)

    @fault_tanh2.gradient
    def _(op, grad):
        y = stop_gradient(op.outputs[0])  # a saved intermediate treated as a constant
        return grad * (1.0 - y * y)

    _fault("FaultTanhSecondOrder", 16, fault_tanh2, _normal(4), "gradient", order=2)

    @op("FaultXentSecondOrder", inputs={"features": m.reals, "labels": m.probabilities},
        outputs=("loss", "backprop"), signature="(c),(c)->(),(c)")
    def fault_xent(features, labels):
        z = features - features.max(-1, keepdims=True)
        e = np.exp(z)
        s = e.sum(-1, keepdims=True)
        return np.sum(labels * (np.log(s) - z), -1), e / s - labels

    @fault_xent.gradient
    def _(op, grad_loss, grad_backprop):  # ignores the gradient reaching backprop
        if grad_loss is None:
            return [None, None]
        g = expand_dims(grad_loss, -1)
        return [g * op.outputs[1], g * -tf.nn.log_softmax(op.inputs[0])]

    _fault("FaultXentSecondOrder", 17, lambda z, y: fault_xent(z, y)[0],
           lambda rng: [rng.standard_normal((3, 4)),
                        np.eye(4)[rng.integers(0, 4, 3)]], "gradient", order=2)

    # -- row 20: only wrong in float32 --------------------------------------------------
    @op("FaultTanhHalfPrecision", reference=np.tanh)
    def fault_tanh16(x):
        return np.tanh(x)

    @fault_tanh16.gradient
    def _(op, grad):
        y = op.outputs[0]
        out = grad * (1.0 - y * y)
        if out.dtype == tf.float32:  # "accumulates" in float16 for float32 inputs
            out = cast(cast(out, tf.float16), tf.float32)
        return out

    _fault("FaultTanhHalfPrecision", 20, fault_tanh16,
           lambda rng: [rng.standard_normal(6).astype(np.float32)],
           "wrong only in low precision")

    @op("FaultMeanCountOverflow", signature="custom", reference=lambda x: np.mean(x),
        examples=({"shapes": {"x": (40000,)}}, {"shapes": {"x": (3, 4)}}))
    def fault_mean_count(x):
        return np.asarray(np.mean(x), dtype=x.dtype)

    fault_mean_count.shape_rule(lambda ctx: tf.TensorShape([]))

    @fault_mean_count.gradient
    def _(op, grad):
        x = op.inputs[0]
        count = cast(tf.size(x), x.dtype)
        wrapped = count - 65536.0 * cast(tf.greater(count, 32767.0), x.dtype)  # an int16 count
        return broadcast_like(grad, x) / wrapped

    _fault("FaultMeanCountOverflow", 20, fault_mean_count,
           lambda rng: [rng.standard_normal(40000)], "gradient", mode="fast")

    # -- row 21: a random forward --------------------------------------------------------
    @op("FaultNoisyForward", stateful=True, reference=lambda x: x)
    def fault_noisy(ctx, x):
        return x + 1e-9 * ctx.rng.standard_normal(np.shape(x))

    @fault_noisy.gradient
    def _(op, grad):
        return grad

    _fault("FaultNoisyForward", 21, fault_noisy, _normal(3), "forward not deterministic")

    # -- row 22: a kernel that mutates its input ----------------------------------------
    @op("FaultMutatesInput", reference=lambda x: 2 * x)
    def fault_mutates(x):
        if x.flags.writeable:
            x *= 2.0
            return x
        return 2.0 * x

    @fault_mutates.gradient
    def _(op, grad):
        return 2.0 * grad

    _fault("FaultMutatesInput", 22, fault_mutates, _normal(3), "input mutated")

    # -- rows 1 and 3 again, the sensitivity bar: off by one part in a million -------------
    for name, base, inputs in (
            ("FaultMatMulTiny", "MatMul",
             lambda rng: [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))]),
            ("FaultTanhTiny", "Tanh", _normal(5)),
            ("FaultL2LossTiny", "L2Loss", _normal(6)),
            ("FaultXentTiny", "SoftmaxCrossEntropyWithLogits",
             lambda rng: [rng.standard_normal((3, 5)), np.eye(5)[rng.integers(0, 5, 3)]])):
        _tiny(name, fop(base), inputs)
    _ = (reshape, shape)


def _tiny(name: str, base: Any, inputs: Callable) -> None:
    """``base`` with every gradient multiplied by 1 + 1e-6."""
    tiny = op(name, inputs=base.inputs, outputs=base.outputs, attrs=base.attrs,
              signature=base.signature, dtypes=base.dtypes, reference=base.reference,
              doc=f"{base.type} with its gradient off by 1e-6 relative")(base.kernel)
    tiny.shape_fn = base.shape_fn

    @tiny.gradient
    def _(op, *grads):
        grads_in = base.grad_fn(op, *grads)
        grads_in = grads_in if isinstance(grads_in, (list, tuple)) else [grads_in]
        return [None if g is None else g * (1.0 + 1e-6) for g in grads_in]

    if len(base.outputs) > 1:
        call = lambda *xs: tiny(*xs)[0]
    else:
        call = tiny
    _fault(name, 3, call, inputs, "scaled by a constant (1.000001x)")


_REGISTERED: list[str] = []


def register() -> list[Fault]:
    """Register every fault op (idempotent) and return the catalogue."""
    if not _REGISTERED:
        FAULTS.clear()
        before = set(registry.list_ops())
        _define()
        _REGISTERED.extend(sorted(set(registry.list_ops()) - before))
    return list(FAULTS)


def unregister() -> None:
    """Remove every fault op from the registry."""
    for name in _REGISTERED:
        registry.unregister(name)
    _REGISTERED.clear()
    FAULTS.clear()


# -- faults in the gradient machinery and in user code ----------------------------------------
def _where_sqrt(x: Any) -> Any:
    # The classic masked-branch NaN: sqrt's gradient at x < 0 is NaN, and select's zero
    # branch multiplies it (0 * NaN = NaN) into the result.
    return tf.where(x > 0, tf.sqrt(x), tf.zeros_like(x))


COMPOSITES: list[Fault] = [
    Fault("where(x > 0, sqrt(x), 0)", 14, _where_sqrt,
          lambda rng: [np.array([-1.0, 0.5, 2.0, -3.0])], ("hygiene.finite",)),
]


def leak_stop_gradient(monkeypatch: Any) -> None:
    """Machinery fault (row 19): gradients flow through StopGradient."""
    eg = importlib.import_module("gradverify.engine.gradients")  # the module, not tf.gradients
    real = eg.gradients
    sg = registry.lookup("StopGradient")

    def leaky(*args: Any, **kw: Any) -> Any:
        monkeypatch.setattr(sg, "differentiable", True)
        monkeypatch.setattr(sg, "grad_fn", lambda op, g: g)
        try:
            return real(*args, **kw)
        finally:
            monkeypatch.setattr(sg, "differentiable", False)
            monkeypatch.setattr(sg, "grad_fn", None)
    monkeypatch.setattr(eg, "gradients", leaky)
    monkeypatch.setattr(tf, "gradients", leaky)


def drop_aggregation(monkeypatch: Any) -> None:
    """Machinery fault (row 18): a tensor used twice keeps only its first gradient."""
    eg = importlib.import_module("gradverify.engine.gradients")
    monkeypatch.setattr(eg, "_aggregate", lambda grads: grads[0] if grads else None)
