"""Fast mode's stopping rule: how many first-pass directions bound the miss of a fault of
``detect_rtol`` by :data:`MISS_BOUND`: the bound's pieces, and :class:`Outcome`, one
probe's first-pass comparison they read. The derivation, for the probes of ``probes.py``:

Miss probabilities. A faulty gradient ``G != J`` shows in probe (j, k) as ``<e_j, u_k>``
with ``e_j = (G - J)^T v_j``. For a fixed nonzero e_j this is a continuous random variable
of u_k, ``sum_i 2 e_j,i s_i U_i`` (U_i uniform on [-1/2, 1/2]; s_i the entry's range),
whose density is at most ``1 / (sqrt(2) ||e_j s||)`` (Ball's cube slicing theorem: no
central section of the unit cube exceeds sqrt(2), attained by two equal entries; a sum
of many is Gaussian, peak 1.38 instead of 1.41), so
``P(|<e_j, u_k>| <= T) <= sqrt(2) T / ||e_j s||``: the probability that a fault hides
below a tolerance T by the probe signs (entries with opposite signs cancelling) shrinks
with the fault's size over T, for any number of entries involved (T: the larger of the
first pass's tolerance, which flags the probe, and the step ladder's, which then decides).
The K directions are independent, so a fault c times above the tolerance escapes all of
them with probability at most ``c^-K`` (K = 4 directions: below 1e-6 for c >= 32).
Fewer directions when the probes resolve far below ``detect_rtol`` (``fast.py`` asks
:func:`enough_directions` before each new one). A fault's relative size is
``||e_j s|| / ||g_j s||`` (g_j the cotangent's VJP: a gradient off by r on every entry
has size r); direction k resolved ``r_k = sqrt(2) T_k / ||g_j s||`` (its worst
cotangent, :func:`direction_rtol`; relative to the gradient, not to the analytic value
drawn, which may happen to be ~0), so a fault of relative size ``detect_rtol`` is
``c_k = detect_rtol / r_k`` times above the tolerance's reach, and the directions stop,
at two or more, once ``prod 1 / c_k`` is at most the same 1e-6 (two directions for
c_k >= 1e3, three for c_k >= 100). Only directions whose probes all passed count; the
bound is for faults of ``detect_rtol`` and above (smaller ones, still above the
tolerance, get fewer chances).

Atoms. The draws are not continuous: ``U_i = W_i - R_i`` with ``W_i`` uniform on
[-1/2, 1/2) and ``R_i`` in [0, 2^-32) (adding an independent uniform ``R_i`` on the grid's
cell to the grid's value gives back the continuous uniform). So ``|<e, s U> - <e, s W>|
<= 2^-32 sum |e_i s_i| <= 2^-32 sqrt(n) ||e s||`` (Cauchy-Schwarz over the n entries),
and ``P(|<e, s U>| <= T) <= P(|<e, s W>| <= T + 2^-32 sqrt(n) ||e s||) <= 1 / c +
sqrt(2) 2^-32 sqrt(n)``: each direction's escape gains ``atom_miss(n)`` (1e-7 at n = 1e5,
3e-6 at 1e8), added to each factor of the product (:func:`enough_directions`). At the
fixed 4 directions, a fault 32 times above the tolerance escapes with probability at
most ``(1/32 + atom_miss(n))^4``, below 1e-6 up to n ~ 1e12 entries.
The moved points round too: a probe compares both sides along the steps as taken
(``FirstPass.central``), ``h u + rho`` with ``|rho_i| <= eps |x_i| <= eps s_i`` (eps of
the input's dtype), so the direction seen is ``u + delta`` with ``|delta_i| <= (eps / h)
s_i``; the same shift adds ``sqrt(2) (eps / h) sqrt(n)`` (the ``jitter`` of
:func:`atom_miss`: 2e-8 at n = 1e5 in float64, 1e-2 for float32 inputs).

Cotangents sharing a direction are not independent of each other in u (a fault on one
entry hides from all cotangents when that entry's u is small), so the bound counts
directions, not probes; the second cotangent still guards against a fault that vanishes
for one v (``e_j = 0``).

>>> enough_directions([1e-10, 1e-10], 1e-6, atom_miss(10 ** 5))
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gradverify.harness.lines import RAW_UNIT
from gradverify.harness.probe_sums import PROBE_SPREAD
from gradverify.harness.report import INCONCLUSIVE, PASS, Entry

if TYPE_CHECKING:
    from gradverify.harness.probes import FirstPass

__all__ = ["MISS_BOUND", "WIDEN", "Outcome", "atom_miss", "direction_rtol",
           "enough_directions", "bound_short", "widened"]


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
# fixed count of 4 directions bounds a miss below this at c >= 32 (the module docstring).
MISS_BOUND = 1e-6
_SQRT2 = math.sqrt(2.0)


def direction_rtol(outcomes: Sequence[Outcome] | None,
                   spread: Sequence[float] | np.ndarray) -> float:
    """The relative error one direction resolved for the miss bound: its worst cotangent's
    ``sqrt(2) tolerance / ||g_j s||`` (``spread[j] = ||g_j s||``, g_j the cotangent's VJP,
    s the directions' half-widths; a fault may show in one cotangent only); inf unless
    every probe passed (an undecided direction counts for nothing in
    :func:`enough_directions`). A fault with ``||e_j s|| = c sqrt(2) tolerance`` hides with
    probability at most ``1 / c`` (Ball's bound, the module docstring), whatever the analytic
    value drawn.

    >>> direction_rtol([Outcome(0, 2.0, 2.0, 1e-9, True)], [2.0 ** 0.5])
    1e-09
    """
    if outcomes is None or not all(o.passed for o in outcomes):
        return float("inf")
    return max(_SQRT2 * o.tolerance / spread[o.cotangent] if spread[o.cotangent] > 0
               else float("inf") for o in outcomes)


def atom_miss(entries: int, jitter: float = 0.0) -> float:
    """What the 2^-32 grid of the directions' draws (``lines.uniform``) and the moved
    points' rounding (relative ``jitter`` of an entry's range) add to one direction's miss
    probability over ``entries`` input entries: ``sqrt(2) (2^-32 + jitter)
    sqrt(entries)`` (the module docstring: Atoms).

    >>> f"{atom_miss(10 ** 5):.2g}", f"{atom_miss(10 ** 5, 2.0 ** -52 / 6e-6):.2g}"
    ('1e-07', '1.2e-07')
    """
    return _SQRT2 * (RAW_UNIT + jitter) * math.sqrt(entries)


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


WIDEN = 4.0  # a later direction's steps, in units of h, where the resolution falls short
# the widened coarsest rung (4 WIDEN h, probe_rungs.py) moves an entry by at most this
# much of its |x| (probe_sums.PROBE_SPREAD): far from crossing 0 or a scale like |x|
_WIDEST_MOVE = 1.0 / 64


def widened(first: FirstPass, resolved: float, detect_rtol: float) -> float:
    """The next direction's steps in units of the first pass's ``h`` (``first.scale``),
    after a direction at ``first.scale`` decided at its first look (no coarser rungs) that
    resolved ``resolved``, ``r = resolved first.scale`` at ``h`` (the round-off shrinks as
    the steps grow): :data:`WIDEN` when two directions resolving r would not bound the miss
    of a ``detect_rtol`` fault and r is at least ``WIDEN^3 h^2`` (a quarter of the round-off
    still stands above the truncation of a function of unit scale at 4 h), else 1; 1 too
    where the coarsest rung would move an entry by more than 1/64 of its ``|x|`` (ranges
    are at most ``PROBE_SPREAD |x|``).

    Why: the first pass's tolerance is the outputs' round-off over the step. Where that is
    large beside the derivative (a scalar loss: one output's rounding against a sum over
    every entry), a fault on an entry with a small gradient or a small ``|x|`` hides below
    it; 4 times the step resolves 4 times finer (the mean softmax loss 128x10: 1.9e-8 ->
    4.7e-9, and 8 forward evaluations instead of 10). The truncation grows 16-fold, so the
    caller widens only after a direction that agreed at ``h``, and for good at the first
    widened direction that does not (its coarser rungs decide it, 4 evaluations). The
    miss bound holds as before, with each direction's own tolerance
    (``direction_rtol``). float32 steps (``h`` ~ 7e-3) are never widened.

    >>> from types import SimpleNamespace as At
    >>> f64, f32 = At(scale=1.0, h=9.1e-6, atoms=0.0), At(scale=1.0, h=7.4e-3, atoms=0.0)
    >>> widened(f64, 1.9e-8, 1e-6), widened(f64, 6e-10, 1e-6), widened(f32, 1.9e-8, 1e-6)
    (4.0, 1.0, 1.0)
    >>> widened(At(scale=4.0, h=9.1e-6, atoms=0.0), 4.8e-9, 1e-6)  # 1.9e-8 at h
    4.0
    """
    r, h = resolved * first.scale, first.h
    if (not math.isfinite(r) or r < WIDEN ** 3 * h * h
            or 4 * WIDEN * h * PROBE_SPREAD > _WIDEST_MOVE
            or enough_directions([r, r], detect_rtol, first.atoms)):
        return 1.0
    return WIDEN
