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

from collections.abc import Sequence

import numpy as np

from gradverify.harness.budget import C_NOISE, SAFETY
from gradverify.harness.calls import Problem
from gradverify.harness.hull import (
    FULL_HULL,
    hull_contains,
    in_hull,
    in_minkowski,
    minkowski_contains,
)
from gradverify.harness.kink_jumps import flat_below_rounding, jumps_within, steady_within
from gradverify.harness.kink_samples import (
    MAX_JOINT,
    MAX_ROWS,
    MAX_SUPPORTS,
    carried_side,
    curving,
    finer_scales,
    informative,
    piece_gradients,
    row_hulls,
    sample_patterns,
    small_arg_rounding,
    small_scale,
    smallest_radius,
    two_scales,
)
from gradverify.harness.kink_shared import shared_pass
from gradverify.harness.lines import Ref
from gradverify.harness.reasons import Reason
from gradverify.harness.report import FAIL, INCONCLUSIVE, PASS, Entry
from gradverify.harness.slivers import SLIVER_NOTE, unseen_sliver

__all__ = ["hull_contains", "minkowski_contains", "in_hull", "in_minkowski", "row_hulls",
           "sample_patterns", "piece_gradients", "two_scales", "small_scale", "informative",
           "small_arg_rounding", "kink_groups", "joint_kinks",
           "FULL_HULL", "MAX_JOINT", "MAX_ROWS", "MAX_SUPPORTS"]


def kink_groups(kink: np.ndarray, failing: np.ndarray, flat: np.ndarray | None = None,
                partners: dict[int, list[int]] | None = None,
                ties: dict[tuple[int, ...], list[int]] | None = None,
                ) -> dict[tuple[int, ...], list[int] | None]:
    """Sets of inputs (columns) to judge jointly, with the rows to judge on each (None:
    every row that depends on them).

    Columns are linked when one output has kinks in both; every linked set of two or more
    is judged for every output (a stable sort's middle output at a three-way tie is flat
    along every single input - no kink, no coordinatewise disagreement - yet its gradient
    must be a limit of nearby ones). A row that FAILs coordinatewise in a column while it
    has kinks elsewhere is judged on its kinks' set plus that column (clip at t == lo == hi:
    t alone moves nothing, yet TF's gradient to t is the piece lo < t < hi), and so is a
    row with ``partners`` (``tie_partners``: columns tied with its kinks), and the rows
    ``ties`` names (``tie_probes``: exact ties no single column shows)."""
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
        beside |= set((partners or {}).get(int(r), []))
        if kinks and beside:
            ks = tuple(sorted(members[root(kinks[0])] | beside))
            if groups.get(ks, []) is not None:
                groups.setdefault(ks, []).append(r)
    for ks, only in (ties or {}).items():
        if groups.get(ks, []) is not None:
            groups.setdefault(ks, []).extend(r for r in only if r not in groups.get(ks, []))
    # A row with no kink at all whose failing entries look flat (the numeric slope nearer 0
    # than the analytic one): a piece may exist only within a sliver narrower than every
    # step (t = 0 between lo = -1e-30 and hi = 0). Judged on those entries alone, sampled
    # again at the distance to the nearest entry (informative there, or the FAIL stands).
    if flat is not None:
        for r in np.flatnonzero(flat.any(axis=1) & ~kink.any(axis=1)):
            ks = tuple(int(c) for c in np.flatnonzero(flat[r]))
            # a group naming the row judges it already; a linked group (rows None) may
            # leave it to a column's ladder (it moves with one of that group's columns
            # only: t shared by four clips, linked with hi[2], the fourth's piece
            # lo < t < hi a 1e-30 sliver - dev-profile seed 6), so the row is judged on
            # its own too, and a PASS on a larger group overrides (``joint_kinks``)
            covered = any(set(ks) <= set(g) and rows is not None and r in rows
                          for g, rows in groups.items())
            if not covered and len(ks) <= MAX_JOINT and groups.get(ks, []) is not None:
                groups.setdefault(ks, []).append(int(r))
    return groups


