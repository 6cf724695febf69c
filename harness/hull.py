"""Membership of an analytic gradient in a convex hull of sampled piece gradients, or in a
weighted Minkowski sum of several such hulls: small feasibility LPs (scipy's HiGHS), with
an NNLS double-check where the LP's own tolerances misjudge badly scaled coordinates.

>>> hull_contains(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.5, 0.5]), np.full(2, 1e-9))
True
>>> hull_contains(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.0, 1.0]), np.full(2, 1e-9))
False
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linprog, nnls

__all__ = ["hull_contains", "minkowski_contains", "in_hull", "in_minkowski", "FULL_HULL"]

FULL_HULL = 4    # up to this many inputs: every sign pattern and ordering, whole-hull test


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
    target = np.asarray(target, np.float64)
    if not np.all(np.isfinite(target)):
        return False  # a non-finite gradient (inf from 0 * inf, a NaN) is in no such hull
    # a sample whose differences are not finite is no piece's gradient: left out; a set
    # with none left has nothing to judge against (its output's checks report it)
    sets = [np.asarray(s, np.float64)[np.all(np.isfinite(s), axis=1)] for s in sets]
    if any(len(s) == 0 for s in sets):
        return True
    pts = np.vstack([s * float(w) for s, w in zip(sets, weights)])
    owner = np.concatenate([np.full(len(s), i) for i, s in enumerate(sets)])
    eq = (owner[None, :] == np.arange(len(sets))[:, None]).astype(np.float64)
    m = pts.shape[0]
    floor = np.finfo(np.float64).eps * np.maximum(np.max(np.abs(pts), axis=0), np.abs(target))
    unit = np.maximum(np.asarray(tol, np.float64), np.maximum(floor, 1e-300))
    p, a = pts / unit, target / unit
    a_ub = np.vstack([p.T, -p.T])
    b_ub = np.concatenate([a + 1.0, -(a - 1.0)])
    lp = dict(A_ub=a_ub, b_ub=b_ub, A_eq=eq, b_eq=np.ones(len(sets)), bounds=(0, None))
    # the simplex can cycle for ever on these degenerate problems (many near-equal sample
    # gradients): an iteration limit, then the interior-point method, then NNLS decide
    limit = {"maxiter": 20 * (m + len(b_ub)) + 1000}
    res = linprog(np.zeros(m), **lp, method="highs", options=limit)
    if res.status == 1:
        res = linprog(np.zeros(m), **lp, method="highs-ipm", options=limit)
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
    if hull_contains(points, target, tol):
        return True  # inside the whole hull: inside every projection too (one LP)
    if k <= FULL_HULL:
        return False
    return all(hull_contains(points[:, [i, j]], target[[i, j]], tol[[i, j]])
               for i, j in itertools.combinations(range(k), 2))


def in_minkowski(sets: Sequence[np.ndarray], weights: np.ndarray, target: np.ndarray,
                 tol: np.ndarray, exact: bool) -> bool:
    """``minkowski_contains`` in all coordinates when every set holds all the pieces of its
    output (``exact``), else on every pair of coordinates (a projection: necessary for
    membership and free of the sampling gaps of a high-dimensional hull)."""
    if minkowski_contains(sets, weights, target, tol):
        return True  # inside the whole sum: inside every projection too (one LP)
    if exact:
        return False
    return all(minkowski_contains([s[:, [i, j]] for s in sets], weights, target[[i, j]],
                                  tol[[i, j]])
               for i, j in itertools.combinations(range(len(target)), 2))
