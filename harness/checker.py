"""``check_vjp``: verify any ``vjp(inputs, cotangents)`` against ``forward(*inputs)``.

Order of work (each step a named check in the report):

1. hygiene - the forward runs, is deterministic, leaves its inputs alone; the VJP runs,
   returns one gradient per input with the input's shape and dtype, and is linear in the
   cotangent (a rule that ignores the upstream gradient is not);
2. the gradient - ``full`` mode compares the analytic Jacobian (row by row through the VJP)
   with a numeric one (column by column, 4 evaluations per input element); ``fast`` mode
   compares ``<J^T v, d>`` with the numeric derivative of ``<v, f(x + t d)>`` along a few
   random signed probes, a cost independent of the input size. A disagreement is confirmed
   on a finer step ladder (kinks are judged as subgradients) and, in fast mode, localised by
   bisecting the probe's support down to single entries;
3. float32 - a float32 VJP is compared with the float64 one under a float32 error model,
   while the float64 one carries the tight check (``reference`` or automatic).

All random draws come from ``seed``.

>>> import numpy as np
>>> r = check_vjp(np.tanh, lambda xs, gs: (gs[0] * (1 - np.tanh(xs[0]) ** 2),),
...               [np.linspace(-2, 2, 5)])
>>> r.verdict
'PASS'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradverify.harness.diagnosis import diagnose, signature, transposed_inputs
from gradverify.harness.judge import judge
from gradverify.harness.numeric import C_ROUND, Line, default_step, quick, refine
from gradverify.harness.report import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Check,
    Entry,
    GradientReport,
    combine,
)

__all__ = ["check_vjp", "Options"]


@dataclass
class Options:
    """Knobs of a check (all keyword arguments of ``check_vjp``/``check_gradients``).

    safety: multiple of the error bound allowed (the bounds are already over-estimates).
    detect_rtol: a check whose tolerance cannot resolve this relative error is INCONCLUSIVE.
    probes: random probes in fast mode. full_max: ``auto`` uses full mode up to this many
    input elements and output elements. step: relative step (default eps**(1/3)).
    localise: how many bad entries fast mode pins down. names: input names for reports.
    reference: ``(forward64, vjp64)`` evaluating in float64 (default: the functions
    themselves on float64 inputs, when they return float64). f32_safety: error-model factor
    for float32 gradients against float64.
    """

    safety: float = 4.0
    detect_rtol: float = 1e-3
    probes: int = 2
    full_max: int = 256
    step: float | None = None
    c_round: float = C_ROUND
    localise: int = 8
    localise_budget: int = 4000
    names: Sequence[str] | None = None
    reference: tuple[Callable, Callable] | None = None
    f32_safety: float = 64.0
    function: str | None = None
    reproduce: str | None = None
    output_names: Sequence[str] | None = field(default=None, repr=False)


class _CallError(Exception):
    def __init__(self, where: str, exc: BaseException):
        super().__init__(f"{where} raised {type(exc).__name__}: {exc}")
        self.where = where
        self.exc = exc


def _as_list(out: Any) -> list[np.ndarray]:
    return [np.asarray(o) for o in out] if isinstance(out, (tuple, list)) else [
        np.asarray(out)]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(
        np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


class _Problem:
    """The function pair at a point, with counted, exception-wrapped evaluations."""

    def __init__(self, forward: Callable, vjp: Callable, inputs: Sequence[Any],
                 opts: Options, rng: np.random.Generator):
        self.forward_fn, self.vjp_fn = forward, vjp
        self.xs = [np.array(x) for x in inputs]  # private copies: the caller's stay intact
        self.opts = opts
        self.rng = rng
        self.n_forward = 0
        self.n_backward = 0
        self.names = list(opts.names) if opts.names else [f"x{k}" for k in range(
            len(self.xs))]
        self.diff = [x.dtype.kind == "f" for x in self.xs]

    def forward(self, xs: Sequence[np.ndarray], fn: Callable | None = None,
                ) -> list[np.ndarray]:
        self.n_forward += 1
        try:
            with np.errstate(all="ignore"):  # NaN/Inf near x is information, not noise
                return _as_list((fn or self.forward_fn)(*xs))
        except Exception as e:
            raise _CallError("forward", e) from e

    def vjp(self, xs: Sequence[np.ndarray], cts: Sequence[np.ndarray],
            fn: Callable | None = None) -> list[Any]:
        self.n_backward += 1
        try:
            with np.errstate(all="ignore"):
                out = (fn or self.vjp_fn)(tuple(xs), tuple(cts))
        except Exception as e:
            raise _CallError("vjp", e) from e
        return list(out) if isinstance(out, (tuple, list)) else [out]


def check_vjp(forward: Callable, vjp: Callable, inputs: Sequence[Any], *,
              mode: str = "auto", seed: int = 0, **options: Any) -> GradientReport:
    """Check ``vjp`` against finite differences of ``forward`` at ``inputs``.

    forward(*arrays) returns an array or a tuple of arrays; vjp(inputs, cotangents) takes
    the tuple of input arrays and the tuple of output cotangents and returns one gradient
    per input (``None`` = no gradient, i.e. zero). mode: ``full``, ``fast`` or ``auto``.
    Options: see :class:`Options`. The report's ``verdict`` is PASS, FAIL or INCONCLUSIVE.

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
    p = _Problem(forward, vjp, inputs, opts, rng)
    report = GradientReport(seed=seed, mode=mode, function=opts.function or getattr(
        forward, "__name__", "f"), inputs=[{"name": n, "shape": list(x.shape),
                                            "dtype": str(x.dtype)}
                                           for n, x in zip(p.names, p.xs)])
    report.reproduce = opts.reproduce or (
        f"check_vjp({report.function}, <vjp>, inputs, mode={mode!r}, seed={seed})")
    try:
        with np.errstate(all="ignore"):
            _run(p, report, mode)
    except _CallError as e:
        report.checks.append(Check(e.where, FAIL, f"the function raises: "
                                   f"{type(e.exc).__name__}: {e.exc}"))
    report.evaluations = {"forward": p.n_forward, "backward": p.n_backward}
    if report.verdict == FAIL:
        report.diagnosis = diagnose(report, p.xs)
    return report


