"""Phase 1 of ``audit_step``: the plan — which variables, slots and counters the fetched ops
must change, by which update, and which program rules that update breaks.

An *update* is one write the step makes that the auditor can predict:

- an optimizer update (an ``UpdateRecord``: the variable and every slot its kernel writes,
  or a ``"scale"`` write such as Adam's beta powers);
- a hand-written ``assign`` / ``assign_add`` / ``assign_sub`` anywhere under the fetches
  (directly fetched, grouped, or ordered by ``control_dependencies``), the global-step
  increment included.

A write made inside ``apply_gradients`` that no ``UpdateRecord`` declares is not an update:
the variable it changes is reported as changed unexpectedly. Explanations and verdicts come
from the plan, not from walking the graph again.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default() as g:
...     w = tf.Variable(1.0, name="w"); n = tf.Variable(0.0, name="n", trainable=False)
...     step = tf.group(tf.train.GradientDescentOptimizer(0.1).minimize(w * w),
...                     n.assign_add(1.0))
...     p = make_plan(g, step)
>>> [(u.variable.op.name, u.kind, u.source) for u in p.updates]
[('w', 'sgd', 'GradientDescent (sgd)'), ('n', 'assign_add', 'AssignAdd (hand-written)')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gradverify.engine import inspect
from gradverify.engine.graph import GraphKeys
from gradverify.harness.audit_pipeline import Pipeline, gradient_paths, trace

__all__ = ["Update", "Plan", "make_plan"]

_HAND_WRITTEN = {"Assign": "assign", "AssignAdd": "assign_add", "AssignSub": "assign_sub"}


@dataclass
class Update:
    """One predictable write of the step. ``kind``: the optimizer rule, or ``assign`` /
    ``assign_add`` / ``assign_sub``; ``writes``: the variables it changes (variable first,
    then slots); ``value``: for a hand-written update, the tensor assigned / added."""

    op: Any
    variable: Any
    kind: str
    source: str
    record: Any = None
    value: Any = None
    writes: list[Any] = field(default_factory=list)
    pipeline: Pipeline | None = None

    def tensors(self) -> list[Any]:
        """The tensors whose pre-step values predict this update."""
        if self.record is not None:
            return [t for t in (self.record.gradient, *self.record.hyper.values())
                    if t is not None]
        return [self.value]


@dataclass
class Plan:
    """What ``audit_step`` expects of one ``run``: see the module docstring."""

    elements: list[Any]
    fetched: list[Any]                       # fetched tensors that must be pre-step values
    variables: list[Any]
    updates: list[Update] = field(default_factory=list)
    writers: dict[Any, list[Update]] = field(default_factory=dict)
    problems: dict[Any, list[str]] = field(default_factory=dict)
    undeclared: dict[Any, str] = field(default_factory=dict)
    slot_owner: dict[Any, tuple[str, Any]] = field(default_factory=dict)
    paths: dict[Any, list[list[str]]] = field(default_factory=dict)
    randoms: list[Any] = field(default_factory=list)
    unseeded: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    global_step: Any = None
    # (variable, what, a step tensor the update's inputs use, "schedule" | "expression")
    schedule_steps: list[tuple[Any, str, Any, str]] = field(default_factory=list)

    def problem(self, var: Any, reason: str) -> None:
        found = self.problems.setdefault(var, [])
        if reason not in found:
            found.append(reason)

    def wanted(self) -> list[Any]:
        """Every tensor the predictions need, the steps schedules see, then the fetched
        tensors, each once."""
        out = [t for u in self.updates for t in u.tensors()]
        out += [t for _, _, t, _ in self.schedule_steps] + self.fetched
        return list(dict.fromkeys(out))


def make_plan(graph: Any, fetches: Any) -> Plan:
    """The plan of ``session.run(fetches)`` on ``graph``."""
    elements = [graph.as_graph_element(f) for f in inspect.fetch_leaves(fetches)]
    roots = [e if hasattr(e, "outputs") else e.op for e in elements]
    reach = inspect.ancestors(roots)
    fetched = [e for e in elements if not hasattr(e, "outputs") and not any(
        inspect.is_write(op) for op in inspect.ancestors([e]))]
    plan = Plan(elements, fetched, inspect.variables(graph),
                slot_owner=inspect.slot_owners(graph), global_step=_global_step(graph))
    plan.randoms = sorted((op for op in reach if op.opdef.random), key=inspect.creation_index)
    plan.unseeded = [op.name for op in plan.randoms
                     if op.attrs.get("seed") is None and op.attrs.get("seed2") is None]
    for r in inspect.update_records(graph, roots):
        _add_record(plan, r)
    _add_hand_written(plan, graph, reach)
    _check_overlaps(plan, graph)
    return plan


_INCREMENTS = ("assign_add", "assign_sub")


def _add(plan: Plan, update: Update) -> None:
    plan.updates.append(update)
    for var in update.writes:
        earlier = plan.writers.setdefault(var, [])
        for e in earlier:
            if e.kind in _INCREMENTS and update.kind in _INCREMENTS:
                continue  # increments commute: their deltas add up (audit_predict)
            if update.record is None and e.op in inspect.ancestors([update.op]):
                _check_lost_update(plan, update, e)  # ordered after it: applied on top
                continue
            shared = var is not e.variable and var is not update.variable
            plan.problem(var, f"written by the updates of both {e.variable.op.name} and "
                              f"{update.variable.op.name} in one step"
                              + (": one slot shared by two variables" if shared else "")
                              + " (rule: one write per variable)")
        earlier.append(update)


def _check_lost_update(plan: Plan, update: Update, earlier: Update) -> None:
    """Rule ``lost update``: an ``assign`` ordered after another update of its variable
    that computes its value from a read of the variable not ordered after that update
    (the pre-step value) throws the earlier update away."""
    if update.kind != "assign":
        return
    ref = inspect.variable_ref(update.variable)
    stale = [op for op in inspect.ancestors([update.value], control=False)
             if not inspect.is_write(op) and any(t is ref for t in op.inputs)
             and earlier.op not in inspect.ancestors([op])]
    if stale:
        name = update.variable.op.name
        plan.problem(update.variable, f"{update.op.name} runs after {earlier.source} but "
                                      f"computes {name}'s new value from {stale[0].name}, "
                                      f"the pre-step value: {earlier.source}'s update of "
                                      f"{name} is lost (rule: lost update)")


def _add_record(plan: Plan, r: Any) -> None:
    name = r.optimizer.get_name() if r.optimizer is not None else "optimizer"
    u = Update(r.op, r.variable, r.rule, f"{name} ({r.rule})", record=r,
               writes=[r.variable, *r.slots.values()])
    var = r.variable
    if r.gradient is not None:  # a gradient step (not a "scale" write such as beta powers)
        u.pipeline = trace(r.gradient, var, f"apply({r.rule})")
        for reason in u.pipeline.problems():
            plan.problem(var, reason)
        if r.var_list is not None and var not in r.var_list:
            plan.problem(var, "updated but not in the var_list it was optimised for")
        elif r.var_list is None and r.loss is not None and not var.trainable:
            # (a gradient handed to apply_gradients by the program names its variable
            # explicitly: only minimize's default var_list must hold trainable ones)
            plan.problem(var, "updated but not trainable (and not in an explicit var_list)")
        loss = r.loss if r.loss is not None else u.pipeline.loss
        if loss is not None:
            plan.paths[var] = gradient_paths(loss, var)
        if r.loss is not None and not plan.paths[var]:  # TF1 never touches a None gradient
            plan.problem(var, "updated, but its gradient is None (no gradient path from "
                              "the loss)")
    for key, t in r.hyper.items():
        _check_schedule(plan, var, key, t)
    _add(plan, u)


def _global_step(graph: Any) -> Any:
    from gradverify.engine.train import get_global_step
    step = get_global_step(graph)
    return step if step in inspect.variables(graph) else None


# The name scopes of tf.train's schedules: their step argument must be the global step.
_SCHEDULE = re.compile(r"^(ExponentialDecay|NaturalExpDecay|InverseTimeDecay|PolynomialDecay"
                       r"|PiecewiseConstant)(_\d+)?/")


def _scope_of(op: Any) -> str | None:
    m = _SCHEDULE.match(op.name)
    return m.group(0) if m else None


def _check_schedule(plan: Plan, var: Any, what: str, tensor: Any) -> None:
    """Remember the steps ``tensor`` computes with: the argument of every ``tf.train``
    schedule in its inputs (kind ``"schedule"``: must be the pre-step global step), and
    every other integer tensor computed from the global step where it leaves integer
    arithmetic (kind ``"expression"``: ``global_step // 1000`` is the program's formula, but
    it must not read the post-step value)."""
    if plan.global_step is None:
        return
    ref = inspect.variable_ref(plan.global_step)
    seen: dict[Any, str] = {}
    for op in inspect.ancestors([tensor], control=False):
        scope = _scope_of(op)
        for t in op.inputs:
            if not t.dtype.is_integer or t in seen or ref.op not in inspect.ancestors(
                    [t], control=False):
                continue
            if scope is not None and _scope_of(t.op) != scope:
                seen[t] = "schedule"          # enters a schedule from outside
            elif not any(o.dtype.is_integer for o in op.outputs):
                seen.setdefault(t, "expression")
    plan.schedule_steps += [(var, what, t, kind) for t, kind in seen.items()]


def _add_hand_written(plan: Plan, graph: Any, reach: set[Any]) -> None:
    recorded = {r.op for r in inspect.update_records(graph)}
    applies = inspect.apply_records(graph)
    by_ref = inspect.variable_by_ref(graph)
    steps = {plan.global_step, *graph.get_collection(GraphKeys.GLOBAL_STEP)}
    for op in sorted((o for o in reach if inspect.is_write(o) and o not in recorded),
                     key=inspect.creation_index):
        targets = [by_ref[r] for r in inspect.written_refs(op) if r in by_ref]
        inside = next((a for a in applies if a.first <= inspect.creation_index(op) < a.end),
                      None)
        # the step counter apply_gradients increments (any variable passed as global_step)
        counter = op.type == "AssignAdd" and bool(targets) and (
            targets[0] in steps or (inside is not None and op is inside.train_op))
        slot = bool(targets) and targets[0] in plan.slot_owner  # only optimizers write slots
        if op.type not in _HAND_WRITTEN or slot or (inside is not None and not counter):
            for var in targets:
                where = (f"inside {inside.optimizer.get_name()}.apply_gradients"
                         if inside is not None else f"by a {op.type} op")
                plan.undeclared.setdefault(var, f"written {where} ({op.name}) that no "
                                                "update record declares")
            continue
        if not targets:
            continue
        var, value = targets[0], op.inputs[1]
        kind = _HAND_WRITTEN[op.type]
        label = "global step" if counter else "hand-written"
        u = Update(op, var, kind, f"{op.name} ({label})", value=value, writes=[var])
        if not counter:
            delta = _delta(value, var) if kind == "assign" else value
            if delta is not None:
                u.pipeline = trace(delta, var, kind, stored=var.trainable)
                for reason in u.pipeline.problems():
                    plan.problem(var, reason)
                if u.pipeline.loss is not None:
                    plan.paths[var] = gradient_paths(u.pipeline.loss, var)
            _check_schedule(plan, var, "value", value)
        _add(plan, u)


def _delta(value: Any, var: Any) -> Any:
    """For ``var.assign(var - d)`` / ``var.assign(var + d)``: ``d``; else None (an assign
    of a new value, like copying into a target network, has no delta to trace)."""
    op = value.op
    if op.type not in ("Sub", "Add", "AddV2") or len(op.inputs) != 2:
        return None
    ref = inspect.variable_ref(var)
    first = op.inputs[0]
    if first is ref or (first.op.type == "Identity" and first.op.inputs[0] is ref):
        return op.inputs[1]
    return None


def _check_overlaps(plan: Plan, graph: Any) -> None:
    lists: dict[Any, set[Any]] = {}
    for u in plan.updates:
        r = u.record
        if r is not None and r.gradient is not None and r.optimizer is not None:
            lists.setdefault(r.optimizer, set()).add(r.variable)
    others: dict[Any, set[Any]] = {}   # optimizers of train ops this run does not run
    for r in inspect.update_records(graph):
        if r.gradient is not None and r.optimizer is not None and r.optimizer not in lists:
            others.setdefault(r.optimizer, set()).add(r.variable)
    for mine, variables in lists.items():
        for other, theirs in others.items():
            both = sorted(v.op.name for v in variables & theirs)
            if both:
                plan.notes.append(f"{', '.join(both)}: updated here by {mine.get_name()} "
                                  f"and, in another train op, by {other.get_name()} "
                                  "(overlapping var_lists)")
    opts = list(lists)
    for i, a in enumerate(opts):
        for b in opts[i + 1:]:
            both = sorted(v.op.name for v in lists[a] & lists[b])
            if both:
                plan.notes.append(f"optimizers {a.get_name()} and {b.get_name()} both "
                                  f"update {', '.join(both)} in one run (overlapping "
                                  "var_lists)")
