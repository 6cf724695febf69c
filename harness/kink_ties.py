"""Exact ties no single input moves (full mode): the middle output of three equal values
(a median, a sort's middle entry) is flat along each input alone, so neither a kink nor a
coordinatewise disagreement points at it. The tied columns are moved jointly once, and the
rows that move non-linearly - or FAIL looking flat in a tie - are handed to the joint Clarke
judgement (``kinks.joint_kinks``) on their tie group. And the columns tied with a row's
kinks that only a joint move shows (``tie_partners``: clip's t and hi at t == lo == hi)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradverify.harness.budget import SAFETY
from gradverify.harness.calls import Problem
from gradverify.harness.entry_bands import spawn
from gradverify.harness.kink_samples import MAX_JOINT, tied
from gradverify.harness.lines import Ref

__all__ = ["exact_ties", "tie_moves", "tie_rows", "tie_partners", "tie_shows"]

# A smooth row's even part over a joint move is h f'' beside the slope f' (about 1e-5 of
# it at the first pass's steps); a tie's edge bends the row by the order of the row itself.
BEND_SHARE = 1e-3


def tie_shows(joint: Any, total: Any, bend: Any, allowed: Any) -> Any:
    """Whether a joint move of tied entries shows a piece's edge: its central difference
    ``joint`` is not the sum ``total`` of the entries' single slopes, or its even part
    ``bend`` (``(f(x + h u) + f(x - h u) - 2 f(x)) / 2h``) is beyond a smooth row's;
    ``allowed``: the round-off and single-slope tolerances. Arrays or floats alike.

    >>> bool(tie_shows(1.0, 1.0, 0.5, 1e-9)), bool(tie_shows(1.0, 1.0, 1e-6, 1e-9))
    (True, False)
    """
    return (abs(joint - total) > allowed) | (abs(bend) > allowed + BEND_SHARE * (
        abs(joint) + abs(total)))


def tie_moves(p: Problem, ref: Ref, ties: Sequence[tuple[int, ...]],
              first: tuple[np.ndarray, ...], m: int, d: np.ndarray,
              cols: Sequence[tuple[int, int, int]], h: float,
              ) -> dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]]:
    """The tie groups (``exact_ties``), each with the rows a joint move of the group shows
    non-linear (full mode, right after its first pass): those the first pass decided on
    every entry of the group, and apart those it left undecided in some entry of it.

    The middle output of three equal values (a median, a sort's middle entry) is flat along
    every single input: no kink, and with "nothing to any of them" no coordinatewise
    disagreement, so neither the kinks' groups nor their tie partners reach it. Every tied
    column is moved at once, by its first-pass step with a random sign (2 evaluations,
    whatever the number of ties); the central difference must equal the signed sum of the
    first pass's single-column differences at the same steps - exactly so for an
    elementwise function, up to round-off and the h^2 cross terms for any smooth one -
    while a piece's edge at the tie makes it differ by the order of the row itself, or
    bend it (the even part, ``f(x + h u) + f(x - h u) - 2 f(x)``: a median of four tied
    values moved two up and two down moves by the same both ways). Then 2 evaluations per
    group locate a difference. A row the first pass left undecided in the
    group may be one its step is too coarse for (softmax stepped at the scale of -1e5
    beside it): its difference counts only if its ladder then FAILs it coordinatewise
    (``tie_rows``); the median's middle output given the whole gradient is one (undecided
    at 2 against 1, then FAILed by a ladder that moves one input at a time). ``first``: the
    first pass's judged entries (rows, columns, numeric df/dx, tolerance per unit step,
    undecided)."""
    if not ties:
        return {}
    groups = [np.array(g) for g in ties]
    rng = spawn(p.rng)  # a stream of its own: the rest draws what it would without ties
    signs = np.zeros(len(cols))
    tied_cols = np.concatenate(groups)
    signs[tied_cols] = rng.choice([-1.0, 1.0], tied_cols.size)
    rows_f, cols_f, num_f, tol_f, undecided = first
    keep = np.isin(cols_f, tied_cols)
    rows_f, cols_f = rows_f[keep], cols_f[keep]
    coarse = np.zeros(m, bool)  # rows the first pass left undecided in some tied column
    coarse[rows_f[undecided[keep]]] = True
    # the single-column differences along d, and their tolerances, per row
    single = num_f[keep] * d[cols_f] * signs[cols_f]
    single_tol = tol_f[keep]
    y0 = np.concatenate([np.asarray(y, np.float64).ravel() for y in ref.ys
                         if y.dtype.kind == "f"])

    def moved(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ys = []
        for sign in (1.0, -1.0):
            xs = [x.copy() for x in ref.xs]
            for c in group:
                kk, _, j = cols[c]
                xs[kk].flat[j] = xs[kk].flat[j] + sign * h * signs[c] * d[c]
            got = p.forward(xs, ref.forward)
            if [(y.shape, y.dtype) for y in got] != [(y.shape, y.dtype) for y in ref.ys]:
                return np.zeros(m, bool), np.zeros(m, bool)
            ys.append(np.concatenate([np.asarray(y, np.float64).ravel() for y in got
                                      if y.dtype.kind == "f"]))
        part = np.isin(cols_f, group)
        with np.errstate(all="ignore"):
            joint = (ys[0] - ys[1]) / (2 * h)
            total = np.bincount(rows_f[part], single[part], minlength=m)
            allowed = (np.bincount(rows_f[part], single_tol[part], minlength=m)
                       + SAFETY * 32 * ref.eps * (np.abs(ys[0]) + np.abs(ys[1])) / h
                       + 1e-6 * (np.abs(joint) + np.abs(total)))  # cross terms ~ h^2
            # the even part too: a median of four tied values moved two up and two down
            # moves alike both ways, so the central difference cancels it
            bend = (ys[0] + ys[1] - 2 * y0) / (2 * h)
            rows = np.isfinite(joint) & tie_shows(joint, total, bend, allowed)
            return rows & ~coarse, rows & coarse

    anywhere = moved(tied_cols)
    if not (anywhere[0].any() or anywhere[1].any()):
        return {}
    return {tuple(int(c) for c in g): (moved(g) if len(groups) > 1 else anywhere)
            for g in groups}


def tie_rows(moves: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]], m: int,
             kink: tuple[np.ndarray, np.ndarray], flat: tuple[np.ndarray, np.ndarray],
             groups: Sequence[tuple[int, ...]] = (),
             failed: tuple[np.ndarray, np.ndarray] | None = None,
             ) -> dict[tuple[int, ...], list[int]]:
    """The rows to judge on each tie group (``tie_moves``' groups and ``groups``): those
    that moved non-linearly (a row the first pass left undecided there only if its ladder
    FAILs it: an entry of ``failed``), or FAIL looking flat in it (the stable sort's middle
    gets the gradient, numeric 0 along it alone; a smooth row's FAIL that the joint move
    shows linear stays coordinatewise, judged at the ladder's resolution), without a kink
    or jump there (the kink groups' own, or no derivative). ``kink``/``flat``/``failed``:
    (rows, columns) of the entries that kink or jump / FAIL looking flat / FAIL."""
    def rows_of(entries: tuple[np.ndarray, np.ndarray], group: tuple[int, ...]) -> np.ndarray:
        out = np.zeros(m, bool)
        out[entries[0][np.isin(entries[1], group)]] = True
        return out
    out: dict[tuple[int, ...], list[int]] = {}
    none = np.zeros(m, bool)
    for g in set(moves) | set(groups):
        decided, coarse = moves.get(g, (none, none))
        if failed is not None:
            decided = decided | (coarse & rows_of(failed, g))
        rows = (decided | rows_of(flat, g)) & ~rows_of(kink, g)
        if rows.any():
            out[g] = [int(r) for r in np.flatnonzero(rows)]
    return out


def exact_ties(ref: Ref, cols: Sequence[tuple[int, int, int]]) -> list[tuple[int, ...]]:
    """The groups of 2 to MAX_JOINT columns with exactly equal values."""
    v = np.array([float(ref.xs[kk].flat[j]) for kk, _, j in cols])
    uniq, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    return [tuple(int(c) for c in np.flatnonzero(inverse == g)) for g in np.flatnonzero(
        (counts >= 2) & (counts <= MAX_JOINT) & np.isfinite(uniq))]


_PARTNER_SIGNS = (1.0, -1.0, 0.25, -0.25, 0.0)


def tie_partners(p: Problem, ref: Ref, kink: np.ndarray, d: np.ndarray,
                 cols: Sequence[tuple[int, int, int]], h: float,
                 laddered: np.ndarray | None = None, judged: np.ndarray | None = None,
                 ) -> dict[int, list[int]]:
    """Per row with kinks: the columns TIED with its kink columns (``kink_samples.tied``,
    the rule fast mode uses) that do not kink in that row yet move it once its kinks move.

    Clip at t == lo == hi: only lo kinks; t and hi are flat alone (t up is clipped by hi,
    down by lo), so no coordinatewise test sees them, yet the pieces lo < t < hi and
    t > hi > lo meet there and "nothing to any of them" is outside the hull only with t
    and hi judged too. A tied column joins only the rows it moves: the row's difference
    along it at x with every kink column moved by one sampling radius up, then down, as
    much at a quarter of it, and not at x itself (6 to 10 evaluations per tied column,
    shared by all rows) - relu's hundreds of zeros, tied with each other, stay separate
    one-column kinks - unless the entry was decided at the first pass (``laddered``: the
    entries whose ladder ran; None: all): at max(a, b)'s tie the split gradient 0.5
    equals a's central difference, so a's kink went unseen, and a gradient (0.5, 0)
    would pass b's bracket [0, 1] alone."""
    if not kink.any():
        return {}
    vals = np.concatenate([np.asarray(x, np.float64).ravel() for x in ref.xs])
    offsets = np.cumsum([0] + [x.size for x in ref.xs])
    v = np.array([vals[offsets[kk] + j] for kk, _, j in cols])
    kinked = kink.any(axis=0)
    cand: dict[int, np.ndarray] = {}
    for r in np.flatnonzero(kink.any(axis=1)):
        # kinked elsewhere is no alibi where the row depends on the column at x (a sort's
        # two tied zeros kink in one output each; ``judged``: the entries non-zero on
        # either side), while relu's other zeros stay out of each other's rows
        elsewhere = ~kinked if judged is None else ~kinked | judged[r]
        near = tied(v, d, np.flatnonzero(kink[r]), h) & ~kink[r] & elsewhere & np.isfinite(v)
        if near.any():
            cand[int(r)] = np.flatnonzero(near)
    if not cand:
        return {}
    scan = np.unique(np.concatenate(list(cand.values())))
    # how much each row moves along each scanned column, with the kink columns moved by
    # sign * h (0: at x itself)
    diff = {sign: np.zeros((len(scan), kink.shape[0])) for sign in _PARTNER_SIGNS}
    inner = h / 32  # the difference step, well inside the sampling radius h
    for sign in _PARTNER_SIGNS:
        if sign in (0.25, -0.25) and not (diff[4 * sign] > 0).any():
            continue  # nothing moved at the full radius: nothing to compare
        base = [x.copy() for x in ref.xs]
        for c in np.flatnonzero(kinked):
            kk, _, j = cols[c]
            base[kk].flat[j] = base[kk].flat[j] + sign * h * d[c]
        for i, c in enumerate(scan):
            kk, _, j = cols[c]
            ys = []
            for step in (inner, -inner):
                xs = list(base)
                xs[kk] = base[kk].copy()
                xs[kk].flat[j] = base[kk].flat[j] + step * d[c]
                got = p.forward(xs, ref.forward)
                if [(y.shape, y.dtype) for y in got] != [(y.shape, y.dtype) for y in ref.ys]:
                    break
                ys.append(np.concatenate([np.asarray(y, np.float64).ravel() for y in got
                                          if y.dtype.kind == "f"]))
            if len(ys) == 2:
                with np.errstate(invalid="ignore"):
                    gap = np.abs(ys[0] - ys[1])
                diff[sign][i] = np.where(np.isfinite(gap), gap, 0.0)
    # A partner's piece switches on with the kinks (clip's t once lo moved below it): where
    # its step is inside a quarter of the kinks' radius, the row moves as much there. A
    # column that only scales with them (x0 in sum(min(x1, 1)) * sum(tanh(x0)), tied with
    # x1 = 1 by value) moves 4 times less there and not at all at x: no piece of its own.
    # (A step wider than that - t stepped at 2e-7 beside lo = 0 moved by 6e-16 - crosses
    # the piece whole at either radius; the row moves as far as lo did, so it stays.)
    reach = 0.25 * h * float(np.min(d[np.flatnonzero(kinked)]))
    wide = (inner * d[scan] > reach)[:, None]
    moves = np.zeros((len(scan), kink.shape[0]), bool)
    for sign in (1.0, -1.0):
        moves |= (diff[sign] > 0) & (wide | (diff[sign / 4] >= diff[sign] / 2))
    alone = diff[0.0] > 0  # the row moves along the column at x itself
    # a column that moves the row by itself at x is no hidden partner: its own ladder sees
    # it (elu's second derivative v * elu''(x) at x = v = 0: v is tied with x by value only)
    moves &= ~(alone if laddered is None else alone & laddered[:, scan].T)
    where = {int(c): i for i, c in enumerate(scan)}
    out = {r: [int(c) for c in cs if moves[where[int(c)], r]] for r, cs in cand.items()}
    return {r: cs for r, cs in out.items() if cs}
