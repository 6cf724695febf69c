"""The first pass's sums over every output or input entry (``probes.FirstPass``), and its
ranges per input entry (:func:`probe_scales`), each in as few passes and temporaries as it
takes: on 1e5 entries a pass costs 15-50 us and a fresh temporary ~200 page faults, more
than the arithmetic of a small check.

>>> import numpy as np
>>> float(dots([np.ones(3)], np.arange(3.0))[0]), product_norm(np.ones(2), np.array([3., 4.]))
(3.0, 5.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from gradverify.harness.lines import finite_abs, norm2, scales

__all__ = ["BLOCK", "ONE_THREAD_DOT", "PROBE_SPREAD", "dot", "dots", "larger_square",
           "probe_scales", "product_norm", "product_squares", "square_walks"]


def dots(rows: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    """``<r, x>`` for each flat array r of ``rows``, in one thread: above
    ``ONE_THREAD_DOT`` entries block by block, every row's block against the same block
    of x while it is in cache (example: the module docstring)."""
    if x.size <= ONE_THREAD_DOT:
        return np.array([float(np.dot(r, x)) for r in rows])
    sums = [0.0] * len(rows)
    for lo, hi in _blocks(x.size):
        part = x[lo:hi]
        for j, r in enumerate(rows):
            sums[j] += float(np.dot(r[lo:hi], part))
    return np.array(sums)


def _blocks(n: int) -> Iterator[tuple[int, int]]:
    """``(lo, hi)`` of the consecutive blocks of ``ONE_THREAD_DOT`` entries covering n."""
    return ((lo, min(lo + ONE_THREAD_DOT, n)) for lo in range(0, n, ONE_THREAD_DOT))


# Up to this many entries (or rows times entries) BLAS's dot and matrix-vector product
# run in one thread (OpenBLAS splits a dot above 10 000: 38 us of CPU on 2e4 entries
# against 1.2 us on 1e4), and a call costs a third of einsum's (~0.5 us against 1.6 us):
# a small check makes a dozen of these sums per direction. Longer sums are taken in
# blocks of this size, each one BLAS call in one thread: 23 us of CPU on 1e5 entries
# against 26 us for einsum, and 47 us against 66 us for two rows against one array.
ONE_THREAD_DOT = 8192


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``<a, b>`` of two flat arrays, in one thread (:func:`dots`).

    >>> dot(np.arange(3.0), np.ones(3))
    3.0
    """
    if a.size <= ONE_THREAD_DOT:
        return float(np.dot(a, b))
    return float(dots([a], b)[0])


def product_squares(rows: Sequence[np.ndarray], s: np.ndarray) -> np.ndarray:
    """``||r s||^2`` for each flat array r of ``rows``, block by block: each product is
    made in cache and summed there (no product array of the full size).

    >>> product_squares([np.array([1.0, 2.0])], np.array([3.0, 1.0]))
    array([13.])
    """
    tmp = np.empty(min(s.size, ONE_THREAD_DOT))
    sums = [0.0] * len(rows)
    for lo, hi in _blocks(s.size):
        t, part = tmp[:hi - lo], s[lo:hi]
        for j, r in enumerate(rows):
            np.multiply(r[lo:hi], part, out=t)
            sums[j] += float(np.dot(t, t))
    return np.array(sums)