def joint_kinks(p: Problem, ref: Ref, groups: dict[tuple[int, ...], list[int] | None],
                jac: np.ndarray, d: np.ndarray, cols: Sequence[tuple[int, int, int]],
                h: float, sigma: np.ndarray | None = None, tol: np.ndarray | None = None,
                out_index: Sequence[tuple[int, ...]] | None = None,
                support: np.ndarray | None = None, failed: np.ndarray | None = None,
                ) -> dict[tuple[int, tuple[int, ...]], Entry]:
    """Joint Clarke judgement of every row on every group (full mode): one entry per
    (row, group) where the row depends on the group, FAIL when its analytic row is outside
    the hull of the sampled piece gradients. Groups larger than MAX_JOINT inputs are not
    judged jointly. ``support``: the Jacobian entries non-zero at x (analytic or numeric);
    given, separable groups are first sampled all at once (``kink_shared``). ``failed``:
    the entries that FAILed coordinatewise; the joint judgement overrules such a FAIL only
    where it resolves the row (``informative``), else the row is INCONCLUSIVE."""
    out: dict[tuple[int, tuple[int, ...]], Entry] = {}
    shared = {} if support is None else shared_pass(p, ref, groups, jac, d, cols, h,
                                                    support, sigma=sigma, tol=tol)
    eps, c_round = ref.eps, p.opts.c_round
    # rows with a group of their own (their kinks plus the entries failing beside them):
    # a linked group that misses some of a row's inputs (t shared by two outputs, judged
    # with the other output's lo) cannot show that row's pieces; its own group decides
    explicit = {int(r) for only in groups.values() if only is not None for r in only}
    for ks, only in groups.items():
        if len(ks) > MAX_JOINT:
            continue
        if ks in shared:  # every row inside the hull of the shared samples
            for r in shared[ks]:
                e = Entry(input=cols[ks[0]][0], input_name=p.names[cols[ks[0]][0]],
                          index=tuple(int(i) for i in np.unravel_index(
                              cols[ks[0]][2], ref.xs[cols[ks[0]][0]].shape)),
                          analytic=float(jac[r, ks[0]]), numeric=float(jac[r, ks[0]]),
                          bound=0.0, tolerance=0.0, step=0.0, verdict=PASS,
                          kind="joint kink")
                e.output = None if out_index is None else out_index[r]
                out[(r, ks)] = e
            continue
        coords = [(cols[c][0], cols[c][2], float(d[c])) for c in ks]
        grads, mag, inner = piece_gradients(p, ref, coords, h)
        finer: dict = {}
        resampled: dict = {}
        jumpy = rounded = None
        if not grads.size:
            continue
        if only is None:  # the rows that move with the group, or get gradient from it
            only_rows = np.flatnonzero(np.any(grads != 0, axis=(0, 2))
                                       | np.any(jac[:, list(ks)] != 0, axis=1))
        for r in (only_rows.tolist() if only is None else only):
            pts = grads[:, r, :]
            a = jac[r, list(ks)] * d[list(ks)]
            if not np.all(np.isfinite(pts)) or not (np.any(pts) or np.any(a)):
                continue
            if only is None and np.count_nonzero(np.any(pts != 0, axis=0) | (a != 0)) < 2:
                # the row moves with one column of the linked group only: a 1-D kink, which
                # its own ladder judged at that column's own scale (hi's piece a sliver
                # between lo = -1e-5 and t = 5.8e-7, hi linked through lo = 0 elsewhere)
                continue
            noise = 0.0 if sigma is None else C_NOISE * float(sigma[r])
            round_tol = SAFETY * (c_round * eps * (mag[r] + np.abs(a)) + noise) / inner
            spread = 2 * h * np.max(np.abs(pts), axis=0)  # pieces curve across delta
            side = np.zeros(len(ks)) if tol is None else np.where(
                np.isfinite(tol[r, list(ks)]), tol[r, list(ks)], 0.0)
            t = round_tol + spread + side + curving(pts)
            inside = in_hull(pts, a, t)
            # a coordinatewise FAIL inside only because the tolerance admits any value there
            # (a fault of 2e-4 on entries 3e-7 and 4e-6 beside x, stepped by 1e-12: the
            # round-off of the differences is as large) stands undecided, unless a finer
            # radius resolves it
            blurred = (inside and failed is not None and bool(failed[r, list(ks)].any())
                       and not informative(t, pts, a))
            if (not inside or blurred) and _finer(p, ref, coords, h, r, a, side, hidden_noise(
                    noise, mag[r], eps, c_round), finer):
                inside, blurred = True, False
            if not inside and len(ks) > FULL_HULL:
                inside = _own_support(p, ref, coords, h, r, pts, a, side, noise, c_round,
                                      eps, resampled, mag[r])
            if not inside and only is None and int(r) in explicit:
                continue
            e = _entry(p, ref, r, ks, cols, a, pts, t, d, inside)
            if blurred:
                e.verdict, e.note = INCONCLUSIVE, BLURRED_NOTE
            elif not inside:
                if jumpy is None:
                    jumpy = jumps_within(p, ref, coords, h)
                if jumpy[r]:  # the samples cross jumps: no piece gradients to judge by
                    e.verdict, e.note = INCONCLUSIVE, JUMPS_NOTE
                elif steady_within(p, ref, coords, h)[r]:  # memoised: the same points
                    e.verdict, e.note = INCONCLUSIVE, STEADY_NOTE
                elif unseen_sliver(ref, coords, h, smallest_radius(ref, coords, h)):
                    e.verdict, e.note = INCONCLUSIVE, SLIVER_NOTE
                else:
                    if rounded is None:  # once per group, like jumpy
                        rounded = flat_below_rounding(p, ref, coords, h, jac[:, list(ks)])
                    if rounded[r]:
                        e.verdict, e.note = INCONCLUSIVE, ROUNDED_NOTE
            e.output = None if out_index is None else out_index[r]
            out[(r, ks)] = e
    _superset_pass(out)
    return out


