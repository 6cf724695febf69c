"""Random composite graphs: a few engine ops over 1-3 inputs, checked end to end.

``composite_graphs()`` draws a small random program of engine ops (a DAG) with the
structures that break gradient machinery rather than single ops drawn on purpose: fan-out
(a node consumed by two later nodes), a tensor used twice by one op (``t1 * t1``,
``tf.add_n([t1, t1])``, ``tf.matmul(t1, t1, transpose_b=True)``), ``tf.stop_gradient``,
broadcasting chains (``(3, 1) + (1, 4)``, ``(4,) * (3, 4)``, then again), and a final
reduction to a scalar or not. Every op of :data:`OPS` carries an independent NumPy twin, so
the program's forward value is checked against NumPy too.

Values are drawn with the program: an op is only applied where it is smooth and
well-conditioned at the drawn point (no ``maximum`` tie or ``abs`` within a margin of its
kink, ``exp`` of bounded input, ``log`` and ``/`` away from 0, every intermediate value of
moderate size), so a correct engine gets PASS or INCONCLUSIVE, never FAIL.

``composite_graph_test()`` is the property: forward against the NumPy twins, then
``check_gradients`` (mode and seed drawn) not FAIL; INCONCLUSIVE examples are rejected and
counted in ``properties.checks.INCONCLUSIVE_COUNTS``.

>>> from hypothesis import given, settings
>>> @settings(max_examples=5, database=None)
... @given(composite_graphs(min_ops=3, max_ops=5))
... def test(g):
...     assert 3 <= g.n_ops <= 5 and 1 <= len(g.inputs) <= 3
>>> test()
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import event, given, reject
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

import gradverify.engine as tf
from gradverify.harness import FAIL, INCONCLUSIVE, GradientError, check_gradients
from gradverify.harness.report import NOT_APPLICABLE
from gradverify.properties.checks import INCONCLUSIVE_COUNTS, PropertyError

__all__ = ["OPS", "CompositeGraph", "GraphOp", "Node", "check_forward",
           "composite_graph_test", "composite_graphs"]

LIMIT = 50.0        # max |value| of a freely drawn op's output (keeps exp/square tame)
MERGE_LIMIT = 1e3   # max |value| of the joins that make the program single-output
MAX_SIZE = 16       # elements per intermediate (full-mode Jacobians stay small)
MAX_RANK = 2
MARGIN = 0.05       # distance kept from kinks (maximum ties, abs at 0), relative to 1 + |x|
COND = 32.0         # largest relative condition number of an op's output (no cancellation)
MAX_OPS_CAP = 20

Shape = tuple[int, ...]


# -- the op table ----------------------------------------------------------------------------
def _no_params(draw: Any, shape: Shape) -> dict[str, Any] | None:
    return {}


def _broadcasts(a: Shape, b: Shape, params: dict[str, Any]) -> bool:
    return _bshape(a, b) is not None


def _always(*args: Any, **params: Any) -> bool:
    return True


@dataclass(frozen=True)
class GraphOp:
    """An op the composite graphs may use.

    code(operand names, params) -> the TF1 expression; build(*tensors, **params) -> Tensor;
    twin(*float64 arrays, **params) -> array: an independent NumPy forward; params(draw,
    first operand's shape) -> drawn parameters, or None when the op does not apply to that
    shape; pair(shape_a, shape_b, params): whether a second operand fits; ok(*arrays,
    **params): whether the op is smooth and well-conditioned at these values; ranks: the
    first operand's allowed ranks; twice: whether the same tensor may be both operands;
    magnitude(*|arrays|, **params): for sums, the sum of the terms' absolute values (the
    output must be at least ``1/COND`` of it: no cancellation, which the checker's
    round-off model, relative to the output's size, would not see).
    """

    name: str
    arity: int
    code: Callable[[Sequence[str], dict[str, Any]], str]
    build: Callable[..., Any]
    twin: Callable[..., Any]
    params: Callable[[Any, Shape], dict[str, Any] | None] = _no_params
    pair: Callable[[Shape, Shape, dict[str, Any]], bool] = _broadcasts
    ok: Callable[..., bool] = _always
    ranks: tuple[int, int] = (0, MAX_RANK)
    twice: bool = True
    magnitude: Callable[..., Any] | None = None


def _call(fn: str) -> Callable[[Sequence[str], dict[str, Any]], str]:
    return lambda a, p: f"{fn}({', '.join(a)})"


def _infix(sym: str) -> Callable[[Sequence[str], dict[str, Any]], str]:
    return lambda a, p: f"{a[0]} {sym} {a[1]}"


def _reduction_code(fn: str) -> Callable[[Sequence[str], dict[str, Any]], str]:
    def code(a: Sequence[str], p: dict[str, Any]) -> str:
        extra = "" if p.get("axis") is None else f", axis={p['axis']}"
        extra += ", keepdims=True" if p.get("keepdims") else ""
        return f"{fn}({a[0]}{extra})"
    return code


def _axis_params(draw: Any, shape: Shape) -> dict[str, Any]:
    rank = len(shape)
    axis = draw(st.sampled_from([None, *range(-rank, rank)])) if rank else None
    return {"axis": axis, "keepdims": draw(st.booleans())}


def _ranked(rank_ok: Callable[[int], bool]) -> Callable[[Any, Shape], dict | None]:
    return lambda draw, shape: {} if rank_ok(len(shape)) else None


def _reshape_params(draw: Any, shape: Shape) -> dict[str, Any] | None:
    size = int(np.prod(shape))
    options = [[-1], [1, -1], [-1, 1]]
    options += [[f, size // f] for f in range(2, size) if size % f == 0]
    options = [t for t in options if _reshaped(shape, t) != shape] or options
    return {"shape": draw(st.sampled_from(options))}


def _reshaped(shape: Shape, target: list[int]) -> Shape:
    return tuple(np.empty(shape).reshape(target).shape)


def _concat_params(draw: Any, shape: Shape) -> dict[str, Any] | None:
    rank = len(shape)
    return {"axis": draw(st.integers(-rank, rank - 1))} if rank else None


def _concat_pair(a: Shape, b: Shape, params: dict[str, Any]) -> bool:
    if len(a) != len(b) or not a:
        return False
    axis = params["axis"] % len(a)
    return all(x == y for k, (x, y) in enumerate(zip(a, b)) if k != axis)


def _matmul_params(draw: Any, shape: Shape) -> dict[str, Any] | None:
    if len(shape) != 2:
        return None
    return {"transpose_a": draw(st.booleans()), "transpose_b": draw(st.booleans())}


def _matmul_pair(a: Shape, b: Shape, params: dict[str, Any]) -> bool:
    if len(a) != 2 or len(b) != 2:
        return False
    inner_a = a[0] if params["transpose_a"] else a[1]
    inner_b = b[1] if params["transpose_b"] else b[0]
    return inner_a == inner_b


def _matmul_code(a: Sequence[str], p: dict[str, Any]) -> str:
    flags = "".join(f", {k}=True" for k in ("transpose_a", "transpose_b") if p.get(k))
    return f"tf.matmul({a[0]}, {a[1]}{flags})"


def _matmul_twin(a: np.ndarray, b: np.ndarray, transpose_a: bool,
                 transpose_b: bool) -> np.ndarray:
    a = a.T if transpose_a else a
    b = b.T if transpose_b else b
    return np.einsum("ij,jk->ik", a, b)


def _logsumexp_twin(x: np.ndarray, axis: int | None, keepdims: bool) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    if keepdims:
        return out
    return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


def _softmax_twin(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _conditioned(f: Callable, df: Callable) -> Callable[[np.ndarray], bool]:
    """|x f'(x)| <= COND |f(x)| (relative condition number), or x == 0."""
    return lambda x: bool(np.all((x == 0) | (np.abs(x * df(x)) <= COND * np.abs(f(x)))))


def _abs_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a + b


def _apart(a: np.ndarray, b: np.ndarray) -> bool:
    """No tie within the margin (relative to the values' size) anywhere."""
    return bool(np.all(np.abs(a - b) >= MARGIN * (1 + np.maximum(np.abs(a), np.abs(b)))))


_OPS: list[GraphOp] = [
    # elementwise with broadcasting
    GraphOp("add", 2, _infix("+"), lambda a, b: a + b, np.add, magnitude=_abs_sum),
    GraphOp("subtract", 2, _infix("-"), lambda a, b: a - b, np.subtract,
            magnitude=_abs_sum),
    GraphOp("multiply", 2, _infix("*"), lambda a, b: a * b, np.multiply),
    GraphOp("divide", 2, _infix("/"), lambda a, b: a / b, np.divide,
            ok=lambda a, b: bool(np.min(np.abs(b)) >= 0.5)),
    GraphOp("maximum", 2, _call("tf.maximum"), lambda a, b: tf.maximum(a, b), np.maximum,
            ok=_apart, twice=False),  # maximum(x, x) is a tie everywhere
    GraphOp("add_n", 2, lambda a, p: f"tf.add_n([{a[0]}, {a[1]}])",
            lambda a, b: tf.add_n([a, b]), lambda a, b: a + b,
            pair=lambda a, b, p: a == b, magnitude=_abs_sum),
    # elementwise unary
    GraphOp("tanh", 1, _call("tf.tanh"), lambda x: tf.tanh(x), np.tanh),
    GraphOp("sigmoid", 1, _call("tf.sigmoid"), lambda x: tf.sigmoid(x),
            lambda x: 1 / (1 + np.exp(-x))),
    GraphOp("sin", 1, _call("tf.sin"), lambda x: tf.sin(x), np.sin,
            ok=_conditioned(np.sin, np.cos)),
    GraphOp("square", 1, _call("tf.square"), lambda x: tf.square(x), lambda x: x * x),
    GraphOp("exp", 1, _call("tf.exp"), lambda x: tf.exp(x), np.exp,
            ok=lambda x: bool(np.max(x) <= 3.0)),
    GraphOp("softplus", 1, _call("tf.nn.softplus"), lambda x: tf.nn.softplus(x),
            lambda x: np.logaddexp(0.0, x)),
    GraphOp("log", 1, _call("tf.log"), lambda x: tf.log(x), np.log,
            ok=lambda x: bool(np.min(x) >= 0.2) and _conditioned(np.log, np.reciprocal)(x)),
    GraphOp("negative", 1, lambda a, p: f"-{a[0]}", lambda x: -x, np.negative),
    GraphOp("abs", 1, _call("tf.abs"), lambda x: tf.abs(x), np.abs,
            ok=lambda x: bool(np.all(np.abs(x) >= MARGIN * (1 + np.abs(x))))),
    GraphOp("stop_gradient", 1, _call("tf.stop_gradient"), lambda x: tf.stop_gradient(x),
            lambda x: x),
    # shapes
    GraphOp("transpose", 1, _call("tf.transpose"), lambda x: tf.transpose(x),
            lambda x: x.T, params=_ranked(lambda r: r == 2), ranks=(2, 2)),
    GraphOp("reshape", 1, lambda a, p: f"tf.reshape({a[0]}, {p['shape']})",
            lambda x, shape: tf.reshape(x, shape), lambda x, shape: np.reshape(x, shape),
            params=_reshape_params),
    GraphOp("concat", 2, lambda a, p: f"tf.concat([{a[0]}, {a[1]}], axis={p['axis']})",
            lambda a, b, axis: tf.concat([a, b], axis=axis),
            lambda a, b, axis: np.concatenate([a, b], axis=axis),
            params=_concat_params, pair=_concat_pair, ranks=(1, 2)),
    GraphOp("matmul", 2, _matmul_code,
            lambda a, b, **p: tf.matmul(a, b, **p), _matmul_twin,
            params=_matmul_params, pair=_matmul_pair, ranks=(2, 2), magnitude=_matmul_twin),
    # reductions
    GraphOp("reduce_sum", 1, _reduction_code("tf.reduce_sum"),
            lambda x, axis, keepdims: tf.reduce_sum(x, axis=axis, keepdims=keepdims),
            lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
            params=_axis_params,
            magnitude=lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims)),
    GraphOp("reduce_mean", 1, _reduction_code("tf.reduce_mean"),
            lambda x, axis, keepdims: tf.reduce_mean(x, axis=axis, keepdims=keepdims),
            lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims),
            params=_axis_params,
            magnitude=lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims)),
    GraphOp("reduce_logsumexp", 1, _reduction_code("tf.reduce_logsumexp"),
            lambda x, axis, keepdims: tf.reduce_logsumexp(x, axis=axis, keepdims=keepdims),
            _logsumexp_twin, params=_axis_params),
    GraphOp("l2_loss", 1, _call("tf.nn.l2_loss"), lambda x: tf.nn.l2_loss(x),
            lambda x: 0.5 * np.sum(np.square(x))),
    GraphOp("softmax", 1, _call("tf.nn.softmax"), lambda x: tf.nn.softmax(x), _softmax_twin,
            params=_ranked(lambda r: r >= 1), ranks=(1, 2)),
]
OPS: dict[str, GraphOp] = {o.name: o for o in _OPS}
# What a free step draws from: stop_gradient twice (it should show up on purpose); the ops
# that need rank-2 operands or particular values more often (they apply less often).
_FREE = [*_OPS, OPS["stop_gradient"],
         *[OPS["matmul"], OPS["transpose"], OPS["maximum"], OPS["log"]] * 2]
