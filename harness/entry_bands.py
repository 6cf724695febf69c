"""Fast mode per output entry: when the output entries live at very different scales, one
more plain random cotangent per *scale band*, restricted to the entries of that band.

A probe ``<v, J u>`` with a plain random cotangent weighs each output entry by its size:
beside outputs of 3, entries of 1e-17 contribute 1e-17 of the sum and their round-off
nothing, so a fault on them hides far below the probe's tolerance. After the first
direction, the central difference of every output entry is known, and so is its size:

- the entry's *size* ``s_i = max(m_i, a_i)``: ``m_i = max(|f_i(x + h u)|, |f_i(x - h u)|)``
  (its round-off is a few ulps of it) and ``a_i = |f_i(x + h u) - f_i(x - h u)| / 2h``
  (its response per unit step along u: larger than m_i where the output is a
  cancellation, ``x - 1`` at 1).
- *Unresolved* entries: a direction that resolves ``r`` of the whole resolves an entry of
  size ``s_i`` to about ``r S / s_i`` (``S``: the cotangent-weighted RMS size), so the
  entries with ``0 < s_i < limit = S min(r / detect_rtol, 1 / SAFETY)`` are unresolved.
  Bands are made only when they are at least ``1 / SPREAD_SHARE`` of one output's entries
  (a scalar output counts whole: a loss 1e-20 beside an array of 3); ordinary data
  (tanh, matmul, softmax cross-entropy) costs one comparison pass and nothing else.
- *Bands*: the unresolved entries, from the largest down, each band spanning the factor
  ``S / limit`` that the plain probes themselves cover (at least ``MIN_BAND``), at most
  ``MAX_BANDS`` of them (the last takes the rest; the resolution stated says what that
  costs). Each band gets a plain uniform cotangent on its entries and zeros elsewhere:
  one VJP per band.

Why bands and not continuous weights ``1 / s_i``: an entry whose response is tiny
*because* a kink sits inside the step (a sliver piece of clip, an output clipped flat), or
whose differences jump, would get the largest weight, and the weighted probe would
magnify exactly the entries the kink judgement (``probe_kinks.py``) cannot judge well,
with tolerances taken in another frame. Inside a band nothing is magnified: a band's
probe is the plain probe of the function restricted to those outputs, and its kinks, ties
and jumps meet the same undecided/settle/joint machinery as any plain probe. Zero-size
entries (exactly 0 on both sides: relu at x < 0) and non-finite ones join no band.

The band pairs join the first pass (``probes.FirstPass.add``) from the next direction on;
their directions are drawn after the bands, so the miss bound of ``probes.py`` holds for
them over those directions, relative to each band's own size. They keep their own
direction rule and random stream (:class:`BandRule`): the plain probes' directions and
verdicts are those of the same check without bands, and a band only adds resolution
(:func:`absorb`: its FAILs count, its INCONCLUSIVE leaves the plain verdict, named).
The resolution stated (:func:`resolution`) is per output entry: each group's resolved
relative error times its own spread (RMS size over its smallest entry).

>>> import numpy as np
>>> from gradverify.harness import check_vjp
>>> s = np.where(np.arange(300) < 150, 3.0, 1e-17)
>>> bad = lambda xs, gs: (gs[0] * s * np.where(s < 1, 2.0, 1.0),)   # tiny half doubled
>>> r = check_vjp(lambda x: x * s, bad, [np.linspace(1, 2, 300)], mode="fast")
>>> r.verdict, r.check("gradient").details["bands"]
('FAIL', 1)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gradverify.harness.budget import SAFETY
from gradverify.harness.calls import Problem
from gradverify.harness.lines import Ref, normalise, uniform
from gradverify.harness.report import FAIL, INCONCLUSIVE, PASS, Entry

if TYPE_CHECKING:
    from gradverify.harness.probes import FirstPass, Outcome

from gradverify.harness.probes import direction_rtol, enough_directions

__all__ = ["SPREAD_SHARE", "MAX_BANDS", "MIN_BAND", "Bands", "Pair", "unresolved", "make_bands",
           "band_spread", "vjp_pair", "banded", "resolution", "absorb", "spawn",
           "own_stream", "BandRule"]

# The share of one output's entries that must be unresolved before bands are made: the
# claim is about the output entries of each scale, not about each single entry (a probe
# over N entries resolves one entry to ~sqrt(N) times the whole anyway).
SPREAD_SHARE = 16
# Bands beyond the plain probes' own (one VJP each); a continuum of sizes over 200
# decades needs more than this at the plain probes' span and is covered coarser.
MAX_BANDS = 6
# The smallest factor a band spans (inside it the smallest entry is resolved this many
# times worse than the band's RMS size).
MIN_BAND = 10.0
_SQRT3 = float(np.sqrt(3.0))


@dataclass
class Pair:
    """A cotangent (float64 of its cast values), its VJP and that VJP's measured
    non-linearity per input entry (``hygiene.linearity``'s residual)."""

    v: list[np.ndarray]
    g: list[np.ndarray]
    residual: list[np.ndarray]


@dataclass
class Bands:
    """The output entries' scale groups after the first direction: ``members[b]`` the flat
    output indices of band b (largest sizes first), ``spreads[b]`` its RMS size over its
    smallest, ``plain_spread`` the same for the entries no band holds."""

    members: list[np.ndarray]
    spreads: list[float]
    plain_spread: float


def vjp_pair(p: Problem, ref: Ref, v: list[np.ndarray]) -> tuple[list[np.ndarray],
                                                                 list[np.ndarray]]:
    """``(v, vjp(v))`` at the reference point, v cast to the outputs' dtypes first (and
    kept as float64 of the cast values, so both sides use the same cotangent); gradients
    that are None become zeros.

    >>> from gradverify.harness.calls import Problem
    >>> p = Problem(np.sin, lambda xs, gs: (gs[0] * np.cos(xs[0]),), [np.zeros(2)])
    >>> ref = Ref.native(p, [np.zeros(2)])
    >>> vjp_pair(p, ref, [np.array([1.0, 2.0])])[1][0].tolist()
    [1.0, 2.0]
    """
    cast = [np.asarray(t).astype(y.dtype) for t, y in zip(v, ref.ys)]
    g = p.vjp(ref.xs, cast, ref.vjp)
    g = [np.zeros_like(x) if t is None else t for t, x in zip(normalise(g, ref.xs), ref.xs)]
    return [np.asarray(t, np.float64) for t in cast], g


def unresolved(first: FirstPass, outcomes: list[Outcome], detect_rtol: float
               ) -> tuple[float, float] | None:
    """``(S, limit)`` when the direction just judged by ``first`` (its outcomes) leaves the
    smaller output entries of some output unresolved at ``detect_rtol`` (module
    docstring), else None."""
    sq, walk = first.last_sizes()
    if sq is None or sq.size < 2:  # one output entry has nothing to be small beside
        return None
    # each cotangent's tolerance over its probe's typical size ||g s|| / sqrt(3) (the
    # standard deviation of sum g_i u_i), not over the value drawn, which may be ~0
    rtols = [o.tolerance * _SQRT3 / typical
             for o, typical in zip(outcomes, first.g_s.tolist(), strict=False)
             if typical > 0 and math.isfinite(o.tolerance)]
    norm = float(first.v_norm[0])
    if not rtols or not norm > 0:
        return None
    top = float(walk[0]) / norm  # the v-weighted RMS size
    limit = top * min(max(rtols) / detect_rtol, 1.0 / SAFETY)
    if not (math.isfinite(limit) and limit > 0):
        return None
    small = sq < limit * limit  # squared sizes: no square root pass
    plus, minus = first.last_outputs()
    for lo, hi in first.segments:
        need = -(-(hi - lo) // SPREAD_SHARE)  # ceil: a scalar output counts whole
        if np.count_nonzero(small[lo:hi]) < need:
            continue
        # a size of 0 is no size (a relu output at x < 0); a square of 1e-200 is 0 too
        sized = small[lo:hi] & ((plus[lo:hi] != 0) | (minus[lo:hi] != 0))
        if np.count_nonzero(sized) >= need:
            return top, limit
    return None


def _sizes(first: FirstPass) -> np.ndarray:
    plus, minus = first.last_outputs()
    with np.errstate(all="ignore"):
        return np.maximum(np.maximum(np.abs(plus), np.abs(minus)),
                          np.abs(plus - minus) / (2 * first.h))


def _spread(sizes: np.ndarray) -> float:
    """RMS over smallest, scaled by the largest first (1e-200 squared underflows)."""
    top = float(sizes.max())
    return float(np.sqrt(np.mean((sizes / top) ** 2))) * top / float(sizes.min())


def make_bands(first: FirstPass, top: float, limit: float) -> Bands | None:
    """The scale bands of the entries below ``limit`` (``top``: the plain probes' RMS
    size), from the outputs kept by ``first``; None if no entry below has a size.

    >>> class F:
    ...     h = 1e-3
    ...     def last_outputs(self):
    ...         y = np.array([3.0, 3.0, 1e-17, 2e-17, 1e-200])
    ...         return y, y
    >>> b = make_bands(F(), 3.0, 1e-3)
    >>> [m.tolist() for m in b.members], b.plain_spread
    ([[3, 2], [4]], 1.0)
    """
    size = _sizes(first)
    sized = np.isfinite(size) & (size > 0)
    low = np.flatnonzero(sized & (size < limit))
    if not low.size:
        return None
    span = max(top / limit, MIN_BAND)
    order = low[np.argsort(-size[low], kind="stable")]
    logs = np.log(size[order])
    starts = [0]
    for i in range(1, order.size):  # a new band where the size falls below its top / span
        if logs[starts[-1]] - logs[i] > math.log(span):
            starts.append(i)
    starts = starts[:MAX_BANDS]
    ends = [*starts[1:], order.size]
    members = [order[a:b] for a, b in zip(starts, ends)]
    rest = sized.copy()
    rest[low] = False
    plain = _spread(size[rest]) if rest.any() else 1.0
    return Bands(members, [_spread(size[m]) for m in members], plain)


def _restricted(p: Problem, ref: Ref, first: FirstPass, members: np.ndarray
                ) -> list[np.ndarray]:
    """A uniform random cotangent on the flat output entries ``members``, zeros elsewhere."""
    flat = np.zeros(first.segments[-1][1])
    flat[members] = uniform(p.rng, (members.size,))
    out = [k for k, y in enumerate(ref.ys) if y.dtype.kind == "f"]
    v = [np.zeros(y.shape, y.dtype) for y in ref.ys]
    for k, (a, b) in zip(out, first.segments):
        v[k] = flat[a:b].reshape(ref.ys[k].shape).astype(ref.ys[k].dtype)
    return v


def _gradients(p: Problem, ref: Ref, cts: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    # one call each (the hygiene checks' batched call is theirs alone)
    return [[np.zeros_like(x) if t is None else t for t, x in zip(normalise(g, ref.xs), ref.xs)]
            for g in (p.vjp(ref.xs, c, ref.vjp) for c in cts)]


def _band_pairs(p: Problem, ref: Ref, first: FirstPass, members: np.ndarray,
                measure: bool) -> list[Pair]:
    """The band's cotangent(s) with their VJPs and the VJP's non-linearity at the band's
    own scale. The hygiene check measured it for the plain cotangents, whose VJP terms are
    the large outputs' (1e-16 of 3 beside gradients of 1e-17): here it is measured again,
    like ``hygiene.linearity`` (vjp(a v1 + b v2) against a vjp(v1) + b vjp(v2), two VJPs
    more, whose second cotangent serves as the band's second probe). ``measure`` False:
    the tight check takes no residual (a float64 reference), one cotangent."""
    v1 = _restricted(p, ref, first, members)
    if not measure:
        g1, = _gradients(p, ref, [v1])
        zero = [np.zeros(x.shape) for x in ref.xs]
        return [Pair(_f64(v1), g1, zero)]
    v2 = _restricted(p, ref, first, members)
    alpha, beta = 0.75, -1.5  # exact in binary, as in hygiene.linearity
    v12 = [(alpha * a.astype(np.float64) + beta * b.astype(np.float64)).astype(a.dtype)
           for a, b in zip(v1, v2)]
    g1, g2, g12 = _gradients(p, ref, [v1, v2, v12])
    residual = []
    for a, b, c in zip(g1, g2, g12):
        with np.errstate(all="ignore"):
            r = np.abs(np.asarray(c, np.float64) - (alpha * np.asarray(a, np.float64)
                                                    + beta * np.asarray(b, np.float64)))
        residual.append(np.where(np.isfinite(r), r, 0.0))
    return [Pair(_f64(v1), g1, residual), Pair(_f64(v2), g2, residual)]


def _f64(v: list[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(t, np.float64) for t in v]


def banded(p: Problem, ref: Ref, first: FirstPass, outcomes: list[Outcome] | None,
           measure: bool) -> tuple[list[tuple[int, Pair]], Bands | None,
                                   np.random.Generator | None]:
    """After the direction ``first`` kept (``first.keep``): the scale bands' (group,
    pair)s, group b + 1 for band b, added to ``first``, if the outputs' sizes are spread
    out (:func:`unresolved`); else none. The kept outputs are dropped either way. The
    cotangents come from a stream of their own (:func:`spawn`, returned: the bands' kink
    sampling draws from it too), made only when there are bands. ``measure``: measure each
    band's VJP non-linearity (the plain cotangents' residual is not all zero)."""
    made: list[tuple[int, Pair]] = []
    bands, rng = None, None
    found = (unresolved(first, outcomes, p.opts.detect_rtol)
             if first.keep and outcomes is not None else None)
    if found is not None:
        bands = make_bands(first, *found)
    first.forget()
    if bands is not None:
        rng = spawn(p.rng)
        with own_stream(p, rng):
            for b, members in enumerate(bands.members):
                for pair in _band_pairs(p, ref, first, members, measure):
                    first.add(pair.v, pair.g, pair.residual)
                    made.append((b + 1, pair))
    return made, bands, rng


def band_spread(bands: Bands, group: int) -> float:
    """The spread of group ``group`` (0: the plain probes' entries, b + 1: band b), by
    which its probes' resolved relative error is multiplied to hold for each entry."""
    return bands.plain_spread if group == 0 else bands.spreads[group - 1]


def resolution(resolved: dict[int, list[float]], bands: Bands | None) -> float | None:
    """The relative error resolved, from each group's probes' (``resolved[group]``): the
    best probe's without bands; with bands, per output entry, the worst group's (its best
    probe's times its spread; a group none of whose probes resolved anything: inf).

    >>> resolution({0: [1e-9, 1e-10]}, None)
    1e-10
    >>> resolution({0: [1e-10], 1: []}, Bands([np.arange(2)], [3.0], 1.0))
    inf
    """
    if bands is None:
        return min(resolved[0]) if resolved[0] else None
    return max(min(r, default=np.inf) * band_spread(bands, g) for g, r in resolved.items())


def absorb(group: int, bands: Bands | None, found: list[Entry], verdicts: list[str],
           entries: list[Entry], into: list[str], notes: list[str]) -> None:
    """A band's probe judged by the full machinery (its ``found`` entries and
    ``verdicts``), added to the check's ``entries`` and verdicts ``into``. A band only adds
    resolution: where it cannot be resolved (noise inside the function at its scale,
    structure below the step) the plain probes' verdict stands and a note says which scale
    was not (its group then resolved nothing: ``resolved_rtol`` is inf), and so it does
    where it FAILs only at kinks; its smooth FAILs and its PASSes count like any probe's."""
    failing = [e for e in found if e.verdict == FAIL]
    if failing and all(e.kind != "smooth" for e in failing):
        # tiny because a kink lies within every step (a sliver): the plain probes judge it
        notes.append(f"scale band {group}: disagrees at kinks only (the plain probes judge)")
        verdicts = [PASS if v == FAIL else v for v in verdicts]
        found = [e for e in found if e.verdict != FAIL]
    if INCONCLUSIVE in verdicts and FAIL not in verdicts:
        unsure = [e.note for e in found if e.verdict == INCONCLUSIVE and e.note]
        size = "" if bands is None else f" ({bands.members[group - 1].size} entries)"
        notes.append(f"output entries of scale band {group}{size} not resolved at their own "
                     f"scale: {unsure[0] if unsure else 'inconclusive'}")
        verdicts = [PASS if v == INCONCLUSIVE else v for v in verdicts]
        found = [e for e in found if e.verdict != INCONCLUSIVE]
    entries.extend(found)
    into.extend(verdicts)


def spawn(rng: np.random.Generator) -> np.random.Generator:
    """An independent stream for the bands, derived from ``rng`` without drawing from it
    (its seed sequence's next child), so the plain probes' directions stay those of a
    check without bands; a generator without a seed sequence gives one draw instead.

    >>> a, b = np.random.default_rng(0), np.random.default_rng(0)
    >>> _ = spawn(a)
    >>> bool(a.random() == b.random())
    True
    """
    try:
        return rng.spawn(1)[0]
    except (AttributeError, TypeError, ValueError):
        return np.random.default_rng(int(rng.integers(2**63)))


@contextmanager
def own_stream(p: Problem, rng: np.random.Generator | None) -> Iterator[None]:
    """``p.rng`` is ``rng`` inside the block (the bands' draws and kink sampling)."""
    saved = p.rng
    if rng is not None:
        p.rng = rng
    try:
        yield
    finally:
        p.rng = saved


class BandRule:
    """The bands' own direction rule and random stream in fast mode: made after the first
    direction (:meth:`start`), judged by as many directions as the plain probes, counted
    from the next one (``probes.enough_directions`` on their own per-direction
    resolution), one more while a band that resolved something resolved too little (up
    to the plain probes' cap), and drawn from a stream of their own (:func:`spawn`), so
    the plain probes' directions and verdicts are those of a check without bands."""

    def __init__(self, p: Problem, n_plain: int, atoms: float = 0.0):
        self.p, self.n_plain, self.atoms = p, n_plain, atoms  # atoms: probes.atom_miss
        self.bands: Bands | None = None
        self.rng: np.random.Generator | None = None
        self.wanted = 0
        self.dirs: list[float] = []

    def open(self, made: int, calm: bool) -> bool:
        """Whether the bands want another direction (``calm``: no FAIL so far)."""
        return self.bands is not None and made < self.wanted and not (
            calm and enough_directions(self.dirs, self.p.opts.detect_rtol, self.atoms))

    def record(self, outcomes: list[Outcome] | None, spread: np.ndarray) -> None:
        """One direction's outcomes (the bands' after the plain); spread: FirstPass.g_s."""
        if self.bands is not None:
            self.dirs.append(direction_rtol(outcomes and outcomes[self.n_plain:], spread))

    def start(self, ref: Ref, first: FirstPass, outcomes: list[Outcome] | None,
              measure: bool, made: int) -> list[tuple[int, Pair]]:
        """After the first direction: the bands' (group, pair)s (none if the outputs' sizes
        are not spread out), drawn from the bands' own stream."""
        more, self.bands, self.rng = banded(self.p, ref, first, outcomes, measure)
        if more:
            self.wanted = made + max(self.p.opts.probes, 2)
        return more

    def extend(self, made: int, calm: bool, resolved: dict[int, list[float]],
               cap: int) -> None:
        """One more direction at the last one wanted, while the bands that resolved
        something resolved less than detect_rtol (a band none of whose probes resolved
        anything met kinks: more probes resolve no more)."""
        if self.bands is None or made != self.wanted or not calm or self.wanted >= cap:
            return
        best = resolution({g: r for g, r in resolved.items() if r or g == 0}, self.bands)
        if best is not None and best > self.p.opts.detect_rtol:
            self.wanted += 1
