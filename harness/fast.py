"""Fast mode: random probes ``<v, J u>`` (numeric, along the line x + t u) against
``<J^T v, u>`` (analytic), a cost independent of the input size.

- First pass (``probes.py``): ``probes`` random directions u (default 4), each giving J u
  from two forward evaluations, compared at the round-off level with every cotangent whose
  VJP is known (v1, the linearity check's v2); a fault c times above the tolerance escapes
  K directions with probability at most c^-K, whatever its entries and signs (derived there).
- Output entries at very different scales (1e-17 beside 3): one plain cotangent per scale
  band joins them after the first direction (``entry_bands.py``), nothing magnified.
- A probe that does not agree there goes to the full machinery (:class:`Probe`): ECnoise,
  the step ladder, then bisection of its support down to single entries; one whose
  disagreement no single entry confirms, or whose line meets kinks, is judged jointly
  against Clarke's generalized Jacobian on the kink entries (``kinks.py``).
- The report states the relative error resolved (``resolved_rtol``: the smallest r for
  which a gradient scaled by (1 + r) would FAIL; with bands, per output entry). Directions
  are added (up to ``EXTRA_DIRECTIONS``) while it is above ``detect_rtol`` or the miss
  bound falls short (``miss_bound``: ``bound_short``; at 4 times the step where the
  round-off hides faults, ``widened``); a check short of it says so in its reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.harness.budget import C_ROUND, C_SIGMA
from gradverify.harness.calls import Problem
from gradverify.harness.entry_bands import BandRule, Pair, absorb, own_stream, resolution, vjp_pair
from gradverify.harness.jump_entries import without_jumping
from gradverify.harness.kink_samples import MAX_JOINT
from gradverify.harness.lines import Ref, cotangent, finite_abs, line, norm2, step, support
from gradverify.harness.miss_bound import bound_short, widened
from gradverify.harness.probe_kinks import (
    SCAN,
    bent_tie,
    joint,
    judge_rows,
    judged_whole,
    many_kinks,
    tied_entries,
    without_missed_kinks,
)
from gradverify.harness.probes import FirstPass, direction_rtol, enough_directions
from gradverify.harness.reasons import Reason
from gradverify.harness.report import FAIL, INCONCLUSIVE, NOT_APPLICABLE, PASS, Check, Entry
from gradverify.harness.undecided import undecided
from gradverify.harness.verdicts import confirm, decide, summarise

__all__ = ["fast", "EXTRA_DIRECTIONS"]

EXTRA_DIRECTIONS = 4  # added while above detect_rtol or short of the miss bound


def fast(p: Problem, ref: Ref, v1: list[np.ndarray], g1: list[np.ndarray],
         residual: list[np.ndarray],
         known: list[tuple[list[np.ndarray], list[np.ndarray]]] | None = None) -> Check:
    """The fast-mode gradient check (see the module docstring). ``known``: further
    (cotangent, gradient) pairs already computed at ``ref`` (the linearity check's)."""
    stable = Check("hygiene.output_stable", PASS)
    h = step(p, ref)
    plain = [([np.asarray(t, np.float64) for t in v], g) for v, g in [(v1, g1), *(known or [])]]
    if len(plain) < 2:  # a second cotangent costs one VJP
        plain.append(vjp_pair(p, ref, cotangent(p.rng, ref.ys)))
    # each with its group (0: plain, b + 1: band b of entry_bands.py)
    pairs = [(0, Pair(v, g, residual)) for v, g in plain]
    first = FirstPass(p, ref, [v for v, _ in plain], [g for _, g in plain], residual, pool=True)
    measure = any(np.asarray(r).any() for r in residual)
    entries: list[Entry] = []
    verdicts: list[str] = []
    notes: list[str] = []
    # resolved[group]: per probe of that group's cotangents (0: plain, b + 1: band b). The
    # plain probes follow their own rule (wanted, plain_dirs: each direction's worst plain
    # cotangent), the bands theirs and their own stream (entry_bands.BandRule).
    resolved: dict[int, list[float]] = {0: []}
    plain_dirs: list[float] = []
    rule = BandRule(p, len(pairs), first.atoms)
    wanted, made, widening = max(p.opts.probes, 1), 0, True
    while True:
        calm = FAIL not in verdicts
        plain_open = made < wanted and not (
            calm and enough_directions(plain_dirs, p.opts.detect_rtol, first.atoms))
        if not (plain_open or rule.open(made, calm)):
            break  # fewer directions bound the miss as well (probes.enough_directions)
        made += 1
        steps = first.steps()
        first.keep = made == 1
        outcomes = first.judge(steps)
        if plain_open:
            plain_dirs.append(direction_rtol(outcomes and outcomes[:rule.n_plain],
                                             first.g_s))
        rule.record(outcomes, first.g_s)
        directions = None
        for j, (group, pair) in enumerate(pairs):
            if group == 0 and not plain_open:
                continue  # a direction made for the bands only
            o = outcomes[j] if outcomes is not None else None
            if o is not None and o.passed:
                entries.append(o.entry(first.diff[0], first.h * first.scale))
                verdicts.append(PASS)
                if o.analytic != 0:
                    resolved[group].append(o.tolerance / abs(o.analytic))
                continue
            directions = directions or first.direction(steps)
            probe = Probe(p, ref, pair.v, pair.g, directions, pair.residual, stable, h,
                          residual)
            if group == 0:
                undecided(probe, entries, verdicts, notes, resolved[0])
                continue
            found: tuple[list[Entry], list[str]] = ([], [])
            with own_stream(p, rule.rng):
                undecided(probe, *found, notes, resolved[group])
            absorb(group, rule.bands, *found, entries, verdicts, notes)
        if plain_open and widening:  # the next direction's steps (miss_bound.widened)
            widening = first.first_look
            first.scale = widened(first, plain_dirs[-1], p.opts.detect_rtol) if widening else 1.0
        if FAIL in verdicts or made > 1:
            first.forget()
        else:  # judged from the next direction on, by as many as the others
            more = rule.start(ref, first, outcomes, measure, made)
            pairs += more
            resolved.update({group: [] for group, _ in more})
        calm = FAIL not in verdicts
        if (plain_open and made == wanted and wanted < p.opts.probes + EXTRA_DIRECTIONS
                and calm and (min(resolved[0], default=np.inf) > p.opts.detect_rtol
                              or bound_short(plain_dirs, p.opts.detect_rtol, first.atoms))):
            wanted += 1
        rule.extend(made, calm, resolved, p.opts.probes + EXTRA_DIRECTIONS)
    first.release()  # its work arrays serve the next check (probes.FirstPass.release)
    best = resolution(resolved, bands := rule.bands)
    if best is not None and best > p.opts.detect_rtol:
        notes.append(f"the probes resolved a relative error of {best:.2g}"
                     f"{' per output entry' if bands else ''}, not "
                     f"detect_rtol {p.opts.detect_rtol:g}")
    check = summarise("gradient", entries, verdicts, stable, p,
                      extra="; ".join(sorted(set(notes))) or None, resolved=best)
    check.details.update(probes=len(verdicts), directions=made,
                         bands=0 if bands is None else len(bands.members))
    return check


class Probe:
    """One random probe ``(v, u)`` and the comparisons on parts of its support."""

    def __init__(self, p: Problem, ref: Ref, v: list[np.ndarray], g: list[np.ndarray],
                 directions: list[np.ndarray | None], residual: list[np.ndarray],
                 stable: Check, h: float, whole: list[np.ndarray] | None = None):
        self.p, self.ref, self.v, self.g = p, ref, v, g
        # the check's own residual (the plain cotangents'), for the whole Jacobian when a
        # probe meets too many kinks (probe_kinks.many_kinks); ``residual``: this probe's
        self.whole = residual if whole is None else whole
        self.directions, self.residual, self.stable, self.h = directions, residual, stable, h
        self.ladder, self.left_out, self.rungs = False, 0, False  # rungs: rung_agreement
        self.blocks = support(p, ref)
        self.size = sum(ref.xs[k].size for k, _ in self.blocks)
        self.budget_start = p.n_forward
        self.cts = np.concatenate([np.asarray(t, np.float64).ravel()
                                   for t, y in zip(v, ref.ys) if y.dtype.kind == "f"])

    def _restricted(self, lo: int, hi: int) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = [None] * len(self.ref.xs)
        for k, off in self.blocks:
            x = self.ref.xs[k]
            a, b = max(lo - off, 0), min(hi - off, x.size)
            if a < b:
                d = np.zeros(x.size)
                d[a:b] = np.ravel(self.directions[k])[a:b]
                out[k] = d.reshape(x.shape)
        return out

    def _where(self, i: int) -> tuple[int, int]:
        for k, off in self.blocks:
            if off <= i < off + self.ref.xs[k].size:
                return k, i - off
        raise IndexError(i)

    def compare(self, span: tuple[int, int] | None,
                directions: list[np.ndarray | None] | None = None, kept: Any = None,
                *, navigate: bool = False) -> Entry:
        """Judge the probe restricted to the flat support ``span`` (None: all of it), or
        along ``directions`` when given (``kept``: the outputs a line along them kept;
        ``navigate``: the quick estimate alone, to choose a half to search, no verdict)."""
        lo, hi = span if span is not None else (0, self.size)
        if directions is None:
            directions = self.directions if span is None else self._restricted(lo, hi)
        analytic, worst, ab_res = 0.0, 0.0, 0.0
        gds, gxs = [], []
        for k, d in enumerate(directions):
            if d is None:
                continue
            g64 = np.asarray(self.g[k], np.float64)
            g_fin = np.nan_to_num(g64, nan=0.0, posinf=0.0, neginf=0.0)  # inf: FAILed, no rounding
            gd = finite_abs(g_fin * d)
            analytic += float(np.sum(g64 * d))
            worst += float(np.sum(gd))
            gds.append(gd)
            gxs.append(finite_abs(g_fin) * np.abs(self.ref.xs[k]) * (d != 0))
            if self.residual[k].size:
                ab_res += float(np.sum(self.residual[k] * np.abs(d)))
        # The analytic sum's rounding and the argument's rounding: random walks over the
        # entries (the Gaussian direction decorrelates them), never above the worst case.
        eps = self.ref.eps
        walk = norm2(*gds)
        analytic_round = min(C_ROUND * worst, C_SIGMA * C_ROUND * walk)
        ab = np.array([eps * analytic_round + ab_res])
        rounding = (C_SIGMA * norm2(*gxs), C_SIGMA * walk)
        ln = line(self.p, self.ref, directions, self.v, self.stable, rounding, kept=kept)
        ln.rejudged, ln.rungs = True, self.rungs  # jumping entries left out below
        if navigate:
            est, jd = decide(self.p, ln, np.array([analytic]), ab, self.h, worst,
                             measure_noise=False, quick_only=True)
        elif self.ladder and span is None and directions is self.directions:
            est, jd = confirm(self.p, ln, np.array([analytic]), ab, self.h, worst)
        else:
            est, jd = decide(self.p, ln, np.array([analytic]), ab, self.h, worst)
        if getattr(ln, "jumping", None) is not None:
            # some output entries jump within the steps or at x: on without them
            return without_jumping(self, ln, span, directions)
        index, entry_input, unit = None, self.blocks[0][0], 1.0
        if span is not None and hi - lo == 1:
            entry_input, j = self._where(lo)
            index = tuple(int(t) for t in np.unravel_index(j, self.ref.xs[entry_input].shape))
            unit = float(directions[entry_input].flat[j])
        step_scale = float(np.max([np.max(np.abs(d)) for d in directions if d is not None]))
        return Entry(input=entry_input, input_name=self.p.names[entry_input]
                     if index is not None else "probe", index=index,
                     analytic=analytic / unit, numeric=float(est.value[0]) / unit,
                     bound=float(est.bound[0]) / abs(unit),
                     tolerance=float(jd.tolerance[0]) / abs(unit),
                     step=float(est.step[0]) * step_scale, verdict=jd.verdict[0],
                     kind=jd.kind[0], note=jd.reason[0],
                     one_sided=(float(est.left[0]) / unit, float(est.right[0]) / unit)
                     if jd.kind[0] == "kink" else None)

    def _budget_left(self) -> bool:
        return self.p.n_forward - self.budget_start <= self.p.opts.localise_budget

    def localise(self, follow: str = "disagree", limit: int | None = None,
                 ) -> tuple[list[Entry], bool]:
        """Bisect the support down to single entries, following halves that disagree
        (``follow="disagree"``: on the quick estimate alone, so a noisy half costs a detour,
        never a verdict) or whose line meets a kink (``"kink"``). Returns the single entries
        reached (judged in full) and whether the search finished."""
        limit = self.p.opts.localise if limit is None else limit
        found: list[Entry] = []
        stack, navigate = [(0, self.size)], follow == "disagree"
        while stack:
            if sum(e.verdict != PASS for e in found) >= limit or not self._budget_left():
                return found, False
            lo, hi = stack.pop()
            if hi - lo == 1:
                found.append(self.compare((lo, hi)))
                continue
            mid = (lo + hi) // 2
            chosen = []
            for span in ((lo, mid), (mid, hi)):
                e = self.compare(span, navigate=navigate)
                if {"disagree": e.verdict != PASS, "kink": e.kind in ("kink", "jump"),
                        "jump": e.verdict == NOT_APPLICABLE}[follow]:
                    chosen.append((e.excess, span))
            for _, span in sorted(chosen):  # depth first into the worse half
                stack.append(span)
        return found, True

    def settle(self, probe: Entry) -> tuple[str, list[Entry], str | None]:
        """A probe that disagrees: pin it to single entries. Where the probe meets kinks,
        no single entry is decided alone (a stable sort's middle entry at a tie is outside
        its own one-sided bracket, and clip's t at t == lo == hi is flat, yet both are
        right): the kink entries and the entries failing beside them are judged jointly,
        and the rest of the probe, without them, must agree on its own."""
        if (whole := judged_whole(self, probe)) is not None:
            return whole  # an earlier probe met too many kinks: the whole Jacobian decided
        kinks, complete = self.find_kinks([])
        found = [] if self.size <= SCAN else self.localise("disagree")[0]
        seen: set[tuple[int, Any]] = set()
        coords, failing, unsure = [], [], []
        for e in kinks + found:
            if (e.input, e.index) in seen:
                continue
            seen.add((e.input, e.index))
            if e.kind in ("kink", "jump") or Reason.of(e.note) is Reason.DISCONTINUOUS:
                # a jump at the step's scale (or one left out of an entry's outputs: clip
                # t == hi, lo -1e-30) is, for a continuous function, a kink nearer than the
                # step: its pieces belong to the joint judgement (a genuine jump only widens
                # the hull along its own coordinate)
                coords.append(e)
            elif e.verdict == FAIL:
                failing.append(e)
            elif e.verdict == INCONCLUSIVE:
                unsure.append(e)
        if not coords and failing and self.size > SCAN:
            # the failing entries' own halves may hide the tie; search the rest without them
            beside, complete = self.find_kinks(failing)
            coords = [e for e in beside if (e.input, e.index) not in seen]
        flat = [e for e in failing if abs(e.numeric) < abs(e.analytic - e.numeric)]
        if not coords and len(flat) < len(failing) and (bent := bent_tie(self, failing, kinks)):
            return joint(self, failing + bent)  # a tie only joint moves show (a median)
        if not coords and flat and len(flat) == len(failing) and len(flat) <= MAX_JOINT:
            # no kink seen, and every failing entry looks flat: a piece may exist only within
            # a sliver narrower than every step (t = 0 between lo = -1e-30 and hi = 0), or
            # only joint moves with its tied partners reach it (a median of three equal
            # values: every input alone is flat, the middle's gradient is a piece)
            partners = tied_entries(self, flat, kinks)
            return joint(self, flat + partners if len(flat) + len(partners) <= MAX_JOINT
                         else flat)
        if not coords:  # no kink anywhere along the probe's parts: the disagreement stands,
            if probe.kind == "kink" and not failing and (whole := judge_rows(self, probe)):
                return whole  # unless the probe met one itself: the rows decide then
            if unsure and not failing:
                return INCONCLUSIVE, unsure, None
            return FAIL, failing or found, None
        group = coords + failing
        # Entries tied with the kink entries but flat and agreeing on their own belong to the
        # same pieces (clip at t == lo == hi: t and hi look flat alone, only lo kinks).
        partners = tied_entries(self, group, kinks)
        if len(group) + len(partners) > MAX_JOINT:
            if (whole := judge_rows(self, probe)) is not None:  # too many to sample jointly
                return whole
            partners = [e for e in partners if e.verdict != PASS]
        if len(group) + len(partners) <= MAX_JOINT:
            group = group + partners
        if not complete or len(group) > MAX_JOINT:
            return many_kinks(self, probe, failing)
        rest, group, whole = without_missed_kinks(self, probe, group, failing)
        if whole is not None:
            return whole
        if rest is not None and rest.verdict == FAIL and rest.kind == "smooth":
            if unsure and not failing and getattr(self.without(group + unsure), "verdict",
                                                  PASS) != FAIL:  # (jumps finer than steps)
                return INCONCLUSIVE, unsure, None
            rest.note = "the probe without its kink entries still disagrees"
            return FAIL, [rest, *failing], None
        if len(group) < 2:
            if group[0].verdict == FAIL:
                # One entry's bracket is a v-weighted mix of the outputs it moves, each with
                # its kink at its own distance (a max-pool entry at 0 beside windows whose
                # maxima are 2e-313 and 4e-7): judged on the outputs' Minkowski sum.
                return joint(self, group)
            probe.note = Reason.KINK_UNRESOLVED.text(
                "the probe's disagreement is not confirmed at any single entry")
            return INCONCLUSIVE, group, None
        return joint(self, group)

    def isolate_jumps(self, probe: Entry) -> tuple[str, list[Entry]]:
        """A probe along which phi jumps: find the entries where it jumps (no derivative
        there) and judge the probe without them."""
        jumps, complete = self.localise("jump", limit=self.p.opts.localise)
        if not complete:
            unresolved = Entry(**{**probe.__dict__, "verdict": INCONCLUSIVE,
                                  "note": Reason.JUMPS_UNRESOLVED.text(
                                      f"more than {self.p.opts.localise} entries jump along "
                                      "the probe")})
            return INCONCLUSIVE, [unresolved]
        jumps = [e for e in jumps if e.verdict == NOT_APPLICABLE]
        rest = self.without(jumps) if jumps else None
        if rest is None:
            return NOT_APPLICABLE, jumps
        if rest.verdict == FAIL:
            # A "jump" of a continuous function is a kink closer to x than the step (t = 0
            # beside lo = -1e-10, hi = 0: the piece out = t is a sliver 1e-10 wide), and
            # the rest's disagreement may be a tie that only joint moves with those entries
            # reveal: judged jointly with them, like any probe meeting kinks.
            verdict, found, note = self.settle(rest)
            if note:
                rest.note = note
            return verdict, [*found, *jumps] if verdict != PASS else found
        rest.note = rest.note or f"the probe without the {len(jumps)} entries where it jumps"
        return rest.verdict, [rest, *jumps]

    def find_kinks(self, skip: list[Entry]) -> tuple[list[Entry], bool]:
        """The probe's kink entries (every single entry, when searched one by one), with
        the entries ``skip`` taken out of its direction, and whether the search finished.
        Bisection on kinks alone misses some: the kinks of several outputs, weighted by v,
        can cancel along a joint line, and a tie can be flat along a joint line (lo winning
        on both sides of t == lo == hi when lo and hi move together). So a small support
        is searched entry by entry, a large one by bisection."""
        directions = self._zeroed(skip) if skip else self.directions
        if directions is None:
            return [], True
        probe = self if not skip else Probe(self.p, self.ref, self.v, self.g, directions,
                                            self.residual, self.stable, self.h, self.whole)
        live = np.flatnonzero(np.concatenate([np.ravel(directions[k]) != 0
                                              for k, _ in self.blocks]))
        if live.size <= SCAN:
            found, complete = [probe.compare((int(i), int(i) + 1)) for i in live], True
        else:
            found, complete = probe.localise("kink", limit=MAX_JOINT + 1)
        return [e for e in found if e.kind in ("kink", "jump") or live.size <= SCAN], complete

    def _zeroed(self, coords: list[Entry]) -> list[np.ndarray | None] | None:
        """The probe's directions with ``coords`` set to zero (None if nothing is left)."""
        directions = [None if d is None else np.array(d, dtype=np.float64)
                      for d in self.directions]
        for e in coords:
            directions[e.input][e.index] = 0.0
        return directions if any(d is not None and np.any(d) for d in directions) else None

    def without(self, coords: list[Entry]) -> Entry | None:
        """The probe with the kink entries removed from its direction (None if empty)."""
        return None if (d := self._zeroed(coords)) is None else self.compare(None, d)
