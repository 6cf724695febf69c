"""Fast mode: a probe the first pass could not decide goes to the full machinery (the
step ladder, jumps isolated, a disagreement settled on single entries or jointly at
kinks: ``fast.Probe``), and its verdict and entries join the check's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradverify.harness.probe_kinks import beside_bracket
from gradverify.harness.reasons import Reason
from gradverify.harness.report import FAIL, INCONCLUSIVE, NOT_APPLICABLE, PASS, Entry
from gradverify.harness.rung_agreement import recheck_probe

if TYPE_CHECKING:
    from gradverify.harness.fast import Probe

__all__ = ["undecided"]


def undecided(probe: Probe, entries: list[Entry], verdicts: list[str], notes: list[str],
              resolved: list[float]) -> None:
    """A probe the first pass could not decide: the full machinery."""
    # The first pass saw a disagreement above round-off: straight to the ladder, whose
    # coarse rungs resolve more than the quick estimate (its tolerance is 3/h round-off).
    probe.ladder = True
    entry = probe.compare(None)
    entries.append(entry)
    if entry.analytic != 0 and np.isfinite(entry.analytic) and entry.kind == "smooth":
        resolved.append(entry.tolerance / abs(entry.analytic))
    if entry.verdict == PASS:
        # A probe inside its own bracket at a kink passes too: a tie rule that is wrong
        # only jointly escapes a probe whose direction has opposite signs on the tied
        # entries (chance 1/2), so each of the probes gets its own chance to see it. Its
        # smooth entries are judged without the kinks once (probe_kinks.beside_bracket).
        verdict, found = (beside_bracket(probe, entry, resolved) if entry.kind == "kink"
                          else (PASS, []))
        verdicts.append(verdict)
        entries.extend(found)
        return
    located = any(e.verdict == FAIL and e.index is not None for e in entries)
    if entry.verdict == FAIL and entry.kind == "smooth" and located:
        verdicts.append(FAIL)  # already pinned to entries by an earlier probe
    elif entry.verdict == NOT_APPLICABLE:
        verdict, found = probe.isolate_jumps(entry)
        verdicts.append(verdict)
        entries.extend(found)
    elif entry.verdict == FAIL:
        verdict, found, note = probe.settle(entry)
        if verdict == FAIL:
            verdict = recheck_probe(probe, entry, found)
        if verdict == FAIL and probe.left_out and not any(
                e.verdict == FAIL and e.index is not None for e in found):
            # Judged without output entries that jump, the rest disagrees, yet no entry of
            # it does: what it met beside the jumps (where(a > b, a * b, a - b) ties at 0.5
            # beside one at 1e-8, a kink below every half's resolution) is no measurement
            verdict = entry.verdict = INCONCLUSIVE
            entry.note = Reason.JUMPS_WITHIN_STEP.text(
                f"{probe.left_out} output entries jump within the step; without them the "
                "probe disagrees, but no entry of it does")
        verdicts.append(verdict)
        entries.extend(found)
        if note:
            notes.append(note)
    else:
        verdicts.append(entry.verdict)