_JOINS = ["add", "subtract", "multiply"]
_TO_SCALAR = ["reduce_sum", "reduce_mean", "l2_loss", "reduce_logsumexp"]
_BROADCASTING = {"add", "subtract", "multiply", "divide", "maximum"}


# -- the drawn program -----------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    """One op of a program: ``OPS[op]`` applied to earlier nodes ``args`` (indices; the
    inputs are nodes ``0 .. len(inputs) - 1``) with ``params``."""

    op: str
    args: tuple[int, ...]
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True, eq=False)
class CompositeGraph:
    """A drawn program: ``inputs`` (arrays), ``nodes`` (ops in order; the last is the
    output), ``dtype``. ``build(*tensors)`` builds it from engine tensors (for
    ``check_gradients(g.build, g.inputs)``); ``twin()`` evaluates it with the NumPy twins;
    ``features`` names the structures it contains; ``repr`` is the program as TF1 code."""

    inputs: list[np.ndarray]
    nodes: tuple[Node, ...]
    dtype: str = "float64"

    @property
    def n_ops(self) -> int:
        return len(self.nodes)

    @property
    def names(self) -> list[str]:
        return [f"t{k}" for k in range(len(self.inputs))]

    def build(self, *tensors: Any) -> Any:
        """The program on engine tensors (one per input); returns the output tensor."""
        if len(tensors) != len(self.inputs):
            raise TypeError(f"build takes {len(self.inputs)} tensors, got {len(tensors)}")
        values = list(tensors)
        for node in self.nodes:
            values.append(OPS[node.op].build(*[values[i] for i in node.args], **node.kwargs))
        return values[-1]

    def twin_values(self) -> list[np.ndarray]:
        """Every node's value (inputs first) by the NumPy twins, in float64."""
        values = [np.asarray(x, dtype=np.float64) for x in self.inputs]
        with np.errstate(all="ignore"):
            for node in self.nodes:
                values.append(np.asarray(OPS[node.op].twin(
                    *[values[i] for i in node.args], **node.kwargs), dtype=np.float64))
        return values

    def twin(self) -> np.ndarray:
        """The program's output by the NumPy twins, in float64."""
        return self.twin_values()[-1]

    def shapes(self) -> list[Shape]:
        return [tuple(v.shape) for v in self.twin_values()]

    @property
    def features(self) -> frozenset[str]:
        """The structures the program contains (computed from the program itself)."""
        shapes = self.shapes()
        n_in = len(self.inputs)
        out: set[str] = {self.dtype, f"inputs:{n_in}"}
        consumers: Counter[int] = Counter()
        broadcasting: set[int] = set()
        for k, node in enumerate(self.nodes, start=n_in):
            out.add(f"op:{node.op}")
            for i in set(node.args):
                consumers[i] += 1
            if len(set(node.args)) < len(node.args):
                out.add("used_twice")
            if node.op in _BROADCASTING:
                a, b = (shapes[i] for i in node.args)
                if a != b:
                    out.add("broadcast")
                    broadcasting.add(k)
                    if len(a) != len(b):
                        out.add("rank_broadcast")
                    if shapes[k] not in (a, b):
                        out.add("broadcast_both")
                    if any(i in broadcasting for i in node.args):
                        out.add("broadcast_chain")
        if any(c >= 2 for c in consumers.values()):
            out.add("fan_out")
        out.add("scalar_output" if shapes[-1] == () else "tensor_output")
        return frozenset(out)

    def program(self) -> list[str]:
        """The program as TF1 code lines (a function of the inputs)."""
        n_in = len(self.inputs)
        shapes = self.shapes()
        lines = [f"def f({', '.join(self.names)}):"]
        for k, node in enumerate(self.nodes, start=n_in):
            expr = OPS[node.op].code([f"t{i}" for i in node.args], node.kwargs)
            lines.append(f"    t{k} = {expr}".ljust(56) + f"  # {shapes[k]}")
        lines.append(f"    return t{n_in + len(self.nodes) - 1}")
        return lines

    def __repr__(self) -> str:
        head = (f"CompositeGraph({self.n_ops} ops, {self.dtype}; inputs "
                + ", ".join(f"t{k}: {tuple(x.shape)}" for k, x in enumerate(self.inputs))
                + ")")
        arrays = ", ".join(f"np.array({x.tolist()!r}, dtype='{x.dtype}')"
                           for x in self.inputs)
        return "\n".join([head, *self.program(), f"inputs = [{arrays}]"])

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # Hypothesis's falsifying example
        p.text(repr(self))


