"""What the PyTorch and JAX adapters share: dtype rules, the verdict policy of the drop-in
functions (``True`` or an exception carrying the report), and the forward-mode check.

The gradient itself is always checked by ``gradverify.harness.check_vjp``; this module only
adds what a framework offers beyond a VJP (a JVP) and turns reports into the frameworks'
calling conventions.

>>> real_dtype_name("bfloat16")
'bfloat16'
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradverify.harness import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Check,
    Entry,
    GradientReport,
    check_vjp,
)
from gradverify.harness.report import NOT_APPLICABLE

__all__ = ["ComplexInputError", "GradverifyWarning", "InconclusiveWarning",
           "check_with_jvp", "harness_has_jvp", "input_names", "low_precision_check",
           "real_dtype_name", "settle", "WithMany"]

_REAL = ("float64", "float32", "float16", "bfloat16")


class ComplexInputError(TypeError):
    """A complex input or output: gradverify checks real functions only."""


class GradverifyWarning(UserWarning):
    """An option of the framework's own checker that gradverify does not perform."""


class InconclusiveWarning(GradverifyWarning):
    """A check that could not be verified, let through because the caller allowed it."""


def real_dtype_name(name: str) -> str:
    """The dtype's name if it is a real floating dtype the adapters check; else raises.

    >>> real_dtype_name("float16")
    'float16'
    """
    if name not in _REAL:
        raise ValueError(f"not a real floating dtype: {name}")
    return name


def complex_error(api: str, what: str, index: int, dtype: str, shape: Sequence[int],
                  ) -> ComplexInputError:
    """The error for a complex input/output, naming it, its dtype and shape."""
    return ComplexInputError(
        f"{api}: {what} {index} is complex ({dtype}, shape {tuple(shape)}); gradverify "
        "checks real functions only: split it into real and imaginary parts (two real "
        "inputs) and check that function")


_PARAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def input_names(fn: Callable, count: int) -> list[str]:
    """The function's positional parameter names where they can be read, else x0, x1, ...

    >>> input_names(lambda a, b: a, 2)
    ['a', 'b']
    """
    try:  # inspect.signature costs as much as a small check's evaluations: once per fn
        params = _PARAMS[fn]
    except (KeyError, TypeError):
        params = _positional(fn)
        with contextlib.suppress(TypeError):
            _PARAMS[fn] = params
    names = [p.name for p in params[:count]]
    names += [f"x{k}" for k in range(len(names), count)]
    return names if len(set(names)) == len(names) else [f"x{k}" for k in range(count)]


def _positional(fn: Callable) -> list[inspect.Parameter]:
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return params


@functools.cache  # the installed harness does not change while running
def harness_has_jvp() -> bool:
    """Whether ``check_vjp`` checks a JVP itself (the ``jvp=`` parameter, and the module
    that implements it)."""
    if "jvp" not in inspect.signature(check_vjp).parameters:
        return False
    try:
        return importlib.util.find_spec("gradverify.harness.forward_mode") is not None
    except ImportError:  # pragma: no cover
        return False


def check_with_jvp(forward: Callable, vjp: Callable, jvp: Callable | None,
                   inputs: Sequence[np.ndarray], *, mode: str, seed: int,
                   **options: Any) -> GradientReport:
    """``check_vjp``, with the forward mode checked too when ``jvp`` is given: by the
    harness when it takes ``jvp=``, else by :func:`jvp_consistency` (a fallback)."""
    if jvp is not None and harness_has_jvp():
        return check_vjp(forward, vjp, inputs, mode=mode, seed=seed, jvp=jvp, **options)
    report = check_vjp(forward, vjp, inputs, mode=mode, seed=seed, **options)
    if jvp is not None:
        report.checks.append(jvp_consistency(forward, vjp, jvp, inputs, seed=seed))
        if report.verdict == FAIL and report.diagnosis is None:
            report.diagnosis = "forward mode (JVP) disagrees with reverse mode (VJP)"
    return report


