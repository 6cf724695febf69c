"""Kinks judged against Clarke's generalized Jacobian, jointly over the inputs they involve.

Coordinate by coordinate, an analytic value inside the one-sided bracket proves little: at a
tie of ``max(a, b)`` the rule "full gradient to both" puts each coordinate inside [0, 1], yet
(1, 1) is not a gradient of any piece, nor a convex combination of them. So when one output
has kinks in several inputs K, the gradients of the pieces met around x are sampled - at
points ``x + delta w`` for every sign pattern of w on K, every ordering of K (the pieces of
sort and of ties), and random patterns - each by central differences with a step far below
delta. The analytic row restricted to K must lie in the convex hull of those gradients, up
to the budget's tolerance: a small linear program (scipy's HiGHS) decides membership.
For more than ``FULL_HULL`` inputs the test runs on every pair of them (a projection of the
hull; necessary for membership and free of the sampling gaps of a high-dimensional hull).

>>> hull_contains(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.5, 0.5]), np.full(2, 1e-9))
True
>>> hull_contains(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.0, 1.0]), np.full(2, 1e-9))
False
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import linprog, nnls

from gradverify.harness.budget import C_NOISE, SAFETY
from gradverify.harness.calls import Problem
from gradverify.harness.lines import Ref
from gradverify.harness.report import FAIL, PASS, Entry

__all__ = ["hull_contains", "minkowski_contains", "in_hull", "in_minkowski", "row_hulls",
           "sample_patterns", "piece_gradients", "two_scales", "small_scale", "informative",
           "small_arg_rounding",
           "kink_groups",
           "joint_kinks", "FULL_HULL", "MAX_JOINT", "MAX_ROWS", "MAX_SUPPORTS"]

FULL_HULL = 4    # up to this many inputs: every sign pattern and ordering, whole-hull test
MAX_JOINT = 12   # beyond this many inputs in one output's kinks: coordinatewise only
MAX_ROWS = 256   # beyond this many output rows moved by a probe's kinks: no Minkowski test
MAX_SUPPORTS = 8  # distinct row supports sampled on their own for a probe's Minkowski sum
_INNER = 1 / 16  # the difference step at a sample point, as a fraction of its radius
_RADIUS2 = 0.3   # the second sampling radius, relative to the first (well above _INNER)


def hull_contains(points: np.ndarray, target: np.ndarray, tol: np.ndarray) -> bool:
    """Is ``target`` within ``tol`` (per coordinate) of the convex hull of ``points`` (rows)?

    >>> hull_contains(np.eye(2), np.array([0.25, 0.75]), np.full(2, 1e-12))
    True
    """
    return minkowski_contains([points], np.ones(1), target, tol)


def minkowski_contains(sets: Sequence[np.ndarray], weights: np.ndarray, target: np.ndarray,
                       tol: np.ndarray) -> bool:
    """Is ``target`` within ``tol`` of ``sum_r weights[r] * hull(sets[r])``?

    A probe's cotangent v mixes several outputs, each with its own tie: the analytic value
    ``sum_r v_r g_r`` is right when every output's ``g_r`` lies in that output's hull, i.e.
    when the value lies in the hulls' Minkowski sum weighted by v. Feasibility LP on
    coordinates measured in units of their tolerance: lambda_r >= 0, sum lambda_r = 1 for
    each set, |sum_r w_r P_r^T lambda_r - target| / tol <= 1. An LP solver's own tolerances
    can call a feasible problem infeasible when coordinates differ in scale by many orders,
    so "infeasible" is double-checked by NNLS (the nearest point in that metric).

    >>> minkowski_contains([np.eye(2), np.eye(2)], np.ones(2), np.array([2.0, 0.0]),
    ...                    np.full(2, 1e-12))
    True
    >>> hull_contains(np.eye(2), np.array([2.0, 0.0]), np.full(2, 1e-12))
    False
    """
    pts = np.vstack([np.asarray(s, np.float64) * float(w) for s, w in zip(sets, weights)])
    owner = np.concatenate([np.full(len(s), i) for i, s in enumerate(sets)])
    eq = (owner[None, :] == np.arange(len(sets))[:, None]).astype(np.float64)
    m = pts.shape[0]
    target = np.asarray(target, np.float64)
    floor = np.finfo(np.float64).eps * np.maximum(np.max(np.abs(pts), axis=0), np.abs(target))
    unit = np.maximum(np.asarray(tol, np.float64), np.maximum(floor, 1e-300))
    p, a = pts / unit, target / unit
    a_ub = np.vstack([p.T, -p.T])
    b_ub = np.concatenate([a + 1.0, -(a - 1.0)])
    res = linprog(np.zeros(m), A_ub=a_ub, b_ub=b_ub, A_eq=eq, b_eq=np.ones(len(sets)),
                  bounds=(0, None), method="highs")
    if res.status == 0:
        return True
    weight = 1e3 * (1.0 + float(np.max(np.abs(p), initial=0.0)) + float(np.max(np.abs(a))))
    lam, _ = nnls(np.vstack([p.T, weight * eq]), np.concatenate([a, np.full(len(sets),
                                                                          weight)]))
    sums = eq @ lam
    if np.any(sums <= 0):
        return False
    lam = lam / sums[owner]
    return bool(np.all(np.abs(p.T @ lam - a) <= 1.0 + 1e-9))


def in_hull(points: np.ndarray, target: np.ndarray, tol: np.ndarray) -> bool:
    """The membership test used: the whole hull for up to FULL_HULL coordinates (all
    sign patterns and orderings were sampled), every pair of coordinates beyond."""
    k = points.shape[1]
    if k <= FULL_HULL:
        return hull_contains(points, target, tol)
    return all(hull_contains(points[:, [i, j]], target[[i, j]], tol[[i, j]])
               for i, j in itertools.combinations(range(k), 2))


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


def _outputs(p: Problem, ref: Ref, xs: list[np.ndarray]) -> np.ndarray | None:
    ys = p.forward(xs, ref.forward)
    if [(y.shape, y.dtype) for y in ys] != [(y.shape, y.dtype) for y in ref.ys]:
        return None
    return np.concatenate([np.asarray(y, np.float64).ravel() for y in ys
                           if y.dtype.kind == "f"])


def piece_gradients(p: Problem, ref: Ref, coords: Sequence[tuple[int, int, float]],
                    h: float, reduce: Callable[[np.ndarray], np.ndarray] | None = None,
                    small: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Gradients (per unit of the relative steps) of all outputs w.r.t. ``coords`` =
    (input, flat index, scale) at sample points around x: shape (samples, channels, k),
    the largest channel magnitude met, and the difference step used. ``reduce`` maps the
    flat outputs to the channels (a probe's cotangent-weighted sum; default: all outputs)."""
    if reduce is None:
        def reduce(y: np.ndarray) -> np.ndarray:
            return y
    k = len(coords)
    patterns = sample_patterns(k, p.rng)
    # One step scale for all coordinates: ties are orderings in x itself, which
    # per-coordinate scales would distort (a tie of 0.7 and 0.7 scaled by 0.2 and 1.1).
    # small: sample at the smallest scale around x instead - pieces that exist only within
    # a sliver narrower than the common scale (t = 1e-30 between bounds at 0) show there.
    big = small_scale(ref, coords, h) if small else max(s for _, _, s in coords)
    gap = 1.0 / max(k - 1, 1)  # the smallest distance between two perturbed inputs
    inner = h * _INNER * min(gap, 0.5)
    grads = []
    mag = np.abs(reduce(np.concatenate([np.asarray(y, np.float64).ravel() for y in ref.ys
                                        if y.dtype.kind == "f"])))
    # Every pattern at two radii: a sample point within the difference step of some other
    # kink (clip's t landing on hi = 1 while t and lo are sampled) spoils that point's
    # differences on both sides; the same pattern at another radius keeps its piece.
    for w in np.vstack([patterns, _RADIUS2 * patterns]):
        base = [x.copy() for x in ref.xs]
        for (kk, j, _), wc in zip(coords, w):
            base[kk].flat[j] = base[kk].flat[j] + h * wc * big
        y0 = _outputs(p, ref, base)
        if y0 is None:
            return np.zeros((0, mag.size, k)), mag, inner
        y0 = reduce(y0)
        g, fwd, bwd = [], [], []
        for kk, j, s in coords:
            vals = []
            for sign in (1.0, -1.0):
                xs = [x.copy() if i == kk else x for i, x in enumerate(base)]
                xs[kk].flat[j] = xs[kk].flat[j] + sign * inner * big
                y = _outputs(p, ref, xs)
                if y is None:
                    return np.zeros((0, mag.size, k)), mag, inner
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
    return np.array(grads), mag, inner * big / max(min(s for _, _, s in coords), 1e-300)