# -- drawing ---------------------------------------------------------------------------------
def _bshape(a: Shape, b: Shape) -> Shape | None:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


def _into(o: Shape, main: Shape) -> bool:
    """``o`` broadcasts into ``main`` without changing its shape."""
    return _bshape(o, main) == main


def _plan(shapes: list[Shape], frontier: list[int], scalar: bool) -> tuple[int, int]:
    """(cost, main): ops needed to join the frontier into one output (and reduce it to a
    scalar if asked): each other node joins the main one in one op if it broadcasts into
    it, else in two (reduced to a scalar first)."""
    best = None
    for main in frontier:
        cost = sum(1 if _into(shapes[o], shapes[main]) else 2 for o in frontier if o != main)
        cost += 1 if scalar and shapes[main] != () else 0
        if best is None or cost < best[0]:
            best = (cost, main)
    assert best is not None
    return best


def _fits(value: np.ndarray, limit: float) -> bool:
    return (value.size >= 1 and value.size <= MAX_SIZE and value.ndim <= MAX_RANK
            and bool(np.all(np.isfinite(value))) and float(np.max(np.abs(value))) <= limit)


def _apply(op: GraphOp, values: list[np.ndarray], args: tuple[int, ...],
           params: dict[str, Any], limit: float) -> np.ndarray | None:
    """The op's twin value, or None if it is not applicable (shapes, kinks, size)."""
    operands = [values[i] for i in args]
    try:
        with np.errstate(all="ignore"):
            if not op.ok(*operands):
                return None
            out = np.asarray(op.twin(*operands, **params), dtype=np.float64)
            exact = op.name == "subtract" and args[0] == args[1]  # x - x: exactly 0
            if op.magnitude is not None and not exact:
                size = op.magnitude(*[np.abs(v) for v in operands], **params)
                if not np.all(np.abs(out) * COND >= size):
                    return None
    except (ValueError, IndexError):
        return None
    return out if _fits(out, limit) else None


