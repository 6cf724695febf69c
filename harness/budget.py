"""The error budget: every tolerance of the gradient checker is ``safety × budget``.

A numeric derivative estimate carries an :class:`ErrorBudget` with named terms, one array
entry per channel (output entry or probe):

- ``truncation``: what the finite-difference formula drops (spread of Richardson levels);
- ``output_roundoff``: rounding of the outputs themselves, ``C_ROUND · eps · |y| / h``;
- ``cancellation``: round-off hidden inside the function (``(1 + x) - 1`` loses the digits
  of ``x`` that ``eps · |f|`` never sees), measured empirically from differences of the
  function at tiny steps (Moré & Wild's ECnoise), ``C_NOISE · sigma / h``;
- ``argument_rounding``: ``x + t d`` rounded to the input's spacing moves the argument by
  ``eps |x|``, which moves f by ``eps |x| |df/dx|``;
- ``analytic_rounding``: the analytic value's own rounding (and its measured non-linearity
  in the cotangent);
- ``float32``: rounding of a low-precision evaluation against its float64 reference.

Every constant lives here, with the reason for its value.

>>> import numpy as np
>>> b = ErrorBudget.zeros(2)
>>> b.truncation[:] = [1e-9, 0.0]; b.output_roundoff[:] = [1e-10, 2e-10]
>>> np.round(tolerance(b), 20).tolist(), b.dominant()
([4.4e-09, 8e-10], ['truncation', 'output_roundoff'])
>>> t = np.linspace(0, 1e-6, 7)
>>> noisy = np.exp(t) + 1e-13 * np.random.default_rng(0).standard_normal(7)
>>> smooth = noise_level(np.exp(t)[:, None])[0]
>>> bool(3e-14 < noise_level(noisy[:, None])[0] < 3e-13), bool(smooth < 1e-16)
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

__all__ = ["ErrorBudget", "tolerance", "central_tolerance", "central_roundoff", "noise_level",
           "fit_noise", "SAFETY", "C_ROUND", "C_NOISE", "C_SIGMA", "quantum_level", "F32_SAFETY",
           "INCONCLUSIVE_RTOL", "DETECT_RTOL", "default_step", "DECISIVE_SHARE", "PROBE_STEP",
           "probe_step", "RICHARDSON_REACH", "ladder_top", "SHARPEN_RTOL", "C_MEASURED",
           "ROUND_FLOOR", "measured_rounding"]

# The multiple of the budget allowed: each term is already an over-estimate, the factor
# absorbs the terms' own uncertainty (a truncation spread measured on two levels).
SAFETY = 4.0
# An output entry is computed to within C_ROUND ulps of its magnitude: a few dozen
# roundings of the same size (softmax, logsumexp, a dot product of moderate length).
C_ROUND = 32.0
# A measured noise level sigma bounds one evaluation's noise by C_NOISE sigma (3 sigma).
C_NOISE = 3.0
# A sum of N independent roundings weighted by random probe coefficients stays within
# C_SIGMA times its standard deviation except with probability ~1e-8 (Gaussian tail).
C_SIGMA = 6.0
# float32 gradient vs float64 gradient: 64 ulps of the forward's relative error.
F32_SAFETY = 64.0
# A check whose tolerance cannot resolve this relative error is INCONCLUSIVE.
INCONCLUSIVE_RTOL = 1e-3
# Fast mode adapts until the whole gradient is resolved to this relative error (float64).
DETECT_RTOL = 1e-6


# A first pass (one central difference, no truncation term) decides an agreement only when
# the error uses at most this share of its tolerance - the budget itself, not the safety
# margin on top of it. A correct gradient agrees far inside the budget (every term is an
# over-estimate); an error inside the margin may be a fault the first step cannot resolve
# (one entry of a scalar loss over many inputs), so it is confirmed on the step ladder,
# whose coarser Richardson rungs resolve it.
DECISIVE_SHARE = 1.0 / SAFETY
# The ladder's coarsest step: RICHARDSON_REACH * eps ** (1/5), where the error of a
# Richardson-extrapolated central difference (truncation ~ H^4, round-off ~ eps / H) is
# smallest, times a margin so the optimum lies inside the ladder, not at its end.
RICHARDSON_REACH = 4.0
# Full mode's resolution goal (float64; so that a gradient off by 1e-7 relative FAILs): an
# entry resolves it at the first step when DECISIVE_SHARE of its tolerance is below
# SHARPEN_RTOL * max(|analytic|, |numeric|, scale) - most entries of most functions do (a
# few dozen ulps of an output of the entry's own size over a step of 6e-6 is ~1e-8); the
# others (a scalar loss over many inputs: each entry is ~1/n of the loss it moves) are
# extrapolated over coarser steps (``full_pass.coarse_pass``). Lower precisions have no
# coarser rungs (see ladder_top), so the goal applies to float64 steps only.
SHARPEN_RTOL = 5e-8


def ladder_top(eps: float, h: float) -> float:
    """The coarsest rung of the step ladder: ``16 h`` (the classic start), extended by
    factors of 4 while it stays at or below ``RICHARDSON_REACH * eps ** (1/5)`` - the
    region where extrapolation over larger steps resolves what round-off hides at ``h``
    (a scalar loss over many inputs). Nothing changes where ``16 h`` is already beyond
    it (float32: eps ** (1/3) is coarse).

    >>> eps = 2.0 ** -52
    >>> round(ladder_top(eps, default_step(eps)) / default_step(eps))   # float64
    256
    >>> eps32 = 2.0 ** -23
    >>> ladder_top(eps32, default_step(eps32)) == 16 * default_step(eps32)
    True
    """
    top, reach = 16.0 * h, RICHARDSON_REACH * eps ** 0.2
    while 4.0 * top <= reach:
        top *= 4.0
    return top


# A measured noise level sigma (ECnoise, a few samples) bounds one evaluation's rounding
# by C_MEASURED sigma: 3 sigma for the noise's own tail, times ~2.5 for the sampling
# error of an estimate made from ten samples.
C_MEASURED = 8.0
# ...but never below ROUND_FLOOR ulps of the output: its final rounding and one operand's,
# which a short sample may miss.
ROUND_FLOOR = 2.0


def measured_rounding(sigma: np.ndarray, mag: np.ndarray, eps: float,
                      c_round: float = C_ROUND) -> np.ndarray:
    """An output's rounding per evaluation, as measured: ``C_MEASURED sigma``, at least
    ``ROUND_FLOOR`` ulps of ``mag`` and at most the a-priori ``c_round`` ulps. A scalar
    loss summed from many terms rounds like one or two ulps where the a-priori model
    charges 32; on coarse steps that difference decides what is resolved.

    >>> eps = 2.0 ** -52
    >>> r = measured_rounding(np.array([0.44 * eps * 2.56, 0.0, 1.0]), np.full(3, 2.56), eps)
    >>> np.round(r / (eps * 2.56), 2).tolist()   # 8 x 0.44 ulps; the floor; the a-priori cap
    [3.52, 2.0, 32.0]
    """
    sigma = np.where(np.isfinite(sigma), sigma, np.inf)
    return np.minimum(c_round * eps * mag, np.maximum(C_MEASURED * sigma,
                                                      ROUND_FLOOR * eps * mag))


def default_step(eps: float) -> float:
    """Relative step balancing truncation (h^2) and round-off (eps/h): eps ** (1/3).

    >>> round(default_step(2.0 ** -52), 8)
    6.06e-06
    """
    return float(eps ** (1.0 / 3.0))


# Fast mode's first pass steps PROBE_STEP times eps^(1/3). Its tolerance is the outputs'
# round-off alone, A eps / h with A ~ 6 (random-walk sigmas of an ulp), and a function
# truncates by B h^2, B = s^2 f''' / 6 f' for a range s, so A eps / h + B h^2 is least at
# (A eps / 2B)^(1/3): 2.6 eps^(1/3) for B = 1/6, 1.25 eps^(1/3) for B = 1.5 (exp at 3
# sigma). Over 12 elementwise functions on two input distributions each (log, 1/x, x^3,
# exp, tanh, ...), fast mode's forward evaluations are flat from 1 to 1.5 eps^(1/3) and
# 5 % more at 2: the largest step of the flat range, which resolves the most per
# direction. A function curved at a shorter scale goes on to the coarser rungs
# (probe_rungs.py: 4 evaluations for a direction).
PROBE_STEP = 1.5


def probe_step(eps: float) -> float:
    """Fast mode's first-pass relative step: ``PROBE_STEP * eps ** (1/3)``.

    >>> round(probe_step(2.0 ** -52), 9)
    9.083e-06
    """
    return PROBE_STEP * default_step(eps)


@dataclass
class ErrorBudget:
    """Named error terms of a numeric derivative, one entry per channel."""

    truncation: np.ndarray
    output_roundoff: np.ndarray
    cancellation: np.ndarray
    argument_rounding: np.ndarray
    analytic_rounding: np.ndarray
    float32: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> ErrorBudget:
        return cls(*(np.zeros(n) for _ in fields(cls)))

    @property
    def terms(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def total(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.sum([np.asarray(v, np.float64) for v in self.terms.values()], axis=0)

    def numeric(self) -> np.ndarray:
        """The numeric estimate's own error (everything but the analytic side)."""
        return self.total() - self.analytic_rounding - self.float32

    def roundoff(self) -> np.ndarray:
        """The terms that grow as the step shrinks (everything but truncation)."""
        return self.output_roundoff + self.cancellation + self.argument_rounding

    def dominant(self) -> list[str]:
        """The largest term's name per channel."""
        names = list(self.terms)
        stack = np.array([np.nan_to_num(v, nan=np.inf) for v in self.terms.values()])
        return [names[i] for i in np.argmax(stack, axis=0)]

    def take(self, index: int | np.ndarray) -> ErrorBudget:
        return ErrorBudget(*(np.atleast_1d(np.asarray(v)[index]) for v in
                             self.terms.values()))

    def with_analytic(self, analytic_rounding: np.ndarray,
                      float32: np.ndarray | float = 0.0) -> ErrorBudget:
        n = np.shape(self.truncation)
        return ErrorBudget(self.truncation, self.output_roundoff, self.cancellation,
                           self.argument_rounding,
                           np.broadcast_to(np.asarray(analytic_rounding, float), n).copy(),
                           np.broadcast_to(np.asarray(float32, float), n).copy())

    def to_dict(self, i: int = 0) -> dict[str, float]:
        return {k: float(np.asarray(v).flat[i]) for k, v in self.terms.items()}