# FALLBACK until the harness checks JVPs itself (check_vjp(..., jvp=)): forward mode is
# verified only through its consistency with the VJP, <v, J u> = <J^T v, u>, over a few
# random probes. The VJP is checked against finite differences by the harness, so a JVP
# that agrees with it is right; the tolerance is a rounding bound of both dot products
# (pessimistic by the problem size), so relative JVP errors below ~1e-10 (float64) go unseen.
_CONSISTENCY_PROBES = 3
_CONSISTENCY_SAFETY = 16.0


def jvp_consistency(forward: Callable, vjp: Callable, jvp: Callable,
                    inputs: Sequence[np.ndarray], *, seed: int) -> Check:
    """The check ``forward_mode.consistency``: ``<v, J u>`` from the JVP against
    ``<J^T v, u>`` from the VJP for random normal ``u`` and ``v``.

    >>> import numpy as np
    >>> x = np.array([1.0, 2.0])
    >>> c = jvp_consistency(np.sin, lambda xs, vs: (vs[0] * np.cos(xs[0]),),
    ...                     lambda xs, us: (us[0] * np.cos(xs[0]),), [x], seed=0)
    >>> c.verdict
    'PASS'
    """
    name = "forward_mode.consistency"
    rng = np.random.default_rng([seed, 7])
    xs = [np.array(x) for x in inputs]
    diff = [x.dtype.kind == "f" for x in xs]
    try:
        with np.errstate(all="ignore"):
            ys = _as_list(forward(*[x.copy() for x in xs]))
    except Exception as e:  # noqa: BLE001 - the harness already reports a raising forward
        return Check(name, INCONCLUSIVE, f"forward raised {type(e).__name__}: {e}")
    worst = 0.0
    for _ in range(_CONSISTENCY_PROBES):
        us = [rng.standard_normal(x.shape).astype(x.dtype) if d else np.zeros_like(x)
              for x, d in zip(xs, diff)]
        vs = [rng.standard_normal(y.shape).astype(y.dtype) if y.dtype.kind == "f"
              else np.zeros_like(y) for y in ys]
        try:
            with np.errstate(all="ignore"):
                jus = _as_list(jvp(tuple(x.copy() for x in xs), tuple(us)))
                gs = _as_list(vjp(tuple(x.copy() for x in xs), tuple(vs)))
        except Exception as e:  # noqa: BLE001 - reported as the check's failure
            return Check(name, FAIL, f"the JVP raises: {type(e).__name__}: {e}")
        if len(jus) != len(ys) or any(np.shape(a) != y.shape for a, y in zip(jus, ys)):
            return Check(name, FAIL, "the JVP returns tangents of shapes "
                         f"{[np.shape(a) for a in jus]} for outputs {[y.shape for y in ys]}")
        fwd_terms = [np.asarray(v, np.float64) * np.asarray(a, np.float64)
                     for v, a, y in zip(vs, jus, ys) if y.dtype.kind == "f"]
        rev_terms = [np.asarray(g, np.float64) * np.asarray(u, np.float64)
                     for g, u, d in zip(gs, us, diff) if d and g is not None]
        lhs = float(sum(np.sum(t) for t in fwd_terms))
        rhs = float(sum(np.sum(t) for t in rev_terms))
        size = float(sum(np.sum(np.abs(t)) for t in fwd_terms + rev_terms))
        if not (np.isfinite(lhs) and np.isfinite(rhs)):
            if np.isfinite(lhs) != np.isfinite(rhs):
                return Check(name, FAIL, f"<v, J u> = {lhs:.6g} but <J^T v, u> = {rhs:.6g}")
            return Check(name, INCONCLUSIVE, "non-finite JVP and VJP products")
        eps = max([float(np.finfo(x.dtype).eps) for x, d in zip(xs, diff) if d]
                  + [float(np.finfo(y.dtype).eps) for y in ys if y.dtype.kind == "f"])
        n = sum(x.size for x in xs) + sum(y.size for y in ys)
        tol = _CONSISTENCY_SAFETY * eps * n * size + float(np.finfo(np.float64).tiny)
        worst = max(worst, abs(lhs - rhs) / tol)
        if abs(lhs - rhs) > tol:
            return Check(name, FAIL, f"forward mode disagrees with reverse mode: <v, J u> = "
                         f"{lhs:.9g} (JVP) but <J^T v, u> = {rhs:.9g} (VJP), tolerance "
                         f"{tol:.3g}", tolerance=tol)
    return Check(name, PASS, details={"probes": _CONSISTENCY_PROBES, "worst_ratio": worst,
                                      "fallback": "JVP checked against the VJP only"})