def _input_shapes(draw: Any) -> list[Shape]:
    """1-3 input shapes: classic broadcasting sets, a matmul pair, or any mutually
    broadcastable shapes (size-1 and non-square dimensions on purpose)."""
    side = st.one_of(st.just(1), st.integers(1, 4))
    m, n = draw(side), draw(side)
    templates: list[list[Shape]] = [
        [(m, n)], [(m, 1), (1, n)], [(n,), (m, n)], [(m, n), (n, m)], [(), (m, n)],
        [(m, n), (m, 1), (n,)], [(m, 1), (1, n), (n, m)]]
    k = draw(st.integers(0, len(templates)))
    if k < len(templates):
        return list(templates[k])
    drawn = draw(hnp.mutually_broadcastable_shapes(
        num_shapes=draw(st.integers(1, 3)), base_shape=(m, n), max_dims=2, max_side=4))
    return [tuple(s) for s in drawn.input_shapes]


def _input_values(dtype: str, shape: Shape) -> st.SearchStrategy[np.ndarray]:
    """Moderate values (|x| in [1e-3, 2], or exactly 0, +-1, +-0.5): no underflow on the
    way through the program."""
    magnitude = st.floats(1e-3, 2.0)
    signed = st.tuples(magnitude, st.booleans()).map(lambda t: -t[0] if t[1] else t[0])
    elements = st.one_of(signed, signed, signed, st.sampled_from([0.0, 1.0, -1.0, 0.5, -0.5]))
    return hnp.arrays(np.float64, shape, elements=elements).map(lambda a: a.astype(dtype))