def central_roundoff(output: np.ndarray, argument: np.ndarray, analytic: np.ndarray,
                     sigma: np.ndarray | float, eps: float, h: float,
                     c_round: float = C_ROUND, safety: float = SAFETY) -> np.ndarray:
    """``safety × budget`` of central differences ``(phi(h) - phi(-h)) / 2h`` with the
    round-off terms only - the first pass of both modes: agreement at this level decides
    (PASS); anything else goes to the step ladder, which adds truncation. The terms, as in
    :class:`ErrorBudget`: output_roundoff ``C_ROUND eps output / h`` (``output`` bounds
    |phi| at +-h in units of C_ROUND ulps), argument_rounding ``eps argument / h``
    (``argument``: the change of phi when x + t d rounds, in units of eps),
    cancellation ``C_NOISE sigma / h`` (0 when not measured yet), analytic_rounding
    ``analytic``. Arguments broadcast; computed in place for speed.

    >>> t = central_roundoff(np.array([1.0]), np.zeros(1), np.zeros(1), 0.0, 2.0 ** -52, 1e-5)
    >>> float(t[0] / (SAFETY * C_ROUND * 2.0 ** -52 / 1e-5))
    1.0
    """
    t = np.atleast_1d(np.multiply(output, c_round * eps / h))
    arg = np.multiply(argument, eps / h)
    t = np.add(t, arg, out=t if t.shape == np.broadcast(t, arg).shape else None)
    if np.any(sigma):
        t += C_NOISE * np.asarray(sigma) / h
    t += analytic
    t *= safety
    return t


