"""The step-size curve of a gradient report's worst entry: how far central differences at
steps h = 10^-1 ... 10^-12 (times the entry's scale) land from the analytic value.

A correct gradient gives a V: truncation error falling like h^2 on the right, round-off
growing like 1/h on the left, the harness's step near the bottom. A wrong one gives a floor:
the curve flattens at |analytic - true derivative| however small h gets.

>>> import numpy as np, engine as tf
>>> from gradverify.harness import check_gradients
>>> x = [np.array([0.5, 2.0])]
>>> curve, note = step_curve(tf.sin, x, check_gradients(tf.sin, x))
>>> bool(curve.error.min() < 1e-9 < curve.error.max())
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradverify.harness.report import PASS, Entry, GradientReport

__all__ = ["StepCurve", "step_curve", "EXPONENTS"]

EXPONENTS = np.arange(1.0, 12.01, 0.25)   # h = scale * 10^-e


@dataclass
class StepCurve:
    """|numeric(h) - analytic| against h (``relative``: h in units of the inputs' scale,
    for a random probe direction; else absolute, along one input entry), and
    |numeric(h) - best| where ``best`` is the Richardson-extrapolated estimate at the
    harness's step: the V a correct analytic value would follow."""

    h: np.ndarray
    error: np.ndarray
    spread: np.ndarray      # |numeric(h) - best|: the numeric estimate's own error
    best: float             # Richardson extrapolation at the harness's step
    analytic: float
    step: float
    tolerance: float
    where: str
    relative: bool
    note: str


def _scale(x: np.ndarray) -> np.ndarray:
    """Per-element step scale as the harness uses it: |x|, or the RMS of the non-zero
    magnitudes where x is 0 (1 if all are)."""
    a = np.abs(x)
    nz = a[(a > 0) & np.isfinite(a)]
    fallback = float(np.sqrt(np.mean(nz ** 2))) if nz.size else 1.0
    return np.where((a > 0) & np.isfinite(a), a, fallback)


def _worst(report: GradientReport) -> Entry | None:
    check = report.check("gradient")
    if check is None or not check.worst:
        return None
    return next((e for e in check.worst if e.verdict != PASS), check.worst[0])


def step_curve(function: Callable, inputs: Sequence[Any], report: GradientReport,
               ) -> tuple[StepCurve | None, str | None]:
    """Recompute the worst entry of ``report``'s gradient check at a ladder of steps, in
    float64, with the engine evaluating ``function`` (the one that was checked, at
    ``inputs``). Returns (curve, None) or (None, why there is none)."""
    from gradverify.harness.engine_adapter import EngineFunction

    entry = _worst(report)
    if entry is None:
        return None, "no gradient entries to plot"
    xs = [np.asarray(x, np.float64) if np.asarray(x).dtype.kind == "f" else np.asarray(x)
          for x in inputs]
    n = len(xs)
    if report.order == 2:   # the order-2 function g(x, v) = J^T v: draw v as the adapter does
        probe = EngineFunction(function, [x.shape for x in xs], [x.dtype for x in xs])
        ys = probe.forward(*xs)
        probe.close()
        rng = np.random.default_rng([report.seed, 2])
        xs += [rng.standard_normal(y.shape) for y in ys if y.dtype.kind == "f"]
    fn = EngineFunction(function, [x.shape for x in xs[:n]], [x.dtype for x in xs[:n]],
                        report.order)
    try:
        return _curve(fn, xs, entry), None
    finally:
        fn.close()


def _curve(fn: Any, xs: list[np.ndarray], entry: Entry) -> StepCurve:
    ys = [np.asarray(y) for y in fn.forward(*xs)]   # the base point (freezes stop_gradient)
    rng = np.random.default_rng(0)
    floats = [k for k, x in enumerate(xs) if x.dtype.kind == "f"]
    if entry.index is not None:
        k = entry.input
        d = np.zeros(xs[k].shape)
        d[entry.index] = 1.0
        directions = {k: d}
        scale = float(_scale(xs[k])[entry.index])
        relative = False
        step = entry.step
    else:
        directions = {k: rng.choice([-1.0, 1.0], size=xs[k].shape) * _scale(xs[k])
                      for k in floats}
        scale = 1.0
        relative = True
        step = entry.step / max(float(np.max(d, initial=0.0)) for d in (
            np.abs(v) for v in directions.values()))
    if entry.output is not None:
        cts = [np.zeros(y.shape, y.dtype) for y in ys]
        cts[entry.output[0]][tuple(entry.output[1:])] = 1
        how = "one output entry"
    else:
        cts = [rng.standard_normal(y.shape).astype(y.dtype) if y.dtype.kind == "f"
               else np.zeros(y.shape, y.dtype) for y in ys]
        how = "cotangent-weighted with a fresh random cotangent"
    if entry.output is not None and entry.index is not None:
        analytic = float(entry.analytic)
    else:
        grads = fn.vjp(xs, cts)
        analytic = float(sum(np.sum(np.asarray(grads[k], np.float64) * d)
                             for k, d in directions.items() if grads[k] is not None))

    def phi(t: float) -> float:
        moved = [x + t * directions[k] if k in directions else x for k, x in enumerate(xs)]
        try:
            out = fn.forward(*moved)
        except Exception:  # noqa: BLE001 - outside the domain: no value
            return float("nan")
        if [np.shape(o) for o in out] != [y.shape for y in ys]:
            return float("nan")
        return float(sum(np.sum(np.asarray(o, np.float64) * c)
                         for o, c, y in zip(out, cts, ys) if y.dtype.kind == "f"))

    hs = scale * 10.0 ** -EXPONENTS
    with np.errstate(all="ignore"):
        numeric = np.array([(phi(h) - phi(-h)) / (2 * h) for h in hs])
        error = np.abs(numeric - analytic)
        # the best numeric estimate: one Richardson step at the harness's step
        hstar = step if step > 0 else float(hs[len(hs) // 2])
        d1 = (phi(hstar) - phi(-hstar)) / (2 * hstar)
        d2 = (phi(hstar / 2) - phi(-hstar / 2)) / hstar
        best = (4 * d2 - d1) / 3
        spread = np.abs(numeric - best)
    note = ("central differences in float64 along one input entry, " if not relative else
            "central differences in float64 along a random signed probe, ") + how
    return StepCurve(h=hs, error=error, spread=spread, best=float(best), analytic=analytic,
                     step=float(step),
                     tolerance=float(entry.tolerance), where=entry.where(),
                     relative=relative, note=note)
