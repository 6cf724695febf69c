"""Fast mode's second look at a direction: when some probe of the first pass does not
agree at the round-off level, the same direction at steps 2h and 4h (4 forward
evaluations, every cotangent at once) and Richardson extrapolation, before any probe goes
to the full machinery (ECnoise and a ladder of 30-40 evaluations per probe).

Why: where a function's own scale is its argument's (log and 1/x near 0, x^3) or shorter
(sin(100 x)), the central difference's truncation ``~h^2`` stands above the round-off
of the first pass, at every probe of every direction.

With ``D(t)`` the central difference at step t: ``R(h) = (4 D(h) - D(2h)) / 3`` removes
the h^2 term, and the spread ``|R(h) - R(2h)|`` bounds what is left (the step ladder's
rule, ``numeric.refine``). A probe is decided here when ``|R(h) - analytic|`` lies within
the spread plus R(h)'s round-off (``(4 D(h)'s + D(2h)'s) / 3``, the a-priori rounding of
x inside the function included), under the first pass's safety rule, and its differences
shrink like h^2 (``|D(4h) - D(2h)|`` between 2 and 8 times ``|D(2h) - D(h)|``) wherever
they stand above round-off. A fault stays undecided (R converges to the true
derivative); so does a kink (at a tie each central difference is the average of the
one-sided slopes at every step, so R moves nothing), and noise inside the function (R
amplifies D(h)'s). Each rung is compared along its own steps as taken
(``FirstPass.central``). What this decides counts in the miss
bound with its own tolerance (``miss_bound.direction_rtol``).

>>> import numpy as np
>>> from gradverify.harness import check_vjp
>>> cube_vjp = lambda xs, gs: (3 * gs[0] * xs[0] ** 2,)
>>> x = np.random.default_rng(0).standard_normal(1000)
>>> r = check_vjp(lambda x: x ** 3, cube_vjp, [x], mode="fast")
>>> r.verdict, r.evaluations["forward"] <= 40
('PASS', True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gradverify.harness.miss_bound import Outcome

if TYPE_CHECKING:
    from gradverify.harness.probes import FirstPass, Measured

__all__ = ["coarser_rungs"]


def coarser_rungs(first: FirstPass, steps: list, m: Measured,
                  outcomes: list[Outcome]) -> list[Outcome]:
    """``outcomes`` of the direction ``steps`` (measured at ``m.scale`` times h: ``m``), with
    each probe the first pass left undecided judged again on Richardson's estimate at 2 and
    4 times that (module docstring)."""
    base = m.scale  # (a widened direction's: miss_bound.widened)
    rungs = [first.central(steps, scale * base) for scale in (2.0, 4.0)]
    if rungs[0] is None or rungs[1] is None:
        return outcomes  # the outputs changed shape or type: the full machinery's line
    (d2, out2, a2), (d4, out4, a4) = rungs
    # with the arguments' rounding, which the first pass leaves out (its sides share the
    # steps as taken): a function that rounds x inside (sin(100 x) forms 100 x) shows it
    round1, round2, round4 = (first.roundoff(m.output, base, taken=False),
                              first.roundoff(out2, 2.0 * base, taken=False),
                              first.roundoff(out4, 4.0 * base, taken=False))
    judged = []
    # each rung against the VJP along its own steps as taken (FirstPass.central): e_k is
    # D(k h) - analytic, so Richardson's combinations of the e_k are those of the D's
    for o, e1, e2, e4, r1, r2, r4, rnd in zip(
            outcomes, (m.numeric - m.analytic).tolist(), (d2 - a2).tolist(),
            (d4 - a4).tolist(), round1, round2, round4, m.rounding.tolist()):
        if o.passed:
            judged.append(o)
            continue
        near, far = abs(e2 - e1), abs(e4 - e2)
        # the h^2 regime, where the truncation is measurable at all
        regime = (near <= r1 + r2 and far <= r2 + r4) or 2 * near <= far <= 8 * near
        rich, coarse = (4 * e1 - e2) / 3, (4 * e2 - e4) / 3
        again = first.outcome(o.cotangent, o.analytic, o.analytic + rich,
                              abs(rich - coarse) + (4 * r1 + r2) / 3 + rnd)
        judged.append(again if regime and again.passed else o)
    return judged