@st.composite
def _graphs(draw: Any, min_ops: int, max_ops: int, dtype: str) -> CompositeGraph:
    scalar = draw(st.booleans())
    in_shapes = _input_shapes(draw)
    while len(in_shapes) > 1 and _plan(in_shapes, list(range(len(in_shapes))),
                                       scalar)[0] > max_ops:
        in_shapes.pop()
    if _plan(in_shapes, [0], scalar)[0] > max_ops:
        scalar = False
    n_in = len(in_shapes)
    inputs = [draw(_input_values(dtype, s)) for s in in_shapes]

    values = [np.asarray(x, dtype=np.float64) for x in inputs]
    shapes = list(in_shapes)
    frontier = list(range(n_in))  # nodes no later node consumes yet
    nodes: list[Node] = []
    lo = max(min_ops, _plan(shapes, frontier, scalar)[0])
    n_ops = draw(st.sampled_from(range(lo, max_ops + 1)))

    def add(op: str, args: tuple[int, ...], params: dict[str, Any], value: np.ndarray,
            ) -> None:
        nodes.append(Node(op, args, tuple(params.items())))
        values.append(value)
        shapes.append(tuple(value.shape))
        frontier[:] = [i for i in frontier if i not in args] + [len(values) - 1]

    for step in range(n_ops):
        remaining = n_ops - step
        cost, main = _plan(shapes, frontier, scalar)
        if cost >= remaining:
            _forced_step(draw, main, frontier, shapes, values, scalar, remaining, add)
            continue
        if not _free_step(draw, frontier, shapes, values, scalar, remaining, add):
            # nothing drawn fits: an elementwise op on the frontier keeps the plan's cost
            last = frontier[-1]
            add("tanh", (last,), {}, np.tanh(values[last]))
    assert frontier == [len(values) - 1] and len(nodes) == n_ops, "composite graph plan"
    return CompositeGraph(inputs=inputs, nodes=tuple(nodes), dtype=dtype)


