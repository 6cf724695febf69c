"""``gradverify explain FILE.py`` and ``gradverify audit FILE.py``: a TF1-style training
script on the engine, read back.

The script protocol. The file is run with ``runpy.run_path(path, run_name="__gradverify__")``
inside a fresh default graph, so code under ``if __name__ == "__main__":`` (the training
loop) does not run. Then, from the script's module-level names:

- ``graph``: the ``tf.Graph`` (default: the graph the script built in, i.e. the default one);
- ``train_op`` (or ``optimizer`` when it is an Operation, as in ``optimizer =
  tf.train.GradientDescentOptimizer(0.5).minimize(loss)``): one train op or a list (default:
  the graph's ``tf.GraphKeys.TRAIN_OP`` collection, filled by every ``minimize``);
- ``loss``: the loss tensor (default: the loss the optimizer differentiated);
- feeds for a step: ``make_feed(step)`` or ``feed_dict()`` (functions) or a ``feed_dict``
  dict (default: no feed; graphs on constants need none).

``explain`` then lists, for every global variable: trainable or not, whether each train op
updates it (and why not), every gradient path from the loss to it, and the update rule with
its hyperparameters; ``--dot`` writes the graph for Graphviz with updated variables
highlighted. ``audit`` initialises the variables and runs N steps under
:func:`harness.audit_step`, one verdict per step.

>>> import pathlib, tempfile
>>> src = '''import gradverify.engine as tf
... w = tf.Variable([1.0, 2.0], name="w")
... loss = tf.reduce_sum(w * w)
... train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
... '''
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.py"
>>> _ = path.write_text(src)
>>> explain(load_script(str(path))).splitlines()[5].split()
['w', 'float32', '(2,)', 'trainable']
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradverify.runner import UsageError

__all__ = ["Model", "load_script", "explain", "write_dot", "dot_source", "audit", "RULES"]

# How each optimizer rule updates a variable (the UpdateRecord's ``rule``).
RULES = {
    "sgd": "var ← var − learning_rate · grad",
    "momentum": "accum ← momentum · accum + grad;  var ← var − learning_rate · accum",
    "nesterov": "accum ← momentum · accum + grad;  var ← var − learning_rate · (grad + "
                "momentum · accum)",
    "adam": "m ← β1·m + (1−β1)·grad;  v ← β2·v + (1−β2)·grad²;  var ← var − learning_rate"
            " · √(1−β2^t)/(1−β1^t) · m / (√v + ε)",
    "adagrad": "accum ← accum + grad²;  var ← var − learning_rate · grad / √accum",
    "rmsprop": "ms ← decay·ms + (1−decay)·grad²;  mom ← momentum·mom + learning_rate · grad"
               " / √(ms + ε);  var ← var − mom",
    "centered_rmsprop": "mg ← decay·mg + (1−decay)·grad;  ms ← decay·ms + (1−decay)·grad²;"
                        "  mom ← momentum·mom + learning_rate · grad / √(ms − mg² + ε);  "
                        "var ← var − mom",
    "scale": "var ← var · factor (not a gradient step)",
}


@dataclass
class Model:
    """What a script exposes: its graph, train ops, loss and a feed for each step."""

    path: str
    graph: Any
    train_ops: list[Any]
    loss: Any
    feed: Callable[[int], dict | None]
    names: dict[Any, str]           # variable -> the script's Python name for it
    source: str                     # where the train ops came from


def load_script(path: str) -> Model:
    """Run the script by the protocol above; UsageError when it cannot be run or exposes
    no train op."""
    import gradverify.engine as tf
    from gradverify.engine.graph import Graph, Operation, Tensor
    from gradverify.engine.variables import Variable

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{path}: no such file")
    sys.path.insert(0, str(file.resolve().parent))
    try:
        with tf.Graph().as_default() as default:
            try:
                ns = runpy.run_path(str(file), run_name="__gradverify__")
            except (Exception, SystemExit) as e:
                raise UsageError(f"{path}: the script raised {type(e).__name__}: {e}") from e
    finally:
        sys.path.remove(str(file.resolve().parent))
    graph = ns.get("graph") if isinstance(ns.get("graph"), Graph) else default

    def ops_of(value: Any) -> list[Any] | None:
        items = value if isinstance(value, (list, tuple)) else [value]
        items = [t.op if isinstance(t, Tensor) else t for t in items]
        return items if items and all(isinstance(t, Operation) for t in items) else None

    train_ops, source = None, "the TRAIN_OP collection"
    for key in ("train_op", "optimizer"):
        if key in ns and (found := ops_of(ns[key])) is not None:
            train_ops, source = found, f"the script's `{key}`"
            break
    if train_ops is None:
        train_ops = list(graph.get_collection(tf.GraphKeys.TRAIN_OP))
    if not train_ops:
        raise UsageError(f"{path}: no train op (define `train_op`, or build one with "
                         "`minimize`, which adds it to the TRAIN_OP collection)")
    graph = train_ops[0].graph
    loss = ns.get("loss") if isinstance(ns.get("loss"), Tensor) else None
    if loss is None:
        losses = [r.loss for r in _records(graph, train_ops) if r.loss is not None]
        loss = losses[0] if losses else None
    if callable(ns.get("make_feed")):
        feed = ns["make_feed"]
    elif callable(ns.get("feed_dict")):
        fn = ns["feed_dict"]
        feed = lambda step: fn()
    elif isinstance(ns.get("feed_dict"), dict):
        fixed = ns["feed_dict"]
        feed = lambda step: fixed
    else:
        feed = lambda step: None
    names = {v: k for k, v in ns.items() if isinstance(v, Variable) and not k.startswith("_")}
    return Model(str(path), graph, train_ops, loss, feed, names, source)


def _records(graph: Any, train_ops: list[Any]) -> list[Any]:
    from gradverify.engine import inspect
    return inspect.update_records(graph, train_ops)


def _current(model: Model, tensors: list[Any]) -> dict[Any, Any]:
    """The values of ``tensors`` (learning-rate schedules and other non-constant
    hyperparameters) at the start of training: variables initialised, the first feed.
    Empty when they cannot be evaluated without training (a missing feed)."""
    import gradverify.engine as tf
    if not tensors:
        return {}
    try:
        with model.graph.as_default():
            init = tf.global_variables_initializer()
        with tf.Session(graph=model.graph) as s:
            s.run(init)
            return dict(zip(tensors, s.run(tensors, model.feed(0))))
    except Exception:  # noqa: BLE001 - explain shows the tensor's name instead
        return {}


def _value(t: Any, now: dict[Any, Any]) -> str:
    from gradverify.engine.graph import constant_value
    v = constant_value(t) if t is not None else None
    if v is None and t in now:
        return f"{float(now[t]):g} at step 0 (<{t.name}>)" if getattr(
            now[t], "size", 1) == 1 else f"<{t.name}>"
    if v is None:
        return f"<{t.name}>" if t is not None else "?"
    return f"{float(v):g}" if getattr(v, "size", 1) == 1 else str(v.tolist())


def _label(model: Model, var: Any) -> str:
    py = model.names.get(var)
    return var.op.name if py in (None, var.op.name) else f"{var.op.name} ({py})"


def explain(model: Model) -> str:
    """The readable answer: per variable, trainable, updated by which train op with which
    rule (and where that update comes from: an optimizer, a hand-written assign, the global
    step), the gradient pipeline (``loss → gradients → clip_by_global_norm → apply(adam)``),
    the schedule's current value, the program rules it breaks, and every gradient path from
    the loss to it."""
    import gradverify.engine as tf
    from gradverify.engine.graph import constant_value
    from gradverify.harness.audit import gradient_paths
    from gradverify.harness.audit_plan import make_plan

    g = model.graph
    variables = g.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)
    plans = {op: make_plan(g, op) for op in model.train_ops}
    hypers = [t for p in plans.values() for u in p.updates if u.record is not None
              for t in u.record.hyper.values() if constant_value(t) is None]
    now = _current(model, list(dict.fromkeys(hypers)))
    lines = [f"script: {model.path}",
             "train op" + ("s" if len(model.train_ops) > 1 else "") + ": "
             + ", ".join(op.name for op in model.train_ops) + f" (from {model.source})",
             "loss: " + (f"{model.loss.name} ({model.loss.dtype.name}, shape "
                         f"{model.loss.shape})" if model.loss is not None else "unknown"),
             f"\nvariables ({len(variables)}):"]
    width = max([len(_label(model, v)) for v in variables] + [8])
    for var in variables:
        lines.append(f"  {_label(model, var):<{width}}  {var.dtype.name} "
                     f"{tuple(var.shape.as_list())}  "
                     + ("trainable" if var.trainable else "not trainable"))
        for op, plan in plans.items():
            lines += _explain_updates(model, var, op, plan, now)
        if model.loss is not None:
            paths = gradient_paths(model.loss, var)
            lines.append(f"      gradient paths from the loss: {len(paths)}"
                         + (" (limit reached)" if len(paths) >= 16 else ""))
            lines += [f"        {' -> '.join(p)}" for p in paths]
    return "\n".join(lines)


def _explain_updates(model: Model, var: Any, op: Any, plan: Any, now: dict) -> list[str]:
    lines = []
    mine = [u for u in plan.updates if u.variable is var]
    for u in mine:
        if u.record is not None:
            hyper = ", ".join(f"{k} = {_value(t, now)}" for k, t in u.record.hyper.items())
            lines.append(f"      updated by {op.name}: {u.kind} — {RULES.get(u.kind, u.kind)}"
                         + (f"  [{hyper}]" if hyper else ""))
        elif u.source.endswith("(global step)"):
            lines.append(f"      incremented by 1 by {op.name}, after the updates "
                         "(global_step)")
        else:
            lines.append(f"      updated by {op.name}: {u.kind} by hand ({u.op.name}), "
                         "predicted from its own graph")
        lines.append(f"        from: {u.source}")
        if u.pipeline is not None and u.pipeline.stages:
            lines.append(f"        pipeline: {' → '.join(u.pipeline.stages)}")
    if not mine and var in plan.slot_owner and var in plan.writers:
        name, owner = plan.slot_owner[var]
        lines.append(f"      slot '{name}' of {_label(model, owner)}: written by "
                     f"{op.name} with {owner.op.name}'s update")
    elif not mine:
        lines.append(f"      not updated by {op.name}: {_why_not(model, var, plan)}")
    lines += [f"        breaks a rule: {r}" for r in plan.problems.get(var, [])]
    return lines


def _why_not(model: Model, var: Any, plan: Any) -> str:
    from gradverify.harness.audit import gradient_paths
    if not var.trainable:
        return "not trainable"
    if model.loss is not None and not gradient_paths(model.loss, var):
        return "no gradient path from the loss (unconnected, or behind stop_gradient)"
    lists = [u.record.var_list for u in plan.updates
             if u.record is not None and u.record.var_list is not None]
    if lists and all(var not in vl for vl in lists):
        return "not in the optimizer's var_list"
    return "no update op for it in this train op"


# -- DOT ---------------------------------------------------------------------------------------
def _q(s: str) -> str:
    """A DOT quoted string; a newline becomes a line break of the label."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot_source(model: Model) -> str:
    """Graphviz DOT of the forward graph (the loss's ancestors), the variables, their update
    ops and the train ops. Updated variables are filled orange with a bold border, others
    grey; the loss is blue; the gradient is drawn as one dashed edge from the loss to each
    update op (the ``gradients/`` subgraph is left out)."""
    import gradverify.engine as tf
    from gradverify.engine import inspect
    from gradverify.harness.audit_plan import make_plan
    g = model.graph
    plan = make_plan(g, model.train_ops)
    recs = plan.updates
    updated = set(plan.writers)
    variables = g.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)
    var_ops = {v.op: v for v in variables}
    keep = inspect.ancestors([model.loss.op]) if model.loss is not None else set()
    keep |= set(var_ops) | {r.op for r in recs} | set(model.train_ops)
    keep = {op for op in keep if not op.name.startswith("gradients")}
    lines = ["digraph gradverify {", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fillcolor=white, fontname='
             '"Helvetica", fontsize=10];', "  edge [color=\"#555555\"];"]
    for op in sorted(keep, key=inspect.creation_index):
        label = op.name if op.name == op.type else f"{op.name}\n{op.type}"
        attrs = []
        if op in var_ops:
            v = var_ops[op]
            label = f"{_label(model, v)}\n{'trainable' if v.trainable else 'not trainable'}"
            attrs = (['shape=ellipse', 'fillcolor="#ffb74d"', 'penwidth=2.5',
                      'color="#e65100"'] if v in updated else
                     ['shape=ellipse', 'fillcolor="#e0e0e0"'])
            label += "\nUPDATED" if v in updated else "\nnot updated"
        elif model.loss is not None and op is model.loss.op:
            attrs = ['fillcolor="#90caf9"', "penwidth=2"]
            label += "\n(loss)"
        elif op in model.train_ops:
            attrs = ["shape=hexagon", 'fillcolor="#a5d6a7"']
            label += "\n(train op)"
        elif any(op is r.op for r in recs):
            attrs = ['fillcolor="#ffe0b2"']
        lines.append(f"  {_q(op.name)} [label={_q(label)}"
                     + "".join(f", {a}" for a in attrs) + "];")
    update_ops = {r.op for r in recs}
    for op in sorted(keep, key=inspect.creation_index):
        for t in op.inputs:
            if t.op in keep and not (op in update_ops and t.op in var_ops):
                lines.append(f"  {_q(t.op.name)} -> {_q(op.name)};")
        for c in op.control_inputs:
            if c in keep:
                lines.append(f"  {_q(c.name)} -> {_q(op.name)} [style=dotted];")
    for r in recs:
        stages = r.pipeline.stages if r.pipeline is not None else []
        if model.loss is not None and "gradients" in stages:
            label = f"d loss / d {r.variable.op.name}\n" + " → ".join(stages)
            lines.append(f"  {_q(model.loss.op.name)} -> {_q(r.op.name)} [style=dashed, "
                         f'color="#c62828", label={_q(label)}, fontsize=8];')
        lines.append(f"  {_q(r.op.name)} -> {_q(r.variable.op.name)} [style=bold, "
                     'color="#e65100", label="writes", fontsize=8, constraint=false];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_dot(model: Model, path: str) -> None:
    """Write :func:`dot_source` to ``path``."""
    Path(path).write_text(dot_source(model), encoding="utf-8")


# -- audit -------------------------------------------------------------------------------------
def audit(model: Model, steps: int, strict: bool = False, out: Any = None) -> int:
    """Initialise the variables, run ``steps`` steps of every train op under
    :func:`harness.audit_step` and print a verdict per step (the full audit for the first
    step and for any step that does not pass). Returns the exit status (0/1)."""
    import gradverify.engine as tf
    from gradverify.harness.audit import audit_step
    from gradverify.harness.report import FAIL, INCONCLUSIVE, PASS

    out = out or sys.stdout
    verdicts = []
    with model.graph.as_default():
        init = tf.global_variables_initializer()
    fetches = list(model.train_ops) + ([model.loss] if model.loss is not None else [])
    print(f"audit of {model.path}: {steps} step{'s' if steps > 1 else ''} of "
          + ", ".join(op.name for op in model.train_ops), file=out)
    with tf.Session(graph=model.graph) as session:
        session.run(init)
        for step in range(steps):
            a = audit_step(session, fetches, model.feed(step))
            verdicts.append(a.verdict)
            loss = (f"  loss {float(a.result[-1]):.6g}" if model.loss is not None else "")
            print(f"step {step}: {a.verdict}{loss}", file=out)
            if step == 0 or a.verdict != PASS:
                print("  " + str(a).replace("\n", "\n  "), file=out)
    failed = verdicts.count(FAIL)
    unsure = verdicts.count(INCONCLUSIVE)
    status = 1 if failed or (strict and unsure) else 0
    print(f"{'PASS' if status == 0 else 'FAIL'}: {steps} steps, {failed} failed, {unsure} "
          f"inconclusive (exit status {status})", file=out)
    return status
