"""``audit_step``: does one ``session.run`` change exactly the variables it should, by
exactly the right amount?

Before the step, on the same feed, the auditor evaluates what the fetched update ops will
use (each optimizer update's gradient and hyperparameters, read back from the
``UpdateRecord`` the optimizer left; the values of directly fetched assignments; the fetched
tensors themselves); predicts every variable's new value with the update rule; runs the
step; and compares every global variable:

- changed but not predicted (not trainable, not in ``var_list``, unconnected, behind
  ``stop_gradient``, a slot of a variable that got no gradient) -> FAIL ``unexpected``;
- updated by an optimizer although no gradient path leads from its loss to the variable
  (a ``None`` gradient replaced by zeros or by another variable's gradient) -> FAIL;
- written by two updates of the step (a slot shared by two variables) -> FAIL;
- predicted to change but unchanged -> FAIL ``missing``;
- changed by more than rounding away from the prediction, or NaN where a number was
  predicted (or the reverse) -> FAIL ``off the rule``;
- a prediction whose rounding error cannot be bounded (an ill-conditioned update, see
  ``harness.audit_rules``) -> INCONCLUSIVE;
- a fetched tensor that is not its pre-update value -> FAIL;
- random ops without seeds (dropout) make the prediction unreproducible -> INCONCLUSIVE.
  Seeded random ops are replayed: the auditor restores their generators before the step.

Every optimizer rule has an audit rule (``sgd``, ``momentum``, ``nesterov``, ``adam``,
``adagrad``, ``rmsprop``, ``centered_rmsprop`` and ``scale`` in ``harness.audit_rules``,
which also explains the error model): it predicts the variable and every slot the update
writes. Hand-written ``assign`` / ``assign_add`` / ``assign_sub`` updates anywhere under the
fetches are predicted from their own graph. The program rules on what an update applies
(gradient pairing, fresh gradient, L2 once, schedule step) are in
``harness.audit_pipeline``.

The audit runs in four phases, each a function: :func:`~harness.audit_plan.make_plan`
(which variables, slots and counters must change, and why), :func:`~harness.audit_predict.
evaluate` + :func:`~harness.audit_predict.predict` (a ``Prediction`` per variable), the run,
and :func:`~harness.audit_compare.compare_variable` per variable.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default() as g:
...     w = tf.Variable([1.0, 2.0]); b = tf.Variable(0.5)
...     loss = tf.reduce_sum(w * w) + 0.1 * tf.nn.l2_loss(w) + b
...     step = tf.train.GradientDescentOptimizer(0.1).minimize(loss, var_list=[w])
...     s = tf.Session(); _ = s.run(tf.global_variables_initializer())
...     a = audit_step(s, [step, loss])
>>> a.verdict, a.expected, a.unexpected
('PASS', ['Variable'], [])
>>> [len(p) for p in a.variable("Variable").paths]   # through w*w and through l2_loss
[5, 5]
"""

from __future__ import annotations

from typing import Any

from gradverify.engine import inspect
from gradverify.harness.audit_compare import check_fetches, compare_variable
from gradverify.harness.audit_pipeline import gradient_paths
from gradverify.harness.audit_plan import make_plan
from gradverify.harness.audit_predict import Prediction, check_schedules, evaluate, predict
from gradverify.harness.audit_report import StepAudit, VariableAudit
from gradverify.harness.audit_rules import RULES, register_rule

__all__ = ["audit_step", "StepAudit", "VariableAudit", "Prediction", "gradient_paths",
           "register_rule", "RULES"]


def audit_step(session: Any, fetches: Any, feed_dict: dict | None = None, *,
               safety: float = 4.0) -> StepAudit:
    """Run ``session.run(fetches, feed_dict)`` under audit; the run's result is in
    ``.result``. See the module docstring for what is checked."""
    plan = make_plan(session.graph, fetches)
    ev = evaluate(session, plan, feed_dict)
    predictions, unruled = predict(plan, ev)
    for var, reasons in check_schedules(plan, ev).items():
        for reason in reasons:
            plan.problem(var, reason)
    audit = StepAudit(notes=list(plan.notes) + ev.notes)
    audit.result = session.run(fetches, feed_dict)
    after = inspect.snapshot(session)
    audit.fetch_checks.extend(check_fetches(plan, ev, audit.result))
    for var in plan.variables:
        audit.variables.append(compare_variable(var, plan, predictions, unruled, ev, after,
                                                safety))
    if plan.unseeded:
        audit.notes.append("random ops without seeds (" + ", ".join(sorted(plan.unseeded)[:4])
                           + "): the step cannot be replayed; set tf.set_random_seed")
    return audit
