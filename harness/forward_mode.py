"""The forward-mode seam: a ``jvp(inputs, tangents) -> output tangents`` checked by the same
machinery as the VJP.

- full mode: the JVP's Jacobian, column by column (one JVP per input element), against the
  numeric Jacobian (check ``jvp``);
- fast mode: ``<v, J u>`` from the JVP against the numeric directional derivative of
  ``<v, f(x + t u)>`` on fast mode's probes: the first pass's own directions and central
  differences (``probes.py``: one JVP per direction, no forward evaluation; check ``jvp``),
  and the consistency of the two
  modes ``<v, J u> = <J^T v, u>`` within rounding (check ``jvp.consistency``).

>>> import numpy as np
>>> from gradverify.harness import check_vjp
>>> jvp = lambda xs, us: (np.cos(xs[0]) * us[0],)
>>> vjp = lambda xs, gs: (np.cos(xs[0]) * gs[0],)
>>> r = check_vjp(np.sin, vjp, [np.linspace(0, 1, 4)], jvp=jvp, mode="fast")
>>> r.verdict, [c.name for c in r.checks if c.name.startswith("jvp")]
('PASS', ['jvp', 'jvp.consistency'])
"""

from __future__ import annotations

import numpy as np

from gradverify.harness.budget import C_ROUND, C_SIGMA, SAFETY
from gradverify.harness.calls import Problem
from gradverify.harness.full import full
from gradverify.harness.lines import (
    Ref,
    all_finite,
    finite_max,
    first_pass_step,
    line,
    step,
    support,
)
from gradverify.harness.probe_sums import dot, product_norm
from gradverify.harness.probe_work import WorkArrays
from gradverify.harness.probes import FirstPass, Measured, Outcome
from gradverify.harness.report import FAIL, PASS, Check, Entry
from gradverify.harness.verdicts import confirm, summarise

__all__ = ["check_jvp"]


def _cast(directions: list[np.ndarray | None], xs: list[np.ndarray]) -> list:
    return [None if d is None else d.astype(x.dtype, copy=False) for d, x in zip(directions, xs)]


def _tangents(p: Problem, ref: Ref, xs: list[np.ndarray],
              directions: list[np.ndarray | None], out: list | None = None,
              ) -> np.ndarray | None:
    """The JVP's output tangents, flattened over the float outputs (None: wrong shape);
    ``out``: the JVP's result if already made (``Problem.jvps``)."""
    if out is None:
        out = p.jvp(xs, _cast(directions, xs))
    floats = [y for y in ref.ys if y.dtype.kind == "f"]
    got = [t for t, y in zip(out, ref.ys) if y.dtype.kind == "f"] if len(out) == len(
        ref.ys) else out
    if len(got) != len(floats) or any(np.shape(t) != y.shape for t, y in zip(got, floats)):
        return None
    flat = [np.asarray(t, np.float64).ravel() for t in got]
    return flat[0] if len(flat) == 1 else np.concatenate(flat)


def _relative_move(d: np.ndarray, x: np.ndarray, work: WorkArrays, k: int) -> float:
    """max |d| / max(|x|, 1) over the entries, in work arrays."""
    d, x = np.asarray(d), np.asarray(x)
    if not d.size:
        return 0.0
    scale = np.abs(x, out=work.buffer(("jvp_scale", k), x, x.dtype))
    np.maximum(scale, 1.0, out=scale)
    ratio = np.abs(d, out=work.buffer(("jvp_move", k), d, d.dtype))
    return float(np.divide(ratio, scale, out=ratio).max())


def _shape_fail(p: Problem, ref: Ref) -> Check:
    shapes = [tuple(y.shape) for y in ref.ys]
    return Check("jvp", FAIL, f"the jvp's output tangents do not have the outputs' shapes "
                 f"{shapes}")


def check_jvp(p: Problem, ref: Ref, use_full: bool, v1: list[np.ndarray],
              g1: list[np.ndarray], gradient: str) -> list[Check]:
    """The ``jvp`` checks (see the module docstring); ``gradient``: the VJP check's
    verdict, which a fast-mode probe at a kink inherits when the two modes agree on it."""
    xs = ref.xs
    blocks = support(p, ref)
    if use_full:
        n = sum(xs[k].size for k, _ in blocks)
        n_out = sum(y.size for y in ref.ys if y.dtype.kind == "f")
        jac = np.zeros((n_out, n))
        for kk, off in blocks:
            for j in range(xs[kk].size):
                directions: list[np.ndarray | None] = [None] * len(xs)
                e = np.zeros(xs[kk].shape)
                e.flat[j] = 1.0
                directions[kk] = e
                col = _tangents(p, ref, xs, directions)
                if col is None:
                    return [_shape_fail(p, ref)]
                jac[:, off + j] = col
        residual = [np.zeros(x.shape) for x in xs]
        return [full(p, ref, residual, jacobian=jac, name="jvp")]
    return _fast(p, ref, v1, g1, gradient)


def _fast(p: Problem, ref: Ref, v1: list[np.ndarray], g1: list[np.ndarray],
          gradient: str) -> list[Check]:
    """The JVP on fast mode's probes: the directions of the VJP check's first pass and
    their central differences (``p.probe_record``, kept by ``probes.FirstPass``: no forward
    evaluation of its own; fresh directions when there is none), each probe's
    ``<v, J u>`` from the JVP judged against the numeric one; an undecided probe goes to
    the step ladder."""
    work = WorkArrays(pool=True)  # (probe_work.py: no fresh arrays of the inputs' size)
    try:
        return _fast_probes(p, ref, v1, g1, gradient, work)
    finally:
        work.release_work()