def _finer(p: Problem, ref: Ref, coords: Sequence[tuple[int, int, float]], h: float, r: int,
           a: np.ndarray, side: np.ndarray, noise: float, cache: dict) -> bool:
    """A row outside the hull at the common scale, judged again at the finer radii: the
    coordinates' smallest own scale (``middle_scale``) and the small scale (``two_scales``).
    Inside at either, where the test can tell the pieces apart (``informative``), is
    inside: pieces met within a smaller radius are among those met within the larger, so a
    fault outside the common hull stays outside; what the finer radius removes is the
    curving of the pieces across the larger one and the pieces of kinks near x."""
    c_round = p.opts.c_round
    for scale in finer_scales(ref, coords, h):
        if scale not in cache:
            cache[scale] = piece_gradients(p, ref, coords, h, scale=scale)
        g2, mag2, inner2 = cache[scale]
        if not g2.size or not np.all(np.isfinite(g2[:, r, :])):
            continue
        pts2 = g2[:, r, :]
        t2 = (SAFETY * (c_round * ref.eps * mag2[r] / inner2 + np.minimum(
                  noise / inner2, seen_noise(pts2))
                        + small_arg_rounding(ref, coords, a, inner2, h, c_round))
              + 2 * h * np.max(np.abs(pts2), axis=0) + carried_side(side, coords, scale)
              + curving(pts2))
        if in_hull(pts2, a, t2) and informative(t2, pts2, a):
            return True
    return False


def seen_noise(pts: np.ndarray) -> np.ndarray:
    """Per coordinate, the largest gap between the forward and the backward difference at
    any sample point (``piece_gradients`` lists central, forward, backward per point): the
    noise of the function at the radius sampled, as its differences show it. Noise of size
    s in f moves them by about s / step apart, so the gap bounds what it adds to the
    central difference. The noise measured at the common scale can be structure there
    rather than noise (cosine similarity of a row of 1e-8: it varies by 5e-4 across the
    common radius and by 1e-13 across the small one), which a finer radius must not
    inherit as its own.

    >>> seen_noise(np.array([[2.0], [2.1], [1.9], [1.0], [1.0], [1.0]])).round(6).tolist()
    [0.2]
    """
    with np.errstate(invalid="ignore"):
        gap = np.abs(pts[1::3] - pts[2::3])
    return np.nan_to_num(np.max(gap, axis=0, initial=0.0), nan=np.inf)


