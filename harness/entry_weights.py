"""Fast mode per output entry: when the output entries live at very different scales, one
more cotangent weighted by the inverse of each entry's own size.

A probe ``<v, J u>`` with a plain random cotangent weighs each output entry by its size:
beside outputs of 3, entries of 1e-17 contribute 1e-17 of the sum and their round-off
nothing, so a fault on them hides far below the probe's tolerance (a tolerance that
resolves 1e-9 of the whole gradient resolves nothing of theirs). After the first
direction, the central difference of every output entry is known, and so is its size:

- the entry's *size* ``s_i = max(m_i, a_i)``: ``m_i = max(|f_i(x + h u)|, |f_i(x - h u)|)``
  (its round-off is a few ulps of it) and ``a_i = |f_i(x + h u) - f_i(x - h u)| / 2h``
  (its response per unit step along u, larger than m_i where the output is a
  cancellation, ``x - 1`` at 1). Weighting by ``1 / s_i`` makes each entry's round-off a
  few ulps of ``|v_i|`` and its response at most ``|v_i|``: the weighted probe sees every
  entry as if it had been divided by its own size. The size does not come from the
  response alone, which a small entry of u makes small by chance (a weight 1 / |u_i|
  has a heavy tail: a few entries would take the whole probe).
- Entries with no size (exactly 0 on both sides: a relu output at x < 0) get the largest
  weight of the others (nothing is divided by 0); a size that is not finite, the smallest.
- *When*: only if the plain probes cannot resolve ``detect_rtol`` on the smaller entries
  of some output: an entry of size ``m_i`` is resolved to ``r S / m_i`` by a direction
  that resolves ``r`` of the whole (``S``: the cotangent-weighted RMS size of all output
  entries), so the entries with ``0 < m_i < S r / detect_rtol`` (and ``SAFETY`` times below
  ``S``: a spread inside the budget's own margin changes nothing) are the unresolved ones;
  weighting is worth its VJP when they are at least ``1 / SPREAD_SHARE`` of one output's
  entries (a scalar output counts whole: a loss 1e-20 beside an array of 3). Ordinary
  data (tanh, matmul, softmax cross-entropy on normal inputs) has a sixteenth of its
  entries within a factor of ~10 of the RMS and costs one comparison pass.

The weighted pair then joins the first pass (``probes.FirstPass.add``) from the next
direction on, and is judged by the same first pass and undecided machinery (ladder,
localisation, kinks) as the others. Its directions are drawn after its weights, so the
miss bound of ``probes.py`` holds for it over those directions; ``fast.py`` makes at
least two of them and reports the weighted probes' resolution as ``resolved_rtol``.

>>> import numpy as np
>>> from gradverify.harness import check_vjp
>>> s = np.where(np.arange(300) < 150, 3.0, 1e-17)
>>> bad = lambda xs, gs: (gs[0] * s * np.where(s < 1, 2.0, 1.0),)   # tiny half doubled
>>> r = check_vjp(lambda x: x * s, bad, [np.linspace(1, 2, 300)], mode="fast")
>>> r.verdict, r.check("gradient").details["weighted"]
('FAIL', True)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gradverify.harness.budget import SAFETY
from gradverify.harness.calls import Problem
from gradverify.harness.lines import Ref, normalise, uniform

if TYPE_CHECKING:
    from gradverify.harness.probes import FirstPass, Outcome

__all__ = ["SPREAD_SHARE", "spread_out", "weighted_pair", "vjp_pair", "weigh"]

# The share of one output's entries that must be unresolved before the probes are
# weighted: the claim is about the output entries of each scale, not about each single
# entry (a probe over N entries resolves one entry to ~sqrt(N) times the whole anyway).
SPREAD_SHARE = 16
_SQRT3 = float(np.sqrt(3.0))


def vjp_pair(p: Problem, ref: Ref, v: list[np.ndarray]) -> tuple[list[np.ndarray],
                                                                 list[np.ndarray]]:
    """``(v, vjp(v))`` at the reference point, v cast to the outputs' dtypes first (and
    kept as float64 of the cast values, so both sides use the same cotangent); gradients
    that are None become zeros.

    >>> from gradverify.harness.calls import Problem
    >>> p = Problem(np.sin, lambda xs, gs: (gs[0] * np.cos(xs[0]),), [np.zeros(2)])
    >>> ref = Ref.native(p, [np.zeros(2)])
    >>> vjp_pair(p, ref, [np.array([1.0, 2.0])])[1][0].tolist()
    [1.0, 2.0]
    """
    cast = [np.asarray(t).astype(y.dtype) for t, y in zip(v, ref.ys)]
    g = p.vjp(ref.xs, cast, ref.vjp)
    g = [np.zeros_like(x) if t is None else t for t, x in zip(normalise(g, ref.xs), ref.xs)]
    return [np.asarray(t, np.float64) for t in cast], g


def spread_out(first: FirstPass, outcomes: list[Outcome], detect_rtol: float) -> bool:
    """Whether the direction just judged by ``first`` (its outcomes) leaves the smaller
    output entries of some output unresolved at ``detect_rtol`` (module docstring)."""
    sq, walk = first.last_sizes()
    if sq is None or sq.size < 2:  # one output entry has nothing to be small beside
        return False
    # each cotangent's tolerance over its probe's typical size ||g s|| / sqrt(3) (the
    # standard deviation of sum g_i u_i), not over the value drawn, which may be ~0
    rtols = [o.tolerance * _SQRT3 / typical
             for o, typical in zip(outcomes, first.g_s.tolist(), strict=False)
             if typical > 0 and math.isfinite(o.tolerance)]
    norm = float(first.v_norm[0])
    if not rtols or not norm > 0:
        return False
    top = float(walk[0]) / norm  # the v-weighted RMS size
    limit = top * min(max(rtols) / detect_rtol, 1.0 / SAFETY)
    if not (math.isfinite(limit) and limit > 0):
        return False
    small = sq < limit * limit  # squared sizes: no square root pass
    plus, minus = first.last_outputs()
    for lo, hi in first.segments:
        need = -(-(hi - lo) // SPREAD_SHARE)  # ceil: a scalar output counts whole
        if np.count_nonzero(small[lo:hi]) < need:
            continue
        # a size of 0 is no size (a relu output at x < 0); a square of 1e-200 is 0 too
        sized = small[lo:hi] & ((plus[lo:hi] != 0) | (minus[lo:hi] != 0))
        if np.count_nonzero(sized) >= need:
            return True
    return False


def weighted_pair(p: Problem, ref: Ref, first: FirstPass
                  ) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """A fresh random cotangent divided entry by entry by the outputs' sizes along the
    direction just judged, and its VJP (one backward evaluation); None if no entry has a
    size."""
    plus, minus = first.last_outputs()
    with np.errstate(all="ignore"):
        size = np.maximum(np.maximum(np.abs(plus), np.abs(minus)),
                          np.abs(plus - minus) / (2 * first.h))
    finite = np.isfinite(size)
    positive = finite & (size > 0)
    if not positive.any():
        return None
    lo, hi = float(size[positive].min()), float(size[positive].max())
    size = np.where(positive, size, np.where(finite, lo, hi))
    out = [k for k, y in enumerate(ref.ys) if y.dtype.kind == "f"]
    # the largest entries keep weight 1, the others grow to top / size; capped below the
    # dtype's range so the VJP's products stay finite
    cap = min(float(np.finfo(ref.ys[k].dtype).max * np.finfo(ref.ys[k].dtype).eps)
              for k in out)
    weight = np.minimum(hi / size, cap)
    v = [np.zeros(y.shape) for y in ref.ys]
    for k, (a, b) in zip(out, first.segments):
        v[k] = (uniform(p.rng, ref.ys[k].shape).ravel() * weight[a:b]).reshape(
            ref.ys[k].shape)
    return vjp_pair(p, ref, v)


def weigh(p: Problem, ref: Ref, first: FirstPass, outcomes: list[Outcome] | None
          ) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """After the direction ``first`` kept (``first.keep``): the weighted pair, added to
    ``first``, if the outputs' sizes are spread out (:func:`spread_out`); else None. The
    kept outputs are dropped either way."""
    pair = None
    if first.keep and outcomes is not None and spread_out(first, outcomes,
                                                          p.opts.detect_rtol):
        pair = weighted_pair(p, ref, first)
        if pair is not None:
            first.add(*pair)
    first.forget()
    return pair
