"""Reverse-mode gradients as graph ops (so gradients of gradients work).

The walk visits, in reverse creation order, the ops that lie on a path from ``xs`` to
``ys``; sums the gradients arriving at each tensor (AddN); calls the op's registered
``(op, *grads)`` rule; and reduces each returned gradient to its input's shape in ONE place
(:func:`_reduce_to_input`), so no op author can forget to unbroadcast.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     x = tf.constant([[1.0, 2.0]]); b = tf.constant(3.0)
...     gx, gb = tf.gradients(tf.reduce_sum(x * b), [x, b])
...     with tf.Session() as s:
...         s.run(gx).tolist(), float(s.run(gb))
([[3.0, 3.0]], 3.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradverify.engine.graph import (
    Operation,
    Tensor,
    convert_to_tensor,
    get_default_graph,
    name_scope,
)
from gradverify.engine.inspect import record_gradients
from gradverify.engine.registry import api, export, lookup

__all__ = ["gradients"]


def _as_list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _x_tensor(x: Any) -> Tensor:
    ref = getattr(x, "_ref", None)  # a Variable: differentiate with respect to its reference
    return ref() if ref is not None else convert_to_tensor(x)


@export("gradients")
def gradients(ys: Any, xs: Any, grad_ys: Any = None, name: str = "gradients",
              colocate_gradients_with_ops: bool = False, gate_gradients: bool = False,
              aggregation_method: Any = None, stop_gradients: Any = None,
              unconnected_gradients: str = "none") -> list[Tensor | None]:
    """Symbolic ``sum over ys of d(y)/d(x)`` for each x in ``xs`` (None if unconnected).

    grad_ys: cotangents for ``ys`` (default ones). stop_gradients: tensors treated as
    constants. unconnected_gradients: ``"none"`` or ``"zero"`` for xs with no path.

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     a = tf.constant(1.0); b = tf.constant(2.0)
    ...     tf.gradients(a * b, [a, tf.constant(0.0)])[1] is None
    True
    """
    if unconnected_gradients not in ("none", "zero"):
        raise ValueError(f"Unknown value for unconnected_gradients: '{unconnected_gradients}'")
    ys = [convert_to_tensor(y) for y in _as_list(ys)]
    xs = [_x_tensor(x) for x in _as_list(xs)]
    graph = ys[0].graph if ys else get_default_graph()
    for t in ys + xs:
        if t.graph is not graph:
            raise ValueError(f"Tensor {t!r} must be from the same graph as Tensor {ys[0]!r}.")
    if grad_ys is None:
        grad_ys = [None] * len(ys)
    else:
        grad_ys = _as_list(grad_ys)
        if len(grad_ys) != len(ys):
            raise ValueError(f"Passed {len(grad_ys)} grad_ys for {len(ys)} ys")
    stop_ops = {_x_tensor(t).op for t in ([] if stop_gradients is None
                                             else _as_list(stop_gradients))}

    with graph.as_default(), name_scope(name):
        grads: dict[Tensor, list[Tensor]] = {}
        for i, (y, gy) in enumerate(zip(ys, grad_ys)):
            if gy is None:  # an integer y carries no gradient: its xs get None (TF1)
                gy = api("ones_like")(y, name=f"grad_ys_{i}")
            else:
                gy = convert_to_tensor(gy, dtype=y.dtype, name=f"grad_ys_{i}")
                if not gy.shape.is_compatible_with(y.shape):
                    raise ValueError(f"Shapes of grad_ys {gy.shape} and ys {y.shape} "
                                     f"are incompatible for {y.name}")
            grads.setdefault(y, []).append(gy)

        between = _between(ys, xs)
        on_path = set(xs).union(*(op.outputs for op in between))
        for op in sorted(between, key=lambda o: o._id, reverse=True):
            out_grads = [_aggregate(grads.get(t)) for t in op.outputs]
            if op in stop_ops or all(g is None for g in out_grads):
                continue
            od = op.opdef
            if not od.differentiable:
                continue
            if od.grad_fn is None:
                raise LookupError(f"No gradient defined for operation '{op.name}' (op type: "
                                  f"{op.type})")
            with name_scope(op.name + "_grad"):
                in_grads = od.grad_fn(op, *out_grads)
                in_grads = _as_list(in_grads) if isinstance(in_grads, (list, tuple)) else [
                    in_grads]
                if len(in_grads) != len(op.inputs):
                    raise ValueError(f"Num gradients {len(in_grads)} generated for op "
                                     f"{op.name} (op type: {op.type}) do not match num "
                                     f"inputs {len(op.inputs)}")
                for k, (t, g) in enumerate(zip(op.inputs, in_grads)):
                    if g is None or not t.dtype.is_floating or t not in on_path:
                        continue
                    grads.setdefault(t, []).append(_reduce_to_input(g, t, op, k))

        out: list[Tensor | None] = []
        for x in xs:
            g = _aggregate(grads.get(x))
            if g is None and unconnected_gradients == "zero":
                g = api("zeros_like")(x)
            out.append(g)
    record_gradients(ys, xs, out)  # which tensor is whose gradient, for the step auditor
    return out


def _between(ys: Sequence[Tensor], xs: Sequence[Tensor]) -> set[Operation]:
    """Ops on some path from a tensor in ``xs`` to a tensor in ``ys``."""
    reached: set[Operation] = set()  # TF1: only floating tensors carry a gradient forward
    stack = [c for x in xs if x.dtype.is_floating for c in x._consumers]
    while stack:
        op = stack.pop()
        if op not in reached:
            reached.add(op)
            stack.extend(c for t in op.outputs if t.dtype.is_floating for c in t._consumers)
    between: set[Operation] = set()
    stack = [y.op for y in ys]
    while stack:
        op = stack.pop()
        if op in reached and op not in between:
            between.add(op)
            stack.extend(t.op for t in op.inputs)
    return between


def _aggregate(grads: list[Tensor] | None) -> Tensor | None:
    if not grads:
        return None
    if len(grads) == 1:
        return grads[0]
    return api("add_n")(grads)


def _reduce_to_input(g: Any, x: Tensor, op: Operation, index: int) -> Tensor:
    """Sum ``g`` over the axes ``x`` was broadcast along, so it has ``x``'s shape.

    Emits nothing when the static shapes prove no reduction is needed; otherwise an
    ``Unbroadcast`` op, which reduces at run time and names ``op`` if the shapes can't match.
    """
    if not isinstance(g, Tensor):
        raise TypeError(f"Gradient of op '{op.name}' (op type: {op.type}) for input {index} "
                        f"must be a Tensor or None, got {type(g).__name__}")
    if g.dtype is not x.dtype:
        raise TypeError(f"Gradient of op '{op.name}' (op type: {op.type}) for input {index} "
                        f"has dtype {g.dtype.name}, but the input has dtype {x.dtype.name}")
    gd, xd = g.shape.as_tuple(), x.shape.as_tuple()
    if gd is not None and xd is not None and not _reducible(gd, xd):
        raise ValueError("Incompatible shapes between op input and calculated input gradient. "
                         f"Forward operation: {op.name}. Input index: {index}. Original input "
                         f"shape: {x.shape}. Calculated input gradient shape: {g.shape}")
    if _same_runtime_shape(g, x) or (
            gd is not None and xd is not None and not _may_broadcast(gd, xd, op, index)):
        return g
    return lookup("Unbroadcast")(g, x, op_name=op.name, input_index=index)


def _same_runtime_shape(g: Tensor, x: Tensor, depth: int = 4) -> bool:
    """Whether ``g`` provably has ``x``'s run-time shape: broadcast to it, or derived from
    such a tensor by shape-preserving (elementwise) ops."""
    if g is x:
        return True
    if depth == 0:
        return False
    op = g.op
    if op.type in ("BroadcastLike", "Unbroadcast") and op.inputs[1] is x:
        return True
    if op.opdef.signature == "elementwise" and op.inputs:
        return _same_runtime_shape(op.inputs[0], x, depth - 1)
    return False


def _reducible(gd: tuple, xd: tuple) -> bool:
    if len(gd) < len(xd):
        return False
    lead = len(gd) - len(xd)
    return all(a is None or b is None or b in (a, 1) for a, b in zip(gd[lead:], xd))


def _may_broadcast(gd: tuple, xd: tuple, op: Operation, index: int) -> bool:
    """Whether ``x`` may have been broadcast to ``g``'s shape (static analysis)."""
    if len(gd) != len(xd):
        return True
    if None not in gd and None not in xd:
        return gd != xd
    if op.opdef.signature == "elementwise":
        return False
    if op.opdef.signature != "broadcast":
        return True
    # In a broadcasting op, an unknown dim of x can only be a broadcast 1 if another input
    # has a dim at that position that is not statically 1.
    rank = len(xd)
    for i, (a, b) in enumerate(zip(gd, xd)):
        if b == 1 and a != 1:
            return True
        if b is None:
            for k, other in enumerate(op.inputs):
                od = other.shape.as_tuple()
                if k == index:
                    continue
                if od is None:
                    return True
                j = i - (rank - len(od))
                if j >= 0 and od[j] != 1:
                    return True
    return False
