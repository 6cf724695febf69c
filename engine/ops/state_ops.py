"""Variable state: the variable op, assignments and the optimizer update kernels.

State lives in the Session (``ctx.state``, keyed by the variable op). Writes never mutate a
stored array: they store a new read-only array, so values read earlier in the same run stay
what they were (reads happen before writes, see ``engine.session``).
"""

from __future__ import annotations

import functools

import numpy as np

from gradverify.engine import errors
from gradverify.engine import meta as m
from gradverify.engine.registry import REQUIRED, op
from gradverify.engine.shapes import TensorShape

_REF = m.Domain("reals", differentiable=False)  # a variable reference, not a value


def _locking(kernel):
    """Run ``kernel`` holding the locks of the variables it updates when ``use_locking``
    is set (TF1: a locked update is atomic; an unlocked one may race)."""
    @functools.wraps(kernel)
    def run(ctx, *args, use_locking, **attrs):
        if not use_locking:
            return kernel(ctx, *args, use_locking=use_locking, **attrs)
        with ctx.locked([args[j] for j in ctx.op.opdef.ref_inputs]):
            return kernel(ctx, *args, use_locking=use_locking, **attrs)
    return run


def _read(ctx, ref):
    try:
        return ctx.state[ref]
    except KeyError:
        raise errors.FailedPreconditionError(
            None, ctx.op, f"Attempting to use uninitialized value {ref.name}") from None


def _store(ctx, ref, value, *, copy: bool, validate: bool | None = None):
    arr = np.array(value, dtype=ref.attrs["dtype"].np, copy=copy or None)
    if copy is False and arr is value and not arr.flags.owndata:
        arr = arr.copy()
    expect = ref.attrs["shape"].as_tuple()
    if validate is None:  # Assign's own validate_shape decides; updates follow the variable
        validate = ref.attrs.get("validate_shape", True)
    if validate and expect is not None and arr.shape != expect:
        raise errors.InvalidArgumentError(
            None, ctx.op, f"Assign requires shapes of both tensors to match. lhs shape= "
            f"{TensorShape(expect).as_tf_str()} rhs shape= {TensorShape(arr.shape).as_tf_str()}")
    arr.flags.writeable = False
    ctx.state[ref] = arr
    return arr


def _same_shape_as_ref(ctx):
    ref, value = ctx.input_shapes[0], ctx.input_shapes[1]
    if not ref.is_compatible_with(value):
        raise ctx.fail(f"Shapes must be equal rank, but are {ref.ndims} and {value.ndims}"
                       if ref.ndims != value.ndims and None not in (ref.ndims, value.ndims)
                       else f"Dimension 0 in both shapes must be equal, but are "
                       f"{ref.as_tuple()} and {value.as_tuple()}")
    return ref


# -- VariableV2 ----------------------------------------------------------------------------
@op("VariableV2", inputs={}, outputs=("ref",),
    attrs={"shape": REQUIRED, "dtype": REQUIRED, "validate_shape": True},
    signature="custom", out_dtype="attr:dtype", stateful=True, differentiable=False,
    dtypes=m.ALL)
def variable_op(ctx, *, shape, dtype, validate_shape):
    """A variable's storage; its output is a reference (the session reads it at run start)."""
    return _read(ctx, ctx.op)


@variable_op.shape_rule
def _(ctx):
    return ctx.attrs["shape"]


# -- Assign, AssignAdd, AssignSub ------------------------------------------------------------
@op("Assign", inputs={"ref": _REF, "value": m.reals},
    attrs={"validate_shape": True, "use_locking": False}, signature="custom",
    stateful=True, ref_inputs=(0,), differentiable=False, dtypes=m.ALL)
@_locking
def assign_op(ctx, ref, value, *, validate_shape, use_locking):
    """Store ``value`` in the variable; output the stored value."""
    return _store(ctx, ref, value, copy=True, validate=validate_shape)


@assign_op.shape_rule
def _(ctx):
    if ctx.attrs["validate_shape"]:
        return _same_shape_as_ref(ctx)
    return ctx.input_shapes[1]


@op("AssignAdd", inputs={"ref": _REF, "value": m.reals}, attrs={"use_locking": False},
    signature="custom", stateful=True, ref_inputs=(0,), differentiable=False,
    dtypes=m.FLOAT + m.INT)
@_locking
def assign_add_op(ctx, ref, value, *, use_locking):
    """Add ``value`` to the variable; output the new value."""
    return _store(ctx, ref, _read(ctx, ref) + value, copy=False)


assign_add_op.shape_rule(_same_shape_as_ref)


@op("AssignSub", inputs={"ref": _REF, "value": m.reals}, attrs={"use_locking": False},
    signature="custom", stateful=True, ref_inputs=(0,), differentiable=False,
    dtypes=m.FLOAT + m.INT)