class WithMany:
    """A VJP (or JVP) that also offers ``many(arrays, [cotangents, ...])``: several in one
    call, from one forward of the function (``gradverify.harness.calls.Problem.vjps``).

    >>> import numpy as np
    >>> one = lambda xs, gs: (gs[0] * 2,)
    >>> vjp = WithMany(one, lambda xs, many: [one(xs, g) for g in many])
    >>> vjp((np.ones(1),), (np.ones(1),))[0], len(vjp.many((np.ones(1),), [(np.ones(1),)] * 2))
    (array([2.]), 2)
    """

    def __init__(self, one: Callable, many: Callable):
        self.one, self.many = one, many

    def __call__(self, arrays: Sequence[np.ndarray], cts: Sequence[Any]) -> Any:
        return self.one(arrays, cts)


def _as_list(out: Any) -> list[np.ndarray]:
    return [np.asarray(o) for o in out] if isinstance(out, (tuple, list)) else [
        np.asarray(out)]


def settle(report: GradientReport, *, error: Callable[[GradientReport], BaseException],
           raise_exception: bool = True, allow_inconclusive: bool = False) -> bool:
    """The drop-in convention: ``True`` on PASS; on FAIL (and on INCONCLUSIVE or
    NOT_APPLICABLE unless ``allow_inconclusive``, which warns instead) raise
    ``error(report)``, or return ``False`` when ``raise_exception`` is false.

    NOT_APPLICABLE (no floating-point output or input: nothing was differentiated, e.g. a
    function returning an integer tensor) is treated as unverified, not as a pass: torch's
    own gradcheck returns True there, which hides a function that lost its float output.

    >>> from gradverify.harness import Check, GradientReport
    >>> settle(GradientReport(checks=[Check("gradient", "PASS")]), error=AssertionError)
    True
    """
    verdict = report.verdict
    if verdict == PASS:
        _warn_set_aside(report)
        return True
    if verdict in (INCONCLUSIVE, NOT_APPLICABLE) and allow_inconclusive:
        warnings.warn(f"gradient not verified ({verdict}): {'; '.join(report.reasons)}",
                      InconclusiveWarning, stacklevel=3)
        return True
    if raise_exception:
        raise error(report)
    return False


def _warn_set_aside(report: GradientReport) -> None:
    # A PASS that judged only the finite part (outputs not finite at x set aside): torch's
    # gradcheck raises there, so the True it replaces must not hide what went unverified.
    for c in report.checks:
        aside = c.details.get("set_aside") if c.verdict == PASS else None
        if aside and aside.get("outputs_not_finite"):
            warnings.warn(f"{report.function}: {c.reason}", GradverifyWarning, stacklevel=4)


# The harness allows float32 gradients 64 eps (7.6e-6) relative to max|g|; 64 bfloat16 eps
# would be 50%. torch accumulates bfloat16 reductions in float32, so a correct gradient is a
# few roundings off: 16 eps (12.5%) still passes every correct op we tried (tests_adapters).
_BF16_SAFETY = 16.0


_BF16_EPS = 2.0 ** -7            # spacing of bfloat16 at 1
_BF16_MAX = 3.3895313892515355e38
_BF16_TINY = float(np.finfo(np.float32).tiny)  # bfloat16 has float32's exponent range


