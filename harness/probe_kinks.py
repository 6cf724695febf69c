"""Fast mode at kinks: a probe ``<v, J u>`` that disagrees where its line meets kinks is
judged jointly on the kink entries (and the entries failing or jumping beside them).

The analytic value restricted to those entries, ``a_j = (J^T v)_j``, must lie in the hull
of the sampled gradients of ``v . f`` around x, or else in the v-weighted Minkowski sum of
each moved output's own hull (TF picks a tie convention per output; combined they give
points of the sum that no single sample point shows). Every coordinate is sampled at its
own step scale from ``lines.scales`` - not at the probe's direction entry - so the sample
points are the same for every probe of a check and their outputs are evaluated once
(``kink_samples`` memoises them per reference point).

>>> from gradverify.harness import check_vjp
>>> def clip_vjp(xs, gs):          # TF's masks: t gets the gradient where lo <= t <= hi
...     t, lo, hi = xs
...     g = gs[0]
...     return (g * ((t >= lo) & (t <= hi)), g * ((t < lo) | (hi < lo)),
...             g * ((t > hi) & (hi >= lo)))
>>> clip = lambda t, lo, hi: np.maximum(np.minimum(t, hi), lo)
>>> xs = [np.zeros(4), np.array([0.0, 0.0, 0.0, -1e-300]), np.zeros(4)]
>>> check_vjp(clip, clip_vjp, xs, mode="fast", seed=0).verdict
'PASS'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gradverify.harness.budget import C_ROUND, C_SIGMA, SAFETY
from gradverify.harness.entry_bands import spawn
from gradverify.harness.hull import hull_contains, in_hull, in_minkowski
from gradverify.harness.kink_jumps import jumps_within, steady_within
from gradverify.harness.kink_samples import (
    MAX_JOINT,
    MAX_ROWS,
    _outputs,
    carried_side,
    finer_scales,
    informative,
    memo_of,
    piece_gradients,
    row_hulls,
    small_arg_rounding,
    smallest_radius,
    tied,
    two_scales,
)
from gradverify.harness.kink_ties import tie_shows
from gradverify.harness.lines import Ref, norm2, scales
from gradverify.harness.reasons import Reason
from gradverify.harness.report import FAIL, INCONCLUSIVE, NOT_APPLICABLE, PASS, Entry
from gradverify.harness.slivers import SLIVER_NOTE, unseen_sliver

if TYPE_CHECKING:
    from gradverify.harness.fast import Probe

__all__ = ["joint", "scales_of", "tied_entries", "bent_tie", "many_kinks", "judged_whole",
           "judge_rows", "SCAN", "without_missed_kinks", "FULL_FALLBACK", "beside_bracket"]

# Up to this many entries, a probe is searched for kinks entry by entry (fast.py), beyond
# by bisection
SCAN = 64

# Beyond MAX_JOINT kinks along a probe, the whole Jacobian is judged (full mode: kinks row
# by row, each row's group jointly) when neither side has more elements than this.
FULL_FALLBACK = 4096


def joint(probe: Probe, coords: list[Entry]) -> tuple[str, list[Entry], str | None]:
    """The probe's verdict on its kink entries ``coords`` (PASS, or FAIL with a "joint
    kink" entry first), the entries to show, and a note for the report."""
    ref, h = probe.ref, probe.h
    where = [(e.input, int(np.ravel_multi_index(e.index, ref.xs[e.input].shape)))
             for e in coords]
    steps = scales_of(ref)
    scale = [float(steps[k].flat[j]) for k, j in where]
    cts = probe.cts
    y0 = np.concatenate([np.asarray(y, np.float64).ravel() for y in ref.ys
                         if y.dtype.kind == "f"])
    coords3 = [(k, j, s) for (k, j), s in zip(where, scale)]
    # entries report values per unit of x: in units of each coordinate's step scale here
    a = np.array([float(np.asarray(probe.g[k], np.float64).flat[j]) * s
                  for (k, j), s in zip(where, scale)])
    side = np.array([e.tolerance * s if np.isfinite(e.tolerance) else 0.0
                     for e, s in zip(coords, scale)])
    eps = ref.eps
    # the outputs' own rounding enters every difference (a random walk over entries)
    mag_r = min(float(np.sum(np.abs(cts * y0))), C_SIGMA * norm2(cts * y0))
    pts = None
    touched = np.zeros(y0.size, bool)

    def weighted(y: np.ndarray) -> np.ndarray:
        touched[...] |= y != y0  # the rows the kink entries move, for the second test
        return np.array([cts @ (y - y0)])
    # differences from f(x): outputs the sample does not touch add exact zeros
    decided, small_seen = False, False
    finer = finer_scales(ref, coords3, h)
    smallest = finer[-1] if two_scales(coords3, ref, h) else None
    for radius in [None, *finer]:
        # the finer radii (kink_samples.finer_scales) only count where they are informative
        small = radius is not None
        got, mag, inner = piece_gradients(probe.p, ref, coords3, h, reduce=weighted,
                                          scale=radius)
        if not got.size or not np.all(np.isfinite(got)):
            return PASS, coords, None
        pts = got[:, 0, :]
        arg = (small_arg_rounding(ref, coords3, a, inner, h, C_ROUND) if small
               else C_ROUND * eps * np.abs(a) / inner)
        t = (SAFETY * (C_ROUND * eps * (mag_r + float(mag[0])) / inner + arg)
             + 2 * h * np.max(np.abs(pts), axis=0) + carried_side(side, coords3, radius))
        # Clarke's hull of v.f is inside the v-weighted Minkowski sum of the rows'
        # hulls, and can be smaller: several outputs each at its own tie (clip with
        # t == lo == hi in several entries) combine TF's per-row choices into a point
        # of the sum that no single sample point shows. Inside the first: PASS at once.
        # Beyond FULL_HULL coordinates the covering patterns miss pieces, and the pairwise
        # projections they are judged on are weak (each row's simplex projects onto a
        # triangle holding 0: "nothing to t, lo or hi" at clip's tie would pass). When every
        # moved row's own support was sampled completely, that Minkowski test decides.
        # (and once one scale decided "outside" exactly, the weaker pairwise test at the
        # other scale does not overrule it)
        useful = not small or informative(t, pts, a)
        rows_in, exact, rows_useful = _rows_agree(probe, coords3, touched, y0, a, side,
                                                  mag_r, radius)
        decided = decided or exact
        small_seen = small_seen or (radius == smallest and small and (useful or rows_useful))
        if (useful and hull_contains(pts, a, t)) or rows_in or (
                useful and not decided and in_hull(pts, a, t)):
            return PASS, [e for e in coords if e.verdict == PASS], (
                "probe disagreement explained by kinks: the gradient lies in the convex "
                "hull of the pieces' gradients")
    names = ", ".join(f"{e.input_name}{list(e.index)}" for e in coords)
    near = pts[int(np.argmin(np.sum((pts - a) ** 2, axis=1)))]
    along = lambda y: np.array([cts @ (y - y0)])  # the probe's channel
    jumpy = jumps_within(probe.p, ref, coords3, h, reduce=along)[0]
    if jumpy or steady_within(probe.p, ref, coords3, h, reduce=along)[0]:
        # the samples cross jumps (floormod(1e15, 3)), or every step lands beyond pieces
        # far below it (softmax at the tie (1e30, 1e30)): no piece gradients to judge by
        why = (Reason.JUMPS_WITHIN_STEP.text(f"at {names}: the function jumps within every "
                                             "step tried") if jumpy else
               Reason.STRUCTURE_BELOW_STEP.text(f"at {names}: the function changes by one "
                                                "fixed amount at every step tried"))
        entry = Entry(input=coords[0].input, input_name=coords[0].input_name,
                      index=coords[0].index, analytic=coords[0].analytic,
                      numeric=float(near[0] / scale[0]), bound=0.0, tolerance=np.inf,
                      step=0.0, verdict=INCONCLUSIVE, kind="joint kink", note=why)
        return INCONCLUSIVE, [entry], None
    common = max(s for _, _, s in coords3)
    if not small_seen and unseen_sliver(ref, coords3, h, common):
        # A sliver only the small radius meets, where the probe's differences carry the
        # round-off of every output it weighs (clip's bounds of 1000 beside t = 0 and
        # hi = 0 with lo = 4.5e-243: a tolerance of 1e+287 there) and tell nothing: the
        # rows, each with its own round-off, can: the whole Jacobian decides when it is
        # affordable. (Beyond that the small radius stands as reached: with thousands of
        # entries one always sits within the common radius, and an unseen sliver there
        # would excuse every fault that merely looks flat.)
        whole = judge_rows(probe, coords[0])
        if whole is not None:
            return whole
    sliver = unseen_sliver(ref, coords3, h, smallest_radius(ref, coords3, h))
    entry = Entry(input=coords[0].input, input_name=coords[0].input_name,
                  index=coords[0].index, analytic=coords[0].analytic,
                  numeric=float(near[0] / scale[0]), bound=0.0,
                  tolerance=float(t[0] / scale[0]), step=0.0,
                  verdict=INCONCLUSIVE if sliver else FAIL,
                  kind="joint kink",
                  note=f"at a tie of {names}: the gradient restricted to these entries is "
                  "outside the convex hull of the gradients of the pieces met around x "
                  "(Clarke's generalized Jacobian)")
    if sliver:
        entry.note, entry.tolerance = SLIVER_NOTE, np.inf
        return INCONCLUSIVE, [entry], None
    return FAIL, [entry, *coords], None


