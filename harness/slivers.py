"""Pieces narrower than every sampling radius: a joint kink's hull cannot be complete.

The pieces met around x are sampled at the coordinates' common scale and, where entries
sit closer together, again at the distance between them (``kink_samples.small_scale``).
That small radius has a floor - below a few ulps of the moved entries' magnitudes a
difference is only rounding - so an entry closer to a kink coordinate than the floor
bounds a sliver no sample reaches: clip's ``t = 0`` with ``lo = -1.7e-43`` (a float32
subnormal) and ``hi = 0`` has the piece ``out = t`` only on ``[-1.7e-43, 0]``, while the
other bounds of the same check hold entries of 1e-5 that put the floor near 1e-9. TF's
gradient (1 to t) is that piece's; the samples show only the bounds' pieces. An analytic
value outside such a hull is no evidence of a fault: INCONCLUSIVE, never FAIL.

>>> import numpy as np
>>> from types import SimpleNamespace
>>> ref = SimpleNamespace(xs=[np.array([0.0, -1e-40, 5.0])], eps=2.2e-16)
>>> unseen_sliver(ref, [(0, 0, 1.0)], 1e-6, 1e-9)
True
>>> unseen_sliver(ref, [(0, 2, 5.0)], 1e-6, 1e-9)
False
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradverify.harness.reasons import Reason

__all__ = ["unseen_sliver", "SLIVER_NOTE"]


def unseen_sliver(ref: Any, coords: Sequence[tuple[int, int, float]], h: float,
                  radius: float) -> bool:
    """Does some input entry sit closer to a coordinate of ``coords`` (input, flat index,
    scale) than ``h * radius`` - the smallest radius sampled - without equalling it?
    (Exact ties are reached by the joint orderings; a gap below the radius is not.)"""
    vals = np.concatenate([np.asarray(x, np.float64).ravel() for x in ref.xs
                           if np.asarray(x).dtype.kind == "f"])
    vals = vals[np.isfinite(vals)]
    reach = h * radius
    for kk, j, _ in coords:
        v = float(np.asarray(ref.xs[kk]).flat[j])
        gap = np.abs(vals - v)
        if np.any((gap > 0) & (gap < reach)):
            return True
    return False


SLIVER_NOTE = Reason.STRUCTURE_BELOW_STEP.text(
    "an input entry sits closer to the kink than the smallest radius that can be sampled "
    "there: the pieces between them are never met, so the hull of the sampled ones is "
    "incomplete")
