"""Full mode's first pass: both Jacobians as arrays, judged only where they are non-zero.

Two forward evaluations per input element give the central difference of every output at
once. The Jacobians of big checks are mostly structural zeros (an output of ``a @ b``
depends on one row of ``a``): an entry whose analytic and numeric values are both exactly
zero agrees exactly and needs no judgement, so only the non-zero entries are judged, in
compressed 1-D form (``Judged``, ``SparseJacobian``); the dense Jacobians are built only
when a report, a diagnosis or a plot asks for them (``Jacobians``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradverify.harness.budget import (
    DECISIVE_SHARE,
    SHARPEN_RTOL,
    central_tolerance,
    ladder_top,
    measured_rounding,
)
from gradverify.harness.calls import Problem
from gradverify.harness.lines import Ref
from gradverify.harness.report import FAIL, PASS, Check

__all__ = ["Judged", "Jacobians", "SparseJacobian", "first_pass", "coarse_pass",
           "entry_tolerance", "transposed_blocks", "PASS_CODE",
           "INC_CODE", "FAIL_CODE", "NA_CODE", "UNDECIDED", "JOINT"]

# Verdict codes of judged entries (int8 arrays, not object arrays).
PASS_CODE, INC_CODE, FAIL_CODE, NA_CODE, UNDECIDED, JOINT = 0, 1, 2, -1, 3, 4
_BLOCK = 1 << 21  # Jacobian entries evaluated and judged at once (three buffers of 16 MB)


@dataclass
class Judged:
    """The judged entries of an (m, n) Jacobian, in compressed form (row-major order).

    row, col: positions; tol: tolerance per unit of the relative step (``safety ×
    budget``); code: verdict code; numeric, analytic: the two derivatives; kind: 0
    smooth, 1 kink, 2 jump. Every other entry is an exact zero on both sides: PASS.
    """

    row: np.ndarray
    col: np.ndarray
    tol: np.ndarray
    code: np.ndarray
    numeric: np.ndarray   # d f / d x
    analytic: np.ndarray
    kind: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.kind is None:
            self.kind = np.zeros(self.row.size, np.int8)

    def dense_numeric(self, shape: tuple[int, int]) -> np.ndarray:
        """The numeric Jacobian as a dense array (zero wherever nothing was judged)."""
        out = np.zeros(shape)
        out[self.row, self.col] = self.numeric
        return out


@dataclass
class SparseJacobian:
    """An (m, n) Jacobian as its non-zero entries (NaN included), sorted by column.

    >>> j = SparseJacobian.from_dense(np.array([[0.0, 2.0], [3.0, 0.0]]))
    >>> j.column(1).tolist(), j.dense().tolist()
    ([2.0, 0.0], [[0.0, 2.0], [3.0, 0.0]])
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]
    _tops: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        order = np.argsort(self.cols, kind="stable")
        self.rows, self.cols, self.values = (self.rows[order], self.cols[order],
                                             self.values[order])

    @classmethod
    def from_dense(cls, jac: np.ndarray) -> SparseJacobian:
        rows, cols = np.nonzero(jac)
        return cls(rows, cols, jac[rows, cols], jac.shape)

    def span(self, start: int, stop: int) -> slice:
        """The entries of columns start..stop-1."""
        lo, hi = np.searchsorted(self.cols, [start, stop])
        return slice(int(lo), int(hi))

    def row_terms(self, rows: np.ndarray, d: np.ndarray, skip: int) -> np.ndarray:
        """Per row of ``rows``, the largest term ``|J_rj d_j|`` over the columns j other
        than ``skip`` (finite ones; d: the check's step scales, the same at every call):
        the least size of the intermediates that output is computed from, which its
        rounding follows (a mean of [1, 2e-16, -1] is 7e-17 but rounds like 1/3). Its own
        column is left out, so that a wrong entry cannot make room for itself. Found once
        per Jacobian, for all rows.

        >>> j = SparseJacobian.from_dense(np.array([[1.0, 2.0, -1.0], [0.0, 4.0, 0.0]]))
        >>> j.row_terms(np.array([0, 1]), np.ones(3), skip=1).tolist()
        [1.0, 0.0]
        """
        if self._tops is None:
            with np.errstate(invalid="ignore", over="ignore"):
                size = np.abs(self.values) * d[self.cols]
            size = np.where(np.isfinite(size), size, 0.0)
            top = np.zeros(self.shape[0])
            np.maximum.at(top, self.rows, size)
            at_top = size == top[self.rows]  # (a row's zero terms are no one's largest)
            arg = np.full(self.shape[0], -1)
            arg[self.rows[at_top]] = self.cols[at_top]  # a column holding the largest
            second = np.zeros(self.shape[0])
            np.maximum.at(second, self.rows, np.where(self.cols != arg[self.rows], size, 0.0))
            self._tops = (top, arg, second)
        top, arg, second = self._tops
        return np.where(arg[rows] == skip, second[rows], top[rows])

    def column(self, c: int) -> np.ndarray:
        out = np.zeros(self.shape[0])
        s = self.span(c, c + 1)
        out[self.rows[s]] = self.values[s]
        return out

    def dense(self) -> np.ndarray:
        out = np.zeros(self.shape)
        out[self.rows, self.cols] = self.values
        return out