def central_tolerance(mag: np.ndarray, slope: np.ndarray, x_over_d: np.ndarray,
                      sigma: np.ndarray, residual: np.ndarray, eps: float, h: float,
                      c_round: float = C_ROUND, safety: float = SAFETY) -> np.ndarray:
    """:func:`central_roundoff` of a whole block of Jacobian columns (full mode's first
    pass): output_roundoff from ``mag`` (rows, columns); argument_rounding ``C_ROUND eps |a|
    (|x|/d + h) / h`` and the analytic value's own rounding ``C_ROUND eps |a|`` (per
    column, both carried in the argument term as ``C_ROUND |a| (|x|/d + 2h)``) plus the
    measured non-linearity ``residual``; cancellation ``C_NOISE sigma / h`` per row.

    Every argument is one value per judged entry (or broadcasts to them): mag, the
    outputs' magnitudes; slope, |analytic| per unit step; x_over_d, |x| / d of the entry's
    input; sigma, its output's noise level; residual, its input's VJP non-linearity.

    >>> t = central_tolerance(np.array([1.0]), np.array([2.0]), np.array([1.0]),
    ...                       np.array([0.0]), np.array([0.0]), 2.0 ** -52, 1e-5)
    >>> bool(np.isclose(t[0], 4 * 32 * 2.0 ** -52 * (1 / 1e-5 + 2 * (1.00001 / 1e-5 + 1))))
    True
    """
    return central_roundoff(mag, slope * (c_round * (x_over_d + 2 * h)), residual, sigma,
                            eps, h, c_round, safety)