def scales_of(ref: Ref) -> list[np.ndarray]:
    """``lines.scales`` of the reference point's inputs, computed once per point (like the
    memoised samples that depend on them)."""
    memo = memo_of(ref)
    if "scales" not in memo:
        memo["scales"] = scales(ref.xs)
    return memo["scales"]


def many_kinks(probe: Probe, entry: Entry, failing: list[Entry],
               ) -> tuple[str, list[Entry], str | None]:
    """A probe that disagrees and meets more than MAX_JOINT kinks (relu at hundreds of
    exact zeros): no joint judgement of the probe's kink entries is affordable, and a
    probe's bracket mixes every row's kink with signs that cancel. The kinks are separable
    row by row, though: the whole Jacobian (full mode, computed once per check and shared
    by its probes) judges each row on its own kink columns and their tied partners - 2
    evaluations per input element, the step ladder on kink columns, one joint sampling per
    tied group. Beyond FULL_FALLBACK elements: the failing entries stand (FAIL), or the
    probe is INCONCLUSIVE (``KINK_UNRESOLVED``)."""
    whole = judge_rows(probe, entry)
    if whole is not None:
        return whole
    if failing:
        return FAIL, failing, None
    entry.note = Reason.KINK_UNRESOLVED.text(
        f"the probe disagrees and meets more than {MAX_JOINT} kinks")
    return INCONCLUSIVE, [], None


