"""Where the numeric side looks: the reference evaluation, relative step scales, and the
line ``t -> phi(t)`` along a direction (one channel per output entry, or one
cotangent-weighted channel for a probe), with the magnitudes its budget is charged.

>>> import numpy as np
>>> scales([np.array([0.0, -3.0, 4.0])])[0].tolist()   # zeros step like the RMS of the rest
[3.5355339059327378, 3.0, 4.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradverify.harness.budget import C_ROUND, C_SIGMA, default_step, probe_step
from gradverify.harness.calls import CallError, Problem, aligned_copy, aligned_empty
from gradverify.harness.numeric import Line
from gradverify.harness.report import FAIL, PASS, Check

__all__ = ["Ref", "Kept", "reference", "uniform", "raw_int32", "RAW_UNIT", "scales", "support",
           "moved", "line", "output_scale", "step", "first_pass_step", "cotangent", "finite_abs",
           "finite_max", "all_finite",
           "worst_index", "normalise", "shape_dtype", "norm2"]

def shape_dtype(a: np.ndarray) -> str:
    return f"{tuple(a.shape)}:{a.dtype}"


def uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A symmetric draw on [-0.5, 0.5) from the seeded rng: the raw 64-bit words of its bit
    generator read as signed 32-bit integers, times 2^-32 (one pass; a third of the cost
    of ``rng.random``, which draws 53 bits per entry and shifts). Its atoms are the 2^-32
    grid: an entry repeats a given value with probability 2^-32, and a sum with fixed
    weights moves by at most 2^-32 sum |w| from the continuous draw it rounds
    (``probes.py`` charges that to the miss bound).

    >>> u = uniform(np.random.default_rng(0), (1000,))
    >>> bool(-0.5 <= u.min() and u.max() < 0.5), u.dtype.name
    (True, 'float64')
    """
    n = math.prod(shape)
    return np.multiply(raw_int32(rng, n), RAW_UNIT, out=aligned_empty((n,))).reshape(shape)


# One step of the 32-bit grid of :func:`uniform` and :func:`raw_int32`.
RAW_UNIT = 2.0 ** -32