def hidden_noise(noise: float, mag: float, eps: float, c_round: float) -> float:
    """The part of a row's measured noise (``C_NOISE`` sigma, from samples at the common
    step) that the small-scale sampling must still budget for: none when it is no more
    than the round-off of the row's own values met at the common scale (``mag``). That
    round-off scales with the values, and the small-scale budget already carries the
    round-off of the values met there; noise above it is cancellation inside the
    function, which does not shrink with the radius, and is kept whole. (Clip's t = 0
    between lo = -1e-30 and hi = 0: sigma ~ 1e-46 from the 1e-30 values, divided by a
    1e-101 difference step, admitted any gradient and let the FAIL at the common scale
    stand; the sliver's slope 1 is resolved exactly at the small scale.)

    >>> hidden_noise(3e-46, 1e-30, 2.2e-16, 32.0)
    0.0
    >>> hidden_noise(3e-12, 1.0, 2.2e-16, 32.0)
    3e-12
    """
    return 0.0 if noise <= c_round * eps * mag else noise


def _superset_pass(out: dict[tuple[int, tuple[int, ...]], Entry]) -> None:
    """A row inside the hull sampled over a larger set of inputs is inside its projection
    on any subset: a FAIL on the subset (its samples missed pieces only joint moves of the
    other inputs meet - a stable sort's middle output at a three-way tie, judged on one
    flat input) is overridden by the larger group's PASS."""
    passed: dict[int, list[set[int]]] = {}
    for (r, ks), e in out.items():
        if e.verdict == PASS:
            passed.setdefault(r, []).append(set(ks))
    for (r, ks), e in out.items():
        if e.verdict == FAIL and any(set(ks) < big for big in passed.get(r, [])):
            e.verdict, e.note = PASS, None


JUMPS_NOTE = Reason.JUMPS_WITHIN_STEP.text(
    "the function jumps within every step tried (differences do not shrink with the step), "
    "so no difference quotient is a gradient of a piece")


BLURRED_NOTE = Reason.ROUNDOFF_DOMINATED.text(
    "the round-off of the differences sampled around x, at every radius tried, is as large "
    "as the gradients it must tell apart")


ROUNDED_NOTE = Reason.ROUNDED_AWAY.text(
    "the function does not change at any step sampled around x, where the analytic "
    "gradient predicts a change below the round-off of its largest output")


STEADY_NOTE = Reason.STRUCTURE_BELOW_STEP.text(
    "the function changes by one fixed amount at every step tried, down to the finest: "
    "its pieces lie below every step, so the sampled ones are not the function's")


def _own_support(p: Problem, ref: Ref, coords: Sequence[tuple[int, int, float]], h: float,
                 r: int, pts: np.ndarray, a: np.ndarray, side: np.ndarray, noise: float,
                 c_round: float, eps: float, cache: dict, mag_r: float = np.inf) -> bool:
    """A row outside the pairwise hull of a large group's joint samples, judged again on
    its own support: the covering-array patterns show every sign pair, not every piece of
    a row that depends on three inputs (clip's t, lo and hi, with t > hi > lo only within
    5e-7). The coordinates the row moves with (or gets gradient from) are sampled with
    every signed ordering, at every scale; the whole hull decides."""
    supp = tuple(int(c) for c in np.flatnonzero(np.any(pts != 0, axis=0) | (a != 0)))
    if not supp or len(supp) > FULL_HULL:
        return False
    sub = [coords[c] for c in supp]
    for scale in [None, *finer_scales(ref, sub, h)]:
        small = scale is not None
        key = (supp, scale)
        if key not in cache:
            cache[key] = piece_gradients(p, ref, sub, h, scale=scale)
        g, mag, inner = cache[key]
        if not g.size or not np.all(np.isfinite(g[:, r, :])):
            return True  # outside the domain around x: nothing to judge against
        q, b = g[:, r, :], a[list(supp)]
        arg = (small_arg_rounding(ref, sub, b, inner, h, c_round) if small
               else c_round * eps * np.abs(b) / inner)
        own = hidden_noise(noise, mag_r, eps, c_round) if small else noise
        t = (SAFETY * ((c_round * eps * mag[r] + own) / inner + arg)
             + 2 * h * np.max(np.abs(q), axis=0) + carried_side(side[list(supp)], sub, scale))
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