def without_missed_kinks(probe: Probe, entry: Entry, group: list[Entry],
                         failing: list[Entry],
                         ) -> tuple[Entry | None, list[Entry], tuple[str, list[Entry], Any] | None]:
    """The probe without its kink entries ``group``: ``(rest, group, None)``, or
    ``(None, group, verdict)`` when the whole Jacobian decided. A bisection search for
    kinks misses some (the kinks of several outputs, weighted by v, cancel along a joint
    line: the 14 tied zeros of a max over rows of 5), so while the rest disagrees, the
    rest is searched again; past MAX_JOINT kinks, a search that did not finish, or one
    that finds no more (a kink crossed within every step reads as a smooth slope in
    float32), the rows decide (:func:`many_kinks`, :func:`judge_rows`)."""
    rest = probe.without(group)
    while rest is not None and rest.verdict == FAIL and rest.kind == "smooth":
        seen = {(e.input, e.index) for e in group}
        more, complete = probe.find_kinks(group)
        more = [e for e in more if (e.input, e.index) not in seen and e.kind in ("kink", "jump")]
        if not more:  # none found, yet the rest disagrees beside kinks: rows if affordable
            whole = judge_rows(probe, entry) if probe.size > SCAN else None
            return (rest, group, None) if whole is None else (None, group, whole)
        group = group + more
        if not complete or len(group) > MAX_JOINT:
            return None, group, many_kinks(probe, entry, failing)
        rest = probe.without(group)
    return rest, group, None