def tolerance(budget: ErrorBudget, safety: float = SAFETY) -> np.ndarray:
    """The one tolerance formula: ``safety × (sum of the budget's terms)``."""
    return safety * budget.total()


def _gamma(k: int) -> float:
    return math.factorial(k) ** 2 / math.factorial(2 * k)


def noise_level(values: np.ndarray) -> np.ndarray:
    """Standard deviation of the noise in equally spaced samples (ECnoise, Moré & Wild).

    ``values``: shape (m + 1, channels), f at t0 + k delta. The k-th differences of a smooth
    function vanish like delta^k while those of noise keep its size: sigma_k =
    sqrt(gamma_k mean(Delta^k f)^2) with gamma_k = (k!)^2 / (2k)! estimates the noise's
    standard deviation for every k large enough. The largest estimate over k = 3..m-1 is
    returned (an over-estimate only makes tolerances looser). Non-finite channels give inf;
    a channel constant on all samples gives 0 (the step was too small to see noise, which
    the checker handles as a flat function).
    """
    f = np.asarray(values, np.float64)
    m = f.shape[0] - 1
    out = np.zeros(f.shape[1:])
    bad = ~np.all(np.isfinite(f), axis=0)
    d = np.where(bad, 0.0, f)
    for k in range(1, m):
        d = np.diff(d, axis=0)
        if k >= 3:  # delta^2 f'' can exceed eps |f|; delta^3 f''' cannot
            with np.errstate(over="ignore", invalid="ignore"):
                sigma = np.sqrt(_gamma(k) * np.mean(d * d, axis=0))
            out = np.fmax(out, sigma)
    return np.where(bad, np.inf, out)


