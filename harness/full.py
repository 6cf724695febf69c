"""Full mode: the whole Jacobian, analytic (row by row through the VJP) against numeric
(column by column), judged as arrays.

First pass (``full_pass.py``), 2 forward evaluations per input element: the central
difference at the relative step h for every column at once. Entries that are exactly zero
on both sides agree exactly; every other entry is decided there when it agrees with the
analytic value within the budget (``DECISIVE_SHARE`` of ``safety × budget``) without a
truncation term (agreement at the round-off level is evidence enough; a disagreement is
not, since truncation is unknown). Entries decided there without resolving
``SHARPEN_RTOL`` (a scalar loss over many inputs) are extrapolated over coarser steps
(``full_pass.coarse_pass``, 6 evaluations per column). Only columns holding an undecided
entry go to the step ladder (Richardson, kinks, jumps, noise), and rows whose kinks
involve several inputs go to the joint Clarke judgement.

>>> import numpy as np
>>> from gradverify.harness import check_vjp
>>> r = check_vjp(np.tanh, lambda xs, gs: (gs[0] * (1 - np.tanh(xs[0]) ** 2),),
...               [np.linspace(-1, 1, 50)], mode="full")
>>> r.verdict, r.evaluations["forward"] <= 2 * 50 + 2 + 10   # + hygiene + noise level
('PASS', True)
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from gradverify.harness.calls import Problem
from gradverify.harness.ecnoise import NOISE_SPACING, noise_samples
from gradverify.harness.full_ladder import LadderPlan
from gradverify.harness.full_pass import (
    FAIL_CODE,
    INC_CODE,
    JOINT,
    NA_CODE,
    PASS_CODE,
    UNDECIDED,
    Jacobians,
    Judged,
    Point,
    SparseJacobian,
    coarse_pass,
    entry_tolerance,
    first_pass,
    transposed_blocks,
)
from gradverify.harness.kink_ties import exact_ties, tie_moves, tie_partners, tie_rows
from gradverify.harness.kinks import joint_kinks, kink_groups
from gradverify.harness.lines import (
    Ref,
    finite_abs,
    line,
    normalise,
    scales,
    step,
    support,
)
from gradverify.harness.report import FAIL, INCONCLUSIVE, NOT_APPLICABLE, PASS, Check, Entry
from gradverify.harness.verdicts import confirm, summarise

__all__ = ["full"]

_SHOWN = 64  # entries kept in the report (the worst first)


def _flat_outputs(ys: list[np.ndarray], shapes: list[tuple]) -> np.ndarray | None:
    got = [(y.shape, y.dtype) for y in ys]
    if got != shapes:
        return None
    return np.concatenate([np.asarray(y, np.float64).ravel() for y in ys
                           if y.dtype.kind == "f"])


def analytic_jacobian(p: Problem, ref: Ref, blocks: list[tuple[int, int]], n: int,
                      ) -> SparseJacobian:
    """Rows = float output entries, columns = differentiable input entries (its non-zero
    entries: one VJP row at a time, never the whole dense array)."""
    float_outs = [k for k, y in enumerate(ref.ys) if y.dtype.kind == "f"]
    rows = [(k, i) for k in float_outs for i in range(ref.ys[k].size)]
    buf = np.zeros(n)
    spans = [(kk, off, off + ref.xs[kk].size) for kk, off in blocks]
    nz_rows, nz_cols, nz_vals = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [buf[:0]]
    for row, (k, i) in enumerate(rows):
        cts = [np.zeros(y.shape, y.dtype) for y in ref.ys]
        cts[k].flat[i] = 1
        gs = normalise(p.vjp(ref.xs, cts, ref.vjp), ref.xs)
        for kk, a, b in spans:
            buf[a:b] = 0.0 if gs[kk] is None else gs[kk].reshape(-1)
        nz = np.flatnonzero(buf)
        nz_rows.append(np.full(nz.size, row))
        nz_cols.append(nz)
        nz_vals.append(buf[nz])
    return SparseJacobian(np.concatenate(nz_rows), np.concatenate(nz_cols),
                          np.concatenate(nz_vals), (len(rows), n))


def _output_noise(p: Problem, ref: Ref, sc: list[np.ndarray], h: float,
                  shapes: list[tuple]) -> np.ndarray:
    """Noise level of every output entry (ECnoise along one random joint direction)."""
    u = [p.rng.standard_normal(x.shape) * s if d else None
         for x, s, d in zip(ref.xs, sc, p.diff)]
    delta = h * NOISE_SPACING
    samples = []
    for k in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5):
        xs = [x if d is None else (x + k * delta * d).astype(x.dtype, copy=False)
              for x, d in zip(ref.xs, u)]
        y = _flat_outputs(p.forward(xs, ref.forward), shapes)
        if y is None:
            return np.full(sum(int(np.prod(s)) for s, dt in shapes if dt.kind == "f"), 0.0)
        samples.append(y)
    sigma = noise_samples(samples)
    return np.where(np.isfinite(sigma), sigma, 0.0)


_KIND = {"smooth": 0, "kink": 1, "jump": 2}
_KIND_NAME = {v: k for k, v in _KIND.items()}
_CODE = {PASS: PASS_CODE, INCONCLUSIVE: INC_CODE, FAIL: FAIL_CODE,
         NOT_APPLICABLE: NA_CODE}
_NAME = {v: k for k, v in _CODE.items()}


def full(p: Problem, ref: Ref, residual: list[np.ndarray], *,
         jacobian: np.ndarray | None = None, name: str = "gradient") -> Check:
    """The full-mode check (see the module docstring) of the VJP's Jacobian, or of
    ``jacobian`` (rows = float output entries, columns = differentiable input entries)
    when given (a JVP's, built column by column)."""
    stable = Check("hygiene.output_stable", PASS)
    shapes = [(y.shape, y.dtype) for y in ref.ys]
    float_outs = [k for k, y in enumerate(ref.ys) if y.dtype.kind == "f"]
    out_index = [(k, i) for k in float_outs for i in range(ref.ys[k].size)]
    blocks = support(p, ref)
    n = sum(ref.xs[k].size for k, _ in blocks)
    jac = analytic_jacobian(p, ref, blocks, n) if jacobian is None else (
        SparseJacobian.from_dense(jacobian))
    sc = scales(ref.xs)
    h = step(p, ref)
    eps, c_round = ref.eps, p.opts.c_round

    def flat(arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.ravel(arrays[k]) for k, _ in blocks]) if blocks else (
            np.ones(0))
    d = flat(sc)
    xabs = np.abs(flat([x.astype(np.float64) for x in ref.xs]))
    res = flat(residual)
    y0 = np.concatenate([np.asarray(ref.ys[k], np.float64).ravel() for k in float_outs])
    sigma = _output_noise(p, ref, sc, h, shapes)
    cols = [(kk, off, j) for kk, off in blocks for j in range(ref.xs[kk].size)]
    m = len(out_index)
    with np.errstate(all="ignore"):  # from the non-zeros only: no whole-Jacobian temporary
        size = np.abs(jac.values) * d[jac.cols]
        scale = float(np.max(size, where=np.isfinite(size), initial=0.0))
    pt = Point(d=d, xabs=xabs, res=res, y0=y0, sigma=sigma, scale=scale)

    # -- first pass: central differences, two evaluations per column --------------------------
    jd0 = first_pass(p, ref, cols, jac, pt, h, shapes, stable)
    # exact ties no single column moves (a median of three equal values): moved jointly at
    # the first pass's own steps, before the ladder refines what it computed
    tied = exact_ties(ref, cols)
    moves = tie_moves(p, ref, tied, (jd0.row, jd0.col, jd0.numeric, jd0.tol,
                                     jd0.code == UNDECIDED), m, d, cols, h) if tied else {}
    sharpened = coarse_pass(p, ref, cols, pt, h, shapes, jd0)
    code, tol, kind = jd0.code, jd0.tol, jd0.kind

    # -- the ladder, only for columns with an undecided entry ---------------------------------
    note: dict[int, str | None] = {}          # keyed by position among the judged entries
    one_sided: dict[int, tuple[float, float]] = {}
    steps: dict[int, float] = {}
    undecided = np.flatnonzero(code == UNDECIDED)
    plan = _ladder_plan(jd0, undecided, d, cols, blocks)
    for c, where in plan:
        pos = undecided[where]
        kk, _, j = cols[c]
        direction = np.zeros(ref.xs[kk].shape)
        direction.flat[j] = d[c]
        directions: list[np.ndarray | None] = [None] * len(ref.xs)
        directions[kk] = direction
        rows = jd0.row[pos]  # the ladder looks at this column's undecided entries only
        ana_c = jac.column(c)[rows] * d[c]
        slope = finite_abs(np.nan_to_num(ana_c, nan=0.0, posinf=0.0, neginf=0.0))
        # each row's rounding at least that of its other terms (a cancelling output)
        ln = line(p, ref, directions, None, stable,
                  (c_round * slope * (xabs[c] / d[c]), c_round * slope), rows=rows,
                  terms=jac.row_terms(rows, d, c))
        ab = c_round * eps * finite_abs(ana_c) + res[c] * d[c]
        est, jd = confirm(p, ln, ana_c, ab, h, scale)
        jd0.numeric[pos] = est.value / d[c]
        tol[pos] = jd.tolerance
        for q, r in zip(pos.tolist(), range(rows.size)):
            code[q] = _CODE[jd.verdict[r]]
            kind[q] = _KIND[jd.kind[r]]
            note[q] = jd.reason[r]
            steps[q] = float(est.step[r])
            if jd.kind[r] == "kink":
                one_sided[q] = (float(est.left[r]), float(est.right[r]))
        _record(plan, c, rows, jd, jd0, pos)
    skipped = undecided[plan.skipped]  # never laddered: the FAIL was certain before

    # -- ties: kinks of one output in several inputs, judged jointly --------------------------
    # A row's coordinatewise FAIL beside its kinks is not final: the joint judgement decides
    # it (a verdict reached once, in one place).
    outputs = [(k_out,) + tuple(int(t) for t in np.unravel_index(i, ref.ys[k_out].shape))
               for k_out, i in out_index]
    joint: dict = {}
    failed = code == FAIL_CODE
    # Failing entries that look flat (the numeric slope well inside (0, analytic): a piece
    # narrower than the step), with a margin so a gradient scaled by 2 - the numeric value
    # exactly halfway - is never judged as a sliver by the rounding of the two values.
    with np.errstate(invalid="ignore"):
        flat = failed & (3 * np.abs(jd0.numeric) < np.abs(jd0.numeric - jd0.analytic))
    is_kink = kind == _KIND["kink"]
    rough = kind != _KIND["smooth"]  # a kink's or a jump's row is not a hidden tie's
    ties = tie_rows(moves, m, (jd0.row[rough], jd0.col[rough]),
                    (jd0.row[flat], jd0.col[flat]), tied, (jd0.row[failed], jd0.col[failed]))
    if is_kink.any() or flat.any() or ties:
        kinked = _dense(jd0, is_kink, (m, n))
        judged = _dense(jd0, np.ones(jd0.row.size, bool), (m, n))
        laddered = np.zeros(jd0.row.size, bool)
        laddered[np.setdiff1d(undecided, skipped)] = True
        failing = _dense(jd0, failed, (m, n))
        groups = kink_groups(kinked, failing, _dense(jd0, flat, (m, n)),
                             tie_partners(p, ref, kinked, d, cols, h,
                                          _dense(jd0, laddered, (m, n)), judged), ties)
        dense = jac.dense()
        joint = joint_kinks(p, ref, groups, dense, d, cols, h, sigma=sigma,
                            tol=_dense_tol(p, ref, pt, h, dense, jd0), out_index=outputs,
                            support=judged, failed=failing)
        where = {(int(r), int(c)): q for q, (r, c) in enumerate(zip(jd0.row, jd0.col))}
        for (r, ks), e in list(joint.items()):
            q = where.get((r, ks[0]))
            if (len(ks) == 1 and e.verdict == FAIL and q is not None
                    and code[q] == FAIL_CODE and kind[q] == _KIND["smooth"]):
                # a lone smooth entry that only looked flat, outside its one piece too: its
                # own FAIL (with its step and numeric value) says it better than a "kink"
                del joint[(r, ks)]
                continue
            for c in ks:
                q = where.get((r, c))
                if q is not None and code[q] == FAIL_CODE:
                    code[q] = JOINT

    def entry(r: int, c: int, q: int | None) -> Entry:
        kk, _, j = cols[c]
        k_out, i_out = out_index[r]
        unit = d[c]  # entries report d f / d x, not per unit of the relative step
        t = tol[q] if q is not None else float(entry_tolerance(
            p, ref, pt, h, np.array([r]), np.array([c]), np.zeros(1), np.abs(y0[[r]]))[0])
        return Entry(
            input=kk, input_name=p.names[kk],
            index=tuple(int(t) for t in np.unravel_index(j, ref.xs[kk].shape)),
            output=(k_out,) + tuple(int(t) for t in np.unravel_index(
                i_out, ref.ys[k_out].shape)),
            analytic=float(jd0.analytic[q]) if q is not None else 0.0,
            numeric=float(jd0.numeric[q]) if q is not None else 0.0,
            bound=float(t / unit / p.opts.safety),
            tolerance=float(t / unit), step=steps.get(q, h) * float(unit),
            verdict=_NAME.get(int(code[q]), PASS) if q is not None else PASS,
            kind=_KIND_NAME[int(kind[q])] if q is not None else "smooth",
            note=note.get(q),
            one_sided=None if q not in one_sided else (
                one_sided[q][0] / unit, one_sided[q][1] / unit))

    counts = {v: int(np.count_nonzero(code == c)) for v, c in _CODE.items() if v != PASS}
    counts[PASS] = (m * n - sum(counts.values()) - int(np.count_nonzero(code == JOINT))
                    - skipped.size)
    for e in joint.values():
        counts[e.verdict] += 1
    shown = _worst(jd0, code, tol, d, entry, m, n)
    shown = sorted(joint.values(), key=lambda e: e.verdict != FAIL) + shown
    with np.errstate(all="ignore"):
        ratio = tol / (np.abs(jd0.analytic) * d[jd0.col])
        ratio[(kind != 0) | (code != PASS_CODE) | ~np.isfinite(ratio)] = np.inf
    resolved = float(np.min(ratio)) if ratio.size and np.isfinite(np.min(ratio)) else None
    check = summarise(name, shown, counts, stable, p, resolved=resolved,
                      kinks=int(np.count_nonzero(kind == _KIND["kink"])))
    check.arrays = Jacobians(jacobian if jacobian is not None else jac.dense,
                             functools.partial(jd0.dense_numeric, (m, n)))  # picklable
    check.details["transposed"] = [p.names[k] for k in transposed_blocks(
        jac, jd0, blocks, [x.shape for x in ref.xs])] if check.verdict == FAIL else []
    check.details["ladder_columns"] = len(plan.done)
    if skipped.size:
        _not_confirmed(check, p, jd0, skipped, cols, code == FAIL_CODE)
    check.details["sharpened_entries"] = sharpened
    check.details["judged_entries"] = int(jd0.row.size)
    return check


