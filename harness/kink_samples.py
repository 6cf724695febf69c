"""Sampling the pieces met around x: the gradients of f at points ``x + delta w`` for joint
directions w over a kink's coordinates (every signed ordering of up to FULL_HULL inputs,
covering-array sign patterns beyond), each by differences with a step far below delta,
at the common scale of the coordinates and, where entries sit closer to one another than
that, again at the small scale of their distances.

>>> sample_patterns(2, np.random.default_rng(0)).shape
(6, 2)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from gradverify.harness.calls import Problem
from gradverify.harness.hull import FULL_HULL
from gradverify.harness.jump_entries import (  # re-exported: the jump test lives there
    grow_like_jumps,
    sign_flips,
)
from gradverify.harness.lines import Ref

__all__ = ["sample_patterns", "piece_gradients", "row_hulls", "small_scale", "middle_scale",
           "finer_scales", "carried_side",
           "small_arg_rounding", "smallest_radius", "informative", "two_scales", "tied",
           "grow_like_jumps", "sign_flips", "curving", "steps_per_scale", "MAX_JOINT",
           "MAX_ROWS", "MAX_SUPPORTS"]

MAX_JOINT = 12   # beyond this many inputs in one output's kinks: coordinatewise only
MAX_ROWS = 256   # beyond this many output rows moved by a probe's kinks: no Minkowski test
MAX_SUPPORTS = 8  # distinct row supports sampled on their own for a probe's Minkowski sum
_MEMO_FLOATS = 4_000_000  # output values memoised per reference point (32 MB)
_INNER = 1 / 16  # the difference step at a sample point, as a fraction of its radius
_RADIUS2 = 0.3   # the second sampling radius, relative to the first (well above _INNER)


def sample_patterns(k: int, rng: np.random.Generator) -> np.ndarray:
    """Directions w (rows) around a kink in k inputs: every signed ordering (k <= FULL_HULL:
    each ordering of the k inputs and of x itself, so every sign pattern with every order of
    magnitudes - clip's t, lo and hi all at 0 has the piece lo < t < 0 only there), else the
    sign patterns of a strength-2 covering array, their negations, random patterns, and each
    input above and below all the others.

    >>> sample_patterns(2, np.random.default_rng(0)).shape
    (6, 2)
    """
    rows = []

    def magnitudes() -> np.ndarray:
        # distinct values at least 1/(k-1) apart: no two perturbed inputs come closer than
        # the difference step at the sample point (no straddled kink between them)
        return rng.permutation(np.linspace(0.5, 1.5, k)) if k > 1 else np.ones(1)
    if k <= FULL_HULL:
        # ranks 0..k of the inputs and of "unmoved" (rank r0): w = rank - r0, rescaled to
        # magnitudes in [1.5/k, 1.5] like the patterns below; neighbours 1.5/k apart
        for perm in itertools.permutations(range(k + 1)):
            ranks = np.array(perm, float)
            rows.append((ranks[:k] - ranks[k]) * 1.5 / k)
    else:
        n = 6
        while len(list(itertools.combinations(range(n - 1), n // 2))) < k:
            n += 2
        # Columns: distinct weight-n/2 binary vectors with a 0 first - any two of them
        # show all four sign combinations somewhere (Kleitman-Spencer).
        cols = [np.isin(np.arange(n), tuple(c + 1 for c in comb))
                for comb in itertools.combinations(range(n - 1), n // 2)][:k]
        signs = np.where(np.array(cols).T, 1.0, -1.0)
        for s in np.vstack([signs, -signs, rng.choice([-1.0, 1.0], size=(2 * k, k))]):
            rows.append(s * magnitudes())
        # each input above and below all others once: the pieces where it wins a tie
        for i in range(k):
            for top in (2.0, -2.0):
                w = rng.choice([-1.0, 1.0], size=k) * magnitudes()
                w[i] = top
                rows.append(w)
    return np.array(rows)


def tied(values: np.ndarray, scale: np.ndarray, group: np.ndarray, h: float) -> np.ndarray:
    """Which entries (of the flat ``values``, with their step scales) are tied with some
    entry of ``group`` (indices into them): equal, or within the sampling radius - the step
    ``h`` at either entry's scale. The one rule both modes use for who joins a kink's joint
    judgement (clip at t == lo == hi: only lo kinks, t and hi are flat alone, yet "nothing
    to any of them" is outside the hull only with t and hi judged too).

    >>> tied(np.array([0.0, 1e-12, 0.5]), np.ones(3), np.array([0]), 1e-8).tolist()
    [True, True, False]
    """
    values = np.asarray(values, np.float64)
    scale = np.asarray(scale, np.float64)
    group = np.asarray(group, np.int64)
    vg, sg = values[group], scale[group]
    with np.errstate(invalid="ignore"):
        near = np.abs(values[:, None] - vg[None, :]) <= h * np.maximum(scale[:, None],
                                                                        sg[None, :])
    return np.any(near, axis=1)


def memo_of(ref: Ref) -> dict:
    # Kept on the reference point itself: every probe of a fast check (and every group of
    # a full one) samples the same points around the same kinks, and the outputs there
    # do not depend on the probe - only their cotangent weighting does.
    return vars(ref).setdefault("_kink_memo", {"cap": _MEMO_FLOATS})


def _outputs(p: Problem, ref: Ref, changes: dict[tuple[int, int], float]) -> np.ndarray | None:
    """The float outputs (flat, float64) at x with the entries ``changes`` moved, memoised
    per reference point up to _MEMO_FLOATS stored values (None outside the domain)."""
    memo = memo_of(ref)
    key = tuple(sorted(changes.items()))
    if key in memo:
        return memo[key]
    xs = [x.copy() if any(kk == k for kk, _ in changes) else x for k, x in enumerate(ref.xs)]
    for (kk, j), v in changes.items():
        xs[kk].flat[j] = v
    ys = p.forward(xs, ref.forward)
    out = None
    if [(y.shape, y.dtype) for y in ys] == [(y.shape, y.dtype) for y in ref.ys]:
        out = np.concatenate([np.asarray(y, np.float64).ravel() for y in ys
                              if y.dtype.kind == "f"])
    size = 1 if out is None else out.size
    if memo["cap"] >= size:
        memo["cap"] -= size
        memo[key] = out
    return out


def _patterns(p: Problem, ref: Ref, k: int) -> np.ndarray:
    """sample_patterns drawn once per reference point and group size: the same sample
    points for every probe (their outputs are memoised)."""
    memo = memo_of(ref)
    if ("patterns", k) not in memo:
        memo[("patterns", k)] = sample_patterns(k, p.rng)
    return memo[("patterns", k)]


def piece_gradients(p: Problem, ref: Ref, coords: Sequence[tuple[int, int, float]],
                    h: float, reduce: Callable[[np.ndarray], np.ndarray] | None = None,
                    scale: float | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (per unit of the relative steps) of all outputs w.r.t. ``coords`` =
    (input, flat index, scale) at sample points around x: shape (samples, channels, k),
    the largest channel magnitude met, and the difference step per unit of each
    coordinate's scale (``steps_per_scale``). ``reduce`` maps the
    flat outputs to the channels (a probe's cotangent-weighted sum; default: all outputs).
    The radius is h times ``scale`` (``finer_scales``), by default the common scale: the
    largest of the coordinates'."""
    if reduce is None:
        def reduce(y: np.ndarray) -> np.ndarray:
            return y
    k = len(coords)
    patterns = _patterns(p, ref, k)
    # One step scale for all coordinates: ties are orderings in x itself, which
    # per-coordinate scales would distort (a tie of 0.7 and 0.7 scaled by 0.2 and 1.1).
    # A finer scale finds the pieces that exist only within a sliver narrower than the
    # common scale (t = 1e-30 between bounds at 0).
    big = scale or max(s for _, _, s in coords)
    gap = 1.0 / max(k - 1, 1)  # the smallest distance between two perturbed inputs
    inner = h * _INNER * min(gap, 0.5)
    grads = []
    mag = np.abs(reduce(np.concatenate([np.asarray(y, np.float64).ravel() for y in ref.ys
                                        if y.dtype.kind == "f"])))
    # Every pattern at two radii: a sample point within the difference step of some other
    # kink (clip's t landing on hi = 1 while t and lo are sampled) spoils that point's
    # differences on both sides; the same pattern at another radius keeps its piece.
    for w in np.vstack([patterns, _RADIUS2 * patterns]):
        base = {(kk, j): float(ref.xs[kk].dtype.type(ref.xs[kk].flat[j] + h * wc * big))
                for (kk, j, _), wc in zip(coords, w)}
        y0 = _outputs(p, ref, base)
        if y0 is None:
            return np.zeros((0, mag.size, k)), mag, steps_per_scale(inner * big, coords)
        y0 = reduce(y0)
        g, fwd, bwd = [], [], []
        for kk, j, s in coords:
            vals = []
            for sign in (1.0, -1.0):
                moved = dict(base)
                moved[(kk, j)] = float(ref.xs[kk].dtype.type(base[(kk, j)]
                                                            + sign * inner * big))
                y = _outputs(p, ref, moved)
                if y is None:
                    return np.zeros((0, mag.size, k)), mag, steps_per_scale(inner * big, coords)
                y = reduce(y)
                vals.append(y)
                mag = np.fmax(mag, np.abs(y))
            with np.errstate(all="ignore"):
                g.append((vals[0] - vals[1]) / (2 * inner * big) * s)
                fwd.append((vals[0] - y0) / (inner * big) * s)
                bwd.append((y0 - vals[1]) / (inner * big) * s)
        # A sample point closer to some other kink than the difference step (t near hi
        # while the group is t and lo) gives a central difference mixing two pieces - a
        # point strictly inside the hull, the piece's own vertex lost. The one-sided
        # differences away from that kink keep it: both sides are added (each is a
        # difference quotient of f near x, so inside Clarke's generalized Jacobian too).
        grads.extend([np.array(g).T, np.array(fwd).T, np.array(bwd).T])
    return np.array(grads), mag, steps_per_scale(inner * big, coords)


def steps_per_scale(step: float, coords: Sequence[tuple[int, int, float]]) -> np.ndarray:
    """The difference step ``step`` (absolute, one for all coordinates) in units of each
    coordinate's scale: the gradients are per unit of scale, so a coordinate's round-off
    is ``eps |f| / steps_per_scale`` - larger on a coordinate stepped far below its own
    scale (a 0 beside 1.5e5 moved by the small radius of a 0.6 beside it).

    >>> steps_per_scale(1e-6, [(0, 0, 1.0), (1, 0, 1e5)]).tolist()
    [1e-06, 1e-11]
    """
    return step / np.maximum(np.array([s for _, _, s in coords], float), 1e-300)


def curving(pts: np.ndarray) -> np.ndarray:
    """How far a piece's gradient moves between the two sampling radii (per coordinate, the
    median over the patterns of ``piece_gradients``' central differences): the hull of
    samples taken at a distance misses a gradient that is extreme at x itself (softmax's
    ``-p1 p2`` at p1 = p2: every nearby value is smaller) by up to that much, on a
    coordinate whose scale is far above the function's own length (a 0 stepped like the
    -1e5 beside it). Pieces that are linear (relu, clip, max, abs) move by round-off only,
    so this leaves tie faults as visible as before.

    >>> g = np.array([[[1.0]], [[0.0]], [[0.0]], [[0.9]], [[0.0]], [[0.0]]])[:, 0, :]
    >>> round(float(curving(g)[0]), 12)
    0.1
    """
    n = pts.shape[0] // 2
    with np.errstate(invalid="ignore"):
        moved = np.abs(pts[:n:3] - pts[n::3])
    moved = np.where(np.isfinite(moved), moved, np.nan)
    if not np.isfinite(moved).any():
        return np.zeros(pts.shape[1])
    return np.nan_to_num(np.nanmedian(moved, axis=0))


def row_hulls(p: Problem, ref: Ref, coords: Sequence[tuple[int, int, float]], h: float,
              rows: np.ndarray, y0: np.ndarray, scale: float | None = None,
              ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray, bool] | None:
    """The pieces' gradients of each output row in ``rows`` w.r.t. ``coords`` (a probe's
    kink entries), for the Minkowski-sum judgement: (sets, the rows kept - those whose
    gradient moves at all -, their magnitudes, the difference step, exact). Beyond FULL_HULL
    coordinates the joint patterns do not show every piece of each row, so each distinct
    support (the coordinates a row depends on) of at most FULL_HULL entries is sampled
    again on its own, with every signed ordering: the row's hull is then complete (exact).
    None when a sample point leaves the function's domain."""
    def diff(sel: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        return lambda y: (y - y0)[sel]
    grads, mag, inner = piece_gradients(p, ref, coords, h, reduce=diff(rows), scale=scale)
    if not grads.size:
        return None
    live = [i for i in range(len(rows)) if np.any(grads[:, i, :])]
    sets = [grads[:, i, :] for i in live]
    k = len(coords)
    exact = k <= FULL_HULL
    if not exact:
        supports: dict[tuple[int, ...], list[int]] = {}
        for n, i in enumerate(live):
            cs = tuple(int(c) for c in np.flatnonzero(np.any(grads[:, i, :] != 0, axis=0)))
            supports.setdefault(cs, []).append(n)
        if len(supports) <= MAX_SUPPORTS and all(len(cs) <= FULL_HULL for cs in supports):
            for cs, members in supports.items():
                sel = rows[[live[n] for n in members]]
                g2, m2, in2 = piece_gradients(p, ref, [coords[c] for c in cs], h,
                                              reduce=diff(sel), scale=scale)
                if not g2.size:
                    return None
                inner = inner.copy()
                inner[list(cs)] = np.minimum(inner[list(cs)], in2)
                for col, n in enumerate(members):
                    full = np.zeros((len(g2), k))
                    full[:, list(cs)] = g2[:, col, :]
                    sets[n] = np.vstack([sets[n], full])
                    mag[live[n]] = max(mag[live[n]], m2[col])
            exact = True
    return sets, np.array(live, int), mag[live], inner, exact



def small_scale(ref: Ref, coords: Sequence[tuple[int, int, float]], h: float) -> float:
    """The radius of the second sampling: the smallest of the coordinates' scales, their
    nonzero magnitudes and their nonzero distances to every input entry - ties and kinks
    sit where entries meet each other or 0, so a piece that exists only between x and such
    an entry (hi = 0 between lo = -6e-8 and t = 6e-7) is met within that distance. Never
    so small that the difference step falls below a few ulps of the entries moved."""
    vals = np.concatenate([np.asarray(x, np.float64).ravel() for x in ref.xs
                           if x.dtype.kind == "f"])
    vals = vals[np.isfinite(vals)]
    out = min(s for _, _, s in coords)
    top = 0.0
    for kk, j, _ in coords:
        v = float(ref.xs[kk].flat[j])
        dist = np.abs(vals - v)
        dist = dist[dist > 0]
        out = min(out, float(dist.min()) if dist.size else out, abs(v) or out)
        top = max(top, abs(v))
    floor = 8 * ref.eps * top / (h * _INNER / 4) if top else np.finfo(np.float64).tiny
    return max(out, floor)


def smallest_radius(ref: Ref, coords: Sequence[tuple[int, int, float]], h: float) -> float:
    """The smallest scale ``piece_gradients`` samples ``coords`` at (before the factor h):
    the small scale where ``two_scales`` calls for it, else the common one."""
    return (small_scale(ref, coords, h) if two_scales(coords, ref, h)
            else max(s for _, _, s in coords))


def small_arg_rounding(ref: Ref, coords: Sequence[tuple[int, int, float]], a: np.ndarray,
                       inner: np.ndarray, h: float, c_round: float) -> np.ndarray:
    """Argument rounding of the small-scale differences, per coordinate, from the entries'
    own magnitudes: moving an entry by d rounds it by ``eps * |x + d|``, an error of
    ``|a| eps |x + d| / d`` in the difference quotient. The common-scale formula
    ``eps |a| / inner`` assumes ``|x|`` is the coordinates' scale - at a radius far below
    it that would swamp every piece (hi = 0 sampled within 2e-7 of lo and t)."""
    k = len(coords)
    scales = np.array([s for _, _, s in coords])
    step = float(np.min(inner * scales))                 # the difference step, absolute
    reach = step / (_INNER * min(1.0 / max(k - 1, 1), 0.5))  # h times the radius
    xabs = np.array([abs(float(ref.xs[kk].flat[j])) for kk, j, _ in coords])
    return c_round * ref.eps * np.abs(a) * (xabs + 2 * reach) / step


def informative(t: np.ndarray, pts: np.ndarray, a: np.ndarray) -> bool:
    """Can a hull test with tolerance ``t`` tell the pieces apart at all? At the small
    scale the round-off of the differences grows like 1/radius: a tolerance above a
    quarter of the gradients' size admits any value, so "inside" proves nothing there
    (a gradient of 2 at a tie 1e-12 away would pass)."""
    size = max(float(np.max(np.abs(pts), initial=0.0)), float(np.max(np.abs(a), initial=0.0)))
    return bool(np.max(t, initial=0.0) <= 0.25 * size)


def middle_scale(ref: Ref, coords: Sequence[tuple[int, int, float]], h: float) -> float | None:
    """A third sampling radius, between the common and the small one: the smallest of the
    coordinates' own scales, where each coordinate moves by at most h of its own scale.
    At the common scale the largest coordinate's scale moves every other coordinate by far
    more than its own (a cotangent of 0.6 beside a 0 stepped like the 1.5e5 in its input:
    the pieces of ``v elu'(x)`` curve by 100 % across that radius), and the small scale,
    the distance to the nearest entry, can be so small that the round-off of the
    differences swamps the large coordinate's pieces. None when it is not distinct from
    either (within a factor 16)."""
    own = min(s for _, _, s in coords)
    if own > max(s for _, _, s in coords) / 16 or small_scale(ref, coords, h) > own / 16:
        return None
    return own


def carried_side(side: np.ndarray, coords: Sequence[tuple[int, int, float]],
                 scale: float | None) -> np.ndarray:
    """The coordinatewise tolerances ``side`` as carried to a sampling radius of h times
    ``scale`` (None: the common radius, where they were set). They budget the
    coordinatewise step, the common radius: its truncation shrinks with the radius, and
    its round-off is budgeted again at the finer radius's own difference step, so they
    carry in proportion to the radius. Carried whole, they admitted a 1 % fault on a row
    of length 1e-8 (cosine similarity at ``(0, 1e-8, 0, 0)`` beside rows of length 1),
    which the pieces at that row's own scale resolve to 2e-5.

    >>> carried_side(np.array([8.0, 4.0]), [(0, 0, 1.0), (0, 1, 0.5)], 0.25).tolist()
    [2.0, 1.0]
    """
    if scale is None:
        return side
    return side * min(1.0, scale / max(s for _, _, s in coords))


def finer_scales(ref: Ref, coords: Sequence[tuple[int, int, float]], h: float) -> list[float]:
    """The radii (before the factor h) judged after the common one, largest first: the
    middle scale and the small scale, where each applies."""
    out = [middle_scale(ref, coords, h)]
    if two_scales(coords, ref, h):
        out.append(small_scale(ref, coords, h))
    return [s for s in out if s is not None]


def two_scales(coords: Sequence[tuple[int, int, float]], ref: Ref | None = None,
               h: float = 0.0) -> bool:
    """Do the scales around x differ enough for a second, small-scale sampling?"""
    scales = [s for _, _, s in coords]
    low = min(scales) if ref is None else small_scale(ref, coords, h)
    return low < max(scales) / 16