@_locking
def assign_sub_op(ctx, ref, value, *, use_locking):
    """Subtract ``value`` from the variable; output the new value."""
    return _store(ctx, ref, _read(ctx, ref) - value, copy=False)


assign_sub_op.shape_rule(_same_shape_as_ref)


# -- optimizer update kernels ----------------------------------------------------------------
def _scalar_hyper(ctx):
    for i in range(1, len(ctx.input_shapes) - 1):
        s = ctx.input_shapes[i]
        if s.ndims not in (None, 0):
            raise ctx.fail(f"Shape must be rank 0 but is rank {s.ndims}")
    ref, grad = ctx.input_shapes[0], ctx.input_shapes[-1]
    if not ref.is_compatible_with(grad):
        raise ctx.fail(f"Shapes must be equal, but are {ref.as_tf_str()} and "
                       f"{grad.as_tf_str()}")
    return ref


@op("ApplyGradientDescent", inputs={"var": _REF, "alpha": m.reals, "delta": m.reals},
    attrs={"use_locking": False}, signature="custom", stateful=True, ref_inputs=(0,),
    differentiable=False)
@_locking
def apply_gradient_descent(ctx, var, alpha, delta, *, use_locking):
    """``var -= alpha * delta``; output the new value."""
    return _store(ctx, var, _read(ctx, var) - alpha * delta, copy=False)


apply_gradient_descent.shape_rule(_scalar_hyper)


# -- fused optimizer updates with slots (TF1 training_ops.cc, CPU kernels) -------------------
# Each kernel reads the variable and its slots first (an uninitialised one raises
# FailedPreconditionError naming it, before anything is written), then stores the new slot
# values and the new variable value as new read-only arrays, in TF's evaluation order, and
# outputs the new variable value. Scalar hyperparameters arrive as 0-d arrays of the
# variable's dtype, so float32 updates stay float32.
_HYPER = m.Domain("positive", lo=0.0, differentiable=False)   # lr, epsilon
_DECAY = m.Domain("bounded", lo=0.0, hi=1.0, differentiable=False)  # momentum, betas, rho
_GRAD = m.Domain("reals", differentiable=False)


def _fused_shape(refs: tuple[int, ...], grad: int):
    """Shape rule of a fused update: ``refs`` (the variable first) and input ``grad`` share
    the variable's shape; every other input is a scalar hyperparameter."""
    def rule(ctx):
        out = ctx.input_shapes[0]
        for i, s in enumerate(ctx.input_shapes):
            if i in refs or i == grad:
                if not out.is_compatible_with(s):
                    raise ctx.fail(f"Shapes must be equal, but are {out.as_tf_str()} and "
                                   f"{s.as_tf_str()}")
                out = out.merge_with(s)
            elif s.ndims not in (None, 0):
                raise ctx.fail(f"Shape must be rank 0 but is rank {s.ndims}")
        return out
    return rule


@op("ApplyMomentum",
    inputs={"var": _REF, "accum": _REF, "lr": _HYPER, "grad": _GRAD, "momentum": _DECAY},
    attrs={"use_locking": False, "use_nesterov": False}, signature="custom", stateful=True,
    ref_inputs=(0, 1), differentiable=False)
@_locking
def apply_momentum(ctx, var, accum, lr, grad, momentum, *, use_locking, use_nesterov):
    """TF1 ``ApplyMomentum``: ``accum = accum * momentum + grad``; then ``var -= accum * lr``,
    or with ``use_nesterov`` ``var -= grad * lr + accum * momentum * lr`` (the new accum)."""
    w, a = _read(ctx, var), _read(ctx, accum)
    a = a * momentum + grad
    step = grad * lr + a * momentum * lr if use_nesterov else a * lr
    _store(ctx, accum, a, copy=False)
    return _store(ctx, var, w - step, copy=False)


apply_momentum.shape_rule(_fused_shape(refs=(0, 1), grad=3))


@op("ApplyAdam",
    inputs={"var": _REF, "m": _REF, "v": _REF, "beta1_power": _DECAY, "beta2_power": _DECAY,
            "lr": _HYPER, "beta1": _DECAY, "beta2": _DECAY, "epsilon": _HYPER,
            "grad": _GRAD},
    attrs={"use_locking": False, "use_nesterov": False}, signature="custom", stateful=True,
    ref_inputs=(0, 1, 2), differentiable=False)
