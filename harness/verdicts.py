"""From compared values to a check: confirm what the first estimate could not decide, and
summarise entries into one named check with its reason and resolved relative error.

A verdict, once reached for an entry, is never rewritten: a later stage (the joint kink
judgement, localisation) adds entries of its own.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gradverify.harness.budget import SAFETY, ladder_top
from gradverify.harness.calls import Problem
from gradverify.harness.diagnosis import signature
from gradverify.harness.ecnoise import noise
from gradverify.harness.judge import Judgement, judge, jumps_at_x
from gradverify.harness.jump_entries import grow_like_jumps, line_jumping
from gradverify.harness.numeric import Estimate, Line, quick, refine
from gradverify.harness.reasons import Reason
from gradverify.harness.report import (
    FAIL,
    INCONCLUSIVE,
    NOT_APPLICABLE,
    PASS,
    Check,
    Entry,
    combine,
)
from gradverify.harness.rung_agreement import rungs_disagree
from gradverify.harness.staircase import rejudge

__all__ = ["decide", "summarise", "resolved_rtol"]


def _judge_kw(p: Problem, scale: float) -> dict[str, Any]:
    return {"scale": scale, "safety": getattr(p.opts, "safety", SAFETY),
            "inconclusive_rtol": p.opts.inconclusive_rtol}


def decide(p: Problem, line: Line, analytic: np.ndarray, ab: np.ndarray, h: float,
           scale: float, *, measure_noise: bool = True, quick_only: bool = False,
           ) -> tuple[Estimate, Judgement]:
    """Quick estimate (with the line's measured noise); anything not passing is confirmed
    on the finer ladder (unless ``quick_only``: a first look, not a verdict)."""
    kw = _judge_kw(p, scale)
    sigma = noise(line, h) if measure_noise else 0.0
    est = quick(line, h, p.opts.c_round, sigma=np.where(np.isfinite(sigma), sigma, 0.0))
    jd = judge(analytic, ab, est, **kw)
    if not quick_only and not all(v == PASS for v in jd.verdict):
        est = refine(line, h, p.opts.c_round, sigma=sigma if measure_noise else None)
        jd = rejudge(line, h, p.opts.c_round, analytic, est, judge(analytic, ab, est, **kw),
                     **kw)
        jd = jumps_at_x(line, est, _jumps_within_step(line, h, p.opts.c_round, jd),
                        analytic, p.opts.c_round, kw["safety"], kw["inconclusive_rtol"])
        jd = rungs_disagree(line, est, jd, analytic, kw["safety"], p.opts.c_round)
    return est, jd


def confirm(p: Problem, line: Line, analytic: np.ndarray, ab: np.ndarray, h: float,
            scale: float) -> tuple[Estimate, Judgement]:
    """The finer ladder straight away (the first estimate was not decisive)."""
    est = refine(line, h, p.opts.c_round)
    kw = _judge_kw(p, scale)
    jd = rejudge(line, h, p.opts.c_round, analytic, est, judge(analytic, ab, est, **kw), **kw)
    jd = jumps_at_x(line, est, _jumps_within_step(line, h, p.opts.c_round, jd),
                    analytic, p.opts.c_round, kw["safety"], kw["inconclusive_rtol"])
    return est, rungs_disagree(line, est, jd, analytic, kw["safety"], p.opts.c_round)


def _jumps_within_step(line: Line, h: float, c_round: float, jd: Judgement) -> Judgement:
    """A FAIL along a line where phi jumps within the steps (floormod(-5e5, 0.3): period
    0.3, steps of 3 and below cross jumps; the ladder's differences are jitter around no
    slope) is no evidence: INCONCLUSIVE, ``JUMPS_WITHIN_STEP``. Judged on the one-sided
    differences at the classic ladder's eight rungs, 16h down to h / 1024
    (``jump_entries.grow_like_jumps``; evaluated by the ladder already): per channel, i.e.
    per output entry on a Jacobian column's line, and on a probe's line per output entry
    from the whole outputs it kept (:func:`_entries_jumping`, the whole jump test)."""
    failing = np.array([v == FAIL for v in jd.verdict])
    probe = getattr(line, "entries", None) is not None
    if probe and (failing.any() or jd.kind[0] == "jump") and _entries_jumping(
            line, h, c_round, jd):
        return jd
    if not failing.any():
        return jd
    phi0, mag0, _ = line.full(0.0)
    jumpy = np.zeros(failing.size, bool)
    top = ladder_top(line.eps, h)
    extra = round(math.log(top / (16 * h), 4))
    steps = [top / 4 ** k for k in range(extra, extra + 8)]  # the ladder's own values
    sides = []
    for sign in (1.0, -1.0):
        diffs = []
        for t in steps:
            phi, mag, _ = line.full(sign * t)
            with np.errstate(invalid="ignore"):
                d = phi - phi0
                floor = 4 * c_round * line.eps * np.fmax(mag, mag0)
                diffs.append(np.where(np.abs(d) > floor, d, 0.0))
        sides.append(diffs)
    # per channel (an output entry, or a probe): growth, turns and sign flips only - the
    # jump-at-x and fall-back tests would pre-empt the joint kink judgement of a Jacobian
    # column's sliver kinks (clip with t == hi = 0 beside lo = -1e-300)
    for diffs in sides:
        jumpy |= grow_like_jumps(diffs, steps)
    for i in np.flatnonzero(failing & jumpy):
        jd.verdict[i] = INCONCLUSIVE
        jd.reason[i] = Reason.JUMPS_WITHIN_STEP.text(
            "the function jumps within every step tried (differences do not shrink with "
            "the step)")
    return jd


def _entries_jumping(line: Line, h: float, c_round: float, jd: Judgement) -> bool:
    """A probe's failing line judged entry by entry (``jump_entries``): the output entries
    that jump within the steps go to ``line.jumping`` when the caller judges the probe
    again without them (``line.rejudged``: fast mode zeroes their cotangent); when every
    entry the probe weighs jumps, nothing is left to judge, and a caller that does not
    re-judge (forward mode's JVP probes) cannot tell the rest apart: INCONCLUSIVE
    ``JUMPS_WITHIN_STEP``. False when the line kept
    no whole outputs (then its projected differences are judged)."""
    jumps = line_jumping(line, h, c_round)
    if jumps is None:
        return False
    weighed = line.weights != 0  # type: ignore[attr-defined]
    jumps &= weighed
    if not jumps.any():
        return True  # no entry jumps: the disagreement stands
    if (weighed & ~jumps).any() and getattr(line, "rejudged", False):
        line.jumping = jumps  # type: ignore[attr-defined]
        return True
    if jd.verdict[0] != FAIL:
        return True  # a jump at x along the probe: not applicable, as judged
    jd.verdict[0] = INCONCLUSIVE
    every = not (weighed & ~jumps).any()
    jd.reason[0] = Reason.JUMPS_WITHIN_STEP.text(
        f"{'every' if every else 'some'} output entry the probe weighs "
        f"({int(jumps.sum())}) jumps within every step tried (differences do not shrink "
        "with the step)")
    return True


def resolved_rtol(entries: Sequence[Entry]) -> float | None:
    """The smallest r such that scaling every analytic value by (1 + r) would FAIL some
    compared entry: min over smooth entries of tolerance / |analytic|."""
    vals = [e.tolerance / abs(e.analytic) for e in entries
            if e.kind == "smooth" and e.verdict != NOT_APPLICABLE and e.analytic != 0
            and np.isfinite(e.analytic) and np.isfinite(e.tolerance)]
    return float(min(vals)) if vals else None


def summarise(name: str, entries: list[Entry], verdicts: Sequence[str] | Mapping[str, int],
              stable: Check, p: Problem, extra: str | None = None,
              resolved: float | None = None, kinks: int | None = None) -> Check:
    """One check from its compared entries (``verdicts``: one verdict per comparison, or
    their counts; ``entries``: the ones worth showing)."""
    counts = Counter(verdicts) if not isinstance(verdicts, Mapping) else Counter(
        {k: v for k, v in verdicts.items() if v})
    total = sum(counts.values())
    verdict = FAIL if stable.verdict == FAIL else combine(counts)
    bad = sorted((e for e in entries if e.verdict in (FAIL, INCONCLUSIVE)),
                 # entries pinned to an index before the probes that led to them: a
                 # probe's error (a sum over every entry) is larger, not more telling
                 key=lambda e: (e.verdict != FAIL, e.index is None, -min(e.excess, 1e300)))
    bad = _once(bad)  # an entry met by several probes shows once, at its worst
    good = sorted((e for e in entries if e.verdict == PASS),
                  key=lambda e: -min(e.excess, 1e300))
    n_na = counts[NOT_APPLICABLE]
    reason = None
    if stable.verdict == FAIL:
        reason = stable.reason
    elif verdict == FAIL:
        reason = f"{counts[FAIL]} of {total} compared values disagree beyond tolerance"
    elif verdict == INCONCLUSIVE:
        # the inconclusive entries say why; a probe that disagreed first and was then
        # found unjudgeable (its samples cross jumps) keeps its own FAIL note
        notes = sorted({e.note for e in bad if e.note and e.verdict == INCONCLUSIVE}
                       ) or sorted({e.note for e in bad if e.note})
        reason = "; ".join(notes) or Reason.ROUNDOFF_DOMINATED.value
    elif verdict == NOT_APPLICABLE:
        notes = sorted({e.note for e in entries if e.verdict == NOT_APPLICABLE and e.note})
        reason = "; ".join(notes) or Reason.DISCONTINUOUS.value
    elif n_na:
        notes = sorted({e.note for e in entries if e.verdict == NOT_APPLICABLE and e.note})
        reason = (f"{n_na} of {total} entries not applicable ("
                  + ("; ".join(notes) or Reason.DISCONTINUOUS.value) + "), the rest pass")
    if extra and verdict != FAIL:
        reason = f"{reason}; {extra}" if reason else extra
    tol = max((e.tolerance for e in entries if math.isfinite(e.tolerance)), default=None)
    if resolved is None:
        resolved = resolved_rtol(entries)
    check = Check(name, verdict, reason, worst=bad[:8] if bad else good[:3], tolerance=tol,
                  details={"compared": total,
                           "kinks": sum(e.kind == "kink" for e in entries)
                           if kinks is None else kinks,
                           "not_applicable": n_na, "resolved_rtol": resolved})
    check.details["signature"] = signature(bad, good, p.xs, p.diff, p.names,
                                           p.opts.localise)
    return check


def _once(entries: list[Entry]) -> list[Entry]:
    """``entries`` without repeats of one input entry (and output) of one kind, the first
    of each kept; probes (no index) are all kept."""
    seen: set[tuple] = set()
    out = []
    for e in entries:
        key = (e.input, e.index, e.output, e.kind)
        if e.index is None or key not in seen:
            seen.add(key)
            out.append(e)
    return out
