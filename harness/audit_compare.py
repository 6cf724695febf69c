"""Phase 4 of ``audit_step``: compare every variable's new value with the plan and its
prediction, and every fetched tensor with its pre-step value.

The error model: ``|actual - predicted| <= safety * eps * (|old| + |delta| + |predicted| +
bound)`` per entry, ``bound`` being the rule's running rounding-error bound (see
``harness.audit_rules``); an entry whose bound is infinite makes the verdict INCONCLUSIVE.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine import inspect
from gradverify.harness.audit_plan import Plan
from gradverify.harness.audit_predict import Evaluation, Prediction
from gradverify.harness.audit_report import VariableAudit
from gradverify.harness.report import FAIL, INCONCLUSIVE, PASS

__all__ = ["compare_variable", "compare_delta", "check_fetches"]


def compare_variable(var: Any, plan: Plan, predictions: dict[Any, Prediction],
                     unruled: dict[Any, str], ev: Evaluation, after: dict[Any, Any],
                     safety: float) -> VariableAudit:
    """The audit of one variable: changed as the plan says, by the predicted amount."""
    old, new = ev.before.get(var), after.get(var)
    changed = old is not new and not (old is not None and new is not None and
                                      np.array_equal(old, new, equal_nan=True))
    writers = plan.writers.get(var, [])
    va = VariableAudit(name=var.op.name, trainable=var.trainable,
                       expected=var in predictions or var in unruled, changed=changed,
                       sources=[u.source for u in writers])
    va.paths = plan.paths.get(var, [])
    own = next((u for u in writers if u.variable is var and u.pipeline is not None), None)
    if own is not None:
        va.pipeline = list(own.pipeline.stages)
        va.schedule = _schedule(own, plan, ev)
    if var in predictions:
        p = predictions[var]
        va.rule = p.rule
        compare_delta(va, old, new, p.value, safety, ev.stochastic, p.bound)
    elif var in unruled:
        va.add(FAIL, unruled[var])
    elif changed and var in plan.slot_owner:
        name, owner = plan.slot_owner[var]
        va.add(FAIL, f"slot '{name}' ({var.op.name}) of {owner.op.name} changed, but "
                     f"{owner.op.name} was not updated in this step (no gradient)")
    elif changed:
        why = ("changed but not trainable" if not var.trainable else
               "changed but not updated by the fetched ops (not in var_list, no gradient "
               "path from the loss, or behind stop_gradient)")
        undeclared = plan.undeclared.get(var)
        va.add(FAIL, why if undeclared is None else f"{why}: {undeclared}")
    for reason in plan.problems.get(var, []):
        va.add(FAIL, reason)
    return va


def _schedule(update: Any, plan: Plan, ev: Evaluation) -> dict[str, float]:
    """The scalar hyperparameters the update used that the graph computes (not constants),
    and the global step a schedule among them read."""
    tensors = update.record.hyper if update.record is not None else {}
    out = {k: float(ev.values[id(t)]) for k, t in tensors.items()
           if id(t) in ev.values and ev.values[id(t)].size == 1
           and not _constant(t)}
    if any(v is update.variable for v, *_ in plan.schedule_steps) and (
            ev.before.get(plan.global_step) is not None):
        out["global_step"] = float(ev.before[plan.global_step])
    return out


def _constant(t: Any) -> bool:
    from gradverify.engine.graph import constant_value
    return constant_value(t) is not None


def compare_delta(va: VariableAudit, old: Any, new: Any, pred: np.ndarray, safety: float,
                  stochastic: bool, bound: Any = None) -> None:
    """Compare one variable's new value with its prediction under the error model.

    >>> import numpy as np
    >>> va = VariableAudit("w", trainable=True, expected=True, changed=True, rule="sgd")
    >>> old, new = np.float32(1.0), np.float32(0.5)
    >>> compare_delta(va, old, new, np.float64(0.5001), 4.0, stochastic=False)
    >>> va.verdict, va.reason.startswith("delta off the sgd rule")
    ('FAIL', True)
    """
    if new is None:
        va.add(FAIL, "should have been updated but is uninitialised")
        return
    actual = np.asarray(new, dtype=np.float64)
    pred = np.broadcast_to(pred, actual.shape)
    base = np.zeros_like(actual) if old is None else np.asarray(old, np.float64)
    floating = new.dtype.kind == "f"
    eps = float(np.finfo(new.dtype).eps) if floating else 0.0
    magnitude = np.abs(base) + np.abs(pred - base) + np.abs(pred)
    if bound is not None:
        magnitude = magnitude + np.broadcast_to(bound, actual.shape)
    tol = safety * eps * magnitude + (np.finfo(new.dtype).tiny if floating else 0.0)
    with np.errstate(invalid="ignore"):
        err = np.abs(actual - pred)
    same = (actual == pred) | (np.isnan(actual) & np.isnan(pred))
    err = np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))  # NaN vs number: off
    unbounded = ~np.isfinite(tol)
    va.max_error = float(np.max(err, initial=0.0))
    with np.errstate(invalid="ignore"):
        ratio = np.where(unbounded, 0.0, np.where(
            tol > 0, err / np.where(tol > 0, tol, 1), np.where(err > 0, np.inf, 0)))
    i = int(np.argmax(ratio)) if ratio.size else 0
    va.tolerance = float(tol.flat[i]) if tol.size else 0.0
    if actual.size:
        va.worst_index = tuple(int(t) for t in np.unravel_index(i, actual.shape))
        va.predicted, va.actual = float(pred.flat[i]), float(actual.flat[i])
    moves = bool(np.any(np.abs(pred - base) > tol))  # a change below rounding may vanish
    if stochastic:
        va.add(INCONCLUSIVE, "stochastic step: the update cannot be predicted")
    elif not va.changed and moves:
        va.add(FAIL, "should change but did not")
    elif ratio.size and ratio.flat[i] > 1:
        va.add(FAIL, f"delta off the {va.rule} rule at {list(va.worst_index)}: predicted "
                     f"{va.predicted:.9g}, got {va.actual:.9g} (tolerance {va.tolerance:.2g})")
    elif np.any(unbounded):
        k = tuple(int(t) for t in np.unravel_index(int(np.argmax(unbounded)), actual.shape))
        va.add(INCONCLUSIVE, f"ill-conditioned {va.rule} update at {list(k)}: the kernel's "
                             "rounding can change it arbitrarily (a divisor within its "
                             "rounding error of 0)")


def check_fetches(plan: Plan, ev: Evaluation, result: Any):
    """``(name, verdict, reason)`` per fetched tensor: the run must return its pre-step
    value (the same one the prediction used)."""
    flat = inspect.fetch_leaves(result)  # a single fetch's result is its own only leaf
    fetched = set(plan.fetched)
    for e, got in zip(plan.elements, flat):
        if e not in fetched:
            continue
        want = ev.values[id(e)]
        if np.array_equal(np.asarray(got), want, equal_nan=True):
            yield e.name, PASS, None
        elif ev.stochastic:
            yield e.name, INCONCLUSIVE, "stochastic step: value cannot be reproduced"
        else:
            yield e.name, FAIL, "fetched value is not the pre-update value"
