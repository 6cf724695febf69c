"""Full mode: the whole Jacobian, analytic (row by row through the VJP) against numeric
(column by column), judged as arrays.

First pass, 2 forward evaluations per input element: the central difference at the
relative step h for every column at once. An entry is decided there when it agrees with the
analytic value within ``safety × budget`` without a truncation term (agreement at the
round-off level is evidence enough; a disagreement is not, since truncation is unknown).
Only columns holding an undecided entry go to the step ladder (Richardson, kinks, jumps,
noise), and rows whose kinks involve several inputs go to the joint Clarke judgement.

>>> import numpy as np
>>> from gradverify.harness import check_vjp
>>> r = check_vjp(np.tanh, lambda xs, gs: (gs[0] * (1 - np.tanh(xs[0]) ** 2),),
...               [np.linspace(-1, 1, 50)], mode="full")
>>> r.verdict, r.evaluations["forward"] <= 2 * 50 + 2 + 10   # + hygiene + noise level
('PASS', True)
"""

from __future__ import annotations

import numpy as np

from gradverify.harness.budget import C_NOISE, ErrorBudget, tolerance
from gradverify.harness.calls import Problem
from gradverify.harness.diagnosis import transposed_inputs
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
from gradverify.harness.numeric import NOISE_SPACING, noise_samples
from gradverify.harness.report import FAIL, PASS, Check, Entry
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
                      ) -> np.ndarray:
    """Rows = float output entries, columns = differentiable input entries."""
    float_outs = [k for k, y in enumerate(ref.ys) if y.dtype.kind == "f"]
    rows = [(k, i) for k in float_outs for i in range(ref.ys[k].size)]
    jac = np.zeros((len(rows), n))
    for row, (k, i) in enumerate(rows):
        cts = [np.zeros_like(y) for y in ref.ys]
        cts[k].flat[i] = 1
        gs = normalise(p.vjp(ref.xs, cts, ref.vjp), ref.xs)
        for kk, off in blocks:
            if gs[kk] is not None:
                jac[row, off:off + ref.xs[kk].size] = np.asarray(gs[kk], np.float64).ravel()
    return jac


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
    jac = analytic_jacobian(p, ref, blocks, n) if jacobian is None else jacobian
    sc = scales(ref.xs)
    h = step(p, ref)
    eps, c_round = ref.eps, p.opts.c_round
    d = np.concatenate([sc[k].ravel() for k, _ in blocks]) if blocks else np.ones(0)
    xabs = np.concatenate([np.abs(ref.xs[k].astype(np.float64)).ravel() for k, _ in blocks]
                          ) if blocks else np.ones(0)
    res = np.concatenate([residual[k].ravel() for k, _ in blocks]) if blocks else np.ones(0)
    y0 = np.concatenate([np.asarray(ref.ys[k], np.float64).ravel() for k in float_outs])
    sigma = _output_noise(p, ref, sc, h, shapes)

    # -- first pass: central differences, two evaluations per column --------------------------
    fp = np.zeros((len(out_index), n))
    fm = np.zeros_like(fp)
    cols = [(kk, off, j) for kk, off in blocks for j in range(ref.xs[kk].size)]
    for c, (kk, _, j) in enumerate(cols):
        x = ref.xs[kk]
        for sign, store in ((1.0, fp), (-1.0, fm)):
            moved = x.copy()
            moved.flat[j] = moved.flat[j] + sign * h * d[c]
            xs = list(ref.xs)
            xs[kk] = moved
            y = _flat_outputs(p.forward(xs, ref.forward), shapes)
            if y is None:
                if stable.verdict == PASS:
                    stable.verdict = FAIL
                    stable.reason = ("output shape/dtype changes under perturbation: "
                                     f"{shapes} at x, different at x + {sign * h:.3g} d")
                y = np.full(len(out_index), np.nan)
            store[:, c] = y
    with np.errstate(all="ignore"):
        num = (fp - fm) / (2 * h)                       # per unit of the relative step
        ana = jac * d                                   # the same units
        mag = np.maximum(np.maximum(np.abs(fp), np.abs(fm)), np.abs(y0)[:, None])
        budget = ErrorBudget.zeros(0)
        budget.output_roundoff = c_round * eps * mag / h
        budget.argument_rounding = c_round * eps * finite_abs(ana) * (xabs / d + h) / h
        budget.cancellation = np.broadcast_to(C_NOISE * sigma[:, None] / h, num.shape)
        budget.analytic_rounding = c_round * eps * finite_abs(ana) + res * d
        budget.truncation = np.zeros(num.shape)
        budget.float32 = np.zeros(num.shape)
        tol = tolerance(budget, p.opts.safety)
        err = np.abs(num - ana)
        scale = float(np.max(finite_abs(np.nan_to_num(ana)), initial=0.0))
        natural = np.maximum.reduce([np.abs(ana), np.abs(num), np.full(num.shape, scale)])
        decided = np.isfinite(num) & np.isfinite(ana) & (err <= tol) & (
            tol <= p.opts.inconclusive_rtol * natural)
        decided |= (ana == 0) & (num == 0)
    verdict = np.where(decided, PASS, "").astype(object)
    kind = np.full(num.shape, "smooth", dtype=object)
    note: dict[tuple[int, int], str | None] = {}
    one_sided: dict[tuple[int, int], tuple[float, float]] = {}
    steps = np.full(num.shape, h)
    bound = budget.numeric()

    # -- the ladder, only for columns with an undecided entry ---------------------------------
    for c in np.flatnonzero(~decided.all(axis=0)):
        kk, _, j = cols[c]
        direction = np.zeros(ref.xs[kk].shape)
        direction.flat[j] = d[c]
        directions: list[np.ndarray | None] = [None] * len(ref.xs)
        directions[kk] = direction
        slope = finite_abs(np.nan_to_num(ana[:, c], nan=0.0))
        arg = c_round * slope * (xabs[c] / d[c])
        ln = line(p, ref, directions, None, stable, (arg, c_round * slope))
        ab = c_round * eps * finite_abs(ana[:, c]) + res[c] * d[c]
        est, jd = confirm(p, ln, ana[:, c], ab, h, scale)
        rows = np.flatnonzero(~decided[:, c])
        num[rows, c] = est.value[rows]
        tol[rows, c] = jd.tolerance[rows]
        bound[rows, c] = est.bound[rows]
        steps[rows, c] = est.step[rows]
        for r in rows:
            verdict[r, c] = jd.verdict[r]
            kind[r, c] = jd.kind[r]
            note[(r, c)] = jd.reason[r]
            if jd.kind[r] == "kink":
                one_sided[(r, c)] = (float(est.left[r]), float(est.right[r]))

    def entry(r: int, c: int, verdict_rc: str | None = None) -> Entry:
        kk, _, j = cols[c]
        k_out, i_out = out_index[r]
        unit = d[c]  # entries report d f / d x, not per unit of the relative step
        return Entry(
            input=kk, input_name=p.names[kk],
            index=tuple(int(t) for t in np.unravel_index(j, ref.xs[kk].shape)),
            output=(k_out,) + tuple(int(t) for t in np.unravel_index(
                i_out, ref.ys[k_out].shape)),
            analytic=float(ana[r, c] / unit), numeric=float(num[r, c] / unit),
            bound=float(bound[r, c] / unit), tolerance=float(tol[r, c] / unit),
            step=float(steps[r, c] * unit), verdict=verdict_rc or verdict[r, c],
            kind=kind[r, c], note=note.get((r, c)),
            one_sided=None if (r, c) not in one_sided else (
                one_sided[(r, c)][0] / unit, one_sided[(r, c)][1] / unit))

    # -- ties: kinks of one output in several inputs, judged jointly --------------------------
    # A row's coordinatewise FAIL inside a linked group of kink columns is not final: the
    # joint judgement decides it (a verdict reached once, in one place).
    outputs = [(k_out,) + tuple(int(t) for t in np.unravel_index(i, ref.ys[k_out].shape))
               for k_out, i in out_index]
    joint = joint_kinks(p, ref, kink_groups(kind, verdict), ana, d, cols, h, sigma=sigma, tol=tol,
                        out_index=outputs)
    for r, ks in joint:
        pending = [c for c in ks if verdict[r, c] == FAIL]
        verdict[r, pending] = "JOINT"

    with np.errstate(all="ignore"):
        excess = np.where(tol > 0, np.abs(num - ana) / tol, np.where(num == ana, 0, np.inf))
    excess = np.nan_to_num(excess, nan=np.inf)
    excess[verdict == "JOINT"] = 0.0
    flat_verdicts = [v for v in verdict.ravel() if v != "JOINT"]
    flat_verdicts += [e.verdict for e in joint.values()]
    shown = [entry(r, c) for r, c in zip(*np.nonzero((verdict != PASS) & (verdict != "JOINT")))
             ][:_SHOWN]
    order = np.argsort(-excess, axis=None)[:3]
    shown += [entry(*np.unravel_index(i, num.shape)) for i in order]
    shown = sorted(joint.values(), key=lambda e: e.verdict != FAIL) + shown
    smooth = (kind == "smooth") & (verdict == PASS) & (ana != 0) & np.isfinite(ana)
    resolved = float(np.min(tol[smooth] / np.abs(ana[smooth]))) if smooth.any() else None
    check = summarise(name, shown, flat_verdicts, stable, p, resolved=resolved)
    check.details["transposed"] = [p.names[k] for k in transposed_inputs(
        jac, num / d, blocks, [x.shape for x in ref.xs])] if check.verdict == FAIL else []
    check.details["ladder_columns"] = int((~decided.all(axis=0)).sum())
    check.arrays = {"analytic": jac, "numeric": num / d}
    return check