def _free_step(draw: Any, frontier: list[int], shapes: list[Shape],
               values: list[np.ndarray], scalar: bool, remaining: int,
               add: Callable[..., None]) -> bool:
    for _ in range(4):
        op = draw(st.sampled_from(_FREE))
        lo, hi = op.ranks
        ranked = [i for i in range(len(values)) if lo <= len(shapes[i]) <= hi]
        ends = [i for i in frontier if i in ranked]
        if not ranked:
            continue
        if ends and draw(st.integers(0, 3)):  # mostly extend the frontier, or fan out
            first = draw(st.sampled_from(ends))
        else:
            first = draw(st.sampled_from(ranked))
        params = op.params(draw, shapes[first])
        if params is None:
            continue
        args: tuple[int, ...] = (first,)
        if op.arity == 2:
            fits = [j for j in range(len(values)) if op.pair(shapes[first], shapes[j], params)]
            if not fits:
                continue
            if not op.twice:
                fits = [j for j in fits if j != first]
            other = [j for j in fits if shapes[j] != shapes[first]]
            pick = draw(st.integers(0, 3))
            if first in fits and pick == 1:
                second = first  # the same tensor twice
            elif other and pick == 2:
                second = draw(st.sampled_from(other))  # broadcasting on purpose
            elif fits:
                second = draw(st.sampled_from(fits))
            else:
                continue
            args = (first, second)
        value = _apply(op, values, args, params, LIMIT)
        if value is None:
            continue
        after = [i for i in frontier if i not in args] + [len(values)]
        if _plan([*shapes, tuple(value.shape)], after, scalar)[0] <= remaining - 1:
            add(op.name, args, params, value)
            return True
    return False


