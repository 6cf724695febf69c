"""Fast mode's first pass: many probes ``<v_j, J u_k>`` from two forward evaluations per
direction, judged at the round-off level.

- Cotangents ``v_j``: the ones whose VJPs the hygiene checks already made (``vjp(v1)``,
  ``vjp(v2)`` of the linearity check), so the first pass costs no extra VJP; when the
  output entries' sizes are spread out (1e-17 beside 3), one more per scale band,
  restricted to the band's entries (``entry_bands.py``, :meth:`FirstPass.add`). Directions
  ``u_k``: uniform on ``[-s, s]`` per entry, ``s = |x|`` raised toward the input's RMS
  but at most 16 |x| (``probe_sums.probe_scales``: a fault on an entry near 0 still
  weighs, and no step crosses 0), on a grid of 2^-32 of that range (``lines.uniform``:
  raw 32-bit draws of the seeded rng, one product per entry; what the grid's atoms cost
  the miss bound: ``miss_bound.py``).
- One central difference ``(f(x + h u) - f(x - h u)) / 2h`` gives ``J u`` numerically for
  every output at once, so it serves every cotangent: each pair (v_j, u_k) is a probe.
- Each probe is judged with the round-off terms of the budget only
  (:func:`~gradverify.harness.budget.central_roundoff`): agreement within the budget
  itself (``DECISIVE_SHARE`` of the tolerance) PASSes; a probe that does not agree (a
  fault, truncation, noise inside the function, a kink, or an error inside the safety
  margin: one entry of a scalar loss off by 1e-5) is *undecided* and goes to the full
  machinery (``fast.Probe``: measured noise, the step ladder, localisation, kinks). The
  first pass never FAILs anything.
- Before that, a direction some probe did not agree on is looked at again at steps 2h
  and 4h (``probe_rungs.py``: Richardson extrapolation, 4 forward evaluations for every
  cotangent at once): a smooth function whose truncation stands above round-off (log
  near 0, x^3, sin(100 x)) is decided there.

How few directions bound the miss of a fault: ``miss_bound.py`` (derived there).

With a JVP, the directions and their central differences are kept (``record``) and the
JVP is judged on them too (``forward_mode.py``): no forward evaluation of its own.
The band cotangents are made from the first direction's outputs, so that direction
does not count for them: they are judged on the directions drawn after the bands (as many
as ``probes``, or fewer by the same rule, counted from there), for which each is a fixed
vector and the bound holds as stated, relative to its band's own size.

Cost: 2 forward evaluations per direction whatever the number of elements, a handful of
passes over the inputs and outputs per direction (no Gaussian draws, no ECnoise on a probe
that agrees), and the resolution reached (``tolerance / |analytic|``) does not depend on
the number of elements either: the outputs' round-off is a random walk over the entries,
like the analytic sum it is compared with.

>>> import numpy as np
>>> from gradverify.harness import check_vjp
>>> tanh_vjp = lambda xs, gs: (gs[0] * (1 - np.tanh(xs[0]) ** 2),)
>>> r = check_vjp(np.tanh, tanh_vjp, [np.linspace(-2, 2, 1000)], mode="fast")
>>> r.verdict, r.evaluations["forward"], r.resolved_rtol < 1e-6
('PASS', 6, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Any

import numpy as np

from gradverify.harness.budget import C_ROUND, C_SIGMA, DECISIVE_SHARE
from gradverify.harness.calls import Problem, aligned_empty
from gradverify.harness.lines import RAW_UNIT, Ref, first_pass_step, norm2, raw_int32
from gradverify.harness.miss_bound import (
    MISS_BOUND,
    Outcome,
    atom_miss,
    direction_rtol,
    enough_directions,
)
from gradverify.harness.probe_rungs import coarser_rungs
from gradverify.harness.probe_sums import (
    ONE_THREAD_DOT,
    dot,
    dots,
    larger_square,
    probe_scales,
    product_squares,
    square_walks,
)
from gradverify.harness.probe_work import WorkArrays

__all__ = ["FirstPass", "MISS_BOUND", "Measured", "Outcome", "atom_miss", "direction_rtol",
           "enough_directions"]

@dataclass
class Measured:
    """One direction's numeric side, per cotangent: ``<v_j, J u>`` by the central
    difference along the steps taken (:meth:`FirstPass.central`), the outputs' round-off,
    the analytic sum's rounding, and ``<J^T v_j, u>`` along the same steps."""

    numeric: np.ndarray
    output: np.ndarray
    rounding: np.ndarray
    analytic: np.ndarray
    scale: float = 1.0  # the steps' multiple of h (miss_bound.widened)