def _run(p: _Problem, report: GradientReport, mode: str) -> None:
    checks = report.checks
    xs = p.xs
    passed_in = [x.copy() for x in xs]
    y0 = p.forward(passed_in)
    mutated = [p.names[k] for k, (a, b) in enumerate(zip(passed_in, xs)) if not _same(a, b)]
    y1 = p.forward([x.copy() for x in xs])
    same = len(y0) == len(y1) and all(_same(a, b) for a, b in zip(y0, y1))
    checks.append(Check("hygiene.deterministic", PASS if same else FAIL,
                        None if same else "forward not deterministic: two evaluations at "
                        "the same inputs differ (a random op inside?)"))
    if not any(p.diff):
        checks.append(Check("gradient", INCONCLUSIVE, "no floating-point inputs"))
        return
    if not any(y.dtype.kind == "f" for y in y0):
        checks.append(Check("gradient", INCONCLUSIVE, "no floating-point outputs"))
        return

    v1 = _cotangent(p.rng, y0)
    passed_in = [x.copy() for x in xs]
    g1 = p.vjp(passed_in, v1)
    mutated += [p.names[k] + " (by the vjp)" for k, (a, b) in enumerate(zip(passed_in, xs))
                if not _same(a, b)]
    checks.append(Check("hygiene.input_unchanged", FAIL if mutated else PASS,
                        f"input mutated: {', '.join(mutated)}" if mutated else None))
    if len(g1) != len(xs):
        checks.append(Check("hygiene.arity", FAIL, f"vjp returned {len(g1)} gradients for "
                            f"{len(xs)} inputs"))
        return
    checks.append(Check("hygiene.arity", PASS))
    g1 = _normalise(g1, xs)
    bad = [f"{p.names[k]}: gradient {_sd(g)} for input {_sd(x)}"
           for k, (g, x) in enumerate(zip(g1, xs))
           if p.diff[k] and g is not None and (g.shape != x.shape or g.dtype != x.dtype)]
    checks.append(Check("hygiene.gradient_shape", FAIL if bad else PASS,
                        "; ".join(bad) if bad else None))
    if bad:
        return
    g1 = [np.zeros_like(x) if g is None else g for g, x in zip(g1, xs)]

    overflow = [k for k, y in enumerate(y0) if y.dtype.kind == "f" and not np.all(
        np.isfinite(y))]
    if overflow:  # 0 * inf = nan in any chain rule: nothing to compare against
        checks.append(Check("gradient", INCONCLUSIVE, "the output is not finite at x "
                            f"(output {', '.join(map(str, overflow))}): derivatives there "
                            "are not verifiable"))
        return
    lin, residual = _linearity(p, v1, g1, y0)
    checks.append(lin)

    ref = _reference(p, y0)
    if ref is None:  # float64 already, or no float64 evaluation: check in native precision
        tight, g_tight = _Ref.native(p, y0), g1
    else:  # the float64 gradient carries the tight check; the native one the precision check
        precision, g_tight = _precision(p, ref, v1, g1)
        checks.append(precision)
        tight = ref
        residual = [np.zeros(x.shape) for x in xs]
    n_in = sum(x.size for x, d in zip(xs, p.diff) if d)
    n_out = sum(y.size for y in y0 if y.dtype.kind == "f")
    use_full = mode == "full" or (mode == "auto" and max(n_in, n_out) <= p.opts.full_max)
    report.mode = "full" if use_full else "fast"
    if use_full:
        checks.append(_full(p, tight, residual))
    else:
        checks.append(_fast(p, tight, v1, g_tight, residual))
    nonfinite = [e for e in checks[-1].worst if e.verdict == FAIL
                 and not np.isfinite(e.analytic) and np.isfinite(e.numeric)]
    checks.append(Check("hygiene.finite", FAIL if nonfinite else PASS,
                        "NaN/Inf gradient where the numeric derivative is finite"
                        if nonfinite else None, worst=nonfinite))


# -- helpers ---------------------------------------------------------------------------------
def _sd(a: np.ndarray) -> str:
    return f"{tuple(a.shape)}:{a.dtype}"


