"""The properties every registered op must have, as Hypothesis tests built on demand.

``op_properties(op)`` names the properties that apply to an op; ``property_test(op, name)``
returns a zero-argument Hypothesis test for one of them, run under the active profile:

- ``gradient``: ``check_gradients`` (float64, order 1, full or fast mode drawn) is not FAIL;
- ``gradient_order2``: the gradient of the gradient (ops whose metadata says order >= 2);
- ``gradient_float32``: float32 against a float64 build (ops that take float32);
- ``forward``: the kernel agrees with the op's independent NumPy/SciPy ``reference``;
- ``shapes``: static shape and dtype inference agree with the run-time result, with known
  and with unknown dimensions;
- ``no_gradient``: an op declared not differentiable passes no gradient.

An INCONCLUSIVE gradient check discards the example (``hypothesis.reject``) and is counted
with its reason in ``INCONCLUSIVE``; a FAIL raises ``GradientError`` with the whole report and
the drawn case.

>>> from gradverify import engine
>>> sorted(op_properties(engine.registry.lookup("Relu")))[:3]
['forward', 'gradient', 'gradient_float32']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import event, given, reject
from hypothesis import strategies as st

from gradverify.engine.registry import OpDef
from gradverify.harness import FAIL, INCONCLUSIVE, GradientError, check_gradients
from gradverify.harness.report import NOT_APPLICABLE
from gradverify.properties.strategies import OpCase, op_cases

__all__ = ["INCONCLUSIVE_COUNTS", "REPORT_HOOKS", "op_properties", "property_test",
           "checkable", "validate", "PropertyError"]

INCONCLUSIVE_COUNTS: Counter[str] = Counter()
FULL_MAX = 256  # input entries above which a drawn "full" mode runs "fast" instead
# Called as hook(case, report) with every GradientReport a gradient property produces
# (PASS, FAIL or INCONCLUSIVE), before the verdict is acted on: how a runner collects the
# worst error against tolerance, evaluation counts and failing reports.
REPORT_HOOKS: list[Callable[[OpCase, Any], None]] = []


class PropertyError(AssertionError):
    """A property of an op does not hold; the message shows the drawn case."""


def checkable(op: OpDef) -> bool:
    """Ops the op-level properties apply to: not sources (no inputs), not state (variable
    references), not random. Those are covered by the session, variable, train and audit
    tests."""
    return bool(op.inputs) and not op.ref_inputs and not op.random


_KNOWN_KINDS = {"reals", "positive", "nonnegative", "nonzero", "bounded", "probabilities",
                "one_hot", "labels", "indices", "bool", "any", "integers", "new_shape",
                "multiples", "dims", "slice_begin", "slice_size", "paddings", "shape_only"}


def validate(op: OpDef) -> list[str]:
    """Problems with ``op``'s registration and tester metadata (empty when complete): a
    gradient or ``differentiable=False``, a shape rule, known input domains, examples and
    choices that name real inputs and attributes, and strategies that can draw a case.

    >>> from gradverify import engine
    >>> validate(engine.registry.lookup("MatMul"))
    []
    """
    problems = []
    float_inputs = [n for n, d in op.inputs.items() if d.differentiable and d.kind != "bool"
                    and d.kind not in ("labels", "indices", "integers")]
    if op.differentiable and float_inputs and op.grad_fn is None and not op.random:
        problems.append("no gradient: register one with @<op>.gradient or declare "
                        "differentiable=False")
    if op.shape_fn is None:
        problems.append("signature='custom' but no @<op>.shape_rule")
    for name, d in op.inputs.items():
        if d.kind not in _KNOWN_KINDS and not op.examples:
            problems.append(f"input {name!r}: domain kind {d.kind!r} cannot be generated; "
                            "give `examples=` with its values")
        if d.of is not None and d.of not in op.inputs:
            problems.append(f"input {name!r}: domain refers to unknown input {d.of!r}")
    for a in op.choices:
        if a not in op.attrs:
            problems.append(f"choices: {a!r} is not an attribute of the op")
    for i, tpl in enumerate(op.examples):
        for key in ("shapes", "values"):
            unknown = set(tpl.get(key, {})) - set(op.inputs)
            if unknown:
                problems.append(f"examples[{i}].{key}: unknown inputs {sorted(unknown)}")
        unknown = set(tpl.get("attrs", {})) - set(op.attrs)
        if unknown:
            problems.append(f"examples[{i}].attrs: unknown attributes {sorted(unknown)}")
    if not isinstance(op.order, int) or op.order < 1:
        problems.append(f"order={op.order!r} must be an integer >= 1")
    if checkable(op) and not problems:
        problems += _drawable(op)
    return problems


def _drawable(op: OpDef) -> list[str]:
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.errors import InvalidArgument, Unsatisfiable

    @settings(max_examples=3, phases=[Phase.generate], database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), deadline=None)
    @given(op_cases(op))
    def draw_one(case: OpCase) -> None:
        pass

    try:
        draw_one()
    except InvalidArgument as e:
        return [f"the property strategies cannot generate cases: {e}"]
    except Unsatisfiable:
        return ["the property strategies draw no case the op accepts (give `examples=`)"]
    return []


def op_properties(op: OpDef) -> list[str]:
    """The properties that apply to ``op``."""
    if not checkable(op):
        return []
    out = ["shapes"]
    if op.reference is not None:
        out.append("forward")
    differentiable = op.differentiable and any(
        d.differentiable and d.kind != "bool" for d in op.inputs.values())
    if differentiable and op.grad_fn is not None:
        out.append("gradient")
        if op.order >= 2:
            out.append("gradient_order2")
        if "float32" in op.dtypes and "float64" in op.dtypes:
            out.append("gradient_float32")
    elif not op.differentiable:
        out.append("no_gradient")
    return out


def property_test(op: OpDef, name: str, mode: str | None = None) -> Callable[[], None]:
    """A zero-argument Hypothesis test of property ``name`` for ``op``.

    mode: for the gradient properties, the check's mode (``full``, ``fast``, ``auto``)
    instead of the drawn one (``gradverify check --mode``).

    >>> from gradverify import engine
    >>> property_test(engine.registry.lookup("Square"), "gradient")()
    """
    if name not in op_properties(op):
        raise ValueError(f"property {name!r} does not apply to op {op.type}")
    drawn = st.sampled_from(["full", "fast"]) if mode is None else st.just(mode)
    if name == "gradient":
        test = given(case=op_cases(op), mode=drawn,
                     seed=st.integers(0, 2**31 - 1))(_gradient(order=1))
    elif name == "gradient_order2":
        test = given(case=op_cases(op), mode=st.just(mode or "full"),
                     seed=st.integers(0, 2**31 - 1))(_gradient(order=2))
    elif name == "gradient_float32":
        test = given(case=op_cases(op, dtype="float32"), mode=drawn,
                     seed=st.integers(0, 2**31 - 1))(_gradient(order=1))
    elif name == "forward":
        test = given(case=op_cases(op))(_forward)
    elif name == "shapes":
        test = given(case=op_cases(op))(_shapes)
    else:
        test = given(case=op_cases(op))(_no_gradient)
    # One example database entry per (op, property), not one for every generated test.
    test._hypothesis_internal_add_digest = f"gradverify:{op.type}:{name}".encode()
    test.__name__ = f"{op.type}[{name}]"
    return test


# -- the properties --------------------------------------------------------------------------
def _gradient(order: int) -> Callable[..., None]:
    def prop(case: OpCase, mode: str, seed: int) -> None:
        if not case.checked:
            reject()
        if mode == "full" and sum(x.size for x in case.checked) > FULL_MAX:
            mode = "fast"  # a full Jacobian of a 40000-entry template costs minutes
        report = check_gradients(case.function(), case.checked, mode=mode, order=order,
                                 seed=seed, names=case.names, function=case.op.type)
        for hook in REPORT_HOOKS:
            hook(case, report)
        if report.verdict == FAIL:
            raise GradientError(report) from PropertyError(f"case: {case!r}")
        if report.verdict == NOT_APPLICABLE:  # nothing to verify (a cast to int): discarded
            event("not applicable")
            reject()
        if report.verdict == INCONCLUSIVE:
            reason = _short(report)
            INCONCLUSIVE_COUNTS[f"{case.op.type}: {reason}"] += 1
            event(f"inconclusive: {reason}")
            reject()
    return prop


def _short(report: Any) -> str:
    for c in report.checks:
        if c.verdict == INCONCLUSIVE:
            return (c.reason or "unreliable").split(";")[0]
    return "unreliable"


def _run(case: OpCase, placeholders: bool = False, unknown_dims: bool = False,
         ) -> tuple[list[Any], list[np.ndarray]]:
    """Build the case (constants, or placeholders with known/unknown dims) and run it."""
    import gradverify.engine as tf
    with tf.Graph().as_default():
        if placeholders:
            xs = [tf.placeholder(tf.as_dtype(x.dtype),
                                 [None] * x.ndim if unknown_dims else list(x.shape))
                  for x in case.checked]
        else:
            xs = [tf.constant(x) for x in case.checked]
        out = case.function()(*xs)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        with tf.Session() as s:
            feed = dict(zip(xs, case.checked)) if placeholders else None
            values = s.run(outs, feed) if outs else []
    return outs, [np.asarray(v) for v in values]


def _flat_inputs(case: OpCase) -> list[Any]:
    out: list[Any] = []
    for v in case.values:
        out.extend(v if isinstance(v, list) else [v])
    return out


def _forward(case: OpCase) -> None:
    _, got = _run(case)
    with np.errstate(all="ignore"):  # overflow in a reference is compared, not warned
        want = case.op.reference(*_flat_inputs(case), **{**case.op.attrs, **case.attrs})
    want = list(want) if isinstance(want, (list, tuple)) else [want]
    if len(want) != len(got):
        raise PropertyError(f"{case.op.type}: reference gives {len(want)} outputs, the op "
                              f"{len(got)}\ncase: {case!r}")
    for k, (g, w) in enumerate(zip(got, want)):
        w = np.asarray(w)
        if g.shape != w.shape:
            raise PropertyError(f"{case.op.type} output {k}: shape {g.shape}, reference "
                                  f"{w.shape}\ncase: {case!r}")
        if g.dtype.kind == "f" or w.dtype.kind == "f":
            eps = float(np.finfo(g.dtype if g.dtype.kind == "f" else np.float64).eps)
            g64, w64 = g.astype(np.float64), w.astype(np.float64)
            finite = np.isfinite(w64)
            # Rounding of the inputs' size enters any result (sin(1000), a - b with
            # cancellation): the scale is the largest magnitude on either side.
            scale = max(float(np.max(np.abs(w64[finite]), initial=1.0)), _input_scale(case))
            tol = 64 * eps * (np.abs(w64) + scale)
            with np.errstate(invalid="ignore"):  # inf - inf where both overflow
                bad = ~(np.isclose(g64, w64, rtol=0, atol=0, equal_nan=True)
                        | (finite & (np.abs(g64 - w64) <= tol)))
            if bad.any():
                i = tuple(int(t) for t in np.argwhere(bad)[0])
                raise PropertyError(f"{case.op.type} output {k} at {list(i)}: op "
                                      f"{g64[i]!r}, reference {w64[i]!r}\ncase: {case!r}")
        elif not np.array_equal(g, w):
            raise PropertyError(f"{case.op.type} output {k}: differs from the reference\n"
                                  f"op: {g!r}\nreference: {w!r}\ncase: {case!r}")


def _input_scale(case: OpCase) -> float:
    return max((float(np.max(np.abs(x), initial=0.0)) for x in case.checked
                if np.all(np.isfinite(x))), default=0.0)


def _shapes(case: OpCase) -> None:
    for unknown in (False, True):
        outs, values = _run(case, placeholders=True, unknown_dims=unknown)
        for k, (t, v) in enumerate(zip(outs, values)):
            where = (f"{case.op.type} output {k} ({'unknown' if unknown else 'known'} input "
                     "dims)")
            if not t.shape.is_compatible_with(v.shape):
                raise PropertyError(f"{where}: static shape {t.shape}, run-time "
                                      f"{v.shape}\ncase: {case!r}")
            string = t.dtype.name == "string" and v.dtype.kind in "OS"  # TF fetches bytes
            if np.dtype(t.dtype.np) != v.dtype and not string:
                raise PropertyError(f"{where}: static dtype {t.dtype.name}, run-time "
                                      f"{v.dtype}\ncase: {case!r}")


def _no_gradient(case: OpCase) -> None:
    import gradverify.engine as tf
    with tf.Graph().as_default():
        xs = [tf.constant(x) for x in case.checked]
        out = case.function()(*xs)
        outs = [t for t in (list(out) if isinstance(out, (list, tuple)) else [out])
                if hasattr(t, "dtype") and t.dtype.is_floating]
        if not outs or not xs:
            return
        grads = tf.gradients(outs, xs)
    leaked = [n for n, g in zip(case.names, grads) if g is not None]
    if leaked:
        raise PropertyError(f"{case.op.type} is declared not differentiable, yet gradients "
                              f"flow to {', '.join(leaked)}\ncase: {case!r}")
