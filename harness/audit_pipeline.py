"""Where the tensor an update applies comes from, and the program rules it must obey.

For each update the auditor traces the applied tensor (an optimizer's gradient, a
hand-written ``assign_sub``'s delta) back to its sources along *carrier* edges: inputs with
the output's shape (elementwise ops, a scale by a scalar, noise of the same shape), or the
only input of a shape change of the same size (reshape). A raw gradient made by
``tf.gradients`` / ``compute_gradients`` is a source (the gradient of one variable), and
so is a variable read. What the tensor carries decides the program rules, each FAIL naming
the variable and the rule:

- ``gradient pairing``: it carries raw gradients, but not the one of the variable it is
  applied to (``zip(grads, variables)`` in the wrong order), or several variables' gradients
  elementwise. A global statistic of all gradients (``clip_by_global_norm``'s norm, a
  reduction) is not a carrier of the same shape, so clipping keeps each gradient's pairing.
  (For scalar variables a combination of several gradients counts as such a statistic: an
  elementwise mix of scalar gradients is not told apart from a norm.)
- ``fresh gradient``: it carries no raw gradient and no read of the variable itself, but a
  read of a non-trainable variable that holds a stored gradient (assigned from a
  ``tf.gradients`` result, never accumulated into): a gradient from an earlier run.
- ``L2 once``: a multiple of the variable is added to its gradient by hand although the
  loss already has an L2 term of it (``l2_loss(w)``, ``square(w)``, ``w * w``): the L2 term
  counted twice.
- ``schedule step`` (checked on values, in ``harness.audit_predict``): a learning-rate
  schedule must see the pre-step ``global_step``.

The pipeline's stages (``loss → gradients → clip_by_global_norm → apply(adam)``) are the
name scopes of the ops on the carrier paths, in graph order.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default() as g:
...     w = tf.Variable([1.0, 2.0], name="w")
...     (grad,) = tf.gradients(tf.reduce_sum(w * w), [w])
...     p = trace(tf.clip_by_value(grad, -1.0, 1.0) * 0.5, w, "apply(sgd)")
>>> p.stages, p.problems()
(['loss', 'gradients', 'clip_by_value', 'mul', 'apply(sgd)'], [])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gradverify.engine import inspect

__all__ = ["Pipeline", "trace", "gradient_paths", "reads_post_step"]

_ADDITIVE = ("Add", "AddV2", "Sub", "AddN")


@dataclass
class _Carried:
    grads: frozenset = frozenset()     # GradientSources
    reads: frozenset = frozenset()     # Variables read
    mixed: bool = False
    decay: bool = False                # a read of the target added to its gradient
    ops: frozenset = frozenset()       # ops on carrier paths below a raw gradient

    def __or__(self, o: _Carried) -> _Carried:
        return _Carried(self.grads | o.grads, self.reads | o.reads, self.mixed or o.mixed,
                        self.decay or o.decay, self.ops | o.ops)


@dataclass
class Pipeline:
    """The applied tensor of one update, traced to its sources."""

    variable: Any
    applied: Any
    grads: list[Any] = field(default_factory=list)     # GradientSource, raw gradients
    reads: list[Any] = field(default_factory=list)     # Variables read elementwise
    mixed: bool = False
    decay: bool = False
    stages: list[str] = field(default_factory=list)
    loss: Any = None
    stored: bool = True    # whether the rule "fresh gradient" applies (a gradient or delta)

    def own(self) -> list[Any]:
        ref = inspect.variable_ref(self.variable)
        return [s for s in self.grads if s.variable is self.variable or s.x is ref]

    def problems(self) -> list[str]:
        """The program rules this pipeline breaks (empty when none)."""
        name = self.variable.op.name
        out = []
        others = sorted({_name(s) for s in self.grads if s not in self.own()})
        if self.mixed:
            out.append(f"the update of {name} mixes the gradients of "
                       f"{', '.join(others + [name] if self.own() else others)} elementwise "
                       "(rule: gradient pairing)")
        elif self.grads and not self.own():
            out.append(f"the gradient applied to {name} is the gradient of "
                       f"{', '.join(others)}: paired with the wrong variable "
                       "(rule: gradient pairing)")
        stale = [v for v in self.reads if v is not self.variable and _stored_gradient(v)]
        if (self.stored and not self.grads and stale and self.variable not in self.reads
                and self.variable.trainable):
            out.append(f"the gradient applied to {name} is read from "
                       f"{', '.join(sorted(v.op.name for v in stale))}, a value stored by "
                       "an earlier run, not computed in this step (rule: fresh gradient)")
        if self.decay and self.loss is not None and _has_l2_of(self.loss, self.variable):
            out.append(f"the update of {name} adds a multiple of {name} to its gradient by "
                       f"hand, but the loss already contains l2_loss({name}): the L2 term "
                       "is counted twice (rule: L2 once)")
        return out


def _name(source: Any) -> str:
    return source.variable.op.name if source.variable is not None else source.x.op.name


def _stored_gradient(variable: Any) -> bool:
    """Whether ``variable`` holds a raw gradient assigned by an earlier run: non-trainable,
    written by an ``assign`` of a value computed from a ``tf.gradients`` result, and never
    accumulated into (``assign_add``: gradient accumulation is a legitimate pattern)."""
    if variable.trainable:
        return False
    graph = variable.graph
    ref = inspect.variable_ref(variable)
    writes = [op for op in graph.get_operations()
              if inspect.is_write(op) and ref in inspect.written_refs(op)]
    if any(op.type != "Assign" for op in writes):
        return False
    sources = inspect.gradient_sources(graph)
    return any(t in sources for op in writes
               for a in inspect.ancestors([op.inputs[1]], control=False) for t in a.outputs)


def _has_l2_of(loss: Any, variable: Any) -> bool:
    """Whether the loss has an L2 term of the variable itself: ``l2_loss(w)``,
    ``square(w)`` or ``w * w`` on the variable's value (not on a function of it)."""
    ref = inspect.variable_ref(variable)

    def is_w(t: Any) -> bool:
        return t is ref or (t.op.type == "Identity" and t.op.inputs[:1] == (ref,))

    for op in inspect.ancestors([loss], control=False):
        if op.type in ("L2Loss", "Square") and is_w(op.inputs[0]):
            return True
        if op.type == "Mul" and op.inputs[0] is op.inputs[1] and is_w(op.inputs[0]):
            return True
    return False


