"""Fast mode's stopping rule: how many first-pass directions bound the miss of a fault of
``detect_rtol`` by :data:`MISS_BOUND`. The bound is derived in ``probes.py``'s docstring
(Ball's cube slicing per direction, independent directions multiply, the draws' 2^-32
grid adds :func:`atom_miss` per direction); here are its pieces, and :class:`Outcome`,
one probe's first-pass comparison they read.

>>> enough_directions([1e-10, 1e-10], 1e-6, atom_miss(10 ** 5))
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gradverify.harness.lines import RAW_UNIT
from gradverify.harness.report import INCONCLUSIVE, PASS, Entry

__all__ = ["MISS_BOUND", "Outcome", "atom_miss", "direction_rtol", "enough_directions",
           "bound_short"]


@dataclass
class Outcome:
    """One probe's first-pass comparison."""

    cotangent: int
    analytic: float
    numeric: float
    tolerance: float
    passed: bool

    def entry(self, input: int, h: float) -> Entry:
        """The probe as a report entry (of a passed probe: no bound of its own)."""
        return Entry(input=input, input_name="probe", index=None, analytic=self.analytic,
                     numeric=self.numeric, bound=0.0, tolerance=self.tolerance, step=h,
                     verdict=PASS if self.passed else INCONCLUSIVE)



# A fault c times above a direction's tolerance escapes it with probability <= 1/c; the
# fixed count of 4 directions bounds a miss below this at c >= 32 (probes.py's docstring).
MISS_BOUND = 1e-6
_SQRT2 = math.sqrt(2.0)


def direction_rtol(outcomes: Sequence[Outcome] | None,
                   spread: Sequence[float] | np.ndarray) -> float:
    """The relative error one direction resolved for the miss bound: its worst cotangent's
    ``sqrt(2) tolerance / ||g_j s||`` (``spread[j] = ||g_j s||``, g_j the cotangent's VJP,
    s the directions' half-widths; a fault may show in one cotangent only); inf unless
    every probe passed (an undecided direction counts for nothing in
    :func:`enough_directions`). A fault with ``||e_j s|| = c sqrt(2) tolerance`` hides with
    probability at most ``1 / c`` (Ball's bound, probes.py's docstring), whatever the analytic
    value drawn.

    >>> direction_rtol([Outcome(0, 2.0, 2.0, 1e-9, True)], [2.0 ** 0.5])
    1e-09
    """
    if outcomes is None or not all(o.passed for o in outcomes):
        return float("inf")
    return max(_SQRT2 * o.tolerance / spread[o.cotangent] if spread[o.cotangent] > 0
               else float("inf") for o in outcomes)


def atom_miss(entries: int) -> float:
    """What the 2^-32 grid of the directions' draws (``lines.uniform``) adds to one
    direction's miss probability over ``entries`` input entries: ``sqrt(2) 2^-32
    sqrt(entries)`` (probes.py's docstring: Atoms).

    >>> f"{atom_miss(10 ** 5):.2g}"
    '1e-07'
    """
    return _SQRT2 * RAW_UNIT * math.sqrt(entries)


def enough_directions(resolved: Sequence[float], detect_rtol: float,
                      atoms: float = 0.0) -> bool:
    """Whether the directions made so far, which resolved the relative errors ``resolved``
    (per direction, its worst cotangent: a fault may show in one only), bound the miss of
    a fault of relative size ``detect_rtol`` by :data:`MISS_BOUND`: such a fault is
    ``c_k = detect_rtol / r_k`` times above direction k's tolerance and escapes all of them
    with probability at most ``prod (1 / c_k + atoms)`` (``atoms``: :func:`atom_miss` of
    the directions' entries). At least two directions: one direction is one draw.

    >>> enough_directions([1e-10, 1e-10], 1e-6), enough_directions([1e-8, 1e-8], 1e-6)
    (True, False)
    """
    if len(resolved) < 2 or not all(0 < r < detect_rtol for r in resolved):
        return False
    return math.prod([r / detect_rtol + atoms for r in resolved]) <= MISS_BOUND


def bound_short(plain_dirs: list[float], detect_rtol: float, atoms: float = 0.0) -> bool:
    """Every direction so far passed its first pass (a smooth check), each resolving
    below ``detect_rtol``, yet together they do not bound the miss of a fault of that size
    by MISS_BOUND (the scalar softmax loss: 4 directions of 3.6e-8 leave 1.7e-6): one more
    direction. (A check whose probes met kinks or noise is left at ``probes``: its
    undecided directions count for nothing in the bound, and each costs the full
    machinery.)

    >>> bound_short([3.6e-8] * 4, 1e-6), bound_short([3.6e-8] * 5, 1e-6)
    (True, False)
    """
    return (bool(plain_dirs) and all(math.isfinite(r) for r in plain_dirs)
            and not enough_directions(plain_dirs, detect_rtol, atoms))
