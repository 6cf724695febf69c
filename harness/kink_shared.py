"""Many separable ties at once (maximum(a, b) with hundreds of a == b, reduce_max rows with
tied maxima): one joint sample set per sign pattern serves every group.

Each tie group of full mode's joint judgement is sampled at ``x + delta w`` for the same
signed orderings w of its k inputs (``kink_samples.sample_patterns``). When the groups are
separable - every output row depends (analytic or numeric Jacobian at x) on the columns of
one group at most - all groups of one size can be moved together: slot i of every group
takes w_i, and one difference along "slot i of every group" gives each row its own
group's coordinate. So a sampling costs ``patterns x (1 + 2k)`` evaluations whatever the
number of groups, instead of that per group. Only PASSes are taken from here: a row
outside its hull (or a group that is not separable) goes to the per-group judgement
(``kinks.joint_kinks``), which decides.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gradverify.harness.budget import C_NOISE, SAFETY
from gradverify.harness.calls import Problem
from gradverify.harness.hull import FULL_HULL, in_hull
from gradverify.harness.kink_samples import (
    _INNER,
    _RADIUS2,
    _outputs,
    _patterns,
    steps_per_scale,
)
from gradverify.harness.lines import Ref

__all__ = ["shared_pass"]

_MIN_GROUPS = 4  # fewer groups than this: sampled one by one (nothing to share)


def shared_pass(p: Problem, ref: Ref, groups: dict[tuple[int, ...], list[int] | None],
                jac: np.ndarray, d: np.ndarray, cols: Sequence[tuple[int, int, int]],
                h: float, support: np.ndarray, sigma: np.ndarray | None = None,
                tol: np.ndarray | None = None) -> dict[tuple[int, ...], list[int]]:
    """The linked groups (``only`` None, at most FULL_HULL inputs) whose every row lies
    inside the hull of shared samples, each with the rows judged (all PASS); ``support``:
    the Jacobian entries judged at x (analytic or numeric non-zero)."""
    by_size: dict[int, list[tuple[int, ...]]] = {}
    for ks, only in groups.items():
        if only is None and 2 <= len(ks) <= FULL_HULL:
            by_size.setdefault(len(ks), []).append(ks)
    out: dict[tuple[int, ...], list[int]] = {}
    for bucket in by_size.values():
        rows_of = {ks: np.flatnonzero(support[:, list(ks)].any(axis=1)
                                      | (jac[:, list(ks)] != 0).any(axis=1)) for ks in bucket}
        owners = np.zeros(jac.shape[0], int)
        for rows in rows_of.values():
            owners[rows] += 1
        every = np.zeros(jac.shape[1], bool)
        every[[c for ks in bucket for c in ks]] = True
        separable = [ks for ks in bucket if rows_of[ks].size and np.all(owners[rows_of[ks]] == 1)
                     and not np.any(support[rows_of[ks]][:, every & ~np.isin(
                         np.arange(jac.shape[1]), ks)])]
        if len(separable) < _MIN_GROUPS:
            continue
        sampled = _sample(p, ref, [[(cols[c][0], cols[c][2], float(d[c])) for c in ks]
                                   for ks in separable], [rows_of[ks] for ks in separable], h)
        if sampled is None:
            continue
        for ks, (grads, mag, inner) in zip(separable, sampled):
            judged = _judge(ks, rows_of[ks], grads, mag, inner, jac, d, h, ref.eps,
                            p.opts.c_round, sigma, tol)
            if judged is not None:
                out[ks] = judged
    return out


def _judge(ks: tuple[int, ...], rows: np.ndarray, grads: np.ndarray, mag: np.ndarray,
           inner: np.ndarray, jac: np.ndarray, d: np.ndarray, h: float, eps: float,
           c_round: float, sigma: np.ndarray | None, tol: np.ndarray | None,
           ) -> list[int] | None:
    """The rows judged inside (the tolerance of ``kinks.joint_kinks``), or None when some
    row is not: the per-group judgement decides that group."""
    judged = []
    for i, r in enumerate(rows.tolist()):
        pts = grads[:, i, :]
        a = jac[r, list(ks)] * d[list(ks)]
        if not np.all(np.isfinite(pts)):
            return None
        if np.count_nonzero(np.any(pts != 0, axis=0) | (a != 0)) < 2:
            continue  # a 1-D kink (or nothing): its own ladder judged it
        noise = 0.0 if sigma is None else C_NOISE * float(sigma[r])
        round_tol = SAFETY * (c_round * eps * (mag[i] + np.abs(a)) + noise) / inner
        spread = 2 * h * np.max(np.abs(pts), axis=0)
        side = np.zeros(len(ks)) if tol is None else np.where(
            np.isfinite(tol[r, list(ks)]), tol[r, list(ks)], 0.0)
        if not in_hull(pts, a, round_tol + spread + side):
            return None
        judged.append(r)
    return judged


def _sample(p: Problem, ref: Ref, groups: list[list[tuple[int, int, float]]],
            rows: list[np.ndarray], h: float,
            ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
    """``kink_samples.piece_gradients`` of every group at once (the groups separable): per
    group, gradients (samples, its rows, k), its rows' magnitudes, its difference step
    per unit of each coordinate's scale. None when a sample point leaves the domain."""
    k = len(groups[0])
    patterns = _patterns(p, ref, k)
    big = [max(s for _, _, s in g) for g in groups]
    inner = h * _INNER * min(1.0 / max(k - 1, 1), 0.5)
    y_ref = np.concatenate([np.asarray(y, np.float64).ravel() for y in ref.ys
                            if y.dtype.kind == "f"])
    mag = np.abs(y_ref)
    moved = np.zeros(y_ref.size, bool)  # rows some sample moves: all must be accounted for
    per: list[list[np.ndarray]] = [[] for _ in groups]

    def at(w: np.ndarray, slot: int | None = None, sign: float = 0.0) -> np.ndarray | None:
        changes = {}
        for g, b in zip(groups, big):
            for i, ((kk, j, _), wc) in enumerate(zip(g, w)):
                v = float(ref.xs[kk].dtype.type(ref.xs[kk].flat[j] + h * wc * b))
                if i == slot:
                    v = float(ref.xs[kk].dtype.type(v + sign * inner * b))
                changes[(kk, j)] = v
        return _outputs(p, ref, changes)
    for w in np.vstack([patterns, _RADIUS2 * patterns]):
        y0 = at(w)
        if y0 is None:
            return None
        plus, minus = [], []
        for i in range(k):
            yp, ym = at(w, i, 1.0), at(w, i, -1.0)
            if yp is None or ym is None:
                return None
            plus.append(yp)
            minus.append(ym)
            np.fmax(mag, np.fmax(np.abs(yp), np.abs(ym)), out=mag)
            moved |= (yp != y_ref) | (ym != y_ref)
        for n, (g, b, rs) in enumerate(zip(groups, big, rows)):
            s = np.array([c[2] for c in g])
            with np.errstate(all="ignore"):
                cen = np.array([(plus[i][rs] - minus[i][rs]) / (2 * inner * b) for i in range(k)])
                fwd = np.array([(plus[i][rs] - y0[rs]) / (inner * b) for i in range(k)])
                bwd = np.array([(y0[rs] - minus[i][rs]) / (inner * b) for i in range(k)])
            per[n].extend([cen.T * s, fwd.T * s, bwd.T * s])
    known = np.zeros(y_ref.size, bool)
    for rs in rows:
        known[rs] = True
    if np.any(moved & ~known):
        return None  # a row that depends on the groups only away from x: not separable
    return [(np.array(gs), mag[rs], steps_per_scale(inner * b, g))
            for gs, g, b, rs in zip(per, groups, big, rows)]