def fit_noise(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Standard deviation of the noise in samples at irregular ``positions`` (shape (m,),
    m >= 4; ``values`` shape (m, channels)): the residual of a least-squares quadratic,
    ``sqrt(RSS / (m - 3))``. A smooth function leaves its cubic term, which vanishes like
    the spacing cubed (as ECnoise's third differences do); noise keeps its size. Equally
    spaced samples alias a rounding staircase finer than their spacing: ``1 + erf(x)`` in
    its tail rounds to multiples of 2^-53 on stairs 4e-11 wide, and where the stairs
    advance by nearly a whole number per sample the five samples lie on one line (third
    differences 0, one window in four); irregular positions see its sawtooth. Non-finite
    channels give inf.

    >>> s = np.array([1.1, 1.8, 3.3, 4.0, 4.6])
    >>> bool(fit_noise((3 + 2 * s + s * s)[:, None], s)[0] < 1e-14)
    True
    """
    f = np.asarray(values, np.float64)
    s = np.asarray(positions, np.float64)
    s = (s - s.mean()) / np.ptp(s)  # well conditioned whatever the spacing
    basis = np.vstack([np.ones_like(s), s, s * s]).T
    q, _ = np.linalg.qr(basis)
    bad = ~np.all(np.isfinite(f), axis=0)
    d = np.where(bad, 0.0, f)
    with np.errstate(over="ignore", invalid="ignore"):
        r = d - q @ (q.T @ d)
        sigma = np.sqrt(np.sum(r * r, axis=0) / (s.size - 3))
        # the fit's own arithmetic rounds at the samples' size: a line reads as 0, as
        # equally spaced differences of it do (its rounding is the output round-off term)
        own = FIT_ROUNDING * np.finfo(np.float64).eps * np.max(np.abs(d), axis=0)
    return np.where(bad, np.inf, np.where(sigma <= own, 0.0, sigma))


FIT_ROUNDING = 8.0  # ulps of the largest sample: the fit's own rounding


# A grid of output values counts as the function's own rounding only when the samples span
# at least this many grid steps (a step function's two levels are not noise).
QUANTUM_SPAN = 64.0


def quantum_level(values: np.ndarray) -> np.ndarray:
    """Noise level implied by the grid the samples are rounded to, per channel.

    ``values``: shape (samples, channels). A result computed as the difference of large
    intermediates (``z - z * y`` at z = 15625, y = 0.999999) lands on the grid of those
    intermediates (multiples of ulp(15625)), far coarser than its own ulp; a handful of
    samples of such a staircase often has exactly zero third differences, so ECnoise alone
    reads 0. The grid q is the smallest power of two dividing every nonzero sample (for an
    ordinary result that is about its own ulp, so the floor costs nothing); rounding to it
    errs by a uniform q/2 at most, standard deviation q / sqrt(12). Channels whose grid is
    no coarser than their own rounding (charged as output round-off), or whose samples span
    fewer than QUANTUM_SPAN grid steps (constant, a few levels of a step function), give 0.

    >>> z = 15625.0 + np.arange(10) * 0.37
    >>> q = quantum_level((z - z * 0.999999)[:, None])[0]
    >>> bool(abs(q - 2.0 ** -39 / 12 ** 0.5) < 1e-20)
    True
    """
    f = np.asarray(values, np.float64)
    ok = np.isfinite(f) & (f != 0)
    mant, expo = np.frexp(np.where(ok, f, 1.0))
    ints = np.abs(np.ldexp(mant, 53)).astype(np.int64)
    low = (ints & -ints).astype(np.float64)  # the lowest set bit of the 53-bit significand
    grid = np.where(ok, np.ldexp(low, expo - 53), np.inf)
    q = np.min(grid, axis=0)
    with np.errstate(invalid="ignore"):
        span = np.max(np.where(ok, f, -np.inf), axis=0) - np.min(np.where(ok, f, np.inf), axis=0)
        top = np.max(np.where(ok, np.abs(f), 0.0), axis=0)
    coarse = q > 4.0 * np.finfo(np.float64).eps * top  # beyond the samples' own rounding
    good = np.all(np.isfinite(f), axis=0) & np.isfinite(q) & (span >= QUANTUM_SPAN * q) & coarse
    return np.where(good, q / math.sqrt(12.0), 0.0)
