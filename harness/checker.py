"""``check_vjp``: verify any ``vjp(inputs, cotangents)`` (and optionally a ``jvp``) against
``forward(*inputs)``.

Order of work (each step a named check in the report):

1. hygiene (``hygiene.py``) - the forward runs, returns real arrays, is deterministic,
   leaves its inputs alone; the VJP runs, returns one real gradient per input with the
   input's shape and dtype, and is linear in the cotangent;
2. the gradient - ``full`` mode (``full.py``) compares whole Jacobians as arrays; ``fast``
   mode (``fast.py``) compares random probes ``<v, J u>``; every tolerance is ``safety ×``
   an error budget (``budget.py``); kinks are judged against Clarke's generalized Jacobian
   (``kinks.py``); a JVP, when given, is checked by the same machinery (``forward_mode.py``);
3. float32 - a float32 VJP is compared with the float64 one under the float32 term of the
   budget (``precision.py``), while the float64 one carries the tight check.

What a check must resolve depends on the dtype it evaluates in (``dtype_tolerances.py``).
An output that overflows at x is checked on its finite part (``finite_part.py``). A function
with no floating-point input or output has no derivative to check: the report is
NOT_APPLICABLE. Misbehaving user code (an exception, ``sys.exit``, a time limit exceeded,
``None`` or a non-array returned) is a named FAIL, never a crash. All random draws come
from ``seed``.

>>> import numpy as np
>>> r = check_vjp(np.tanh, lambda xs, gs: (gs[0] * (1 - np.tanh(xs[0]) ** 2),),
...               [np.linspace(-2, 2, 5)])
>>> r.verdict
'PASS'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from gradverify.harness import hygiene
from gradverify.harness.budget import C_ROUND, F32_SAFETY, SAFETY
from gradverify.harness.calls import CallError, Problem, aligned_copy
from gradverify.harness.diagnosis import diagnose
from gradverify.harness.dtype_tolerances import dtype_name, rtols
from gradverify.harness.fast import fast
from gradverify.harness.finite_part import Restricted, restrict
from gradverify.harness.full import full
from gradverify.harness.lines import Ref, cotangent, normalise, reference
from gradverify.harness.precision import precision
from gradverify.harness.precision_range import small_inputs_explained
from gradverify.harness.reasons import Reason
from gradverify.harness.report import (
    FAIL,
    INCONCLUSIVE,
    NOT_APPLICABLE,
    PASS,
    Check,
    GradientReport,
)

__all__ = ["check_vjp", "Options"]


@dataclass
class Options:
    """Knobs of a check (all keyword arguments of ``check_vjp``/``check_gradients``).

    safety: multiple of the error budget allowed (the budget is already an over-estimate).
    inconclusive_rtol: an entry whose tolerance cannot resolve this relative error is
    INCONCLUSIVE. detect_rtol: the relative error of the whole gradient fast mode aims to
    resolve (reported as ``resolved_rtol``). Both default (None) to the table of the dtype
    the tight check evaluates in (``dtype_tolerances.py``: float64 1e-6 / 1e-3, float32
    1e-3 / 1e-2, ...); the report's gradient check states the values used. probes:
    random probes in fast mode.
    full_max: ``auto`` uses full mode up to this many input elements and output elements.
    step: relative step (default eps**(1/3); fast mode's first pass 2 eps**(1/3):
    ``budget.probe_step``). localise: how many bad entries fast mode pins down.
    names: input names for reports. reference: ``(forward64, vjp64)`` evaluating in
    float64 (default: the functions themselves on float64 inputs, when they return
    float64). f32_safety: budget factor for float32 gradients against float64.
    timeout: seconds a single forward/VJP/JVP call may take (None: no limit).
    """

    safety: float = SAFETY
    detect_rtol: float | None = None
    inconclusive_rtol: float | None = None
    probes: int = 4
    full_max: int = 256
    step: float | None = None
    c_round: float = C_ROUND
    localise: int = 8
    localise_budget: int = 4000
    names: Sequence[str] | None = None
    reference: tuple[Callable, Callable] | None = None
    f32_safety: float = F32_SAFETY
    timeout: float | None = None
    function: str | None = None
    reproduce: str | None = None
    output_names: Sequence[str] | None = field(default=None, repr=False)


def check_vjp(forward: Callable, vjp: Callable, inputs: Sequence[Any], *,
              mode: str = "auto", seed: int = 0, jvp: Callable | None = None,
              **options: Any) -> GradientReport:
    """Check ``vjp`` (and ``jvp`` if given) against finite differences of ``forward``.

    forward(*arrays) returns an array or a tuple of arrays; vjp(inputs, cotangents) takes
    the tuple of input arrays and the tuple of output cotangents and returns one gradient
    per input (``None`` = no gradient, i.e. zero); jvp(inputs, tangents) returns the output
    tangents (``None`` tangent = zero). mode: ``full``, ``fast`` or ``auto``. Options: see
    :class:`Options`. The report's ``verdict`` is PASS, FAIL, INCONCLUSIVE or
    NOT_APPLICABLE.

    >>> import numpy as np
    >>> bad = lambda xs, gs: (-2 * xs[0] * gs[0],)          # sign flipped
    >>> r = check_vjp(lambda x: x ** 2, bad, [np.array([1.0, -2.0, 3.0])])
    >>> r.verdict, r.diagnosis
    ('FAIL', 'sign flipped')
    """
    if mode not in ("auto", "full", "fast"):
        raise ValueError(f"mode must be 'auto', 'full' or 'fast', got {mode!r}")
    opts = Options(**options)
    rng = np.random.default_rng(seed)
    p = Problem(forward, vjp, inputs, timeout=opts.timeout, names=opts.names, rng=rng,
                jvp=jvp)
    p.opts = opts
    p.explicit_rtols = {k: options[k] for k in ("detect_rtol", "inconclusive_rtol")
                        if options.get(k) is not None}
    _resolve_rtols(p, _native_eps(p, []) if any(p.diff) else float(np.finfo(float).eps))
    report = GradientReport(seed=seed, mode=mode, function=opts.function or getattr(
        forward, "__name__", "f"), inputs=[{"name": n, "shape": list(x.shape),
                                            "dtype": str(x.dtype)}
                                           for n, x in zip(p.names, p.xs)])
    report.reproduce = opts.reproduce or (
        f"check_vjp({report.function}, <vjp>, inputs, mode={mode!r}, seed={seed})")
    try:
        with np.errstate(all="ignore"):
            _run(p, report, mode)
    except CallError as e:
        report.checks.append(Check(e.where, FAIL, f"the function {e.message}"))
    report.evaluations = {"forward": p.n_forward, "backward": p.n_backward}
    if jvp is not None:
        report.evaluations["jvp"] = p.n_jvp
    if report.verdict == FAIL:
        report.diagnosis = diagnose(report, p.xs)
    return report


def _run_finite_part(p: Problem, report: GradientReport, mode: str,
                     part: Restricted) -> None:
    """The checks of the restricted pair (``finite_part.py``) after the hygiene checks
    already made, with a note of what was set aside."""
    q = Problem(part.forward, part.vjp, p.xs, timeout=p.timeout, names=p.names, rng=p.rng)
    q.opts = replace(p.opts, reference=part.reference)
    q.explicit_rtols = p.explicit_rtols
    q.restricted = True
    inner = GradientReport(seed=report.seed, mode=mode, function=report.function)
    try:
        _run(q, inner, mode)
    finally:
        p.n_forward += q.n_forward
        p.n_backward += q.n_backward
    done = {c.name for c in report.checks}
    report.checks.extend(c for c in inner.checks if c.name not in done)
    report.mode = inner.mode
    grad = report.check("gradient")
    if grad is not None:
        grad.details["set_aside"] = {"outputs_not_finite": part.masked_outputs,
                                     "inputs_reaching_only_them": part.frozen_inputs}
        note = (f"{part.masked_outputs} output entries not finite at x set aside (their "
                "derivatives are not verified)")
        if part.frozen_inputs:
            note += (f"; {part.frozen_inputs} input entries held at x (their gradient is "
                     "not finite without those outputs)")
        grad.reason = f"{grad.reason}; {note}" if grad.reason else note


def _run(p: Problem, report: GradientReport, mode: str) -> None:
    checks = report.checks
    xs = p.xs
    passed_in = [aligned_copy(x) for x in xs]  # (calls.aligned_empty: read in place)
    y0 = p.forward(passed_in)
    mutated = hygiene.mutated_inputs(passed_in, xs, p.names)
    # an unmutated copy still equals x: the second evaluation may reuse it (a fresh array
    # of 1e5 entries costs more in page faults than comparing it)
    again = [aligned_copy(x) for x in xs] if mutated else passed_in
    checks.append(hygiene.deterministic(y0, p.forward(again)))
    if not any(p.diff):
        checks.append(Check("gradient", NOT_APPLICABLE, Reason.NO_FLOAT_INPUTS.value))
        return
    if not any(y.dtype.kind == "f" for y in y0):
        checks.append(Check("gradient", NOT_APPLICABLE, Reason.NO_FLOAT_OUTPUTS.text(
            f"outputs {', '.join(str(y.dtype) for y in y0)}")))
        return

    v1 = cotangent(p.rng, y0)
    passed_in = again if not hygiene.mutated_inputs(again, xs, p.names) else [
        x.copy() for x in xs]
    g1 = p.vjp(passed_in, v1)
    mutated += hygiene.mutated_inputs(passed_in, xs, p.names, " (by the vjp)")
    checks.append(hygiene.input_unchanged(mutated))
    del passed_in, again  # freed now: later arrays reuse their memory (no page faults)
    checks.append(hygiene.arity(g1, len(xs)))
    if checks[-1].verdict == FAIL:
        return
    checks.append(hygiene.gradient_type(g1, p.names))
    if checks[-1].verdict == FAIL:
        return
    g1 = normalise(g1, xs)
    checks.append(hygiene.gradient_shape(g1, xs, p.diff, p.names))
    if checks[-1].verdict == FAIL:
        return
    g1 = [np.zeros_like(x) if g is None else g for g, x in zip(g1, xs)]
    if not any(x.size for x, d in zip(xs, p.diff) if d):
        # nothing to move: the only gradient of an empty input is the empty array, and its
        # shape and type passed above
        checks.append(Check("gradient", PASS, "the differentiated inputs have no entries: "
                            "their gradients are empty, of the right shape"))
        return
    # an empty input beside others has nothing to move either: held fixed from here on
    p.diff = [d and x.size > 0 for x, d in zip(xs, p.diff)]

    overflow = [k for k, y in enumerate(y0) if y.dtype.kind == "f" and not bool(
        np.isfinite(y).all())]
    if overflow:  # 0 * inf = nan in any chain rule: judge the finite part, if any
        part = None if getattr(p, "restricted", False) else restrict(
            p.forward_fn, p.vjp_fn, xs, y0, v1, p.opts.reference)
        if part is None:
            checks.append(Check("gradient", INCONCLUSIVE, Reason.OUTPUT_NOT_FINITE.text(
                f"output {', '.join(map(str, overflow))}: derivatives there are not "
                "verifiable")))
        else:
            _run_finite_part(p, report, mode, part)
        return
    known: list = []
    lin, residual = hygiene.linearity(p, v1, g1, y0, known)
    checks.append(lin)
    if lin.verdict == FAIL:
        # the non-linearity is the fault, not rounding to budget for: charged, it made the
        # gradient check INCONCLUSIVE (tolerance 4.35 on entries of 0.6 against 0) beside
        # the FAIL that names it
        residual = [np.zeros(x.shape) for x in xs]

    ref = reference(p, y0)
    if ref is None:  # float64 already, or no float64 evaluation: check in native precision
        tight, g_tight = Ref.native(p, y0), g1
    else:  # the float64 gradient carries the tight check; the native one the precision check
        prec, g_tight = precision(p, ref, v1, g1)
        checks.append(prec)
        tight = ref
        residual = [np.zeros(x.shape) for x in xs]
        known = []  # the native VJP's pairs: the tight check uses the float64 VJP
    n_in = sum(x.size for x, d in zip(xs, p.diff) if d)
    n_out = sum(y.size for y in y0 if y.dtype.kind == "f")
    use_full = mode == "full" or (mode == "auto" and max(n_in, n_out) <= p.opts.full_max)
    report.mode = "full" if use_full else "fast"

    def gradient(r: Ref) -> Check:
        _resolve_rtols(p, r.eps)
        check = full(p, r, residual) if use_full else fast(p, r, v1, g_tight, residual, known)
        check.details.update(rtol_dtype=dtype_name(r.eps), detect_rtol=p.opts.detect_rtol,
                             inconclusive_rtol=p.opts.inconclusive_rtol)
        return check
    check = gradient(tight)
    coarse = _native_eps(p, y0) if _rounding_limited(check) else tight.eps
    if coarse > tight.eps and not p.explicit_rtols:
        # The reference rounds below its dtype's resolution (a cast to float32 inside a
        # float64 build, a float32 function's float64 twin losing a change): judged again
        # as what the user's function is, a computation in its coarsest dtype - steps and
        # rounding of that dtype, held to that dtype's table. Only a decision upgrades the
        # first check: a FAIL of the coarser model is reported as its note, not a verdict.
        second = gradient(Ref(tight.forward, tight.vjp, tight.xs, tight.ys, coarse))
        if second.verdict == PASS:
            second.details["precision_model"] = (
                f"{dtype_name(coarse)} (at {dtype_name(tight.eps)}'s: {check.reason})")
            check = second
        else:
            _resolve_rtols(p, tight.eps)
    if check.verdict == FAIL and tight.eps == float(np.finfo(np.float64).eps) and (
            j := small_inputs_explained(p, tight, v1, g_tight, partial(_verdict_at, use_full),
                                        native=True)):
        check = Check(check.name, INCONCLUSIVE, Reason.SUBNORMAL_FLUSHED.text(
            "x is at the edge of float64's normal range (an input, output or gradient value "
            "within 1/eps of 2.2e-308); with the inputs below 1 moved to "
            f"|x|^(1/{2 ** j}) the gradient agrees: an intermediate leaves float64's normal "
            "range at x; not verifiable there"), worst=check.worst, tolerance=check.tolerance,
            details=check.details)
    checks.append(check)
    checks.append(hygiene.finite(checks[-1]))
    if p.jvp_fn is not None:
        from gradverify.harness.forward_mode import check_jvp
        checks.extend(check_jvp(p, tight, use_full, v1, g_tight, check.verdict))


def _verdict_at(use_full: bool, q: Problem, _ref: Ref | None, v1: list[np.ndarray],
                g1: list[np.ndarray]) -> str:
    """The float64 gradient check's verdict at ``q`` (``small_inputs_explained``'s moved
    point), in the same mode."""
    ref = Ref.native(q, q.forward(q.xs))
    _resolve_rtols(q, ref.eps)
    residual = [np.zeros(x.shape) for x in q.xs]
    return (full(q, ref, residual) if use_full else fast(q, ref, v1, g1, residual)).verdict


# Reasons that say the estimate could not resolve the dtype's rtol because of rounding or
# the steps rounding forced, not because of the function's shape (kinks, jumps, inf).
_ROUNDING = {Reason.ROUNDOFF_DOMINATED, Reason.ROUNDED_AWAY, Reason.TRUNCATION_DOMINATED}


def _rounding_limited(check: Check) -> bool:
    """An INCONCLUSIVE check whose every reason is a rounding-resolution one (fast mode's
    note on what its probes resolved aside)."""
    if check.verdict != INCONCLUSIVE or not check.reason:
        return False
    codes = {Reason.of(part) for part in check.reason.split("; ")
             if not part.startswith("the probes resolved")}
    return bool(codes) and codes <= _ROUNDING


def _native_eps(p: Problem, ys: list[np.ndarray]) -> float:
    """The spacing of the coarsest float dtype among the differentiable inputs and float
    outputs the user's function takes and returns."""
    return max([float(np.finfo(x.dtype).eps) for x, d in zip(p.xs, p.diff) if d]
               + [float(np.finfo(y.dtype).eps) for y in ys if y.dtype.kind == "f"])


def _resolve_rtols(p: Problem, eps: float) -> None:
    """``detect_rtol`` / ``inconclusive_rtol`` of an evaluation rounding at ``eps`` (the
    dtype table), unless the caller gave them."""
    detect, inconclusive = rtols(eps)
    p.opts.detect_rtol = p.explicit_rtols.get("detect_rtol", detect)
    p.opts.inconclusive_rtol = p.explicit_rtols.get("inconclusive_rtol", inconclusive)