def _flushed_vjp(high_vjp: Callable, high_arrays: Sequence[np.ndarray],
                 cts: Sequence[np.ndarray]) -> tuple[Any, ...] | None:
    """The float64 gradient with the inputs a flush-to-zero evaluation (XLA on CPU) reads
    as zero: entries below bfloat16's normal range. None if there are none or it fails."""
    flushed = [np.where((a != 0) & (np.abs(a) < _BF16_TINY), 0.0, a)
               if np.asarray(a).dtype.kind == "f" else a for a in high_arrays]
    if all(np.array_equal(f, a) for f, a in zip(flushed, high_arrays)):
        return None
    try:
        return tuple(high_vjp(tuple(flushed), tuple(cts)))
    except Exception:  # noqa: BLE001 - no flushed candidate; the plain comparison stands
        return None


def low_precision_check(low_forward: Callable, low_vjp: Callable,
                        low_arrays: Sequence[np.ndarray], high_forward: Callable,
                        high_vjp: Callable, high_arrays: Sequence[np.ndarray], *,
                        seed: int) -> Check:
    """The check ``precision.bfloat16``, which the harness cannot model (NumPy has no
    bfloat16): the low-precision gradient against the float64 one of the same function, at
    most ``_BF16_SAFETY * max(eps, forward relative error) * max|g64|`` apart per input
    (entries whose true gradient overflows bfloat16 excepted).

    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 5)
    >>> vjp = lambda xs, gs: (gs[0] * np.cos(xs[0]),)
    >>> low_precision_check(np.sin, vjp, [x], np.sin, vjp, [x], seed=0).verdict
    'PASS'
    """
    rng = np.random.default_rng([seed, 3])
    y_low = _as_list(low_forward(*low_arrays))
    y_high = _as_list(high_forward(*high_arrays))
    cts = [rng.standard_normal(y.shape) if y.dtype.kind == "f" else np.zeros(y.shape)
           for y in y_high]
    g_low = low_vjp(tuple(low_arrays), tuple(c.astype(y.dtype) for c, y in zip(cts, y_low)))
    g_high = high_vjp(tuple(high_arrays), tuple(cts))
    g_flush = _flushed_vjp(high_vjp, high_arrays, cts)
    fwd_err = 0.0
    for a, b in zip(y_low, y_high):
        if b.dtype.kind != "f":
            continue
        b64 = np.asarray(b, np.float64)
        scale = float(np.max(np.abs(b64), initial=0.0))
        if scale > 0 and np.isfinite(scale):
            fwd_err = max(fwd_err, float(np.nanmax(np.abs(np.asarray(a, np.float64) - b64)))
                          / scale)
    worst = []
    for k, (g, h) in enumerate(zip(g_low, g_high)):
        shape = np.shape(low_arrays[k])
        g = np.zeros(shape) if g is None else np.asarray(g, np.float64)
        h = np.zeros(shape) if h is None else np.asarray(h, np.float64)
        eps, big = _BF16_EPS, _BF16_MAX
        tol = (_BF16_SAFETY * max(eps, fwd_err) * float(np.max(np.abs(h), initial=0.0))
               + _BF16_TINY)
        overflow = np.isinf(g) & (np.abs(h) >= big) & (np.sign(g) == np.sign(h))
        with np.errstate(invalid="ignore"):
            err = np.where(overflow | (np.isinf(g) & (g == h)), 0.0, np.abs(g - h))
            if g_flush is not None and g_flush[k] is not None:
                # held to the nearer of the two points (see harness/precision.py)
                f = np.asarray(g_flush[k], np.float64)
                err = np.fmin(err, np.where(np.isinf(g) & (g == f), 0.0, np.abs(g - f)))
        bad = ~(err <= tol)
        if bad.any():
            i = int(np.argmax(np.where(np.isnan(err), np.inf, err)))
            worst.append(Entry(input=k, input_name=f"x{k}", index=tuple(
                int(t) for t in np.unravel_index(i, g.shape)), analytic=float(g.flat[i]),
                numeric=float(h.flat[i]), bound=0.0, tolerance=tol, step=0.0, verdict=FAIL,
                note="float64 analytic gradient"))
    return Check("precision.bfloat16", FAIL if worst else PASS,
                 "wrong only in low precision: the bfloat16 gradient differs from the "
                 "float64 one beyond rounding" if worst else None, worst=worst,
                 details={"forward_relative_error": fwd_err, "dtype": "bfloat16"})