def _worst(jd0: Judged, code: np.ndarray, tol: np.ndarray, d: np.ndarray,
           entry: Callable, m: int, n: int) -> list[Entry]:
    """Entries worth showing: the failing, inconclusive and not-applicable ones (the first
    _SHOWN in row-major order), then the three closest to their tolerance."""
    r, c = jd0.row, jd0.col
    bad_all = np.flatnonzero((code == FAIL_CODE) | (code == INC_CODE) | (code == NA_CODE))
    bad = bad_all[np.lexsort((c[bad_all], r[bad_all]))][:_SHOWN]
    shown = [entry(int(r[q]), int(c[q]), int(q)) for q in bad]
    with np.errstate(all="ignore"):
        excess = np.abs(jd0.numeric - jd0.analytic) * d[c] / tol
    excess[np.isnan(excess)] = np.inf
    excess[code == JOINT] = 0.0
    excess[bad_all] = -np.inf  # shown (or left out) already: the closest among the others
    others = excess.size - bad_all.size
    if others > 0:
        k = min(3, others)
        top = np.argpartition(-excess, k - 1)[:k]
        shown += [entry(int(r[q]), int(c[q]), int(q)) for q in top]
    elif not excess.size:  # every entry is an exact zero on both sides: the first ones
        shown += [entry(i // n, i % n, None) for i in range(min(3, m * n))]
    return shown


def _dense(jd0: Judged, mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, bool)
    out[jd0.row[mask], jd0.col[mask]] = True
    return out


def _dense_tol(p: Problem, ref: Ref, pt: Point, h: float, jac: np.ndarray,
               jd0: Judged) -> np.ndarray:
    """Tolerances of every entry (the joint kink judgement reads whole rows): the judged
    ones as judged; an exact zero on both sides (f(x + h d) == f(x - h d)) is charged at
    its output's magnitude at x."""
    m, n = jac.shape
    rows, cols = np.divmod(np.arange(m * n), n)
    tol = entry_tolerance(p, ref, pt, h, rows, cols, jac.ravel(), np.abs(pt.y0[rows]))
    tol = tol.reshape(m, n)
    tol[jd0.row, jd0.col] = jd0.tol
    return tol


# -- the ladder's work list (full_ladder.py) -------------------------------------------------
def _ladder_plan(jd0: Judged, undecided: np.ndarray, d: np.ndarray,
                 cols: list[tuple[int, int, int]], blocks: list[tuple[int, int]],
                 ) -> LadderPlan:
    """The undecided entries' ladder plan, most discordant first per input."""
    c = jd0.col[undecided]
    with np.errstate(all="ignore"):
        excess = np.abs(jd0.numeric[undecided] - jd0.analytic[undecided]) * d[c] / (
            jd0.tol[undecided])
    index = np.zeros(max((kk for kk, _ in blocks), default=0) + 1, np.int64)
    for b, (kk, _) in enumerate(blocks):
        index[kk] = b
    input_of = np.fromiter((kk for kk, _, _ in cols), np.int64, len(cols))
    return LadderPlan(jd0.row[undecided], c, excess, index[input_of[c]], inputs=len(blocks))


def _record(plan: LadderPlan, c: int, rows: np.ndarray, jd: object, jd0: Judged,
            pos: np.ndarray) -> None:
    verdict, kinds = np.asarray(jd.verdict), np.asarray(jd.kind)  # type: ignore[attr-defined]
    failed = verdict == FAIL
    with np.errstate(invalid="ignore"):  # as full()'s test for entries that look flat
        flat = 3 * np.abs(jd0.numeric[pos]) < np.abs(jd0.numeric[pos] - jd0.analytic[pos])
    plan.record(c, rows, failed, kinds == "kink", flat)


def _per_input(p: Problem, cols: list[tuple[int, int, int]], c: np.ndarray,
               ) -> dict[str, int]:
    """How many of the entries in columns ``c`` belong to each input (by name)."""
    input_of = np.fromiter((kk for kk, _, _ in cols), np.int64, len(cols))
    counts = np.bincount(input_of[c], minlength=len(p.names))
    return {p.names[k]: int(n) for k, n in enumerate(counts) if n}


def _not_confirmed(check: Check, p: Problem, jd0: Judged, skipped: np.ndarray,
                   cols: list[tuple[int, int, int]], failing: np.ndarray) -> None:
    """Say what the ladder left out once the FAIL was certain: the entries that disagree
    at the first step beyond its round-off budget, unconfirmed, per input (beside the
    located FAIL entries per input)."""
    c = jd0.col[skipped]
    per_input = _per_input(p, cols, c)
    n_cols = int(np.unique(c).size)
    check.details["not_confirmed"] = {
        "entries": int(skipped.size), "columns": n_cols, "per_input": per_input,
        "located_per_input": _per_input(p, cols, jd0.col[failing])}
    where = ", ".join(f"{k}: {v}" for k, v in per_input.items())
    check.reason = (f"{check.reason}; the step ladder stopped once the FAIL was certain: "
                    f"{skipped.size} more entries in {n_cols} columns ({where}) disagree "
                    "at the first step beyond its round-off budget, not confirmed "
                    "(located entries are fewer than with every column laddered)")
    located = check.details["not_confirmed"]["located_per_input"]
    if set(per_input) - set(located) or len(located) > 1:  # another input may be wrong too
        check.details["signature"] = [s for s in check.details.get("signature", [])
                                      if not s.startswith("wrong for input")]