def _carriers(op: Any, out: Any) -> list[Any]:
    floats = [t for t in op.inputs if t.dtype.is_floating]
    dims = out.shape.as_tuple()
    same = [t for t in floats if dims is not None and t.shape.as_tuple() == dims]
    if same:
        return same
    if len(floats) == 1 and floats[0].shape.num_elements() == out.shape.num_elements():
        return floats   # reshape / transpose / squeeze: same entries, other layout
    return []


def trace(applied: Any, variable: Any, applying: str, *, stored: bool = True) -> Pipeline:
    """Trace ``applied`` (the tensor an update of ``variable`` uses) to its sources;
    ``applying`` names the last stage (``"apply(adam)"``, ``"assign_sub"``)."""
    graph = variable.graph
    sources = inspect.gradient_sources(graph)
    by_ref = inspect.variable_by_ref(graph)
    memo: dict[Any, _Carried] = {}

    def carried(t: Any) -> _Carried:
        if t in memo:
            return memo[t]
        memo[t] = _Carried()   # a cycle cannot happen; this guards the recursion
        if t in sources:
            found = _Carried(grads=frozenset([sources[t]]))
        elif t in by_ref:
            found = _Carried(reads=frozenset([by_ref[t]]))
        elif t.op.type == "Identity" and t.op.inputs and t.op.inputs[0] in by_ref:
            ref = t.op.inputs[0]
            # a read ordered after a write of the same run sees what that write stored
            writes = [op for op in inspect.ancestors([t.op]) if op is not t.op
                      and inspect.is_write(op) and ref in inspect.written_refs(op)]
            found = _Carried(reads=frozenset([by_ref[ref]]))
            for w in writes:
                found = found | carried(w.outputs[0])
        elif inspect.is_write(t.op):   # the new value, stored in this run
            found = _Carried(reads=frozenset(by_ref[r] for r in inspect.written_refs(t.op)
                                             if r in by_ref))
            if len(t.op.inputs) > 1:  # what was stored (assign) or added (assign_add)
                found = found | carried(t.op.inputs[1])
        else:
            parts = [carried(x) for x in _carriers(t.op, t)]
            found = _Carried()
            for p in parts:
                found = found | p
            targets = {s.variable or s.x for s in found.grads}
            if len(targets) > 1 and (t.shape.num_elements() or 0) > 1:
                found.mixed = True   # several gradients combined entry by entry
            elif len(targets) > 1:   # a scalar statistic of several (a norm): no carrier
                found = _Carried(reads=found.reads, decay=found.decay)
            if t.op.type in _ADDITIVE and len(parts) > 1:
                found.decay = found.decay or (any(
                    variable in p.reads and not p.grads for p in parts) and any(
                    p.grads for p in parts))
            if found.grads:
                found.ops = found.ops | {t.op}
        memo[t] = found
        return found

    c = carried(applied)
    stages = ["loss", "gradients"] if c.grads else []
    for op in sorted(c.ops, key=inspect.creation_index):
        label = re.sub(r"_\d+$", "", op.name.split("/")[0])
        if label not in stages:
            stages.append(label)
    loss = next((s.ys[0] for s in c.grads), None)
    return Pipeline(variable, applied, sorted(c.grads, key=_name), sorted(
        c.reads, key=lambda v: v.op.name), c.mixed, c.decay, [*stages, applying], loss,
        stored)


def reads_post_step(tensor: Any, global_step: Any) -> Any:
    """The write of ``global_step`` (its increment) whose result ``tensor`` computes with
    through data edges — its output, or a read of the variable ordered after it — or None."""
    ref = inspect.variable_ref(global_step)
    for op in inspect.ancestors([tensor], control=False):
        if inspect.is_write(op) and ref in inspect.written_refs(op):
            return op
        if not inspect.is_write(op) and any(t is ref for t in op.inputs):
            for w in inspect.ancestors([op]):
                if w is not op and inspect.is_write(w) and ref in inspect.written_refs(w):
                    return w
    return None


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
    relevant = inspect.ancestors([target])
    paths: list[list[str]] = []

    def walk(tensor: Any, trail: list[str]) -> None:
        if len(paths) >= limit:
            return
        for op in inspect.consumers(tensor):  # x * x is one path, not two
            if op not in relevant:
                continue
            diff = inspect.differentiable_inputs(op)
            if not any(diff[i] for i, t in enumerate(op.inputs) if t is tensor):
                continue
            if op is target:
                paths.append([*trail, op.name])
                continue
            for out in op.outputs:
                if out.dtype.is_floating:
                    walk(out, [*trail, op.name])
    walk(inspect.variable_ref(variable), [])
    return paths