class Jacobians(MutableMapping):
    """``Check.arrays`` of a full check: the analytic and numeric Jacobians, each an array
    or a function building it, called only when asked for (a big Jacobian is mostly exact
    zeros: dense, it is hundreds of megabytes to touch).

    >>> j = Jacobians(np.eye(2), lambda: np.eye(2) * 2)
    >>> sorted(j), float(j["numeric"][1, 1])
    (['analytic', 'numeric'], 2.0)
    """

    def __init__(self, analytic: np.ndarray | Callable[[], np.ndarray],
                 numeric: np.ndarray | Callable[[], np.ndarray]):
        self._data: dict[str, Any] = {"analytic": analytic, "numeric": numeric}

    def __getitem__(self, key: str) -> np.ndarray:
        value = self._data[key]
        if callable(value):
            value = self._data[key] = value()
        return value

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __contains__(self, key: object) -> bool:  # without building anything
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class Point:
    """What the first pass needs about x, flattened over the differentiable inputs."""

    d: np.ndarray          # relative step scale per column
    xabs: np.ndarray       # |x| per column
    res: np.ndarray        # the VJP's measured non-linearity per column
    y0: np.ndarray         # outputs at x per row
    sigma: np.ndarray      # measured output noise per row
    scale: float           # natural size of derivatives (largest |J| d)


def entry_tolerance(p: Problem, ref: Ref, pt: Point, h: float, rows: np.ndarray,
                    cols: np.ndarray, analytic: np.ndarray, mag: np.ndarray) -> np.ndarray:
    """The first pass's tolerance (``budget.central_tolerance``) of entries (rows, cols),
    per unit of the relative step; ``mag``: the outputs' magnitudes at x ± h d."""
    slope = np.abs(analytic * pt.d[cols])
    slope[np.isinf(slope)] = 0.0
    return central_tolerance(mag, slope, pt.xabs[cols] / pt.d[cols], pt.sigma[rows],
                             pt.res[cols] * pt.d[cols], ref.eps, h, p.opts.c_round,
                             p.opts.safety)


def _writer(shapes: list[tuple], m: int) -> Callable[[list[np.ndarray], np.ndarray], bool]:
    """A function writing a forward's float outputs into one row of a buffer; False when
    the outputs' shapes or dtypes differ from those at x."""
    spans, off = [], 0
    for k, (shape, dtype) in enumerate(shapes):
        if dtype.kind == "f":
            size = int(np.prod(shape, dtype=np.int64))
            spans.append((k, off, off + size))
            off += size

    def write(ys: list[np.ndarray], row: np.ndarray) -> bool:
        if len(ys) != len(shapes) or any(
                (y.shape, y.dtype) != s for y, s in zip(ys, shapes)):
            return False
        for k, a, b in spans:
            row[a:b] = ys[k].reshape(-1)
        return True
    return write


