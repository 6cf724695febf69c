"""Phase 2 of ``audit_step``: evaluate what the step will use, on the same feed and before
the step, and predict a :class:`Prediction` per variable the plan says must change.

The tensors an update uses may themselves run writes (a hand-written update ordered by
``control_dependencies``, a value read from an ``assign``'s output): the auditor evaluates
them anyway and then restores every variable, so the prediction is computed from exactly the
values the step will see. Seeded random ops are replayed: their generators are restored
before the step; unseeded ones make the step stochastic (INCONCLUSIVE).

>>> import gradverify.engine as tf
>>> from gradverify.harness.audit_plan import make_plan
>>> with tf.Graph().as_default() as g:
...     w = tf.Variable(2.0, name="w")
...     step = tf.train.GradientDescentOptimizer(0.25).minimize(w * w)
...     s = tf.Session(); _ = s.run(tf.global_variables_initializer())
...     plan = make_plan(g, step)
...     predictions, _ = predict(plan, evaluate(s, plan, None))
>>> float(predictions[w].value), predictions[w].rule      # 2 - 0.25 * (2 * 2)
(1.0, 'sgd')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradverify.engine import inspect
from gradverify.engine.graph import constant_value
from gradverify.harness.audit_plan import Plan, Update
from gradverify.harness.audit_rules import RULES

__all__ = ["Prediction", "Evaluation", "evaluate", "predict", "check_schedules"]


@dataclass
class Evaluation:
    """Values before the step: ``before`` (variable -> array), ``values`` (id(tensor) ->
    array), whether the step is ``stochastic``, and the random state to replay it."""

    before: dict[Any, Any]
    values: dict[int, np.ndarray]
    stochastic: bool
    rng: dict[Any, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def value_of(self, x: Any) -> np.ndarray:
        """A variable's or tensor's pre-step value, in float64."""
        if x in self.before:
            return np.asarray(self.before[x], dtype=np.float64)
        return np.asarray(self.values[id(x)], dtype=np.float64)


@dataclass
class Prediction:
    """The predicted new value of one variable: ``value`` (float64), the rule's rounding
    bound (``None`` for an exact rule; see ``audit_rules``), the ``rule`` name and the
    :class:`Update` it comes from."""

    variable: Any
    value: np.ndarray
    rule: str
    update: Update
    bound: np.ndarray | None = None


def evaluate(session: Any, plan: Plan, feed_dict: Any) -> Evaluation:
    """Evaluate the plan's tensors before the step (the session is left as it was)."""
    wanted = plan.wanted()
    static = {id(t): v for t in wanted if (v := constant_value(t)) is not None}
    needed = [t for t in wanted if id(t) not in static]
    rng = inspect.random_state(session, plan.randoms)
    before = inspect.snapshot(session)
    pre = session.run(needed, feed_dict) if needed else []
    inspect.restore_snapshot(session, before)
    notes = []
    same = True
    if plan.randoms:
        inspect.restore_random_state(session, rng)
        again = session.run(needed, feed_dict) if needed else []
        inspect.restore_snapshot(session, before)
        same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(pre, again))
        if not same:
            notes.append("evaluations on the same feed differ: the step is stochastic")
        inspect.restore_random_state(session, rng)
    values = {id(t): np.asarray(v) for t, v in zip(needed, pre)}
    values.update(static)
    return Evaluation(before, values, bool(plan.unseeded) or not same, rng, notes)


def predict(plan: Plan, ev: Evaluation) -> tuple[dict[Any, Prediction], dict[Any, str]]:
    """Predictions per variable, and the variables whose update has no audit rule."""
    out: dict[Any, Prediction] = {}
    unruled: dict[Any, str] = {}
    for u in plan.updates:
        if u.record is None:
            # applied on top of an earlier update of the variable: increments that
            # commute, or writes ordered after it by control_dependencies (the plan FAILs
            # any other second write)
            same = out.get(u.variable)
            if same is not None:
                old = same.value
            elif ev.before.get(u.variable) is not None:
                old = ev.value_of(u.variable)
            else:
                old = 0.0
            delta = ev.value_of(u.value)
            new = {"assign": delta, "assign_add": old + delta, "assign_sub": old - delta}
            out[u.variable] = Prediction(u.variable, new[u.kind], u.kind, u)
            continue
        rule = RULES.get(u.kind)
        if rule is None:
            unruled[u.variable] = f"no audit rule for optimizer rule '{u.kind}'"
            continue
        for var, new in rule(u.record, ev.value_of).items():
            value, bound = new if isinstance(new, tuple) else (new, None)
            out[var] = Prediction(var, value, u.kind, u, bound)
    return out, unruled


def check_schedules(plan: Plan, ev: Evaluation) -> dict[Any, list[str]]:
    """Rule ``schedule step``: a learning-rate schedule is computed from the pre-step
    ``global_step``. A ``tf.train`` schedule (``exponential_decay`` & co.) must be given
    exactly that value; any other expression of the global step must not read the
    post-step value (the increment's output, or a read ordered after it)."""
    from gradverify.harness.audit_pipeline import reads_post_step
    out: dict[Any, list[str]] = {}
    if plan.global_step is None or ev.before.get(plan.global_step) is None:
        return out
    start = int(ev.before[plan.global_step])
    for var, what, t, kind in plan.schedule_steps:
        seen = np.asarray(ev.values[id(t)])
        inc = reads_post_step(t, plan.global_step)
        if seen.size != 1 or (kind == "expression" and inc is None) or (
                kind == "schedule" and int(seen) == start and inc is None):
            continue
        how = f" (it reads the post-step value, after {inc.name})" if inc else ""
        sees = (f"sees global_step = {int(seen)}, but the step starts at global_step = "
                f"{start}{how}: off by {int(seen) - start}" if kind == "schedule" else
                f"computes with the post-step global_step{how}")
        out.setdefault(var, []).append(
            f"the {what} of {var.op.name}'s update comes from a schedule that {sees} "
            "(rule: schedule step)")
    return out