def _forced_step(draw: Any, main: int, frontier: list[int], shapes: list[Shape],
                 values: list[np.ndarray], scalar: bool, remaining: int,
                 add: Callable[..., None]) -> None:
    """One op of the plan: join a frontier node into ``main`` (broadcasting both ways when
    the plan still fits), or reduce one to a scalar."""
    others = [o for o in frontier if o != main]
    if others:
        o = others[0]
        joined = _bshape(shapes[o], shapes[main])
        after = [i for i in frontier if i not in (o, main)] + [len(values)]
        if joined is not None and (joined == shapes[main] or (
                int(np.prod(joined)) <= MAX_SIZE
                and _plan([*shapes, joined], after, scalar)[0] <= remaining - 1)):
            args = (main, o) if draw(st.booleans()) else (o, main)
            for name in draw(st.permutations(_JOINS)):
                value = _apply(OPS[name], values, args, {}, MERGE_LIMIT)
                if value is not None:
                    add(name, args, {}, value)
                    return
            with np.errstate(all="ignore"):  # cancels and overflows: join anyway
                add("multiply", args, {}, values[args[0]] * values[args[1]])
            return
    target = others[0] if others else main
    params = {"axis": None, "keepdims": False}
    for name in draw(st.permutations(_TO_SCALAR)):
        p = params if name.startswith("reduce") else {}
        value = _apply(OPS[name], values, (target,), p, MERGE_LIMIT)
        if value is not None:
            add(name, (target,), p, value)
            return
    add("reduce_logsumexp", (target,), params,  # positive terms: no cancellation
        _logsumexp_twin(values[target], None, False))


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidArgument(f"{name}={value!r} must be an integer in [{lo}, {hi}]")


def _dtype_name(dtype: Any) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise InvalidArgument(f"dtype={dtype!r} must be float32 or float64")
    return name


def composite_graphs(*, min_ops: int = 3, max_ops: int = 8, dtype: Any = "float64",
                     ) -> st.SearchStrategy[CompositeGraph]:
    """Random programs of ``min_ops``..``max_ops`` engine ops over 1-3 input arrays.

    Every node feeds the output (dangling results are joined in); the hard structures come
    on purpose: fan-out, a tensor used twice by one op, ``stop_gradient``, broadcasting
    chains, and a final reduction to a scalar (or not). Inputs are ``dtype`` arrays of rank
    <= 2 with at most 16 elements, size-1 and non-square dimensions included.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=10, database=None)
    ... @given(composite_graphs(dtype="float32"))
    ... def test(g):
    ...     assert all(x.dtype == "float32" for x in g.inputs)
    ...     assert repr(g).splitlines()[1].startswith("def f(t0")
    >>> test()
    """
    _check_int("min_ops", min_ops, 1, MAX_OPS_CAP)
    _check_int("max_ops", max_ops, 1, MAX_OPS_CAP)
    if min_ops > max_ops:
        raise InvalidArgument(f"min_ops={min_ops} must be <= max_ops={max_ops}")
    return _graphs(min_ops, max_ops, _dtype_name(dtype))


