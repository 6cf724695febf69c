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

Every optimizer rule has an audit rule (``sgd`` here; ``momentum``, ``nesterov``, ``adam``,
``adagrad``, ``rmsprop``, ``centered_rmsprop`` and ``scale`` in ``harness.audit_rules``,
which also explains the error model): it predicts the variable and every slot the update
writes.

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

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradverify.harness.report import FAIL, INCONCLUSIVE, PASS, combine

__all__ = ["audit_step", "StepAudit", "VariableAudit", "gradient_paths", "register_rule",
           "RULES"]

# rule name -> predict(record, value_of) -> {variable: predicted new value (float64), or
# (prediction, rounding-error bound in units of the unit roundoff; see audit_rules)}
RULES: dict[str, Callable[..., dict[Any, np.ndarray]]] = {}


def register_rule(name: str) -> Callable:
    """Register how to predict an optimizer rule's update (one per ``UpdateRecord.rule``).

    The function gets the record and ``value_of(tensor_or_variable)`` (values before the
    step, float64) and returns ``{variable: new value}`` for the variable and its slots; a
    value may be a pair ``(new value, bound)`` where ``bound`` is a first-order bound on the
    kernel's rounding error in units of the unit roundoff, added to the tolerance's
    magnitude terms (see ``harness.audit_rules``).
    """
    def deco(fn: Callable) -> Callable:
        if name in RULES:
            raise KeyError(f"Registering two audit rules named '{name}'")
        RULES[name] = fn
        return fn
    return deco


@register_rule("sgd")
def _sgd(record: Any, value_of: Callable[[Any], np.ndarray]) -> dict[Any, np.ndarray]:
    lr = value_of(record.hyper["learning_rate"])
    return {record.variable: value_of(record.variable) - lr * value_of(record.gradient)}


@dataclass
class VariableAudit:
    """What happened to one variable in the step."""

    name: str
    trainable: bool
    expected: bool
    changed: bool
    verdict: str = PASS
    reason: str | None = None
    rule: str | None = None
    paths: list[list[str]] = field(default_factory=list)
    max_error: float = 0.0
    tolerance: float = 0.0
    worst_index: tuple[int, ...] | None = None
    predicted: float | None = None
    actual: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["worst_index"] = None if self.worst_index is None else list(self.worst_index)
        for k in ("max_error", "tolerance", "predicted", "actual"):
            v = out[k]
            out[k] = None if v is None else (float(v) if math.isfinite(v) else str(v))
        return out