def in_minkowski(sets: Sequence[np.ndarray], weights: np.ndarray, target: np.ndarray,
                 tol: np.ndarray, exact: bool) -> bool:
    """``minkowski_contains`` in all coordinates when every set holds all the pieces of its
    output (``exact``), else on every pair of coordinates (a projection: necessary for
    membership and free of the sampling gaps of a high-dimensional hull)."""
    if exact:
        return minkowski_contains(sets, weights, target, tol)
    return all(minkowski_contains([s[:, [i, j]] for s in sets], weights, target[[i, j]],
                                  tol[[i, j]])
               for i, j in itertools.combinations(range(len(target)), 2))


def row_hulls(p: Problem, ref: Ref, coords: Sequence[tuple[int, int, float]], h: float,
              rows: np.ndarray, y0: np.ndarray, small: bool = False,
              ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, float, bool] | None:
    """The pieces' gradients of each output row in ``rows`` w.r.t. ``coords`` (a probe's
    kink entries), for the Minkowski-sum judgement: (sets, the rows kept - those whose
    gradient moves at all -, their magnitudes, the difference step, exact). Beyond FULL_HULL
    coordinates the joint patterns do not show every piece of each row, so each distinct
    support (the coordinates a row depends on) of at most FULL_HULL entries is sampled
    again on its own, with every signed ordering: the row's hull is then complete (exact).
    None when a sample point leaves the function's domain."""
    def diff(sel: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        return lambda y: (y - y0)[sel]
    grads, mag, inner = piece_gradients(p, ref, coords, h, reduce=diff(rows), small=small)
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
                                              reduce=diff(sel), small=small)
                if not g2.size:
                    return None
                inner = min(inner, in2)
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