@_locking
def apply_adam(ctx, var, m_, v_, beta1_power, beta2_power, lr, beta1, beta2, epsilon, grad, *,
               use_locking, use_nesterov):
    """TF1 ``ApplyAdam``: ``alpha = lr * sqrt(1 - beta2_power) / (1 - beta1_power)``;
    ``m += (grad - m) * (1 - beta1)``; ``v += (grad^2 - v) * (1 - beta2)``;
    ``var -= (m * alpha) / (sqrt(v) + epsilon)`` (with ``use_nesterov`` the numerator is
    ``(grad * (1 - beta1) + beta1 * m) * alpha``). The beta powers are inputs: the optimizer
    advances them after every update (``AdamOptimizer._finish``)."""
    w, m1, v1 = _read(ctx, var), _read(ctx, m_), _read(ctx, v_)
    alpha = lr * np.sqrt(1 - beta2_power) / (1 - beta1_power)
    m1 = m1 + (grad - m1) * (1 - beta1)
    v1 = v1 + (grad * grad - v1) * (1 - beta2)
    num = (grad * (1 - beta1) + beta1 * m1) * alpha if use_nesterov else m1 * alpha
    _store(ctx, m_, m1, copy=False)
    _store(ctx, v_, v1, copy=False)
    return _store(ctx, var, w - num / (np.sqrt(v1) + epsilon), copy=False)


apply_adam.shape_rule(_fused_shape(refs=(0, 1, 2), grad=9))


@op("ApplyAdagrad", inputs={"var": _REF, "accum": _REF, "lr": _HYPER, "grad": _GRAD},
    attrs={"use_locking": False, "update_slots": True}, signature="custom", stateful=True,
    ref_inputs=(0, 1), differentiable=False)
@_locking
def apply_adagrad(ctx, var, accum, lr, grad, *, use_locking, update_slots):
    """TF1 ``ApplyAdagrad``: ``accum += grad^2`` (if ``update_slots``);
    ``var -= grad * lr * rsqrt(accum)``."""
    w, a = _read(ctx, var), _read(ctx, accum)
    if update_slots:
        a = _store(ctx, accum, a + grad * grad, copy=False)
    return _store(ctx, var, w - grad * lr * (1 / np.sqrt(a)), copy=False)


apply_adagrad.shape_rule(_fused_shape(refs=(0, 1), grad=3))


@op("ApplyRMSProp",
    inputs={"var": _REF, "ms": _REF, "mom": _REF, "lr": _HYPER, "rho": _DECAY,
            "momentum": _DECAY, "epsilon": _HYPER, "grad": _GRAD},
    attrs={"use_locking": False}, signature="custom", stateful=True, ref_inputs=(0, 1, 2),
    differentiable=False)
@_locking
def apply_rms_prop(ctx, var, ms, mom, lr, rho, momentum, epsilon, grad, *, use_locking):
    """TF1 ``ApplyRMSProp``: ``ms += (grad^2 - ms) * (1 - rho)``;
    ``mom = mom * momentum + grad * lr / sqrt(ms + epsilon)`` (epsilon INSIDE the root);
    ``var -= mom``."""
    w, s, p = _read(ctx, var), _read(ctx, ms), _read(ctx, mom)
    s = s + (grad * grad - s) * (1 - rho)
    p = p * momentum + (grad * lr) / np.sqrt(s + epsilon)
    _store(ctx, ms, s, copy=False)
    _store(ctx, mom, p, copy=False)
    return _store(ctx, var, w - p, copy=False)


apply_rms_prop.shape_rule(_fused_shape(refs=(0, 1, 2), grad=7))


@op("ApplyCenteredRMSProp",
    inputs={"var": _REF, "mg": _REF, "ms": _REF, "mom": _REF, "lr": _HYPER, "rho": _DECAY,
            "momentum": _DECAY, "epsilon": _HYPER, "grad": _GRAD},
    attrs={"use_locking": False}, signature="custom", stateful=True,
    ref_inputs=(0, 1, 2, 3), differentiable=False)
@_locking
def apply_centered_rms_prop(ctx, var, mg, ms, mom, lr, rho, momentum, epsilon, grad, *,
                            use_locking):
    """TF1 ``ApplyCenteredRMSProp``: ``ms += (grad^2 - ms) * (1 - rho)``;
    ``mg += (grad - mg) * (1 - rho)``; ``denom = (ms - mg^2) + epsilon``;
    ``mom = mom * momentum + grad * lr / sqrt(denom)``; ``var -= mom``."""
    w, g1, s, p = _read(ctx, var), _read(ctx, mg), _read(ctx, ms), _read(ctx, mom)
    s = s + (grad * grad - s) * (1 - rho)
    g1 = g1 + (grad - g1) * (1 - rho)
    p = p * momentum + (grad * lr) / np.sqrt((s - g1 * g1) + epsilon)
    _store(ctx, ms, s, copy=False)
    _store(ctx, mg, g1, copy=False)
    _store(ctx, mom, p, copy=False)
    return _store(ctx, var, w - p, copy=False)


apply_centered_rms_prop.shape_rule(_fused_shape(refs=(0, 1, 2, 3), grad=8))