@dataclass
class StepAudit:
    """The audit of one step: ``verdict``, per-variable findings and the reasons."""

    variables: list[VariableAudit] = field(default_factory=list)
    fetch_checks: list[tuple[str, str, str | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    result: Any = None

    @property
    def verdict(self) -> str:
        return combine([v.verdict for v in self.variables]
                       + [c[1] for c in self.fetch_checks])

    @property
    def changed(self) -> list[str]:
        return [v.name for v in self.variables if v.changed]

    @property
    def expected(self) -> list[str]:
        return [v.name for v in self.variables if v.expected]

    @property
    def unexpected(self) -> list[str]:
        return [v.name for v in self.variables if v.changed and not v.expected]

    @property
    def missing(self) -> list[str]:
        return [v.name for v in self.variables if v.verdict == FAIL and v.expected
                and not v.changed]

    @property
    def worst(self) -> VariableAudit | None:
        """The variable whose delta is furthest from its prediction (relative to tolerance)."""
        rated = [v for v in self.variables if v.expected and v.tolerance > 0]
        return max(rated, key=lambda v: v.max_error / v.tolerance, default=None)

    def variable(self, name: str) -> VariableAudit:
        return next(v for v in self.variables if v.name == name)

    @property
    def reasons(self) -> list[str]:
        out = [f"{v.name}: {v.reason}" for v in self.variables if v.verdict != PASS]
        return out + [f"fetch {n}: {r}" for n, verdict, r in self.fetch_checks
                      if verdict != PASS]

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "variables": [v.to_dict() for v in self.variables],
                "fetches": [{"name": n, "verdict": v, "reason": r}
                            for n, v, r in self.fetch_checks], "notes": self.notes}

    def __str__(self) -> str:
        lines = [f"step audit: {self.verdict}"]
        for r in self.reasons:
            lines.append(f"  {r}")
        width = max([len("variable")] + [len(v.name) for v in self.variables]) + 2
        rw = max([len("rule")] + [len(v.rule or "") for v in self.variables]) + 2
        lines.append(f"  {'variable':<{width}}trainable  updated  {'rule':<{rw}}"
                     "max|err|/tol   paths from the loss")
        for v in self.variables:
            ratio = "-" if not v.expected or v.tolerance == 0 else (
                f"{v.max_error / v.tolerance:.2g}")
            lines.append(f"  {v.name:<{width}}{'yes' if v.trainable else 'no':<11}"
                         f"{'yes' if v.changed else 'no':<9}{(v.rule or '-'):<{rw}}"
                         f"{ratio:<15}{len(v.paths) or '-'}")
            for p in v.paths[:4]:
                lines.append(f"      {' -> '.join(p)}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# -- graph walking ---------------------------------------------------------------------------
def _elements(fetches: Any, graph: Any) -> list[Any]:
    """Graph elements of a fetch structure (Tensors and Operations)."""
    out: list[Any] = []

    def walk(f: Any) -> None:
        if isinstance(f, (list, tuple)):
            for x in f:
                walk(x)
        elif isinstance(f, dict):
            for x in f.values():
                walk(x)
        else:
            out.append(graph.as_graph_element(f))
    walk(fetches)
    return out


def _ancestors(roots: list[Any]) -> set[Any]:
    seen: set[Any] = set()
    stack = list(roots)
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def gradient_paths(loss: Any, variable: Any, limit: int = 16) -> list[list[str]]:
    """Op-name paths along which gradient flows from ``variable`` to ``loss`` (data edges
    through differentiable ops; ``stop_gradient`` and integer tensors cut them).

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     w = tf.Variable(1.0); y = w * w + tf.stop_gradient(w)
    ...     gradient_paths(y, w)
    [['Variable/read', 'mul', 'add']]
    """
    target = loss.op
    relevant = _ancestors([target])
    paths: list[list[str]] = []

    def carries(op: Any) -> bool:
        return op.opdef.differentiable and op in relevant

    def walk(tensor: Any, trail: list[str]) -> None:
        if len(paths) >= limit:
            return
        for op in dict.fromkeys(tensor._consumers):  # x * x is one path, not two
            k = [i for i, t in enumerate(op.inputs) if t is tensor]
            spec = op.opdef._flat_specs(len(op.inputs))
            if not carries(op) or not any(spec[i][1].differentiable for i in k):
                continue
            if op is target:
                paths.append([*trail, op.name])
                continue
            for out in op.outputs:
                if out.dtype.is_floating:
                    walk(out, [*trail, op.name])
    walk(variable._ref(), [])
    return paths


def _has_write_ancestor(tensor: Any) -> bool:
    """Whether computing ``tensor`` runs an op that writes a variable."""
    return any(op.opdef.ref_inputs for op in _ancestors([tensor.op]))


def _write_ops(elements: list[Any], graph: Any) -> list[Any]:
    """Assign/AssignAdd/AssignSub ops fetched directly (an op, or its output tensor)."""
    out = []
    for e in elements:
        op = e.op if hasattr(e, "op") and not hasattr(e, "outputs") else e
        if op.type in ("Assign", "AssignAdd", "AssignSub"):
            out.append(op)
    return out


# -- the audit -------------------------------------------------------------------------------
def audit_step(session: Any, fetches: Any, feed_dict: dict | None = None, *,
               safety: float = 4.0) -> StepAudit:
    """Run ``session.run(fetches, feed_dict)`` under audit; the run's result is in
    ``.result``. See the module docstring for what is checked."""
    from gradverify.engine.graph import GraphKeys
    from gradverify.engine.train import UPDATE_RECORDS

    graph = session.graph
    audit = StepAudit()
    elements = _elements(fetches, graph)
    roots = [e if hasattr(e, "outputs") else e.op for e in elements]
    reach = _ancestors(roots)
    records = [r for r in graph.get_collection(UPDATE_RECORDS) if r.op in reach]
    step_vars = set(graph.get_collection(GraphKeys.GLOBAL_STEP))
    increments = [op for op in reach if op.type == "AssignAdd" and any(
        v._ref() is op.inputs[0] for v in step_vars)]
    direct = [op for op in _write_ops(elements, graph) if op not in increments]
    variables = graph.get_collection(GraphKeys.GLOBAL_VARIABLES) + graph.get_collection(
        GraphKeys.LOCAL_VARIABLES)
    by_ref = {v._ref(): v for v in variables}

    # What the step will use, evaluated first on the same feed (random ops replayed). Only
    # tensors with no write among their ancestors (control edges too) may run early; a
    # constant (global_step's 1, made under the updates' control dependencies) is read off.
    from gradverify.engine.graph import constant_value
    wanted: list[Any] = []
    for r in records:
        wanted += [t for t in (r.gradient, *r.hyper.values()) if t is not None]
    wanted += [op.inputs[1] for op in increments + direct]
    static = {id(t): v for t in wanted if (v := constant_value(t)) is not None}
    needed = [t for t in wanted if id(t) not in static]
    impure = [t for t in needed if _has_write_ancestor(t)]
    needed = [t for t in needed if t not in impure]
    fetched_tensors = [e for e in elements if not hasattr(e, "outputs")
                       and not _has_write_ancestor(e)]
    needed += fetched_tensors
    randoms = [op for op in reach if op.opdef.random]
    unseeded = [op.name for op in randoms if op.attrs.get("seed") is None
                and op.attrs.get("seed2") is None]
    rng_state = _save_rngs(session, randoms)
    before = dict(session._state)  # stored arrays are read-only: a snapshot by reference
    pre = session.run(needed, feed_dict) if needed else []
    if randoms:
        _restore_rngs(session, rng_state)
        again = session.run(needed, feed_dict) if needed else []
        same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(pre, again))
        if not same:
            audit.notes.append("evaluations on the same feed differ: the step is stochastic")
        _restore_rngs(session, rng_state)
    else:
        same = True
    stochastic = bool(unseeded) or not same
    values = {id(t): np.asarray(v) for t, v in zip(needed, pre)}
    values.update(static)

    def value_of(x: Any) -> np.ndarray:
        if hasattr(x, "_ref"):
            return np.asarray(before[x.op], dtype=np.float64)
        return np.asarray(values[id(x)], dtype=np.float64)

    predicted: dict[Any, tuple[np.ndarray, str, Any, Any]] = {}
    problems: dict[Any, str] = {}
    clashes: dict[Any, str] = {}  # written by two updates: overrides any other finding
    for r in records:
        rule = RULES.get(r.rule)
        if rule is None:
            problems[r.variable] = f"no audit rule for optimizer rule '{r.rule}'"
            continue
        if any(t in impure for t in (r.gradient, *r.hyper.values()) if t is not None):
            problems[r.variable] = ("its gradient depends on a write in the same step: cannot "
                                    "be evaluated before the step")
            continue
        if r.gradient is None:  # a non-gradient write (Adam's beta powers): no var_list
            pass
        elif r.var_list is not None and r.variable not in r.var_list:
            problems[r.variable] = "updated but not in the var_list it was optimised for"
        elif r.var_list is None and not r.variable.trainable:
            problems[r.variable] = "updated but not trainable (and not in an explicit var_list)"
        for var, new in rule(r, value_of).items():
            pred, bound = new if isinstance(new, tuple) else (new, None)
            earlier = predicted.get(var, (None, None, None))[2]
            if earlier is not None and earlier is not r:
                shared = var is not earlier.variable and var is not r.variable
                clashes[var] = (
                    f"written by the updates of both {earlier.variable.op.name} and "
                    f"{r.variable.op.name} in one step"
                    + (": one slot shared by two variables" if shared else ""))
            predicted[var] = (pred, r.rule, r, bound)
    for op in increments + direct:
        var = by_ref.get(op.inputs[0])
        if var is None:
            continue
        delta = value_of(op.inputs[1])
        new = {"Assign": delta, "AssignAdd": value_of(var) + delta,
               "AssignSub": value_of(var) - delta}[op.type]
        predicted[var] = (new, op.type.lower(), None, None)
    slot_owner = {}  # slot variable -> (slot name, its variable), for the reasons
    for r in graph.get_collection(UPDATE_RECORDS):
        owners = getattr(r.optimizer, "_slot_owners", None)
        slot_owner.update(owners() if owners else {})
        slot_owner.update({v: (n, r.variable) for n, v in r.slots.items()})

    result = session.run(fetches, feed_dict)
    audit.result = result
    after = session._state

    for name, verdict, reason in _check_fetches(elements, fetched_tensors, values, result,
                                                fetches, stochastic):
        audit.fetch_checks.append((name, verdict, reason))

    for var in variables:
        old, new = before.get(var.op), after.get(var.op)
        changed = old is not new and not (old is not None and new is not None and
                                           np.array_equal(old, new, equal_nan=True))
        va = VariableAudit(name=var.op.name, trainable=var.trainable,
                           expected=var in predicted, changed=changed)
        record = predicted.get(var, (None, None, None, None))[2]
        if record is not None and record.loss is not None and record.variable is var:
            va.paths = gradient_paths(record.loss, var)
            if not va.paths:  # TF1 skips a None gradient: the variable is never touched
                problems.setdefault(var, "updated, but its gradient is None (no gradient "
                                         "path from the loss)")
        if var in predicted:
            pred, va.rule, _, bound = predicted[var]
            _compare(va, old, new, pred, safety, stochastic, bound)
        elif changed and var in slot_owner:
            name, owner = slot_owner[var]
            va.verdict = FAIL
            va.reason = (f"slot '{name}' ({var.op.name}) of {owner.op.name} changed, but "
                         f"{owner.op.name} was not updated in this step (no gradient)")
        elif changed:
            va.verdict = FAIL
            va.reason = ("changed but not trainable" if not var.trainable else
                         "changed but not updated by the fetched ops (not in var_list, no "
                         "gradient path from the loss, or behind stop_gradient)")
        if var in problems and va.verdict != FAIL:
            va.verdict, va.reason = FAIL, problems[var]
        if var in clashes:
            va.verdict, va.reason = FAIL, clashes[var]
        audit.variables.append(va)
    if unseeded:
        audit.notes.append("random ops without seeds (" + ", ".join(sorted(unseeded)[:4])
                           + "): the step cannot be replayed; set tf.set_random_seed")
    return audit


def _compare(va: VariableAudit, old: Any, new: Any, pred: np.ndarray, safety: float,
             stochastic: bool, bound: Any = None) -> None:
    if new is None:
        va.verdict, va.reason = FAIL, "should have been updated but is uninitialised"
        return
    actual = np.asarray(new, dtype=np.float64)
    pred = np.broadcast_to(pred, actual.shape)
    base = np.zeros_like(actual) if old is None else np.asarray(old, np.float64)
    eps = float(np.finfo(new.dtype).eps) if new.dtype.kind == "f" else 0.0
    magnitude = np.abs(base) + np.abs(pred - base) + np.abs(pred)
    if bound is not None:  # the rule's running rounding-error bound (audit_rules)
        magnitude = magnitude + np.broadcast_to(bound, actual.shape)
    tol = safety * eps * magnitude + (
        np.finfo(new.dtype).tiny if new.dtype.kind == "f" else 0.0)
    with np.errstate(invalid="ignore"):
        err = np.abs(actual - pred)
    same = (actual == pred) | (np.isnan(actual) & np.isnan(pred))
    err = np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))  # NaN vs number: off
    unbounded = ~np.isfinite(tol)  # the rule cannot bound the kernel's rounding there
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
        va.verdict = INCONCLUSIVE
        va.reason = "stochastic step: the update cannot be predicted"
    elif not va.changed and moves:
        va.verdict, va.reason = FAIL, "should change but did not"
    elif ratio.size and ratio.flat[i] > 1:
        va.verdict = FAIL
        va.reason = (f"delta off the {va.rule} rule at {list(va.worst_index)}: predicted "
                     f"{va.predicted:.9g}, got {va.actual:.9g} (tolerance {va.tolerance:.2g})")
    elif np.any(unbounded):
        k = tuple(int(t) for t in np.unravel_index(int(np.argmax(unbounded)), actual.shape))
        va.verdict = INCONCLUSIVE
        va.reason = (f"ill-conditioned {va.rule} update at {list(k)}: the kernel's rounding "
                     "can change it arbitrarily (a divisor within its rounding error of 0)")