def first_pass(p: Problem, ref: Ref, cols: list[tuple[int, int, int]], jac: SparseJacobian,
               pt: Point, h: float, shapes: list[tuple], stable: Check) -> Judged:
    """Central differences for every column (2 evaluations each) and the judgement of every
    entry where the analytic (``jac``) or the numeric value is not exactly zero: decided
    (PASS) when it agrees within the round-off budget
    and that budget resolves ``inconclusive_rtol``; otherwise UNDECIDED (the step ladder
    decides). Every entry left out is numerically exactly zero too."""
    m, n = jac.shape
    write = _writer(shapes, m)
    width = max(1, min(n, _BLOCK // max(m, 1)))
    fp, fm, diff = (np.empty((width, m)) for _ in range(3))
    mask = np.empty((width, m), bool)
    abuf = np.zeros((width, m))
    parts: list[tuple[np.ndarray, ...]] = []
    rtol, y0abs = p.opts.inconclusive_rtol, np.abs(pt.y0)
    for start in range(0, n, width):
        stop = min(n, start + width)
        w = stop - start
        for c in range(start, stop):
            kk, _, j = cols[c]
            x = ref.xs[kk]
            for sign, store in ((1.0, fp), (-1.0, fm)):
                moved = x.copy()
                moved.flat[j] = moved.flat[j] + sign * h * pt.d[c]
                xs = list(ref.xs)
                xs[kk] = moved
                if not write(p.forward(xs, ref.forward), store[c - start]):
                    if stable.verdict == PASS:
                        stable.verdict = FAIL
                        stable.reason = ("output shape/dtype changes under perturbation: "
                                         f"{shapes} at x, different at x + "
                                         f"{sign * h:.3g} d")
                    store[c - start] = np.nan
        fpb, fmb, num, nz = fp[:w], fm[:w], diff[:w], mask[:w]
        db = pt.d[start:stop]
        np.subtract(fpb, fmb, out=num)
        num /= (2 * h) * db[:, None]                 # d f / d x, one row per column
        np.not_equal(num, 0, out=nz)                 # NaN counts: it must be judged
        ab = abuf[:w]
        ab[...] = 0.0
        s = jac.span(start, stop)
        ab[jac.cols[s] - start, jac.rows[s]] = jac.values[s]
        nz[jac.cols[s] - start, jac.rows[s]] = True
        cl, r = np.divmod(np.flatnonzero(nz), m)
        c = cl + start
        a = ab[cl, r]
        mag = np.maximum(np.abs(fpb[cl, r]), np.abs(fmb[cl, r]))
        np.maximum(mag, y0abs[r], out=mag)
        t = entry_tolerance(p, ref, pt, h, r, c, a, mag)
        dc = pt.d[c]
        nx = num[cl, r]
        ana, nv = a * dc, nx * dc                    # per unit of the relative step
        natural = np.maximum(np.abs(ana), np.abs(nv))
        np.maximum(natural, pt.scale, out=natural)
        decided = (np.abs(nv - ana) <= DECISIVE_SHARE * t) & (t <= rtol * natural)
        decided |= (ana == 0) & (nv == 0)
        code = np.where(decided, PASS_CODE, UNDECIDED).astype(np.int8)
        parts.append((r, c, t, code, nx, a))
    if not parts:
        return Judged(*(np.zeros(0, dt) for dt in (np.int64, np.int64, float, np.int8,
                                                   float, float)))
    return Judged(*(np.concatenate(z) for z in zip(*parts)))


def coarse_pass(p: Problem, ref: Ref, cols: list[tuple[int, int, int]], pt: Point,
                h: float, shapes: list[tuple], jd: Judged) -> int:
    """Sharpen, in place, the entries the first pass decided without resolving
    ``SHARPEN_RTOL`` relative (``DECISIVE_SHARE`` of the tolerance against
    max(|analytic|, |numeric|, scale)); returns how many were looked at.

    A scalar loss over many inputs is the typical case: each entry moves the loss by a
    tiny amount, below the loss's own rounding at the step h. Richardson extrapolation over
    the coarser steps ``H, 4H, 16H`` (16H = :func:`~gradverify.harness.budget.ladder_top`)
    resolves it: value ``(16 D(H) - D(4H)) / 15``, truncation the spread to the next
    Richardson value ``(16 D(4H) - D(16H)) / 15``, round-off that of a central difference
    at H with the outputs' rounding as measured (``budget.measured_rounding``). 6 forward
    evaluations per column, vectorised over the column's entries. An entry that agrees
    within that tolerance is decided (PASS) with it; one that does not is UNDECIDED (the
    ladder decides, on the a-priori model); one the coarse steps do not resolve better
    keeps the first pass's decision. Nothing is FAILed here, so a measured noise level that
    reads low can cost ladder work, never a false FAIL.
    """
    top = ladder_top(ref.eps, h)
    if top < 64 * h:  # no coarser rungs (float32's h is coarse already)
        return 0
    dc = pt.d[jd.col]
    with np.errstate(all="ignore"):
        ana, nv = jd.analytic * dc, jd.numeric * dc
        natural = np.maximum(np.maximum(np.abs(ana), np.abs(nv)), pt.scale)
        want = ((jd.code == PASS_CODE) & ~((ana == 0) & (nv == 0))
                & (DECISIVE_SHARE * jd.tol > SHARPEN_RTOL * natural))
    sel = np.flatnonzero(want)
    if not sel.size:
        return 0
    m = pt.y0.size
    write = _writer(shapes, m)
    steps = (top / 16, top / 4, top)
    sel = sel[np.argsort(jd.col[sel], kind="stable")]
    columns, firsts = np.unique(jd.col[sel], return_index=True)
    width = max(1, min(columns.size, _BLOCK // max(6 * m, 1)))
    vals = np.empty((len(steps), 2, width, m))
    groups = np.split(sel, firsts[1:])
    rtol, c_round = p.opts.inconclusive_rtol, p.opts.c_round
    for start in range(0, columns.size, width):
        block = columns[start:start + width]
        for ci, c in enumerate(block):
            kk, _, j = cols[c]
            x = ref.xs[kk]
            for si, step_ in enumerate(steps):
                for sg, sign in enumerate((1.0, -1.0)):
                    moved = x.copy()
                    moved.flat[j] = moved.flat[j] + sign * step_ * pt.d[c]
                    xs = list(ref.xs)
                    xs[kk] = moved
                    if not write(p.forward(xs, ref.forward), vals[si, sg, ci]):
                        vals[si, sg, ci] = np.nan
        q = np.concatenate(groups[start:start + block.size])
        ci = np.searchsorted(block, jd.col[q])
        r = jd.row[q]
        with np.errstate(all="ignore"):
            d0, d1, d2 = ((vals[k, 0, ci, r] - vals[k, 1, ci, r]) / (2 * steps[k])
                          for k in range(3))
            value = (16 * d0 - d1) / 15
            spread = np.abs(value - (16 * d1 - d2) / 15)
            mag = np.max(np.abs(vals[:, :, ci, r]), axis=(0, 1))
            np.maximum(mag, np.abs(pt.y0[r]), out=mag)
            # the outputs' rounding as measured (the budget's output_roundoff term takes
            # mag in units of c_round ulps); safe here since nothing is FAILed on it
            mag = measured_rounding(pt.sigma[r], mag, ref.eps, c_round) / (c_round * ref.eps)
            # (16 D(H) - D(4H)) / 15 amplifies a per-point error e into (16 + 1/4) e / 15 H
            t2 = (entry_tolerance(p, ref, pt, steps[0], r, jd.col[q], jd.analytic[q], mag)
                  * (16.25 / 15) + p.opts.safety * spread)
            a = ana[q]
            better = np.isfinite(t2) & (t2 < jd.tol[q])
            agree = (np.abs(value - a) <= t2) & (t2 <= rtol * natural[q])
        upd = q[better & agree]
        jd.tol[upd] = t2[better & agree]
        jd.numeric[upd] = value[better & agree] / pt.d[jd.col[upd]]
        jd.code[q[better & ~agree]] = UNDECIDED
    return int(sel.size)


def transposed_blocks(jac: SparseJacobian, jd: Judged, blocks: list[tuple[int, int]],
                      shapes: list[tuple[int, ...]]) -> list[int]:
    """``diagnosis.transposed_inputs`` on the compressed Jacobians: square 2-D inputs whose
    analytic columns equal the numeric ones of the transposed positions. The same test
    without the dense (m, n) arrays (hundreds of megabytes for matmul 64x64 on a FAIL).

    >>> a = SparseJacobian.from_dense(np.array([[1.0, 2.0, 3.0, 4.0]]))
    >>> num = Judged(np.zeros(4, int), np.arange(4), np.ones(4), np.zeros(4, np.int8),
    ...              np.array([1.0, 3.0, 2.0, 4.0]), np.zeros(4))
    >>> transposed_blocks(a, num, [(0, 0)], [(2, 2)])
    [0]
    """
    out = []
    for k, off in blocks:
        shape = shapes[k]
        if len(shape) != 2 or shape[0] != shape[1] or shape[0] < 2:
            continue
        s, size = shape[0], shape[0] * shape[1]
        span = jac.span(off, off + size)
        a_key = jac.rows[span].astype(np.int64) * size + (jac.cols[span] - off)
        inside = (jd.col >= off) & (jd.col < off + size)
        n_col = jd.col[inside] - off
        n_row, n_val = jd.row[inside].astype(np.int64), jd.numeric[inside]
        scale = max(float(np.max(np.abs(n_val), initial=0.0)), 1e-300)
        n_t = (n_col % s) * s + n_col // s  # the numeric column read at the transposed spot
        off_now = _max_gap(a_key, jac.values[span], n_row * size + n_col, n_val)
        off_t = _max_gap(a_key, jac.values[span], n_row * size + n_t, n_val)
        if off_now > 1e-6 * scale and off_t <= 1e-6 * scale:
            out.append(k)
    return out


def _max_gap(a_key: np.ndarray, a: np.ndarray, n_key: np.ndarray, n: np.ndarray) -> float:
    """max |A - N| over the union of two sparse arrays given as (keys, values)."""
    keys = np.concatenate([a_key, n_key])
    if not keys.size:
        return 0.0
    vals = np.concatenate([a, -n])
    order = np.argsort(keys, kind="stable")
    keys, vals = keys[order], vals[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    with np.errstate(invalid="ignore"):
        gap = np.abs(np.add.reduceat(vals, starts))
    return float(np.max(gap))
