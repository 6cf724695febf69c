"""Exact ties no single input moves (full mode): the middle output of three equal values
(a median, a sort's middle entry) is flat along each input alone, so neither a kink nor a
coordinatewise disagreement points at it. The tied columns are moved jointly once, and the
rows that move non-linearly - or FAIL looking flat in a tie - are handed to the joint Clarke
judgement (``kinks.joint_kinks``) on their tie group."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gradverify.harness.budget import SAFETY
from gradverify.harness.calls import Problem
from gradverify.harness.entry_bands import spawn
from gradverify.harness.kink_samples import MAX_JOINT
from gradverify.harness.lines import Ref

__all__ = ["exact_ties", "tie_moves", "tie_rows"]


def tie_moves(p: Problem, ref: Ref, ties: Sequence[tuple[int, ...]],
              first: tuple[np.ndarray, ...], m: int, d: np.ndarray,
              cols: Sequence[tuple[int, int, int]], h: float,
              ) -> dict[tuple[int, ...], np.ndarray]:
    """The tie groups (``exact_ties``), each with the rows a joint move of the group shows
    non-linear (full mode, right after its first pass).

    The middle output of three equal values (a median, a sort's middle entry) is flat along
    every single input: no kink, and with "nothing to any of them" no coordinatewise
    disagreement, so neither the kinks' groups nor their tie partners reach it. Every tied
    column is moved at once, by its first-pass step with a random sign (2 evaluations,
    whatever the number of ties); the central difference must equal the signed sum of the
    first pass's single-column differences at the same steps - exactly so for an
    elementwise function, up to round-off and the h^2 cross terms for any smooth one -
    while a piece's edge at the tie makes it differ by the order of the row itself. Then 2
    evaluations per group locate a difference. Only rows the first pass decided on every
    entry of the group are compared: an undecided one's step is too coarse for it (softmax
    stepped at the scale of -1e5 beside it), and its ladder judges it. ``first``: the
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

    def moved(group: np.ndarray) -> np.ndarray:
        ys = []
        for sign in (1.0, -1.0):
            xs = [x.copy() for x in ref.xs]
            for c in group:
                kk, _, j = cols[c]
                xs[kk].flat[j] = xs[kk].flat[j] + sign * h * signs[c] * d[c]
            got = p.forward(xs, ref.forward)
            if [(y.shape, y.dtype) for y in got] != [(y.shape, y.dtype) for y in ref.ys]:
                return np.zeros(m, bool)
            ys.append(np.concatenate([np.asarray(y, np.float64).ravel() for y in got
                                      if y.dtype.kind == "f"]))
        part = np.isin(cols_f, group)
        with np.errstate(all="ignore"):
            joint = (ys[0] - ys[1]) / (2 * h)
            total = np.bincount(rows_f[part], single[part], minlength=m)
            allowed = (np.bincount(rows_f[part], single_tol[part], minlength=m)
                       + SAFETY * 32 * ref.eps * (np.abs(ys[0]) + np.abs(ys[1])) / h
                       + 1e-6 * (np.abs(joint) + np.abs(total)))  # cross terms ~ h^2
            return np.isfinite(joint) & (np.abs(joint - total) > allowed) & ~coarse

    anywhere = moved(tied_cols)
    if not anywhere.any():
        return {}
    return {tuple(int(c) for c in g): (moved(g) if len(groups) > 1 else anywhere)
            for g in groups}


def tie_rows(moves: dict[tuple[int, ...], np.ndarray], m: int,
             kink: tuple[np.ndarray, np.ndarray], flat: tuple[np.ndarray, np.ndarray],
             groups: Sequence[tuple[int, ...]] = ()) -> dict[tuple[int, ...], list[int]]:
    """The rows to judge on each tie group (``tie_moves``' groups and ``groups``): those
    that moved non-linearly, or FAIL looking flat in it (the stable sort's middle gets the
    gradient, numeric 0 along it alone; a smooth row's FAIL stays coordinatewise, judged
    at the ladder's resolution), without a kink or jump there (the kink groups' own, or
    no derivative). ``kink``/``flat``: (rows, columns) of the entries that kink or jump /
    FAIL looking flat."""
    def rows_of(entries: tuple[np.ndarray, np.ndarray], group: tuple[int, ...]) -> np.ndarray:
        out = np.zeros(m, bool)
        out[entries[0][np.isin(entries[1], group)]] = True
        return out
    out: dict[tuple[int, ...], list[int]] = {}
    for g in set(moves) | set(groups):
        rows = (moves.get(g, np.zeros(m, bool)) | rows_of(flat, g)) & ~rows_of(kink, g)
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