def _cotangent(rng: np.random.Generator, ys: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Random normal cotangents (zeros for non-float outputs): not ones, so a rule that
    ignores the upstream gradient shows."""
    return [rng.standard_normal(y.shape).astype(y.dtype) if y.dtype.kind == "f"
            else np.zeros_like(y) for y in ys]


def _finite_abs(a: np.ndarray) -> np.ndarray:
    return np.where(np.isinf(a), 0.0, np.abs(a))


def _worst_index(err: np.ndarray) -> int:
    """Flat index of the largest |err|, NaN counting as largest (never raises)."""
    a = np.abs(np.asarray(err, dtype=np.float64)).ravel()
    return int(np.argmax(np.where(np.isnan(a), np.inf, a))) if a.size else 0


def _normalise(gs: list[Any], xs: Sequence[np.ndarray]) -> list[np.ndarray | None]:
    return [None if g is None else np.asarray(g) for g in gs]


def _linearity(p: _Problem, v1: list[np.ndarray], g1: list[np.ndarray],
               y0: list[np.ndarray]) -> tuple[Check, list[np.ndarray]]:
    """vjp(a v1 + b v2) must equal a vjp(v1) + b vjp(v2) up to rounding."""
    v2 = _cotangent(p.rng, v1)
    alpha, beta = 0.75, -1.5  # exact in binary: no rounding from the coefficients
    g2 = [np.zeros_like(x) if g is None else g
          for g, x in zip(_normalise(p.vjp(p.xs, v2), p.xs), p.xs)]
    v12 = [(alpha * a + beta * b).astype(a.dtype) if a.dtype.kind == "f" else a
           for a, b in zip(v1, v2)]
    g12 = [np.zeros_like(x) if g is None else g
           for g, x in zip(_normalise(p.vjp(p.xs, v12), p.xs), p.xs)]
    worst, residual = [], []
    # The cotangents are rounded to the outputs' dtypes (a float64 -> float32 cast rounds
    # v1 + v2): the coarsest dtype on either side sets the rounding.
    out_eps = max((float(np.finfo(v.dtype).eps) for v in v1 if v.dtype.kind == "f"),
                  default=0.0)
    # Below the smallest normal number rounding is absolute: a few subnormal spacings.
    subnormal = max(float(np.finfo(t.dtype).smallest_subnormal)
                    for t in [*p.xs, *v1] if t.dtype.kind == "f")
    out_size = sum(float(np.max(np.abs(v), initial=0.0)) * float(np.max(
        _finite_abs(np.asarray(y, np.float64)), initial=0.0))
        for v, y in zip(v1, y0) if v.dtype.kind == "f")
    for k, (a, b, c, x) in enumerate(zip(g1, g2, g12, p.xs)):
        if not p.diff[k] or a.shape != x.shape or b.shape != x.shape or c.shape != x.shape:
            residual.append(np.zeros(x.shape))
            continue
        a64, b64, c64 = (np.asarray(t, dtype=np.float64) for t in (a, b, c))
        with np.errstate(all="ignore"):
            r = c64 - (alpha * a64 + beta * b64)
        # An overflowing gradient (inf - inf) is judged by hygiene.finite and precision.
        r = np.where(np.isinf(a64) | np.isinf(b64) | np.isinf(c64), 0.0, r)
        residual.append(np.abs(r))
        scale = max(np.max(_finite_abs(alpha * a64), initial=0),
                    np.max(_finite_abs(beta * b64), initial=0),
                    np.max(_finite_abs(c64), initial=0))
        # A gradient that is pure cancellation noise (softmax's second order at a tie is
        # ~1e-17 from O(1) terms) has no scale of its own: floor the tolerance at the
        # natural size |v| |y| / max(|x|, 1) of a gradient of this function.
        natural = out_size / max(float(np.max(_finite_abs(np.asarray(x, np.float64)),
                                              initial=0.0)), 1.0)
        tol = float(np.sqrt(max(np.finfo(x.dtype).eps, out_eps))) * max(scale, natural) + (
            64 * subnormal)
        err = float(np.max(np.abs(r), initial=0.0)) if r.size else 0.0
        if not np.isfinite(err) or err > tol:
            i = _worst_index(r)
            worst.append(Entry(input=k, input_name=p.names[k],
                               index=tuple(int(t) for t in np.unravel_index(i, x.shape)),
                               analytic=float(c64.flat[i]),
                               numeric=float(alpha * a64.flat[i] + beta * b64.flat[i]),
                               bound=0.0, tolerance=tol, step=0.0, verdict=FAIL))
    check = Check("hygiene.linearity", FAIL if worst else PASS,
                  "gradient not linear in the cotangent (ignores the upstream gradient?)"
                  if worst else None, worst=worst)
    return check, residual


@dataclass
class _Ref:
    """The functions and point used for the tight numeric comparison."""

    forward: Callable
    vjp: Callable
    xs: list[np.ndarray]
    ys: list[np.ndarray]
    eps: float

    @classmethod
    def native(cls, p: _Problem, ys: list[np.ndarray]) -> _Ref:
        # Outputs of a lower precision (a cast to float32) round at their own spacing.
        eps = max([float(np.finfo(x.dtype).eps) for x, d in zip(p.xs, p.diff) if d]
                  + [float(np.finfo(y.dtype).eps) for y in ys if y.dtype.kind == "f"])
        return cls(p.forward_fn, p.vjp_fn, p.xs, ys, eps)


def _reference(p: _Problem, y0: list[np.ndarray]) -> _Ref | None:
    """A float64 evaluation of the same function, if inputs are lower precision and the
    function (or ``reference``) computes in float64."""
    low = any(d and x.dtype != np.float64 for x, d in zip(p.xs, p.diff))
    if not low:
        return None
    fwd, vjp = p.opts.reference or (p.forward_fn, p.vjp_fn)
    xs64 = [x.astype(np.float64) if d else x for x, d in zip(p.xs, p.diff)]
    try:
        ys = p.forward(xs64, fwd)
    except _CallError:
        if p.opts.reference is not None:
            raise
        return None
    if not all(y.dtype == np.float64 for y, y0_ in zip(ys, y0) if y0_.dtype.kind == "f"):
        return None  # an output stays in low precision (a cast): no float64 evaluation
    return _Ref(fwd, vjp, xs64, ys, float(np.finfo(np.float64).eps))


def _precision(p: _Problem, ref: _Ref, v1: list[np.ndarray],
               g1: list[np.ndarray]) -> tuple[Check, list[np.ndarray]]:
    """The low-precision gradient against the float64 one, under a float32 error model:
    tolerance f32_safety * max(eps, forward relative error at x) * max|g64|. Returns the
    check and the float64 gradient."""
    g64 = [np.zeros_like(x) if g is None else np.asarray(g, np.float64)
           for g, x in zip(_normalise(p.vjp(ref.xs, [v.astype(np.float64) for v in v1],
                                            ref.vjp), ref.xs), ref.xs)]
    y_lo = p.forward([x.copy() for x in p.xs])
    fwd_err = 0.0
    for a, b in zip(y_lo, ref.ys):
        if a.dtype.kind == "f" and a.size:
            scale = float(np.max(np.abs(b)))
            if scale > 0 and np.isfinite(scale):
                fwd_err = max(fwd_err, float(np.max(np.abs(a - b))) / scale)
    worst, tols = _precision_entries(p, g1, g64, fwd_err, None)
    overflowed = sum(int(np.count_nonzero(_overflow(g, h, x)))
                     for g, h, x in zip(g1, g64, p.xs))
    sensitive = False
    if worst:  # maybe the float64 gradient itself moves that much within float32 rounding
        sens = _rounding_sensitivity(p, ref, v1, g64)
        # A gradient that sums cotangent terms which cancel (fill's sum(v) = 1e-4 from O(1)
        # terms) rounds at the terms' size: the vjp of |v| estimates it.
        absolute = _normalise(p.vjp(ref.xs, [np.abs(v.astype(np.float64)) for v in v1],
                                    ref.vjp), ref.xs)
        rel = [p.opts.f32_safety * max(float(np.finfo(x.dtype).eps), fwd_err) for x in p.xs]
        sens = [sv + r / 4 * (0.0 if a is None else _finite_abs(np.asarray(a, np.float64)))
                for sv, r, a in zip(sens, rel, absolute)]
        worst, tols = _precision_entries(p, g1, g64, fwd_err, sens)
        sensitive = True
    low = next(str(x.dtype) for x, d in zip(p.xs, p.diff) if d and x.dtype != np.float64)
    verdict = FAIL if worst else (INCONCLUSIVE if overflowed else PASS)
    reason = (f"wrong only in low precision: the {low} gradient differs from the float64 "
              "one beyond rounding" + (" (and beyond how much the float64 gradient moves "
                                       f"within {low} rounding of x)" if sensitive else "")
              if worst else
              f"the gradient overflows {low} at {overflowed} entries (inf, as rounding "
              "gives): not verifiable there" if overflowed else None)
    return Check("precision", verdict, reason,
                 worst=worst, tolerance=max(tols) if tols else None,
                 details={"forward_relative_error": fwd_err, "dtype": low,
                          "sensitivity_measured": sensitive}), g64


def _overflow(g: np.ndarray, h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The true gradient is beyond the dtype's range: inf of the right sign is the correctly
    rounded value, and nothing finer can be verified."""
    g = np.asarray(g, np.float64)
    return np.isinf(g) & (np.abs(h) >= np.finfo(x.dtype).max) & (np.sign(g) == np.sign(h))


def _precision_entries(p: _Problem, g1: list[np.ndarray], g64: list[np.ndarray],
                       fwd_err: float, sens: list[np.ndarray] | None,
                       ) -> tuple[list[Entry], list[float]]:
    """Worst disagreement per input beyond ``f32_safety * max(eps, fwd_err) * max|g64|``
    (plus 4x the measured rounding sensitivity, entry by entry, when given)."""
    worst, tols = [], []
    for k, (g, h, x) in enumerate(zip(g1, g64, p.xs)):
        if not p.diff[k] or not g.size:
            continue
        eps = float(np.finfo(x.dtype).eps)
        tol = p.opts.f32_safety * max(eps, fwd_err) * float(np.max(np.abs(h))) + float(
            np.finfo(x.dtype).tiny)
        tols.append(tol)
        entry_tol = tol if sens is None else tol + 4 * sens[k]
        with np.errstate(invalid="ignore"):
            err = np.where(_overflow(g, h, x), 0.0, np.abs(np.asarray(g, np.float64) - h))
            excess = err / entry_tol
        i = _worst_index(excess)
        if not np.isfinite(err.flat[i]) or excess.flat[i] > 1:
            worst.append(Entry(input=k, input_name=p.names[k],
                               index=tuple(int(t) for t in np.unravel_index(i, x.shape)),
                               analytic=float(np.asarray(g, np.float64).flat[i]),
                               numeric=float(h.flat[i]), bound=0.0,
                               tolerance=float(np.broadcast_to(entry_tol, x.shape).flat[i]),
                               step=0.0, verdict=FAIL, note="float64 analytic gradient"))
    return worst, tols


def _rounding_sensitivity(p: _Problem, ref: _Ref, v1: list[np.ndarray],
                          g64: list[np.ndarray]) -> list[np.ndarray]:
    """How far the float64 gradient moves when every input entry moves by a few units of
    its low-precision rounding (six evaluations): a float32 computation, which
    rounds its inputs and intermediates that much, cannot be held closer. Large where the
    gradient jumps (floor) or is ill-conditioned (exp(x - logsumexp) at x = 1000)."""
    cts = [v.astype(np.float64) for v in v1]
    out = [np.zeros(x.shape) for x in ref.xs]
    # Every entry both ways; neighbouring entries and corresponding entries of different
    # inputs both together and apart (x / y does not move when x and y move alike, nor
    # softmax when all logits do); and a random pattern for the rest.
    def checker(k: int, x: np.ndarray) -> np.ndarray:
        return (-1.0) ** (np.arange(x.size).reshape(x.shape) + k)
    patterns = [[np.ones(x.shape) for x in ref.xs],
                [checker(k, x) for k, x in enumerate(ref.xs)],
                [p.rng.choice(np.array([-1.0, 1.0]), size=x.shape) for x in ref.xs]]
    for signs in patterns + [[-s for s in pattern] for pattern in patterns]:
        moved = [x * (1 + 4 * float(np.finfo(x0.dtype).eps) * s) if d else x
                 for x, x0, d, s in zip(ref.xs, p.xs, p.diff, signs)]
        try:
            gs = _normalise(p.vjp(moved, cts, ref.vjp), moved)
        except _CallError:
            continue
        for k, g in enumerate(gs):
            if g is not None and np.shape(g) == out[k].shape:
                with np.errstate(invalid="ignore"):
                    d = np.abs(np.asarray(g, np.float64) - g64[k])
                out[k] = np.fmax(out[k], np.where(np.isfinite(d), d, 0.0))
    return out


def _scales(xs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Relative step scale per element: |x|, or for exact zeros the RMS of the input's
    non-zero magnitudes (1 if there are none)."""
    out = []
    for x in xs:
        a = np.abs(np.asarray(x, dtype=np.float64))
        nz = a[(a > 0) & np.isfinite(a)]
        top = float(np.max(nz)) if nz.size else 1.0  # RMS without underflow (2e-281 ** 2)
        fallback = top * float(np.sqrt(np.mean((nz / top) ** 2))) if nz.size else 1.0
        out.append(np.where((a > 0) & np.isfinite(a), a, fallback))
    return out


def _support(p: _Problem, ref: _Ref) -> list[tuple[int, int]]:
    """(input, offset) blocks of the differentiable inputs in one flat index space."""
    blocks, offset = [], 0
    for k, x in enumerate(ref.xs):
        if p.diff[k]:
            blocks.append((k, offset))
            offset += x.size
    return blocks


def _moved(ref: _Ref, directions: list[np.ndarray | None], t: float) -> list[np.ndarray]:
    return [x if d is None else (x + t * d).astype(x.dtype, copy=False)
            for x, d in zip(ref.xs, directions)]


def _line(p: _Problem, ref: _Ref, directions: list[np.ndarray | None],
          cotangent: list[np.ndarray] | None, stable: Check,
          rounding: tuple[Any, Any] = (0.0, 0.0)) -> Line:
    """phi(t) = <v, f(x + t d) - f(x)>, or ``f(x + t d) - f(x)`` flattened (one channel per
    output entry) when v is None.

    Differencing against f(x) makes an output the direction does not touch contribute an
    exact zero to phi. Its round-off is still charged: an output that did not visibly move
    may hide a change below its own spacing (a loss of 50 hides a 1e-23 derivative).

    ``rounding = (A, B)``: rounding ``x + t d`` to the input's spacing moves the argument by
    up to eps |x + t d|, which changes phi by eps (A + |t| B) with A = sum |df/dx| |x| and
    B = sum |df/dx| |d| (from the analytic gradient). Charged as magnitude: it dominates
    when |x| is large and f oscillates (sin(33799)), where |phi| alone says nothing.
    """
    extra_a, extra_b = rounding
    # Near zero rounding is absolute (gradual underflow: a float32 cast of 1e-70 is 0):
    # the output's smallest spacing, as magnitude in units of eps.
    shapes = [(y.shape, y.dtype) for y in ref.ys]
    floors = [float(np.finfo(dt).smallest_subnormal) / ref.eps for _, dt in shapes
              if dt.kind == "f"]
    base = [np.asarray(y, np.float64) for y, (_, dt) in zip(ref.ys, shapes) if dt.kind == "f"]
    cts = None if cotangent is None else [np.asarray(v, np.float64) for v, (_, dt) in zip(
        cotangent, shapes) if dt.kind == "f"]

    def changes(t: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if t == 0.0:
            return [np.zeros_like(b) for b in base], [np.zeros_like(b) for b in base]
        ys = p.forward(_moved(ref, directions, t), ref.forward)
        got = [(y.shape, y.dtype) for y in ys]
        if got != shapes:
            if stable.verdict == PASS:
                stable.verdict = FAIL
                stable.reason = (f"output shape/dtype changes under perturbation: {shapes} at "
                                 f"x, {got} at x + {t:.3g} d")
            return [np.full(b.shape, np.nan) for b in base], [np.zeros_like(b) for b in base]
        ys = [np.asarray(y, np.float64) for y, (_, dt) in zip(ys, shapes) if dt.kind == "f"]
        with np.errstate(all="ignore"):
            diff = [y - b for y, b in zip(ys, base)]
            mag = [np.abs(y) + np.where(y != b, np.abs(b), 0.0) + floor
                   for y, b, floor in zip(ys, base, floors)]
        return diff, mag

    def argument(t: float) -> Any:
        return extra_a + abs(t) * extra_b

    if cts is None:
        def channels(t: float) -> tuple[np.ndarray, np.ndarray]:
            diff, mag = changes(t)
            return (np.concatenate([d.ravel() for d in diff]),
                    np.concatenate([m.ravel() for m in mag]) + argument(t))
    else:
        def channels(t: float) -> tuple[np.ndarray, np.ndarray]:
            diff, mag = changes(t)
            with np.errstate(all="ignore"):
                value = sum(float(np.sum(d * v)) for d, v in zip(diff, cts))
                size = sum(float(np.sum(m * np.abs(v))) for m, v in zip(mag, cts))
            return np.array([value]), np.array([size + argument(t)])
    line = Line(channels, paired=True)
    line.eps = ref.eps  # a float32-only function rounds at float32's spacing
    return line


def _output_scale(ref: _Ref) -> float:
    """The largest finite float output entry: the scale below which no output can show a
    change if it is computed from terms of that size."""
    return max((float(np.max(_finite_abs(np.asarray(y, np.float64)), initial=0.0))
                for y in ref.ys if y.dtype.kind == "f"), default=0.0)


def _step(p: _Problem, ref: _Ref) -> float:
    return p.opts.step if p.opts.step is not None else default_step(ref.eps)


def _decide(p: _Problem, line: Line, analytic: np.ndarray, ab: np.ndarray, h: float,
            scale: float, resolution: Any = 0.0):
    """Quick estimate; anything not passing is confirmed on the finer ladder."""
    kw = {"scale": scale, "safety": p.opts.safety, "detect_rtol": p.opts.detect_rtol,
          "resolution": resolution}
    est = quick(line, h, p.opts.c_round)
    jd = judge(analytic, ab, est, **kw)
    if not all(v == PASS for v in jd.verdict):
        est = refine(line, h, p.opts.c_round)
        jd = judge(analytic, ab, est, **kw)
    return est, jd


# -- full mode -------------------------------------------------------------------------------
def _full(p: _Problem, ref: _Ref, residual: list[np.ndarray]) -> Check:
    stable = Check("hygiene.output_stable", PASS)
    float_outs = [k for k, y in enumerate(ref.ys) if y.dtype.kind == "f"]
    out_index = [(k, i) for k in float_outs for i in range(ref.ys[k].size)]
    blocks = _support(p, ref)
    n = sum(ref.xs[k].size for k, _ in blocks)
    jac = np.zeros((len(out_index), n))
    for row, (k, i) in enumerate(out_index):  # analytic Jacobian, row by row
        cts = [np.zeros_like(y) for y in ref.ys]
        cts[k].flat[i] = 1
        gs = _normalise(p.vjp(ref.xs, cts, ref.vjp), ref.xs)
        for kk, off in blocks:
            if gs[kk] is not None:
                jac[row, off:off + ref.xs[kk].size] = np.asarray(gs[kk], np.float64).ravel()
    scales = _scales(ref.xs)
    h = _step(p, ref)
    scaled = np.concatenate([scales[k].ravel() for k, _ in blocks]) if blocks else np.ones(0)
    natural = float(np.max(np.abs(jac * scaled), initial=0.0))
    num = np.zeros_like(jac)  # numeric Jacobian (scaled back to d/dx)
    resolution = p.opts.c_round * ref.eps * _output_scale(ref)
    verdicts: list[str] = []
    shown: list[Entry] = []
    for kk, off in blocks:  # numeric Jacobian, column by column
        x = ref.xs[kk]
        for j in range(x.size):
            d = np.zeros(x.shape)
            d.flat[j] = scales[kk].flat[j]
            directions: list[np.ndarray | None] = [None] * len(ref.xs)
            directions[kk] = d
            col = jac[:, off + j] * d.flat[j]
            ab = p.opts.c_round * ref.eps * np.abs(col) + residual[kk].flat[j] * d.flat[j]
            ratio = abs(float(x.flat[j])) / abs(float(d.flat[j]))
            slope = _finite_abs(np.nan_to_num(col, nan=0.0))  # a NaN gradient is judged
            line = _line(p, ref, directions, None, stable, (slope * ratio, slope))
            est, jd = _decide(p, line, col, ab, h, natural, resolution)
            num[:, off + j] = est.value / d.flat[j]
            verdicts.extend(jd.verdict)
            with np.errstate(all="ignore"):
                excess = np.abs(col - est.value) / np.where(jd.tolerance > 0, jd.tolerance,
                                                              np.inf)
            interesting = [r for r in range(len(out_index)) if jd.verdict[r] != PASS]
            interesting += list(np.argsort(-np.nan_to_num(excess, nan=np.inf))[:1])
            unit = d.flat[j]  # entries report d f / d x, not per unit of the relative step
            for r in dict.fromkeys(interesting):
                k_out, i_out = out_index[r]
                shown.append(Entry(
                    input=kk, input_name=p.names[kk],
                    index=tuple(int(t) for t in np.unravel_index(j, x.shape)),
                    output=(k_out,) + tuple(int(t) for t in np.unravel_index(
                        i_out, ref.ys[k_out].shape)),
                    analytic=float(col[r] / unit), numeric=float(est.value[r] / unit),
                    bound=float(est.bound[r] / unit), tolerance=float(jd.tolerance[r] / unit),
                    step=float(est.step[r] * unit), verdict=jd.verdict[r],
                    kind=jd.kind[r], note=jd.reason[r],
                    one_sided=(float(est.left[r] / unit), float(est.right[r] / unit))
                    if jd.kind[r] == "kink" else None))
    check = _summarise("gradient", shown, verdicts, stable, p)
    check.details["transposed"] = [p.names[k] for k in transposed_inputs(
        jac, num, blocks, [x.shape for x in ref.xs])] if check.verdict == FAIL else []
    check.arrays = {"analytic": jac, "numeric": num}
    return check


def _summarise(name: str, entries: list[Entry], verdicts: list[str], stable: Check,
               p: _Problem, extra: str | None = None) -> Check:
    verdict = combine(verdicts + [stable.verdict])
    bad = sorted((e for e in entries if e.verdict != PASS),
                 key=lambda e: (e.verdict != FAIL, -min(e.excess, 1e300)))
    good = sorted((e for e in entries if e.verdict == PASS), key=lambda e: -min(e.excess,
                                                                                 1e300))
    reason = None
    if stable.verdict == FAIL:
        reason = stable.reason
    elif verdict == FAIL:
        n_fail = sum(v == FAIL for v in verdicts)
        reason = f"{n_fail} of {len(verdicts)} compared values disagree beyond tolerance"
    elif verdict == INCONCLUSIVE:
        reason = "; ".join(sorted({e.note for e in bad if e.note})) or (
            "numeric estimate unreliable")
    if extra and verdict != FAIL:
        reason = f"{reason}; {extra}" if reason else extra
    tol = max((e.tolerance for e in entries if np.isfinite(e.tolerance)), default=None)
    check = Check(name, verdict, reason, worst=bad[:8] if bad else good[:3], tolerance=tol,
                  details={"compared": len(verdicts),
                           "kinks": sum(e.kind == "kink" for e in entries)})
    check.details["signature"] = signature(bad, good, p.xs, p.diff, p.names)
    return check


# -- fast mode -------------------------------------------------------------------------------
def _fast(p: _Problem, ref: _Ref, v1: list[np.ndarray], g1: list[np.ndarray],
          residual: list[np.ndarray]) -> Check:
    stable = Check("hygiene.output_stable", PASS)
    scales = _scales(ref.xs)
    h = _step(p, ref)
    entries: list[Entry] = []
    verdicts: list[str] = []
    notes: list[str] = []
    for probe in range(p.opts.probes):
        if probe == 0:
            v, g = [np.asarray(t, np.float64) for t in v1], g1
        else:
            v = [np.asarray(t, np.float64) for t in _cotangent(p.rng, ref.ys)]
            g = [np.zeros_like(x) if t is None else t for t, x in zip(
                _normalise(p.vjp(ref.xs, [t.astype(y.dtype) for t, y in zip(v, ref.ys)],
                                 ref.vjp), ref.xs), ref.xs)]
        signs = [p.rng.choice(np.array([-1.0, 1.0]), size=x.shape) if p.diff[k] else None
                 for k, x in enumerate(ref.xs)]
        directions = [None if s is None else s * sc for s, sc in zip(signs, scales)]
        probe_obj = _Probe(p, ref, v, g, directions, residual, stable, h)
        entry = probe_obj.compare(None)
        entries.append(entry)
        if entry.verdict == PASS:
            verdicts.append(PASS)
            continue
        located = sum(e.verdict != PASS and e.index is not None for e in entries)
        found = probe_obj.localise() if (entry.verdict == FAIL
                                         and located < p.opts.localise) else []
        if entry.verdict == FAIL and found and all(e.verdict == PASS for e in found):
            verdicts.append(PASS)  # a multi-kink probe: every entry is a valid subgradient
            entry.verdict = PASS
            entry.note = "probe disagreement explained by kinks (entries pass one by one)"
            notes.append(entry.note)
        elif entry.verdict == FAIL and not found and located == 0:
            verdicts.append(PASS)  # each half passes: kinks with opposite orientations
            entry.verdict = PASS
            entry.note = ("probe disagreement not confirmed: each half of its support "
                          "passes (kinks)")
            notes.append(entry.note)
        elif entry.verdict == FAIL and found and not any(e.verdict == FAIL for e in found):
            # Not confirmed at any single entry, and some could not be judged (a probe line
            # along a discontinuity of floor(x / y)): unverified, not wrong.
            verdicts.append(INCONCLUSIVE)
            entry.verdict = INCONCLUSIVE
            entry.note = ("probe disagreement not confirmed at single entries (they are "
                          "inconclusive)")
        else:
            verdicts.append(combine([entry.verdict] + [e.verdict for e in found]))
        entries.extend(found)
    return _summarise("gradient", entries, verdicts, stable, p,
                      extra="; ".join(sorted(set(notes))) or None)


class _Probe:
    """One random probe ``(v, d)`` and the comparisons on parts of its support."""

    def __init__(self, p: _Problem, ref: _Ref, v: list[np.ndarray], g: list[np.ndarray],
                 directions: list[np.ndarray | None], residual: list[np.ndarray],
                 stable: Check, h: float):
        self.p, self.ref, self.v, self.g = p, ref, v, g
        self.directions, self.residual, self.stable, self.h = (directions, residual,
                                                                stable, h)
        self.blocks = _support(p, ref)
        self.size = sum(ref.xs[k].size for k, _ in self.blocks)
        self.budget_start = p.n_forward

    def _restricted(self, lo: int, hi: int) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = [None] * len(self.ref.xs)
        for k, off in self.blocks:
            x = self.ref.xs[k]
            a, b = max(lo - off, 0), min(hi - off, x.size)
            if a < b:
                d = np.zeros(x.size)
                d[a:b] = np.ravel(self.directions[k])[a:b]
                out[k] = d.reshape(x.shape)
        return out

    def compare(self, span: tuple[int, int] | None) -> Entry:
        lo, hi = span if span is not None else (0, self.size)
        directions = self.directions if span is None else self._restricted(lo, hi)
        analytic = 0.0
        magnitude = 0.0
        at_x = 0.0  # sum |g| |x| over the support: the argument-rounding term of _line
        ab_res = 0.0
        for k, d in enumerate(directions):
            if d is None:
                continue
            g64 = np.asarray(self.g[k], np.float64)
            gd = g64 * d
            analytic += float(np.sum(gd))
            magnitude += float(np.sum(_finite_abs(np.nan_to_num(gd, nan=0.0))))
            at_x += float(np.sum(_finite_abs(np.nan_to_num(g64, nan=0.0))
                                 * np.abs(self.ref.xs[k]) * (d != 0)))
            if self.residual[k].size:
                ab_res += float(np.sum(self.residual[k] * np.abs(d)))
        ab = np.array([self.p.opts.c_round * self.ref.eps * magnitude + ab_res])
        line = _line(self.p, self.ref, directions, self.v, self.stable, (at_x, magnitude))
        resolution = self.p.opts.c_round * self.ref.eps * _output_scale(self.ref) * sum(
            float(np.sum(np.abs(v))) for v in self.v)
        est, jd = _decide(self.p, line, np.array([analytic]), ab, self.h, magnitude,
                          resolution)
        index = None
        entry_input = self.blocks[0][0]
        unit = 1.0  # a probe reports its directional derivative; one entry, d phi / d x
        if span is not None and hi - lo == 1:
            for k, off in self.blocks:
                if off <= lo < off + self.ref.xs[k].size:
                    entry_input = k
                    index = tuple(int(t) for t in np.unravel_index(lo - off,
                                                                   self.ref.xs[k].shape))
                    unit = float(directions[k].flat[lo - off])
        step_scale = float(np.max([np.max(np.abs(d)) for d in directions if d is not None]))
        return Entry(input=entry_input, input_name=self.p.names[entry_input]
                     if index is not None else "probe", index=index,
                     analytic=analytic / unit, numeric=float(est.value[0]) / unit,
                     bound=float(est.bound[0]) / abs(unit),
                     tolerance=float(jd.tolerance[0]) / abs(unit),
                     step=float(est.step[0]) * step_scale, verdict=jd.verdict[0],
                     kind=jd.kind[0], note=jd.reason[0],
                     one_sided=(float(est.left[0]) / unit, float(est.right[0]) / unit)
                     if jd.kind[0] == "kink" else None)

    def localise(self) -> list[Entry]:
        """Bisect the support: follow halves that still disagree down to single entries."""
        found: list[Entry] = []
        stack = [(0, self.size)]
        while stack and len([e for e in found if e.verdict != PASS]) < self.p.opts.localise:
            if self.p.n_forward - self.budget_start > self.p.opts.localise_budget:
                break
            lo, hi = stack.pop()
            if hi - lo == 1:
                found.append(self.compare((lo, hi)))
                continue
            mid = (lo + hi) // 2
            halves = [(lo, mid), (mid, hi)]
            bad = []
            for span in halves:
                e = self.compare(span)
                if e.verdict != PASS:
                    bad.append((e.excess, span))
            # depth first into the worse half, so the worst entries are found first
            for _, span in sorted(bad):
                stack.append(span)
        return found
