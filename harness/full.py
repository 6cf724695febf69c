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

from gradverify.harness.budget import central_tolerance
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


# Verdict and kind codes for whole Jacobians (int8 arrays, not object arrays).
_CODE = {PASS: 0, INCONCLUSIVE: 1, FAIL: 2, NOT_APPLICABLE: -1}
_NAME = {v: k for k, v in _CODE.items()}
_UNDECIDED, _JOINT = 3, 4
_KIND = {"smooth": 0, "kink": 1, "jump": 2}
_KIND_NAME = {v: k for k, v in _KIND.items()}
_BLOCK = 1 << 21  # Jacobian entries judged at once in the first pass


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
    cols = [(kk, off, j) for kk, off in blocks for j in range(ref.xs[kk].size)]
    m = len(out_index)
    finite_jac = bool(np.all(np.isfinite(jac)))
    with np.errstate(all="ignore"):
        colmax = np.max(np.abs(jac), axis=0, where=np.isfinite(jac), initial=0.0)
        scale = float(np.max(colmax * d, initial=0.0))

    # -- first pass: central differences, two evaluations per column --------------------------
    numjac = np.zeros((m, n))                  # numeric Jacobian, per unit of x
    tol = np.zeros((m, n))                     # tolerance, per unit of the relative step
    verdict = np.zeros((m, n), np.int8)
    kind = np.zeros((m, n), np.int8)
    width = max(1, _BLOCK // max(m, 1))
    for start in range(0, n, width):
        stop = min(n, start + width)
        fp = np.empty((m, stop - start))
        fm = np.empty_like(fp)
        for c in range(start, stop):
            kk, _, j = cols[c]
            for sign, store in ((1.0, fp), (-1.0, fm)):
                moved = ref.xs[kk].copy()
                moved.flat[j] = moved.flat[j] + sign * h * d[c]
                xs = list(ref.xs)
                xs[kk] = moved
                y = _flat_outputs(p.forward(xs, ref.forward), shapes)
                if y is None:
                    if stable.verdict == PASS:
                        stable.verdict = FAIL
                        stable.reason = ("output shape/dtype changes under perturbation: "
                                         f"{shapes} at x, different at x + {sign * h:.3g} d")
                    y = np.full(m, np.nan)
                store[:, c - start] = y
        db = d[start:stop]
        with np.errstate(all="ignore"):
            mag = np.maximum(np.abs(fp), np.abs(fm))
            np.maximum(mag, np.abs(y0)[:, None], out=mag)
            num = fp
            num -= fm
            num /= 2 * h                                # per unit of the relative step
            ana = jac[:, start:stop] * db               # the same units
            slope = np.abs(ana)
            if not finite_jac:
                slope[np.isinf(slope)] = 0.0
            t = central_tolerance(mag, slope, xabs[start:stop] / db, sigma,
                                  res[start:stop] * db, eps, h, c_round, p.opts.safety)
            natural = np.maximum(slope, np.abs(num))
            np.maximum(natural, scale, out=natural)
            decided = (np.abs(num - ana) <= t) & (t <= p.opts.inconclusive_rtol * natural)
            decided |= (ana == 0) & (num == 0)
            num /= db
            numjac[:, start:stop] = num
        tol[:, start:stop] = t
        verdict[:, start:stop] = np.where(decided, _CODE[PASS], _UNDECIDED)

    # -- the ladder, only for columns with an undecided entry ---------------------------------
    note: dict[tuple[int, int], str | None] = {}
    one_sided: dict[tuple[int, int], tuple[float, float]] = {}
    steps: dict[tuple[int, int], float] = {}
    ladder = np.flatnonzero((verdict == _UNDECIDED).any(axis=0))
    for c in ladder:
        kk, _, j = cols[c]
        direction = np.zeros(ref.xs[kk].shape)
        direction.flat[j] = d[c]
        directions: list[np.ndarray | None] = [None] * len(ref.xs)
        directions[kk] = direction
        ana_c = jac[:, c] * d[c]
        slope = finite_abs(np.nan_to_num(ana_c, nan=0.0))
        ln = line(p, ref, directions, None, stable,
                  (c_round * slope * (xabs[c] / d[c]), c_round * slope))
        ab = c_round * eps * finite_abs(ana_c) + res[c] * d[c]
        est, jd = confirm(p, ln, ana_c, ab, h, scale)
        rows = np.flatnonzero(verdict[:, c] == _UNDECIDED)
        numjac[rows, c] = est.value[rows] / d[c]
        tol[rows, c] = jd.tolerance[rows]
        for r in rows:
            verdict[r, c] = _CODE[jd.verdict[r]]
            kind[r, c] = _KIND[jd.kind[r]]
            note[(r, c)] = jd.reason[r]
            steps[(r, c)] = float(est.step[r])
            if jd.kind[r] == "kink":
                one_sided[(r, c)] = (float(est.left[r]), float(est.right[r]))

    # -- ties: kinks of one output in several inputs, judged jointly --------------------------
    # A row's coordinatewise FAIL beside its kinks is not final: the joint judgement decides
    # it (a verdict reached once, in one place).
    outputs = [(k_out,) + tuple(int(t) for t in np.unravel_index(i, ref.ys[k_out].shape))
               for k_out, i in out_index]
    joint: dict = {}
    failed = verdict == _CODE[FAIL]
    if (kind == _KIND["kink"]).any() or failed.any():
        with np.errstate(invalid="ignore"):
            flat = failed & (np.abs(numjac - jac) > np.abs(numjac))  # numeric nearer 0
        groups = kink_groups(kind == _KIND["kink"], failed, flat)
        joint = joint_kinks(p, ref, groups, jac, d, cols, h, sigma=sigma, tol=tol,
                            out_index=outputs)
        for r, ks in joint:
            pending = [c for c in ks if verdict[r, c] == _CODE[FAIL]]
            verdict[r, pending] = _JOINT

    def entry(r: int, c: int) -> Entry:
        kk, _, j = cols[c]
        k_out, i_out = out_index[r]
        unit = d[c]  # entries report d f / d x, not per unit of the relative step
        code = int(verdict[r, c])
        return Entry(
            input=kk, input_name=p.names[kk],
            index=tuple(int(t) for t in np.unravel_index(j, ref.xs[kk].shape)),
            output=(k_out,) + tuple(int(t) for t in np.unravel_index(
                i_out, ref.ys[k_out].shape)),
            analytic=float(jac[r, c]), numeric=float(numjac[r, c]),
            bound=float(tol[r, c] / unit / p.opts.safety),
            tolerance=float(tol[r, c] / unit), step=steps.get((r, c), h) * float(unit),
            verdict=_NAME.get(code, PASS), kind=_KIND_NAME[int(kind[r, c])],
            note=note.get((r, c)),
            one_sided=None if (r, c) not in one_sided else (
                one_sided[(r, c)][0] / unit, one_sided[(r, c)][1] / unit))

    counts = {v: int(np.count_nonzero(verdict == code)) for v, code in _CODE.items()}
    for e in joint.values():
        counts[e.verdict] += 1
    with np.errstate(all="ignore"):
        excess = np.abs(numjac - jac)
        excess *= d
        excess /= tol
    excess[np.isnan(excess)] = np.inf
    excess[verdict == _JOINT] = 0.0
    bad = np.nonzero((verdict == _CODE[FAIL]) | (verdict == _CODE[INCONCLUSIVE])
                     | (verdict == _CODE[NOT_APPLICABLE]))
    shown = [entry(r, c) for r, c in list(zip(*bad))[:_SHOWN]]
    if excess.size:
        top = np.argpartition(-excess, min(3, excess.size - 1), axis=None)[:3]
        shown += [entry(*np.unravel_index(i, excess.shape)) for i in top]
    shown = sorted(joint.values(), key=lambda e: e.verdict != FAIL) + shown
    with np.errstate(all="ignore"):
        ratio = np.abs(jac) * d
        np.divide(tol, ratio, out=ratio)
        ratio[(kind != 0) | (verdict != 0) | ~np.isfinite(ratio)] = np.inf
    resolved = float(np.min(ratio)) if ratio.size and np.isfinite(np.min(ratio)) else None
    check = summarise(name, shown, counts, stable, p, resolved=resolved,
                      kinks=int(np.count_nonzero(kind == _KIND["kink"])))
    check.details["transposed"] = [p.names[k] for k in transposed_inputs(
        jac, numjac, blocks, [x.shape for x in ref.xs])] if check.verdict == FAIL else []
    check.details["ladder_columns"] = len(ladder)
    check.arrays = {"analytic": jac, "numeric": numjac}
    return check