class FirstPass(WorkArrays):
    """The cotangents with their VJPs, flattened once; :meth:`judge` compares them all
    along one direction."""

    def __init__(self, p: Problem, ref: Ref, vs: Sequence[Sequence[np.ndarray]],
                 gs: Sequence[Sequence[np.ndarray]], residual: Sequence[np.ndarray],
                 h: float | None = None, pool: bool = False):
        h = first_pass_step(p, ref) if h is None else h  # (budget.probe_step)
        self.p, self.ref, self.h = p, ref, h
        # next direction's steps / h (miss_bound.widened); last one decided before rungs?
        self.scale, self.first_look = 1.0, True
        # A JVP check reuses the directions and their central differences (forward_mode)
        self.record: list[tuple[list[np.ndarray | None], Measured]] | None = None
        if getattr(p, "jvp_fn", None) is not None and getattr(p, "probe_record", 0) is None:
            self.record = p.probe_record = []
            p.probe_pass = self  # its scales and tolerance serve the JVP's rejudge too
        super().__init__(pool)  # (the work arrays of this thread's previous check)
        self.diff = [k for k, d in enumerate(p.diff) if d]
        self.floats = [k for k, y in enumerate(ref.ys) if y.dtype.kind == "f"]
        sc = probe_scales([ref.xs[k] for k in self.diff])
        self.vs = [self._outputs(v) for v in vs]
        self.gs = [self._inputs(g) for g in gs]
        # a direction's entries lie in [-s, s]: the terms that depend on |u| are bounded
        # once with s (at most sqrt(3) above their mean; s >= |x| bounds the argument's
        # rounding too), all of them small beside the outputs' round-off
        s = self._inputs_of(sc)
        res = self._inputs(residual)
        # (no np.errstate: every caller runs under check_vjp's, like judge)
        # ||g s||: bounds ||g u|| and ||g x||
        # (a product above 1e154 squares to inf: norm2 scales it first)
        self.g_s = np.array([math.sqrt(q) if math.isfinite(q) else norm2(g * s)
                             for q, g in zip(product_squares(self.gs, s).tolist(), self.gs)])
        # bounds sum |r| |u|, per cotangent (the bands measure their own: add)
        self.res_s = np.full(len(self.vs), dot(res, s))
        # below the smallest normal number an output rounds by its subnormal spacing
        self.sub = max(float(np.finfo(ref.ys[k].dtype).smallest_subnormal)
                       for k in self.floats) / ref.eps
        self.v_norm = np.sqrt([dot(v, v) for v in self.vs])
        self.floor = self.sub * self.v_norm
        # the scales become the steps' ranges 2 h s in place, in units of the draws'
        # 2^-32 grid (lines.raw_int32: a step is then one product; s is not needed any
        # more; a 0-d input's scale is a NumPy scalar, which has no place to write to)
        unit = 2 * h * RAW_UNIT
        self.hs2 = [np.multiply(t, unit, out=t) if isinstance(t, np.ndarray) and t.ndim
                    else unit * t for t in sc]
        # what the draws' grid and the moved points' rounding add to each direction's miss
        # (miss_bound.py: Atoms)
        self.atoms = atom_miss(sum(self.ref.xs[k].size for k in self.diff), max(
            float(np.finfo(self.ref.xs[k].dtype).eps) for k in self.diff) / h)
        # each float output's range in the flat outputs; the last direction's outputs and
        # sizes, kept only when asked (entry_bands.py reads them)
        ends = [0, *accumulate(ref.ys[k].size for k in self.floats)]
        self.segments = list(pairwise(ends))
        self.keep = False
        self.plain = len(self.vs)  # the cotangents added later are the scale bands
        self._last: tuple = (None, None, None, None)
        self._sq: list[np.ndarray] | None = None
        self._stacked: dict[str, np.ndarray] = {}
        self._steps: list[tuple[int, Any, np.ndarray]] | None = None
        self._moved: list[tuple[int, np.ndarray, np.ndarray]] | None = None

    def add(self, v: Sequence[np.ndarray], g: Sequence[np.ndarray],
            residual: Sequence[np.ndarray]) -> None:
        """One more cotangent, its VJP and that VJP's measured non-linearity, judged from
        the next direction on."""
        vf, gf = self._outputs(v), self._inputs(g)
        self.vs.append(vf)
        self.gs.append(gf)
        with np.errstate(all="ignore"):
            hs = self._inputs_of([np.broadcast_to(t, self.ref.xs[k].shape)
                                  for k, t in zip(self.diff, self.hs2)]) / (
                                      2 * self.h * RAW_UNIT)
            # norm2: the squares of a band's tiny products underflow (1e-200)
            gs, norm = norm2(gf * hs), norm2(vf)
            res = float(np.einsum("i,i->", self._inputs(residual), hs))
        self.g_s = np.append(self.g_s, gs)
        self.res_s = np.append(self.res_s, res)
        self.v_norm = np.append(self.v_norm, norm)
        self.floor = np.append(self.floor, self.sub * norm)

    def _squares(self) -> list[np.ndarray]:
        # v_j^2 of the plain cotangents, made at the first direction (work arrays)
        if self._sq is None:
            self._sq = [np.multiply(v, v, out=self.buffer(("vv", j), v))
                        for j, v in enumerate(self.vs[:self.plain])]
        return self._sq

    def _dots(self, key: str, rows: list[np.ndarray], x: np.ndarray) -> np.ndarray:
        # A small check's rows are stacked once: one matrix-vector product per direction
        # instead of a call per row (a cotangent added since is stacked again).
        if len(rows) * x.size > ONE_THREAD_DOT:
            return dots(rows, x)
        m = self._stacked.get(key)
        if m is None or len(m) != len(rows):
            m = self._stacked[key] = np.stack(rows)
        return np.dot(m, x)

    def last_outputs(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The flat float outputs at x + h u and x - h u of the last direction judged
        with ``keep`` set (None otherwise)."""
        return self._last[0], self._last[1]

    def last_sizes(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``max(f(x + h u)^2, f(x - h u)^2)`` per flat output entry and the outputs'
        round-off walk per cotangent, of the last direction judged with ``keep`` set."""
        return self._last[2], self._last[3]

    def forget(self) -> None:
        """Drop the kept outputs (their memory is reused by the next evaluations)."""
        self._last = (None, None, None, None)

    def _outputs(self, ys: Sequence[np.ndarray]) -> np.ndarray:
        parts = [np.asarray(ys[k], np.float64).ravel() for k in self.floats]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _inputs(self, xs: Sequence[np.ndarray]) -> np.ndarray:
        return self._inputs_of([xs[k] for k in self.diff])

    @staticmethod
    def _inputs_of(parts: Sequence[np.ndarray]) -> np.ndarray:
        flat = [np.asarray(x, np.float64).ravel() for x in parts]
        return flat[0] if len(flat) == 1 else np.concatenate(flat)

    def release(self) -> None:
        """Done: the work arrays go to the next check (probe_work.py)."""
        self._last = (None, None, None, None)
        self.release_work()

    def steps(self) -> list[np.ndarray | None]:
        """``h u`` for a random direction u, uniform on [-s, s] per entry with s from
        ``probe_sums.probe_scales`` (None: not differentiated). The arrays are reused
        by the next call: :meth:`direction` copies what must be kept."""
        out: list[np.ndarray | None] = [None] * len(self.ref.xs)
        for k, hs2, step in self._step_buffers():
            # = lines.uniform times 2 h s, in one pass into the work array
            raw = raw_int32(self.p.rng, step.size).reshape(step.shape)
            out[k] = np.multiply(raw, hs2, out=step)
        return out

    def _step_buffers(self) -> list[tuple[int, Any, np.ndarray]]:
        # (looked up once per check: a small check makes a dozen evaluations)
        if self._steps is None:
            self._steps = [(k, hs2, self.buffer(("step", k), hs2))
                           for k, hs2 in zip(self.diff, self.hs2)]
        return self._steps

    def direction(self, steps: list[np.ndarray | None]) -> list[np.ndarray | None]:
        """The direction u of ``steps``, 64-byte aligned (a framework reads it in place)."""
        return [None if d is None else np.divide(d, self.h, out=aligned_empty(
            np.shape(d))) for d in steps]

    def _evaluate(self, steps: list[np.ndarray | None], sign: float,
                  scale: float = 1.0) -> np.ndarray | None:
        # The moved inputs are work arrays too (like torch's gradcheck, which perturbs its
        # inputs in place); a function that caches by input identity only makes the
        # first pass undecided, and the full machinery evaluates on fresh arrays.
        # Both sides share one buffer per input: x - h u overwrites x + h u once f(x + h u)
        # is made, and an output that views its input (reshape, slice) is copied first.
        op = np.add if sign > 0 else np.subtract
        if self._moved is None:
            self._moved = [(k, x, self.buffer(("x", k), x, x.dtype))
                           for k, x in enumerate(self.ref.xs) if steps[k] is not None]
        xs = list(self.ref.xs)
        for k, x, buf in self._moved:  # (under check_vjp's errstate)
            d = steps[k] if scale == 1.0 else np.multiply(steps[k], scale, out=buf,
                                                          casting="unsafe")
            xs[k] = op(x, d, out=buf, casting="unsafe")
        # (x + h u: no comparison with x; a point that happens to equal it is evaluated)
        ys = self.p.forward(xs, self.ref.forward, moved=True)
        if len(ys) != len(self.ref.ys):
            return None  # judged (and reported) by the full machinery's line
        for y, y0 in zip(ys, self.ref.ys):
            if y.shape != y0.shape or y.dtype != y0.dtype:
                return None
        out = self._outputs(ys)
        for _, _, buf in self._moved:
            if np.may_share_memory(out, buf):
                return out.copy()
        return out

    def judge(self, steps: list[np.ndarray | None], analytic: np.ndarray | None = None,
              analytic_rounding: np.ndarray | None = None) -> list[Outcome] | None:
        """Every cotangent along the direction of ``steps`` (:meth:`steps`; 2 forward
        evaluations) against ``<J^T v_j, u>`` from the VJPs, or against ``analytic`` (one
        value per cotangent, e.g. ``<v_j, J u>`` from a JVP, with its own rounding); None
        when the outputs change shape or type under the perturbation. With ``record`` a
        list, the direction and its :class:`Measured` are appended to it (a JVP check
        then reuses them: :meth:`rejudge`)."""
        central = self.central(steps, self.scale)
        if central is None:
            return None
        numeric, output, vjp_analytic = central
        gu = self.g_s
        # the analytic sum's rounding: a random walk (the worst case sum |g u| costs a
        # pass more and is smaller only for a few dozen entries, where both are tiny)
        # and the VJP's measured non-linearity
        rounding = (self.ref.eps * C_SIGMA * C_ROUND) * gu + self.res_s
        measured = Measured(numeric, output, rounding, vjp_analytic, self.scale)
        if self.record is not None:
            self.record.append((self.taken(self.scale), measured))
        # (an ``analytic`` of the caller's is along the steps drawn, not those taken)
        outcomes = self.rejudge(measured, vjp_analytic if analytic is None else analytic,
                                analytic_rounding, taken=analytic is None)
        self.first_look = all(o.passed for o in outcomes)
        if analytic is None and not self.first_look:
            outcomes = coarser_rungs(self, steps, measured, outcomes)  # (probe_rungs.py)
        return outcomes

    def central(self, steps: list[np.ndarray | None], scale: float = 1.0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Per cotangent, ``<v_j, J d>`` by the central difference at ``scale`` times the
        steps (2 forward evaluations; ``d``: the steps as taken, see :meth:`_take`), its
        output round-off in units of ``C_ROUND eps / (scale h)``, and ``<J^T v_j, d>``;
        None when the outputs change shape or type."""
        plus = self._evaluate(steps, 1.0, scale)
        if plus is None:
            return None
        self._take(1.0)
        minus = self._evaluate(steps, -1.0, scale)
        if minus is None:
            return None
        analytic = self._dots("gs", self.gs, self._take(-1.0)) / (2 * scale * self.h)
        # (no np.errstate here: every caller runs under check_vjp's, and entering one per
        # direction costs more than the arithmetic of a small check)
        # f(x)'s own rounding cancels in a central difference
        diff = np.subtract(plus, minus, out=self.buffer(("diff", scale != 1.0), plus))
        numeric = self._dots("vs", self.vs, diff) / (2 * scale * self.h)
        # output round-off of each side: a random walk of one ulp per output, >= the
        # larger side's walk (v^2 squared once per check: one pass less each time); the
        # squares as an array only when kept (entry_bands.py) or small enough for one call
        keep = self.keep and scale == 1.0
        if keep or self.plain * plus.size <= ONE_THREAD_DOT:
            sq = larger_square(plus, minus, out=diff)
            walk = np.sqrt(self._dots("sq", self._squares(), sq))
        else:
            walk = np.sqrt(square_walks(self._squares(), plus, minus))
        # a band cotangent (entry_bands.py) multiplies outputs whose squares underflow
        # (1e-200), outputs above 1e154 square to inf: those walks are taken on the
        # products, scaled
        wide = not np.isfinite(walk).all()
        if wide or len(self.vs) > self.plain:
            mag = np.maximum(np.abs(plus), np.abs(minus))
            walk = np.array([norm2(v * mag) for v in self.vs[:self.plain]]) if wide else walk
            walk = np.append(walk, [norm2(v * mag) for v in self.vs[self.plain:]])
        if keep:
            self._last = (plus, minus, sq, walk)
        return numeric, (C_SIGMA / C_ROUND) * (walk + self.floor), analytic

    def _take(self, sign: float) -> np.ndarray | None:
        # x +- h u round, but their differences with x are exact (Sterbenz), so both sides
        # are compared along the steps as taken: no argument rounding in the tolerance
        # (it moves the direction only: miss_bound.atom_miss). + side: its step; -: the sum
        parts = []
        for k, x, buf in self._moved:  # (the moved point's buffer is free again here)
            t = self.buffer(("taken", k), x)
            parts.append(np.subtract(buf, x, out=t) if sign > 0 else
                         np.add(t, np.subtract(x, buf, out=buf), out=t))
        return self._inputs_of(parts) if sign < 0 else None

    def taken(self, scale: float = 1.0) -> list[np.ndarray | None]:
        """The direction ``d / h`` of the last central difference's steps as taken."""
        out: list[np.ndarray | None] = [None] * len(self.ref.xs)
        for k, x, _ in self._moved:
            out[k] = np.divide(self.buffer(("taken", k), x), 2 * scale * self.h,
                               out=aligned_empty(x.shape))
        return out

    def rejudge(self, m: Measured, analytic: np.ndarray,
                analytic_rounding: np.ndarray | None = None, taken: bool = True
                ) -> list[Outcome]:
        """The numeric side ``m`` of a direction against ``analytic`` (one value per
        cotangent) at the round-off level (see :meth:`judge`): the tolerance of
        :func:`~gradverify.harness.budget.central_roundoff`, in Python floats (a handful of
        cotangents: array operations cost more than the sums). ``taken``: ``analytic`` is
        along the steps as taken (:meth:`central`), not as drawn."""
        rounding = m.rounding.tolist()
        if analytic_rounding is not None:
            rounding = [max(a, b) for a, b in zip(rounding, np.broadcast_to(
                analytic_rounding, m.rounding.shape).tolist())]
        return [self.outcome(j, ana, num, r + rnd) for j, (r, rnd, num, ana) in enumerate(zip(
            self.roundoff(m.output, m.scale, taken=taken), rounding, m.numeric.tolist(),
            np.asarray(analytic, np.float64).tolist()))]

    def roundoff(self, output: np.ndarray, scale: float = 1.0, taken: bool = True
                 ) -> list[float]:
        """Per cotangent, the outputs' round-off of a central difference at ``scale`` times
        the steps (``output``: :meth:`central`'s), and the arguments' when the analytic
        side is not along the steps as taken."""
        eps, h, c_round = self.ref.eps, scale * self.h, self.p.opts.c_round
        arg = 0.0 if taken else C_SIGMA * (1 + h) * eps / h
        return [out * (c_round * eps / h) + arg * gu
                for out, gu in zip(output.tolist(), self.g_s.tolist())]

    def outcome(self, j: int, analytic: float, numeric: float, budget: float) -> Outcome:
        """Probe ``j`` (numeric against analytic) at ``budget``, times the safety factor."""
        tol, err = budget * self.p.opts.safety, abs(numeric - analytic)
        natural = max(abs(analytic), abs(numeric), float(self.g_s[j]))
        # decided only within the budget itself (DECISIVE_SHARE of the tolerance): an
        # error in the safety margin goes to the ladder, whose coarser rungs resolve
        # more (NaN compares false: undecided)
        ok = (math.isfinite(tol) and math.isfinite(err) and err <= DECISIVE_SHARE * tol
              and tol <= self.p.opts.inconclusive_rtol * natural)
        return Outcome(j, analytic, numeric, tol, ok)