def _fast_probes(p: Problem, ref: Ref, v1: list[np.ndarray], g1: list[np.ndarray],
                 gradient: str, work: WorkArrays) -> list[Check]:
    h = step(p, ref)
    stable = Check("hygiene.output_stable", PASS)
    entries: list[Entry] = []
    verdicts: list[str] = []
    consistency: list[Entry] = []
    # the natural size of the terms both modes sum, |v| |y| per unit of relative move:
    # a tiny <v, J u> made by cancellation (layer_norm of two entries, ~1e-5 from terms
    # of 1) rounds at their size in either mode
    terms = sum(finite_max(t) * finite_max(y) for t, y in zip(v1, ref.ys)
                if y.dtype.kind == "f" and all_finite(y))
    record = list(p.probe_record or [])
    # on the recorded directions only rejudge is asked: the pass that recorded them has
    # the same first cotangent v1, VJP and step (probes.FirstPass), so its sizes serve
    first, h_first = getattr(p, "probe_pass", None) if record else None, first_pass_step(p, ref)
    if first is None or first.h != h_first or first.ref is not ref:
        first = FirstPass(p, ref, [v1], [g1], [np.zeros(x.shape) for x in ref.xs], h_first)
    vf = first.vs[0]  # v1 flat over the float outputs, in float64
    # the recorded directions' JVPs in one call when the JVP offers several per call
    made = p.jvps(ref.xs, [_cast(d, ref.xs) for d, _ in record]) if getattr(
        p.jvp_fn, "many", None) is not None and len(record) > 1 else None
    for k in range(len(record) or p.opts.probes):
        if record:  # v1 is the first pass's first cotangent: its entries [:1]
            directions, m = record[k]
            measured: Measured | None = Measured(m.numeric[:1], m.output[:1],
                                                 m.rounding[:1], m.analytic[:1], m.scale)
            backward = float(m.analytic[0])
        else:
            steps = first.steps()
            directions, measured = first.direction(steps), None
            backward = sum(float(np.sum(np.asarray(gk, np.float64) * d))
                           for gk, d in zip(g1, directions) if d is not None)
        tangent = _tangents(p, ref, ref.xs, directions, made[k] if made else None)
        if tangent is None:
            return [_shape_fail(p, ref)]
        forward = dot(vf, tangent)  # one thread (probe_sums.dot)
        walk_f = product_norm(vf, tangent)  # = norm2(vf * finite_abs(tangent))
        walk_b = float(first.g_s[0])  # >= ||g u||: |u| <= s entry by entry
        move = max((_relative_move(d, x, work, k) for k, (d, x) in enumerate(zip(
            directions, ref.xs)) if d is not None), default=0.0)
        round_tol = SAFETY * C_SIGMA * C_ROUND * ref.eps * (walk_f + walk_b + terms * move)
        consistency.append(Entry(input=0, index=None, input_name="probe", analytic=forward,
                                 numeric=backward, bound=0.0, tolerance=round_tol, step=0.0,
                                 verdict=PASS if abs(forward - backward) <= round_tol
                                 else FAIL, note="<v, J u> (jvp) against <J^T v, u> (vjp)"))
        ab = np.array([ref.eps * C_ROUND * walk_f])
        if measured is not None:
            outcomes: list[Outcome] | None = first.rejudge(measured, np.array([forward]), ab)
        else:
            outcomes = first.judge(steps, np.array([forward]), ab)
        if outcomes is not None and outcomes[0].passed:
            o = outcomes[0]
            entries.append(Entry(input=0, index=None, input_name="probe", analytic=forward,
                                 numeric=o.numeric, bound=0.0, tolerance=o.tolerance, step=h,
                                 verdict=PASS))
            verdicts.append(PASS)
            continue
        ln = line(p, ref, directions, [np.asarray(t, np.float64) for t in v1], stable)
        est, jd = confirm(p, ln, np.array([forward]), ab, h, walk_f)
        verdict, note = jd.verdict[0], jd.reason[0]
        if verdict == FAIL and jd.kind[0] == "kink" and consistency[-1].verdict == PASS:
            # One line's bracket is not Clarke's hull (abs at two zeros: a probe's pieces
            # mix). <v, J u> equals the VJP's <J^T v, u> here, which the gradient check
            # judged jointly at its kinks: the JVP is as right as the VJP.
            verdict, note = gradient, "at a kink: the jvp equals the vjp along the probe"
        entries.append(Entry(input=0, index=None, input_name="probe", analytic=forward,
                             numeric=float(est.value[0]), bound=float(est.bound[0]),
                             tolerance=float(jd.tolerance[0]), step=float(est.step[0]),
                             verdict=verdict, kind=jd.kind[0], note=note))
        verdicts.append(verdict)
    check = summarise("jvp", entries, verdicts, stable, p)
    cons = summarise("jvp.consistency", consistency, [e.verdict for e in consistency],
                     Check("stable", PASS), p)
    if cons.verdict == FAIL:
        cons.reason = "the jvp and the vjp disagree: <v, J u> != <J^T v, u> beyond rounding"
    return [check, cons]