def square_walks(squares: Sequence[np.ndarray], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``<w, max(a^2, b^2)>`` for each flat array w of ``squares``, block by block: the
    larger squares of a block are made in cache and summed against every w there (one
    pass over a and b instead of :func:`larger_square`'s array and a pass per w).

    >>> square_walks([np.ones(2)], np.array([1.0, -3.0]), np.array([2.0, 1.0]))
    array([13.])
    """
    one, two = np.empty(min(a.size, ONE_THREAD_DOT)), np.empty(min(a.size, ONE_THREAD_DOT))
    sums = [0.0] * len(squares)
    for lo, hi in _blocks(a.size):
        t, u = one[:hi - lo], two[:hi - lo]
        np.multiply(a[lo:hi], a[lo:hi], out=t)
        np.maximum(t, np.multiply(b[lo:hi], b[lo:hi], out=u), out=t)
        for j, w in enumerate(squares):
            sums[j] += float(np.dot(w[lo:hi], t))
    return np.array(sums)


# Entries per block of a blockwise temporary: 64 KB, below glibc's mmap threshold, so the
# block is recycled by malloc instead of page-faulting like a fresh array of 1e5 entries.
BLOCK = 8192


def larger_square(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """max(a^2, b^2) into ``out`` (which may be neither a nor b), b^2 block by block."""
    np.multiply(a, a, out=out)
    if out.size <= BLOCK:  # one block: no slices
        return np.maximum(out, np.multiply(b, b), out=out)
    tmp = np.empty(min(out.size, BLOCK))
    for lo in range(0, out.size, BLOCK):
        part = tmp[:min(BLOCK, out.size - lo)]
        np.multiply(b[lo:lo + part.size], b[lo:lo + part.size], out=part)
        np.maximum(out[lo:lo + part.size], part, out=out[lo:lo + part.size])
    return out


# Above this, a sum of squares lost nothing that matters to underflow (each square below
# the smallest subnormal, 5e-324, is dropped: far below 1e-280 for any array size)
_UNDERFLOW_SAFE = 1e-280


def product_norm(v: np.ndarray, t: np.ndarray) -> float:
    """``||v * t||`` over the entries where ``t`` is finite: ``norm2(v * finite_abs(t))``
    as :func:`product_squares` (block by block, no product array) when nothing overflows
    or underflows; otherwise exactly that.

    >>> product_norm(np.array([3.0, 1.0]), np.array([1.0, np.inf]))
    3.0
    """
    total = float(product_squares([v], t)[0])
    if math.isfinite(total) and total > _UNDERFLOW_SAFE:
        return math.sqrt(total)
    return norm2(v * finite_abs(t))


PROBE_SPREAD = 16.0  # a probe's range at an entry: at most this many times |x|


def probe_scales(xs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Fast mode's range per element: :func:`~gradverify.harness.lines.scales` raised
    toward the input's RMS, but at most ``PROBE_SPREAD`` times ``|x|``.

    Why: a probe weighs an entry's gradient by its range, so with ranges ``|x|`` a fault
    on an entry near 0 (a logit of 0.008 beside logits of 1) weighs next to nothing. The
    cap keeps the relative step below ``PROBE_SPREAD * h`` (2e-4 in float64, 8e-4 on the
    coarsest rung of probe_rungs.py): a step never crosses 0 (where relu, abs and log
    change), and the truncation of functions whose scale is |x| itself (log, 1/x) grows
    by at most ``PROBE_SPREAD ** 2`` (those directions are decided on the coarser rungs).

    >>> [round(float(s), 3) for s in probe_scales([np.array([0.01, 1.0, -2.0, 0.0])])[0]]
    [0.16, 1.291, 2.0, 1.291]
    """
    out = []
    for s in scales(xs):
        if not (isinstance(s, np.ndarray) and s.ndim and s.size):
            out.append(s)  # (a 0-d input's scale, or an empty input: nothing to raise)
            continue
        top = float(s.max())
        if 1e-150 < top < 1e150:  # no square overflows, none that matters underflows
            rms = math.sqrt(dot(s.ravel(), s.ravel()) / s.size)
        else:
            rms = top * math.sqrt(float(np.mean((s / top) ** 2))) if np.isfinite(top) else top
        # min(16 s, max(s, rms)) in place (s is scales' own array), 16 s block by block
        flat = s.reshape(-1)
        tmp = np.empty(min(flat.size, BLOCK))
        for lo in range(0, flat.size, BLOCK):
            part = flat[lo:lo + BLOCK]
            wide = np.multiply(part, PROBE_SPREAD, out=tmp[:part.size])
            np.minimum(np.maximum(part, rms, out=part), wide, out=part)
        out.append(s)
    return out