def small_arg_rounding(ref: Ref, coords: Sequence[tuple[int, int, float]], a: np.ndarray,
                       inner: float, h: float, c_round: float) -> np.ndarray:
    """Argument rounding of the small-scale differences, per coordinate, from the entries'
    own magnitudes: moving an entry by d rounds it by ``eps * |x + d|``, an error of
    ``|a| eps |x + d| / d`` in the difference quotient. The common-scale formula
    ``eps |a| / inner`` assumes ``|x|`` is the coordinates' scale - at a radius far below
    it that would swamp every piece (hi = 0 sampled within 2e-7 of lo and t)."""
    k = len(coords)
    step = inner * min(s for _, _, s in coords)          # the difference step, absolute
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


def two_scales(coords: Sequence[tuple[int, int, float]], ref: Ref | None = None,
               h: float = 0.0) -> bool:
    """Do the scales around x differ enough for a second, small-scale sampling?"""
    scales = [s for _, _, s in coords]
    low = min(scales) if ref is None else small_scale(ref, coords, h)
    return low < max(scales) / 16


def kink_groups(kink: np.ndarray, failing: np.ndarray, flat: np.ndarray | None = None,
                ) -> dict[tuple[int, ...], list[int] | None]:
    """Sets of inputs (columns) to judge jointly, with the rows to judge on each (None:
    every row that depends on them).

    Columns are linked when one output has kinks in both; every linked set of two or more
    is judged for every output (a stable sort's middle output at a three-way tie is flat
    along every single input - no kink, no coordinatewise disagreement - yet its gradient
    must be a limit of nearby ones). A row that FAILs coordinatewise in a column while it
    has kinks elsewhere is judged on its kinks' set plus that column (clip at t == lo == hi:
    t alone moves nothing, yet TF's gradient to t is the piece lo < t < hi)."""
    parent = {int(c): int(c) for c in np.flatnonzero(kink.any(axis=0))}

    def root(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c
    rows = np.flatnonzero(kink.any(axis=1))
    for r in rows:
        cs = [int(c) for c in np.flatnonzero(kink[r])]
        for c in cs[1:]:
            parent[root(c)] = root(cs[0])
    members: dict[int, set[int]] = {}
    for c in sorted(parent):
        members.setdefault(root(c), set()).add(c)
    groups: dict[tuple[int, ...], list[int] | None] = {
        tuple(sorted(m)): None for m in members.values() if len(m) >= 2}
    for r in rows:
        kinks = [int(c) for c in np.flatnonzero(kink[r])]
        # failing where this row has no kink (a column may have kinks in other rows: hi
        # kinked in one output, flat and failing in the next)
        beside = {int(c) for c in np.flatnonzero(failing[r])} - set(kinks)
        if kinks and beside:
            ks = tuple(sorted(members[root(kinks[0])] | beside))
            if groups.get(ks, []) is not None:
                groups.setdefault(ks, []).append(r)
    # A row with no kink at all whose failing entries look flat (the numeric slope nearer 0
    # than the analytic one): a piece may exist only within a sliver narrower than every
    # step (t = 0 between lo = -1e-30 and hi = 0). Judged on those entries alone, sampled
    # again at the distance to the nearest entry (informative there, or the FAIL stands).
    if flat is not None:
        for r in np.flatnonzero(flat.any(axis=1) & ~kink.any(axis=1)):
            ks = tuple(int(c) for c in np.flatnonzero(flat[r]))
            covered = any(set(ks) <= set(g) and (rows is None or r in rows)
                          for g, rows in groups.items())  # a tie's group judges it already
            if not covered and len(ks) <= MAX_JOINT and groups.get(ks, []) is not None:
                groups.setdefault(ks, []).append(int(r))
    return groups


def joint_kinks(p: Problem, ref: Ref, groups: dict[tuple[int, ...], list[int] | None],
                jac: np.ndarray, d: np.ndarray, cols: Sequence[tuple[int, int, int]],
                h: float, sigma: np.ndarray | None = None, tol: np.ndarray | None = None,
                out_index: Sequence[tuple[int, ...]] | None = None,
                ) -> dict[tuple[int, tuple[int, ...]], Entry]:
    """Joint Clarke judgement of every row on every group (full mode): one entry per
    (row, group) where the row depends on the group, FAIL when its analytic row is outside
    the hull of the sampled piece gradients. Groups larger than MAX_JOINT inputs are not
    judged jointly."""
    out: dict[tuple[int, tuple[int, ...]], Entry] = {}
    eps, c_round = ref.eps, p.opts.c_round
    # rows with a group of their own (their kinks plus the entries failing beside them):
    # a linked group that misses some of a row's inputs (t shared by two outputs, judged
    # with the other output's lo) cannot show that row's pieces; its own group decides
    explicit = {int(r) for only in groups.values() if only is not None for r in only}
    for ks, only in groups.items():
        if len(ks) > MAX_JOINT:
            continue
        coords = [(cols[c][0], cols[c][2], float(d[c])) for c in ks]
        grads, mag, inner = piece_gradients(p, ref, coords, h)
        small = None
        resampled: dict = {}
        if not grads.size:
            continue
        for r in (range(grads.shape[1]) if only is None else only):
            pts = grads[:, r, :]
            a = jac[r, list(ks)] * d[list(ks)]
            if not np.all(np.isfinite(pts)) or not (np.any(pts) or np.any(a)):
                continue
            noise = 0.0 if sigma is None else C_NOISE * float(sigma[r])
            round_tol = SAFETY * (c_round * eps * (mag[r] + np.abs(a)) + noise) / inner
            spread = 2 * h * np.max(np.abs(pts), axis=0)  # pieces curve across delta
            side = np.zeros(len(ks)) if tol is None else np.where(
                np.isfinite(tol[r, list(ks)]), tol[r, list(ks)], 0.0)
            t = round_tol + spread + side
            inside = in_hull(pts, a, t)
            if not inside and two_scales(coords, ref, h):
                if small is None:
                    small = piece_gradients(p, ref, coords, h, small=True)
                g2, mag2, inner2 = small
                if g2.size and np.all(np.isfinite(g2[:, r, :])):
                    pts2 = g2[:, r, :]
                    t2 = (SAFETY * ((c_round * eps * mag2[r] + noise) / inner2
                                    + small_arg_rounding(ref, coords, a, inner2, h, c_round))
                          + 2 * h * np.max(np.abs(pts2), axis=0) + side)
                    inside = in_hull(pts2, a, t2) and informative(t2, pts2, a)
            if not inside and len(ks) > FULL_HULL:
                inside = _own_support(p, ref, coords, h, r, pts, a, side, noise, c_round,
                                      eps, resampled)
            if not inside and only is None and int(r) in explicit:
                continue
            e = _entry(p, ref, r, ks, cols, a, pts, t, d, inside)
            e.output = None if out_index is None else out_index[r]
            out[(r, ks)] = e
    return out


def _own_support(p: Problem, ref: Ref, coords: Sequence[tuple[int, int, float]], h: float,
                 r: int, pts: np.ndarray, a: np.ndarray, side: np.ndarray, noise: float,
                 c_round: float, eps: float, cache: dict) -> bool:
    """A row outside the pairwise hull of a large group's joint samples, judged again on
    its own support: the covering-array patterns show every sign pair, not every piece of
    a row that depends on three inputs (clip's t, lo and hi, with t > hi > lo only within
    5e-7). The coordinates the row moves with (or gets gradient from) are sampled with
    every signed ordering, at both scales; the whole hull decides."""
    supp = tuple(int(c) for c in np.flatnonzero(np.any(pts != 0, axis=0) | (a != 0)))
    if not supp or len(supp) > FULL_HULL:
        return False
    sub = [coords[c] for c in supp]
    for small in ([False, True] if two_scales(sub, ref, h) else [False]):
        key = (supp, small)
        if key not in cache:
            cache[key] = piece_gradients(p, ref, sub, h, small=small)
        g, mag, inner = cache[key]
        if not g.size or not np.all(np.isfinite(g[:, r, :])):
            return True  # outside the domain around x: nothing to judge against
        q, b = g[:, r, :], a[list(supp)]
        arg = (small_arg_rounding(ref, sub, b, inner, h, c_round) if small
               else c_round * eps * np.abs(b) / inner)
        t = (SAFETY * ((c_round * eps * mag[r] + noise) / inner + arg)
             + 2 * h * np.max(np.abs(q), axis=0) + side[list(supp)])
        if hull_contains(q, b, t) and (not small or informative(t, q, b)):
            return True
    return False


def _entry(p: Problem, ref: Ref, r: int, ks: tuple[int, ...],
           cols: Sequence[tuple[int, int, int]], a: np.ndarray, pts: np.ndarray,
           t: np.ndarray, d: np.ndarray, inside: bool) -> Entry:
    kk, _, j = cols[ks[0]]
    where = ", ".join(f"{p.names[cols[c][0]]}"
                      f"{list(np.unravel_index(cols[c][2], ref.xs[cols[c][0]].shape))}"
                      for c in ks)
    # The nearest hull vertex is shown as "numeric" (per unit of x of the first input).
    near = pts[int(np.argmin(np.sum((pts - a) ** 2, axis=1)))]
    return Entry(input=kk, input_name=p.names[kk],
                 index=tuple(int(i) for i in np.unravel_index(j, ref.xs[kk].shape)),
                 analytic=float(a[0] / d[ks[0]]), numeric=float(near[0] / d[ks[0]]),
                 bound=0.0, tolerance=float(t[0] / d[ks[0]]), step=0.0,
                 verdict=PASS if inside else FAIL, kind="joint kink",
                 note=None if inside else (
                     f"at a tie of {where}: the gradient restricted to these inputs is "
                     f"outside the convex hull of the {len(pts)} gradients of the pieces met "
                     "around x (Clarke's generalized Jacobian)"))