def raw_int32(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` independent integers uniform on [-2^31, 2^31) from ``rng``'s bit generator
    (two per raw 64-bit word).

    >>> raw_int32(np.random.default_rng(0), 3).dtype.name
    'int32'
    """
    return rng.bit_generator.random_raw((n + 1) // 2).view(np.int32)[:n]


def cotangent(rng: np.random.Generator, ys: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Random cotangents (:func:`uniform`; zeros for non-float outputs): not ones, so a
    rule that ignores the upstream gradient shows."""
    return [uniform(rng, y.shape).astype(y.dtype, copy=False) if y.dtype.kind == "f"
            else np.zeros_like(y) for y in ys]


def norm2(*parts: np.ndarray) -> float:
    """The 2-norm of all entries of ``parts`` without underflow or overflow (1e-163
    squared is 0 in float64): scaled by the largest magnitude first.

    >>> norm2(np.array([3e-170, 4e-170]))
    5e-170
    """
    parts = [np.asarray(q) for q in parts]
    top = max([float(np.abs(q).max(initial=0.0)) for q in parts], default=0.0)
    if top == 0.0 or not np.isfinite(top):
        return top
    return top * float(np.sqrt(sum([float(((q / top) ** 2).sum()) for q in parts])))


def finite_abs(a: np.ndarray) -> np.ndarray:
    return np.where(np.isinf(a), 0.0, np.abs(a))


def finite_max(a: np.ndarray) -> float:
    """max |a| over the finite entries (0 if none).

    >>> finite_max(np.array([-3.0, 2.0, np.inf]))
    3.0
    """
    if not np.size(a):
        return 0.0
    a = np.asarray(a)
    # max |a| = max(max a, -min a): two reductions, no |a| array (the methods: their
    # wrappers cost less than np.max's on a small array)
    hi, lo = float(a.max()), float(a.min())
    if np.isfinite(hi) and np.isfinite(lo):
        return abs(max(hi, -lo))
    return float(np.max(finite_abs(np.asarray(a, np.float64)), initial=0.0))


def all_finite(a: np.ndarray) -> bool:
    """Whether every entry is finite: max and min are NaN when an entry is (two
    reductions, no array of flags).

    >>> all_finite(np.array([1.0, np.nan])), all_finite(np.zeros(0))
    (False, True)
    """
    a = np.asarray(a)
    return not a.size or bool(np.isfinite(a.max()) and np.isfinite(a.min()))


def worst_index(err: np.ndarray) -> int:
    """Flat index of the largest |err|, NaN counting as largest (never raises)."""
    a = np.asarray(err, dtype=np.float64).ravel()
    if not a.size:
        return 0
    lo, hi = float(a.min()), float(a.max())
    if math.isfinite(lo) and math.isfinite(hi) and hi != -lo:  # no |a| array to make
        return int(np.argmax(a)) if hi > -lo else int(np.argmin(a))
    a = np.abs(a)
    return int(np.argmax(np.where(np.isnan(a), np.inf, a)))


def normalise(gs: list[Any], xs: Sequence[np.ndarray]) -> list[np.ndarray | None]:
    return [None if g is None else np.asarray(g) for g in gs]



_KEPT_FLOATS = 8_000_000  # output values a probe's line keeps per entry (64 MB)


class Kept:
    """The whole flat float output ``f(x + t d)`` at each t a probe's line evaluated
    (``values``), and ``base`` = f(x): what ``jump_entries`` judges entry by entry. A line
    along the same directions reads it instead of evaluating again (the probe re-judged
    without its jumping entries). Keeps at most _KEPT_FLOATS values."""

    def __init__(self, base: np.ndarray):
        self.base = base
        self.values: dict[float, np.ndarray] = {}
        self.room = _KEPT_FLOATS

    def keep(self, t: float, values: np.ndarray) -> None:
        if self.room >= values.size and t not in self.values:
            self.room -= values.size
            self.values[t] = values


@dataclass
class Ref:
    """The functions and point used for the tight numeric comparison."""

    forward: Callable
    vjp: Callable
    xs: list[np.ndarray]
    ys: list[np.ndarray]
    eps: float

    @classmethod
    def native(cls, p: Problem, ys: list[np.ndarray]) -> Ref:
        # Outputs of a lower precision (a cast to float32) round at their own spacing.
        eps = max([float(np.finfo(x.dtype).eps) for x, d in zip(p.xs, p.diff) if d]
                  + [float(np.finfo(y.dtype).eps) for y in ys if y.dtype.kind == "f"])
        return cls(p.forward_fn, p.vjp_fn, p.xs, ys, eps)


def reference(p: Problem, y0: list[np.ndarray]) -> Ref | None:
    """A float64 evaluation of the same function, if inputs are lower precision and the
    function (or ``reference``) computes in float64."""
    low = any(d and x.dtype != np.float64 for x, d in zip(p.xs, p.diff))
    if not low:
        return None
    fwd, vjp = p.opts.reference or (p.forward_fn, p.vjp_fn)
    xs64 = [aligned_copy(x, np.float64) if d else x for x, d in zip(p.xs, p.diff)]
    try:
        ys = p.forward(xs64, fwd)
    except CallError:
        if p.opts.reference is not None:
            raise
        return None
    if not all(y.dtype == np.float64 for y, y0_ in zip(ys, y0) if y0_.dtype.kind == "f"):
        return None  # an output stays in low precision (a cast): no float64 evaluation
    return Ref(fwd, vjp, xs64, ys, float(np.finfo(np.float64).eps))


def scales(xs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Relative step scale per element: |x|, or for exact zeros the RMS of the input's
    non-zero magnitudes (1 if there are none); never below the smallest normal number,
    since below it the spacing is absolute (a relative step of a subnormal x rounds to a
    few spacings, and eps |x| underflows to nothing).

    >>> [float(s[0]) for s in scales([np.array([2.0]), np.array([2.2e-311])])]
    [2.0, 2.2250738585072014e-308]
    """
    out = []
    tiny = float(np.finfo(np.float64).tiny)
    for x in xs:
        a = np.abs(np.asarray(x, dtype=np.float64))
        if a.size and a.min() >= tiny and np.isfinite(a.max()):  # no zeros: |x| (3 passes)
            out.append(a)
            continue
        nz = a[(a > 0) & np.isfinite(a)]
        top = float(np.max(nz)) if nz.size else 1.0  # RMS without underflow (2e-281 ** 2)
        fallback = top * float(np.sqrt(np.mean((nz / top) ** 2))) if nz.size else 1.0
        out.append(np.maximum(np.where((a > 0) & np.isfinite(a), a, fallback), tiny))
    return out


def _magnitude(y: np.ndarray, b: np.ndarray, abs_b: np.ndarray, floor: float) -> np.ndarray:
    """``|y| + (|b| where y != b) + floor`` in place, bit for bit the same sums (adding 0.0
    to |y| changes nothing), without the temporaries: a probe on 1e5 outputs runs it at
    every step."""
    out = np.abs(y, out=np.empty(y.shape))  # (an array even for a 0-d y)
    np.add(out, abs_b, out=out, where=y != b)
    out += floor
    return out


def support(p: Problem, ref: Ref) -> list[tuple[int, int]]:
    """(input, offset) blocks of the differentiable inputs in one flat index space."""
    blocks, offset = [], 0
    for k, x in enumerate(ref.xs):
        if p.diff[k]:
            blocks.append((k, offset))
            offset += x.size
    return blocks


def moved(ref: Ref, directions: list[np.ndarray | None], t: float) -> list[np.ndarray]:
    return [x if d is None else (x + t * d).astype(x.dtype, copy=False)
            for x, d in zip(ref.xs, directions)]


def line(p: Problem, ref: Ref, directions: list[np.ndarray | None],
          cotangent: list[np.ndarray] | None, stable: Check,
          rounding: tuple[Any, Any] = (0.0, 0.0), rows: np.ndarray | None = None,
          kept: Kept | None = None, terms: np.ndarray | None = None) -> Line:
    """phi(t) = <v, f(x + t d) - f(x)>, or ``f(x + t d) - f(x)`` flattened (one channel per
    output entry) when v is None - only the flat output entries ``rows`` when given (a
    Jacobian column's undecided entries: the ladder's work then scales with them, not with
    every output; ``rounding`` is given for those rows; ``terms``, per row, the size of the
    terms the output is computed from, which its rounding follows where the output itself
    is a cancellation: the least magnitude its round-off is charged on, ``line.terms``).

    Differencing against f(x) makes an output the direction does not touch contribute an
    exact zero to phi. Its round-off is still charged: an output that did not visibly move
    may hide a change below its own spacing (a loss of 50 hides a 1e-23 derivative).

    ``rounding = (A, B)``: rounding ``x + t d`` to the input's spacing moves the argument by
    up to eps |x + t d|, which changes phi by eps (A + |t| B) with A ~ |df/dx| |x| and
    B ~ |df/dx| |d| (from the analytic gradient; the caller sums them worst-case or as a
    random walk and includes its constants). It is the budget's ``argument_rounding``: it
    dominates when |x| is large and f oscillates (sin(33799)), where |phi| says nothing.

    A probe's output round-off is the smaller of the worst case ``C_ROUND eps sum |v| |y|``
    and the random-walk bound ``C_SIGMA eps ||v y||_2`` (one ulp per output): roundings of
    different output entries are independent of the random cotangent, so their weighted
    sum stays within C_SIGMA standard deviations (probability of exceeding ~1e-8); what an
    output's rounding does beyond one ulp as t moves is measured - a probe's budget always
    carries its measured noise (``cancellation``) - and a rounding that does not move with
    t cancels in every difference. That keeps the resolution of a probe independent of the
    number of outputs.

    A probe's line keeps the whole output's change at every t (``line.entries``, a
    :class:`Kept`; given as ``kept``, a line along the same directions reads it instead of
    evaluating again): ``jump_entries`` finds the entries that jump within the steps there.
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

    # Per evaluation only what depends on t: |f(x)| and |v| are computed once (the same
    # values, bit for bit, as computing them at every step).
    abs_base = [np.abs(b) for b in base]
    float_out = [dt.kind == "f" for _, dt in shapes]
    one = len(base) == 1

    if cts is not None and kept is None:
        kept = Kept(np.concatenate([b.ravel() for b in base]) if base else np.zeros(0))

    def from_kept(t: float) -> list[np.ndarray] | None:
        flat = None if kept is None else kept.values.get(t)
        if flat is None:
            return None
        out, at = [], 0
        for b in base:
            out.append(flat[at:at + b.size].reshape(b.shape))
            at += b.size
        return out

    def changes(t: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if t == 0.0:
            return [np.zeros_like(b) for b in base], [np.zeros_like(b) for b in base]
        ys = from_kept(t)
        if ys is None:
            got_ys = p.forward(moved(ref, directions, t), ref.forward)
            if len(got_ys) != len(shapes) or any(y.shape != s or y.dtype != dt
                                                 for y, (s, dt) in zip(got_ys, shapes)):
                got = [(y.shape, y.dtype) for y in got_ys]
                if stable.verdict == PASS:
                    stable.verdict = FAIL
                    stable.reason = (f"output shape/dtype changes under perturbation: {shapes} "
                                     f"at x, {got} at x + {t:.3g} d")
                return ([np.full(b.shape, np.nan) for b in base],
                        [np.zeros_like(b) for b in base])
            ys = [np.asarray(y, np.float64) for y, f in zip(got_ys, float_out) if f]
            if kept is not None:
                kept.keep(t, np.concatenate([y.ravel() for y in ys]) if ys else np.zeros(0))
        with np.errstate(all="ignore"):
            diff = [y - b for y, b in zip(ys, base)]
            mag = [_magnitude(y, b, ab, floor)
                   for y, b, ab, floor in zip(ys, base, abs_base, floors)]
        return diff, mag

    def argument(t: float) -> Any:
        return extra_a + abs(t) * extra_b

    if cts is None:
        def channels(t: float) -> tuple[np.ndarray, np.ndarray, Any]:
            diff, mag = changes(t)
            if one:  # a fresh array either way: the flat view of the one output
                value, size = diff[0].ravel(), mag[0].ravel()
            else:
                value = np.concatenate([d.ravel() for d in diff])
                size = np.concatenate([m.ravel() for m in mag])
            if rows is not None:
                value, size = value[rows], size[rows]
            return value, size, argument(t)
    else:
        abs_cts = [np.abs(v) for v in cts]

        def channels(t: float) -> tuple[np.ndarray, np.ndarray, Any]:
            diff, mag = changes(t)
            with np.errstate(all="ignore"):
                value = sum([float((d * v).sum()) for d, v in zip(diff, cts)])
                worst = sum([float((m * a).sum()) for m, a in zip(mag, abs_cts)])
                walk = C_SIGMA * norm2(*[m * v for m, v in zip(mag, cts)]) / C_ROUND
            return np.array([value]), np.array([min(worst, walk)]), argument(t)
    line = Line(channels, paired=True)
    line.terms = terms
    line.entries = kept  # type: ignore[attr-defined]
    line.weights = None if cts is None else (  # type: ignore[attr-defined]
        np.concatenate([v.ravel() for v in cts]) if cts else np.zeros(0))
    line.eps = ref.eps  # a float32-only function rounds at float32's spacing
    line.ulp_move = lambda: ulp_move(ref, directions)  # type: ignore[attr-defined]
    # the largest output at x, for bounds that need it whatever channels are kept
    line.top = max((float(np.max(finite_abs(b), initial=0.0)) for b in base), default=0.0)
    return line


def ulp_move(ref: Ref, directions: list[np.ndarray | None]) -> float:
    """The line's smallest argument move: the least t at which ``x + t d`` has left x by at
    least one spacing in every entry it moves (0 for a zero direction). A jump at x shows
    there whichever entry carries it.

    >>> from types import SimpleNamespace
    >>> ulp_move(SimpleNamespace(xs=[np.array([1.0, 8.0])]), [np.array([1.0, 0.0])])
    2.220446049250313e-16
    """
    best = 0.0
    for x, d in zip(ref.xs, directions):
        if d is None:
            continue
        with np.errstate(all="ignore"):
            t = np.abs(np.spacing(np.abs(x))).astype(np.float64) / np.abs(d)
        t = t[np.isfinite(t) & (np.asarray(d) != 0)]
        if t.size:
            best = max(best, float(t.max()))
    return best


def output_scale(ref: Ref) -> float:
    """The largest finite float output entry: the scale below which no output can show a
    change if it is computed from terms of that size."""
    return max((float(np.max(finite_abs(np.asarray(y, np.float64)), initial=0.0))
                for y in ref.ys if y.dtype.kind == "f"), default=0.0)


def step(p: Problem, ref: Ref) -> float:
    """The relative step: the option, or eps ** (1/3) of the reference's precision."""
    return p.opts.step if p.opts.step is not None else default_step(ref.eps)


def first_pass_step(p: Problem, ref: Ref) -> float:
    """Fast mode's first-pass relative step: the option, or ``budget.probe_step``."""
    return p.opts.step if p.opts.step is not None else probe_step(ref.eps)