def _check_fetches(elements: list[Any], fetched: list[Any], values: dict[int, np.ndarray],
                   result: Any, fetches: Any, stochastic: bool):
    flat: list[Any] = []

    def walk(r: Any) -> None:
        if isinstance(r, (list, tuple)):
            for x in r:
                walk(x)
        elif isinstance(r, dict):
            for x in r.values():
                walk(x)
        else:
            flat.append(r)
    walk(result) if isinstance(fetches, (list, tuple, dict)) else flat.append(result)
    for e, got in zip(elements, flat):
        if hasattr(e, "outputs") or e not in fetched:
            continue
        want = values[id(e)]
        if np.array_equal(np.asarray(got), want, equal_nan=True):
            yield e.name, PASS, None
        elif stochastic:
            yield e.name, INCONCLUSIVE, "stochastic step: value cannot be reproduced"
        else:
            yield e.name, FAIL, "fetched value is not the pre-update value"


def _save_rngs(session: Any, ops: list[Any]) -> dict[Any, Any]:
    return {op: session._context(op).rng.bit_generator.state for op in ops}


def _restore_rngs(session: Any, states: dict[Any, Any]) -> None:
    for op, state in states.items():
        session._context(op).rng.bit_generator.state = state


from gradverify.harness import audit_rules  # noqa: E402, F401  (registers the optimizers' rules)
