"""The public inspection API: what tools outside the engine (the step auditor, ``gradverify
explain``, the gradient checker's adapter) may ask about a graph and a session.

Everything a tool needs is here, so no tool reads an engine attribute whose name starts
with ``_``: one ancestor walk (data and control inputs, optionally cut at fed tensors), the
consumers of a tensor, an op's creation index and which of its inputs carry gradient, the
variables an op writes, a snapshot of a session's variable values, the update records of a
train op, the raw gradients ``tf.gradients`` made, and the random state needed to replay a
stochastic step.

>>> import gradverify.engine as tf
>>> from gradverify.engine import inspect
>>> with tf.Graph().as_default() as g:
...     w = tf.Variable(2.0, name="w")
...     step = tf.train.GradientDescentOptimizer(0.5).minimize(w * w)
...     s = tf.Session(); _ = s.run(tf.global_variables_initializer())
...     [(r.rule, r.variable.op.name) for r in inspect.update_records(g, [step])]
[('sgd', 'w')]
>>> float(inspect.snapshot(s)[w])
2.0
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradverify.engine.graph import GraphKeys, Operation, Tensor

__all__ = ["ancestors", "descendants", "consumers", "creation_index", "differentiable_inputs",
           "variable_ref", "variables", "variable_by_ref", "written_refs", "is_write",
           "fetch_leaves", "snapshot", "restore_snapshot", "update_records", "apply_records",
           "slot_owners", "GradientSource",
           "gradient_sources", "record_gradients", "random_state", "restore_random_state",
           "GRADIENT_SOURCES"]

# Graph collection of GradientSource: one per non-None gradient ``tf.gradients`` returned.
GRADIENT_SOURCES = "gradverify_gradient_sources"


def _op_of(x: Any) -> Operation:
    if isinstance(x, Operation):
        return x
    if isinstance(x, Tensor):
        return x.op
    ref = getattr(x, "op", None)  # a Variable
    if isinstance(ref, Operation):
        return ref
    raise TypeError(f"Expected an Operation, Tensor or Variable, got {x!r}")


def ancestors(roots: Iterable[Any], *, cut: Iterable[Tensor] = (),
              control: bool = True) -> set[Operation]:
    """The ops running ``roots`` runs: the roots and everything they depend on through data
    inputs (and control inputs unless ``control=False``). A tensor in ``cut`` (a fed tensor)
    is not computed, so its producer is not walked into.

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     a = tf.constant(1.0, name="a"); b = tf.identity(a, name="b")
    ...     sorted(op.name for op in ancestors([b])), ancestors([b], cut=[a]) == {b.op}
    (['a', 'b'], True)
    """
    cut = set(cut)
    seen: set[Operation] = set()
    stack = [_op_of(r) for r in roots if r not in cut]
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(t.op for t in op.inputs if t not in cut)
        if control:
            stack.extend(op.control_inputs)
    return seen


def descendants(tensors: Iterable[Tensor]) -> set[Operation]:
    """The ops that consume ``tensors``, directly or through other ops' outputs (data edges).

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     a = tf.constant(1.0); b = tf.identity(a, name="b"); c = tf.square(b, name="c")
    ...     sorted(op.name for op in descendants([a]))
    ['b', 'c']
    """
    seen: set[Operation] = set()
    stack = [c for t in tensors for c in consumers(t)]
    while stack:
        op = stack.pop()
        if op not in seen:
            seen.add(op)
            stack.extend(c for t in op.outputs for c in consumers(t))
    return seen


def consumers(tensor: Tensor) -> list[Operation]:
    """The ops taking ``tensor`` as a data input, in creation order, each once."""
    return list(dict.fromkeys(tensor.consumers()))


def creation_index(op: Operation) -> int:
    """The op's position in its graph's creation order (a topological order)."""
    return op._id


def differentiable_inputs(op: Operation) -> list[bool]:
    """Per input of ``op``: whether a gradient flows through it (its metadata says so and
    the op is differentiable at all)."""
    specs = op.opdef._flat_specs(len(op.inputs))
    return [bool(op.opdef.differentiable and d.differentiable) for _, d in specs]


# -- variables ----------------------------------------------------------------------------------
def variable_ref(variable: Any) -> Tensor:
    """The reference tensor of a Variable (what update ops write and gradients target)."""
    return variable._ref()


def variables(graph: Any) -> list[Any]:
    """Global then local variables of ``graph``, each once, in creation order."""
    found = graph.get_collection(GraphKeys.GLOBAL_VARIABLES) + graph.get_collection(
        GraphKeys.LOCAL_VARIABLES)
    return list(dict.fromkeys(found))


def variable_by_ref(graph: Any) -> dict[Tensor, Any]:
    """reference tensor -> Variable, for every variable of ``graph``."""
    return {variable_ref(v): v for v in variables(graph)}


def written_refs(op: Operation) -> list[Tensor]:
    """The variable references ``op`` writes (its ref inputs: Assign's ``ref``, every
    variable and slot of a fused ``Apply*`` kernel)."""
    return [op.inputs[i] for i in op.opdef.ref_inputs if i < len(op.inputs)]


def is_write(op: Operation) -> bool:
    """Whether running ``op`` writes a variable."""
    return bool(op.opdef.ref_inputs)


def fetch_leaves(fetches: Any) -> list[Any]:
    """The leaves of a nested fetch structure (or of the matching ``run`` result), in the
    order ``Session.run`` returns them: lists, tuples, namedtuples and any Mapping nest.

    >>> fetch_leaves({"a": [1, (2, 3)], "b": 4})
    [1, 2, 3, 4]
    """
    from gradverify.engine.session import _flatten
    out: list[Any] = []
    _flatten(fetches, out)
    return out


def snapshot(session: Any) -> dict[Any, np.ndarray | None]:
    """Variable -> its current value in ``session`` (None if uninitialised), for every
    variable of the session's graph. The arrays are the session's own read-only values:
    a snapshot by reference, cheap to take before and after a run."""
    state = session._state
    return {v: state.get(v.op) for v in variables(session.graph)}


def restore_snapshot(session: Any, values: dict[Any, np.ndarray | None]) -> None:
    """Put the variable values of a :func:`snapshot` back into ``session`` (a variable that
    was uninitialised becomes uninitialised again): lets a tool evaluate tensors whose
    computation writes variables, then undo the writes."""
    state = session._state  # kernels hold this dict: update it in place
    for v, value in values.items():
        if value is None:
            state.pop(v.op, None)
        else:
            state[v.op] = value


# -- update records ----------------------------------------------------------------------------
def update_records(graph: Any, roots: Iterable[Any] | None = None) -> list[Any]:
    """The optimizers' ``UpdateRecord`` s of ``graph`` (all, or those whose update op runs
    when ``roots`` run), in the order they were made."""
    from gradverify.engine.train import UPDATE_RECORDS
    records = graph.get_collection(UPDATE_RECORDS)
    if roots is None:
        return list(records)
    reach = ancestors(roots)
    return [r for r in records if r.op in reach]


def apply_records(graph: Any) -> list[Any]:
    """The ``ApplyRecord`` of every ``apply_gradients`` call in ``graph``."""
    from gradverify.engine.train import APPLY_RECORDS
    return list(graph.get_collection(APPLY_RECORDS))


def slot_owners(graph: Any) -> dict[Any, tuple[str, Any]]:
    """slot variable -> (slot name, the variable it belongs to), over every optimizer that
    made an update record in ``graph``."""
    out: dict[Any, tuple[str, Any]] = {}
    for r in update_records(graph):
        owners = getattr(r.optimizer, "_slot_owners", None)
        out.update(owners() if owners else {})
        out.update({s: (n, r.variable) for n, s in r.slots.items()})
    return out


@dataclass(frozen=True)
class GradientSource:
    """One raw gradient ``tf.gradients`` returned: ``d(sum of ys)/d(x)``; ``variable`` is
    the Variable ``x`` is the reference of (None for a plain tensor)."""

    gradient: Tensor
    x: Tensor
    ys: tuple[Tensor, ...]
    variable: Any = None


def record_gradients(ys: list[Tensor], xs: list[Tensor], grads: list[Any]) -> None:
    """Called by ``tf.gradients``: remember which tensor is the gradient of which x."""
    if not ys:
        return
    graph = ys[0].graph
    for x, g in zip(xs, grads):
        if g is not None:
            graph.add_to_collection(GRADIENT_SOURCES, GradientSource(g, x, tuple(ys)))


def gradient_sources(graph: Any) -> dict[Tensor, GradientSource]:
    """raw gradient tensor -> where it comes from (the last ``tf.gradients`` call that
    returned it), with the Variable filled in."""
    by_ref = variable_by_ref(graph)
    out: dict[Tensor, GradientSource] = {}
    for s in graph.get_collection(GRADIENT_SOURCES):
        var = by_ref.get(s.x)
        if var is None and s.x.op.type == "Identity" and s.x.op.inputs:
            var = by_ref.get(s.x.op.inputs[0])   # with respect to a read of the variable
        out[s.gradient] = GradientSource(s.gradient, s.x, s.ys, var)
    return out


# -- random state ------------------------------------------------------------------------------
def random_state(session: Any, ops: Iterable[Operation]) -> dict[Operation, Any]:
    """The generator state of each random op in ``session`` (to replay a step)."""
    return {op: session._context(op).rng.bit_generator.state for op in ops}


def restore_random_state(session: Any, state: dict[Operation, Any]) -> None:
    """Put back what :func:`random_state` saved."""
    for op, s in state.items():
        session._context(op).rng.bit_generator.state = s