def judge_rows(probe: Probe, entry: Entry) -> tuple[str, list[Entry], str | None] | None:
    """The probe's verdict from the whole Jacobian (full mode, computed once per check
    and memoised), or None beyond FULL_FALLBACK elements."""
    p, ref = probe.p, probe.ref
    n = sum(x.size for x, d in zip(ref.xs, p.diff) if d)
    m = sum(y.size for y in ref.ys if y.dtype.kind == "f")
    if max(n, m) > FULL_FALLBACK:
        return None
    from gradverify.harness.full import full  # full mode imports the kink machinery too
    memo = memo_of(ref)
    if "full" not in memo:
        memo["full"] = full(p, ref, probe.whole)
    return judged_whole(probe, entry)


def judged_whole(probe: Probe, entry: Entry) -> tuple[str, list[Entry], str | None] | None:
    """The verdict on a disagreeing probe once the whole Jacobian was judged for this check
    (``many_kinks``, or a sliver only rows can see; None before): every later probe reads
    it instead of searching its own kinks again."""
    check = memo_of(probe.ref).get("full")
    if check is None:
        return None
    if check.verdict in (PASS, NOT_APPLICABLE):  # N/A: the rest agreed, the jumps aside
        return PASS, [], ("probe disagreement explained row by row: every row of the "
                          "whole Jacobian is inside its pieces' hull")
    shown = [e for e in check.worst if e.verdict == check.verdict]
    if not shown:
        entry.note = check.reason
    return check.verdict, shown, None


def tied_entries(probe: Probe, group: list[Entry], others: list[Entry]) -> list[Entry]:
    """Entries of ``others`` not in ``group`` tied with some entry of ``group``
    (``kink_samples.tied``: the rule full mode uses too)."""
    ids = {(e.input, e.index) for e in group}
    cand = []
    for e in others:
        if (e.input, e.index) not in ids and e.index is not None:
            cand.append(e)
            ids.add((e.input, e.index))
    if not cand or not group:
        return []
    steps = scales_of(probe.ref)
    every = group + cand
    vals = np.array([float(probe.ref.xs[e.input][e.index]) for e in every])
    scale = np.array([float(steps[e.input][e.index]) for e in every])
    near = tied(vals, scale, np.arange(len(group)), probe.h)[len(group):]
    return [e for e, hit in zip(cand, near) if hit]


def bent_tie(probe: Probe, failing: list[Entry], others: list[Entry]) -> list[Entry]:
    """The tied partners (``tied_entries`` among ``others``) of entries FAILing beside no
    kink, when a joint move of them all shows a tie that no entry alone moves; else [].
    ``median(x) + x`` at a three-way tie is 1 along the middle input alone, 2 on the piece
    where that input is the middle: the failing entry is not flat, yet only the joint
    judgement can tell a piece from a fault. The group moves once with random signs at the
    entries' own scales (2 evaluations): for a smooth ``v . f`` the central difference is
    the sum of the entries' single slopes (up to round-off and h^2 cross terms) and the
    even part ``phi(h) + phi(-h) - 2 phi(0)`` is h f''; a tie's edge makes one of them
    differ by the order of the slopes themselves (``kink_ties.tie_shows``, full mode's
    test too). A fault at a tie of a smooth function stays a coordinatewise FAIL."""
    partners = tied_entries(probe, failing, others)
    group = failing + partners
    if not partners or len(group) > MAX_JOINT:
        return []
    p, ref, h = probe.p, probe.ref, probe.h
    steps = scales_of(ref)
    signs = spawn(p.rng).choice([-1.0, 1.0], len(group))  # (the probes' stream untouched)
    w = [s * float(steps[e.input][e.index]) for e, s in zip(group, signs)]
    phi = []
    for side in (1.0, -1.0):
        out = _outputs(p, ref, {
            (e.input, int(np.ravel_multi_index(e.index, ref.xs[e.input].shape))):
            float(ref.xs[e.input][e.index]) + side * h * wi for e, wi in zip(group, w)})
        if out is None:
            return []
        phi.append((float(probe.cts @ out), float(np.abs(probe.cts) @ np.abs(out))))
    y0 = np.concatenate([np.asarray(y, np.float64).ravel() for y in ref.ys
                         if y.dtype.kind == "f"])
    total = sum(e.numeric * wi for e, wi in zip(group, w))
    joint = (phi[0][0] - phi[1][0]) / (2 * h)
    bend = (phi[0][0] + phi[1][0] - 2 * float(probe.cts @ y0)) / (2 * h)
    allowed = (sum(e.tolerance * abs(wi) for e, wi in zip(group, w))
               + SAFETY * 32 * ref.eps * (phi[0][1] + phi[1][1]) / h
               + 1e-6 * (abs(joint) + abs(total)))
    moved = bool(tie_shows(joint, total, bend, allowed))
    return partners if moved and np.isfinite(joint) and np.isfinite(bend) else []