# -- the property ----------------------------------------------------------------------------
def _engine_output(graph: CompositeGraph) -> np.ndarray:
    with tf.Graph().as_default():
        out = graph.build(*[tf.constant(x) for x in graph.inputs])
        with tf.Session() as s:
            return np.asarray(s.run(out))


def check_forward(graph: CompositeGraph) -> None:
    """The engine's output of the program agrees with its NumPy twins (shape, dtype and
    values to rounding: ``256 eps (n_ops + 1)`` times the largest intermediate value);
    raises :class:`properties.checks.PropertyError` otherwise."""
    got = _engine_output(graph)
    twins = graph.twin_values()
    want = twins[-1]
    if got.shape != want.shape or got.dtype != np.dtype(graph.dtype):
        raise PropertyError(f"composite graph output: engine {got.dtype}{list(got.shape)}, "
                            f"NumPy twin {graph.dtype}{list(want.shape)}\n{graph!r}")
    scale = max([1.0, *(float(np.max(np.abs(v))) for v in twins)])
    tol = 256 * float(np.finfo(graph.dtype).eps) * (graph.n_ops + 1) * scale
    err = np.abs(got.astype(np.float64) - want)
    if not np.all(err <= tol):
        i = tuple(int(t) for t in np.unravel_index(int(np.argmax(err)), err.shape))
        raise PropertyError(f"composite graph output at {list(i)}: engine {got[i]!r}, NumPy "
                            f"twin {want[i]!r} (tolerance {tol:.2g})\n{graph!r}")


def _reason(report: Any) -> str:
    for c in report.checks:
        if c.verdict == INCONCLUSIVE:
            return (c.reason or "unreliable").split(";")[0]
    return "unreliable"


def composite_graph_test(*, dtype: Any = "float64", min_ops: int = 3,
                         max_ops: int = 8) -> Callable[[], None]:
    """A zero-argument Hypothesis test: for a drawn composite graph, the forward value
    agrees with NumPy and ``check_gradients`` (mode full/fast and seed drawn) is not FAIL.
    FAIL raises :class:`harness.GradientError` (the report) from a PropertyError showing
    the program; INCONCLUSIVE rejects the example and is counted in ``INCONCLUSIVE_COUNTS``.

    >>> from hypothesis import settings
    >>> settings(max_examples=3, database=None)(composite_graph_test())()
    """
    graphs = composite_graphs(min_ops=min_ops, max_ops=max_ops, dtype=dtype)
    name = _dtype_name(dtype)

    def prop(graph: CompositeGraph, mode: str, seed: int) -> None:
        check_forward(graph)
        report = check_gradients(graph.build, graph.inputs, mode=mode, seed=seed,
                                 names=graph.names, function="composite")
        if report.verdict == FAIL:
            raise GradientError(report) from PropertyError(f"graph:\n{graph!r}")
        if report.verdict == NOT_APPLICABLE:
            event("not applicable")
            reject()
        if report.verdict == INCONCLUSIVE:
            reason = _reason(report)
            INCONCLUSIVE_COUNTS[f"composite: {reason}"] += 1
            event(f"inconclusive: {reason}")
            reject()

    test = given(graph=graphs, mode=st.sampled_from(["full", "fast"]),
                 seed=st.integers(0, 2**31 - 1))(prop)
    test._hypothesis_internal_add_digest = (
        f"gradverify:composite:{name}:{min_ops}:{max_ops}".encode())
    test.__name__ = f"composite_graph[{name}]"
    return test
