"""Which variable writes the graph orders before each op (for ``Session``'s read rule).

TF1 reads a variable when the reading op runs, and ``control_dependencies`` (or a data path)
fixes that some writes run first: ``with control_dependencies([inc]): y = identity(v)`` sees
the incremented value. Reads that nothing orders after a write are, in the engine, done at
the start of the run (one legal TF schedule). A session plan therefore needs, per op, the set
of variables written by its ancestors; this module computes it once per plan.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     v = tf.Variable(0.0, name="v")
...     inc = tf.assign_add(v, 1.0)
...     with tf.control_dependencies([inc]):
...         y = tf.identity(v)
...     before = writes_before([inc.op, y.op], fed=set())
...     [var.name for var in before[y.op]], list(before[inc.op])
(['v'], [])
"""

from __future__ import annotations

from collections.abc import Iterable

from gradverify.engine.graph import Operation, Tensor

__all__ = ["written_variables", "writes_before"]

_NONE: frozenset[Operation] = frozenset()


def written_variables(op: Operation) -> frozenset[Operation]:
    """The variable ops ``op`` writes: the owners of its reference inputs."""
    refs = op.opdef.ref_inputs
    if not refs:
        return _NONE
    return frozenset(op.inputs[j].op for j in refs if j < len(op.inputs))


def writes_before(ops: Iterable[Operation], fed: set[Tensor]) -> dict[Operation, frozenset]:
    """For each of ``ops`` (a set closed under the ancestors a run needs), the variables
    written by its ancestors through data and control edges (edges from fed tensors are
    cut: a fed value does not depend on anything)."""
    ordered = sorted(ops, key=lambda o: o._id)  # creation order is topological
    if not any(o.opdef.ref_inputs for o in ordered):
        return dict.fromkeys(ordered, _NONE)
    out: dict[Operation, frozenset[Operation]] = {}
    for op in ordered:
        preds = [t.op for t in op.inputs if t not in fed] + list(op.control_inputs)
        acc: frozenset[Operation] = _NONE
        for p in preds:
            if p not in out:
                continue
            extra = out[p] | written_variables(p)
            if extra and not extra <= acc:
                acc = acc | extra
        out[op] = acc
    return out