def _rows_agree(probe: Probe, coords3: list[tuple[int, int, float]], touched: np.ndarray,
                y0: np.ndarray, a: np.ndarray, side: np.ndarray, mag_r: float,
                scale: float | None) -> tuple[bool, bool, bool]:
    """Is the probe's analytic value on the kink entries in the cotangent-weighted
    Minkowski sum of each moved output's own Clarke hull (one LP)? Was every row's hull
    sampled completely (an "outside" then decides)? And could the test tell the pieces
    apart at all (``informative``)?"""
    rows = np.flatnonzero(touched & (probe.cts != 0))
    if not 0 < rows.size <= MAX_ROWS:
        return False, False, False
    hulls = row_hulls(probe.p, probe.ref, coords3, probe.h, rows, y0, scale=scale)
    if hulls is None or not hulls[0]:
        return hulls is None, False, False  # outside the domain: nothing to judge against
    sets, live, mags, inner, exact = hulls
    if not all(np.all(np.isfinite(s)) for s in sets):
        return True, False, False
    w = probe.cts[rows[live]]
    spread = 2 * probe.h * sum(abs(wr) * np.max(np.abs(s), axis=0) for wr, s in zip(w, sets))
    t = (SAFETY * C_ROUND * probe.ref.eps * (mag_r + float(np.abs(w) @ mags) + np.abs(a))
         / inner + spread + carried_side(side, coords3, scale))
    reach = np.vstack([abs(wr) * s for wr, s in zip(w, sets)])
    useful = scale is None or informative(t, reach, a)
    return in_minkowski(sets, w, a, t, exact) and useful, exact and useful, useful


def beside_bracket(probe: Probe, entry: Entry, resolved: list[float]) -> tuple[str, list[Entry]]:
    """A probe that passes inside its own bracket at a kink resolves only the bracket: the
    kink entries' one-sided slopes spread it over the probe's whole size, and a fault on
    the smooth entries beside them hides inside (abs at [0, 1, -1, ...] with its gradient
    off by 1 % passed at 8 seeds of 10). Once per check, the probe's kink entries are
    found (``Probe.find_kinks``: entry by entry up to SCAN entries, else by bisection, at
    most MAX_JOINT of them) and the probe without them is judged on its own: FAIL if it
    disagrees, else its smooth resolution counts (``resolved``). Entries that disagree
    alone take the disagreeing probe's path (``Probe.settle``). Returns the verdict and
    the entries to show; PASS with none when nothing was split (more kinks than that:
    the rows decide only a disagreement, ``many_kinks``)."""
    memo = memo_of(probe.ref)
    if memo.get("bracket_split"):
        return PASS, []
    memo["bracket_split"] = True
    kinks, complete = probe.find_kinks([])
    if any(e.verdict == FAIL and e.kind == "smooth" for e in kinks):
        # single entries disagree on their own (a small support is searched entry by
        # entry): the disagreeing probe's own path judges them, ties and slivers included
        verdict, shown, _ = probe.settle(entry)
        return verdict, shown
    group = [e for e in kinks if e.kind in ("kink", "jump")]
    if not group or not complete or len(group) > MAX_JOINT:
        return PASS, []
    rest, group, whole = without_missed_kinks(probe, entry, group, [])
    if whole is not None:
        return whole[0], whole[1]
    if rest is None or rest.kind != "smooth":
        return PASS, []
    if rest.verdict == FAIL:
        rest.note = "the probe without its kink entries disagrees"
        return FAIL, [rest]
    if rest.verdict == PASS and rest.analytic != 0 and np.isfinite(rest.analytic):
        resolved.append(rest.tolerance / abs(rest.analytic))
    return PASS, []
