"""The engine side of the harness: turn a function of engine tensors into the
``forward``/``vjp`` pair the core checks, with gradients from ``engine.gradients``.

``order=2`` checks the gradient of the gradient: ``g(x, v) = J(x)^T v`` is itself a function
of ``(x, v)`` whose VJP comes from differentiating the gradient graph again.

>>> import numpy as np, engine as tf
>>> check_gradients(lambda x: tf.nn.softmax(x) * x, [np.linspace(-1, 1, 4)], order=2).verdict
'PASS'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradverify.harness.checker import check_vjp
from gradverify.harness.report import GradientReport

__all__ = ["EngineFunction", "check_gradients", "assert_gradients"]


def _is_float(dtype: Any) -> bool:
    return np.dtype(dtype).kind == "f"


class EngineFunction:
    """``f`` (a function of engine tensors) built once in its own graph at fixed input
    shapes and dtypes: ``forward(*arrays)`` and ``vjp(inputs, cotangents)``.

    order=2 builds ``(x..., v...) -> J(x)^T v`` and its VJP instead.

    Gradients treat non-differentiable ops (``stop_gradient``) as constants, so the numeric
    side must too: the first ``forward`` call fixes the base point, and later calls feed
    those ops' outputs with their values there. A gradient leaking through such an op then
    disagrees with the numeric derivative instead of matching it.
    """

    def __init__(self, f: Callable, shapes: Sequence[tuple[int, ...]],
                 dtypes: Sequence[Any], order: int = 1):
        import gradverify.engine as tf
        self.order = order
        self.graph = tf.Graph()
        with self.graph.as_default():
            xs = [tf.placeholder(tf.as_dtype(d), list(s), name=f"x{k}")
                  for k, (s, d) in enumerate(zip(shapes, dtypes))]
            out = f(*xs)
            ys = list(out) if isinstance(out, (list, tuple)) else [out]
            ys = [tf.convert_to_tensor(y) for y in ys]
            forward_ops = self.graph.version  # ops of f itself; gradient ops come after
            diff_x = [x for x in xs if x.dtype.is_floating]
            if order == 1:
                self.inputs, self.outputs = xs, ys
            else:
                # g(x, v) = J^T v: the inputs are x and the cotangents v of f's outputs.
                vs = [tf.placeholder(y.dtype, y.shape.as_list(), name=f"v{k}")
                      for k, y in enumerate(ys) if y.dtype.is_floating]
                fys = [y for y in ys if y.dtype.is_floating]
                gs = tf.gradients(fys, diff_x, grad_ys=vs)
                gs = [tf.zeros_like(x) if g is None else g for g, x in zip(gs, diff_x)]
                self.inputs, self.outputs = xs + vs, gs
            cts = [tf.placeholder(y.dtype, y.shape.as_list(), name=f"ct{k}")
                   for k, y in enumerate(self.outputs)]
            float_pairs = [(y, c) for y, c in zip(self.outputs, cts) if y.dtype.is_floating]
            wrt = [t for t in self.inputs if t.dtype.is_floating]
            grads = tf.gradients([y for y, _ in float_pairs], wrt,
                                 grad_ys=[c for _, c in float_pairs]) if float_pairs else (
                [None] * len(wrt))
            self._grad_slots = [wrt.index(t) if t in wrt else None for t in self.inputs]
            self.frozen = _constant_for_gradients(self.outputs, self.inputs, forward_ops)
            self.session = tf.Session(graph=self.graph)
            self._frozen_values: list[np.ndarray] | None = None
            self._forward = self.session.make_callable(self.outputs,
                                                       self.inputs + self.frozen)
            if self.frozen:
                self._base = self.session.make_callable([self.outputs, self.frozen],
                                                        self.inputs)
            else:  # nothing to freeze: the base point is a forward (one plan compiled)
                self._base = lambda *xs: (self._forward(*xs), [])
            live = [g for g in grads if g is not None]
            self._grads = grads
            self._backward = self.session.make_callable(live, self.inputs + cts)

    def forward(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        if self._frozen_values is None:  # the base point
            ys, self._frozen_values = self._base(*arrays)
        else:
            ys = self._forward(*arrays, *self._frozen_values)
        return tuple(np.asarray(y) for y in ys)

    def vjp(self, inputs: Sequence[np.ndarray], cotangents: Sequence[np.ndarray],
            ) -> tuple[np.ndarray | None, ...]:
        values = iter(self._backward(*inputs, *cotangents))
        by_wrt = [None if g is None else np.asarray(next(values)) for g in self._grads]
        return tuple(None if slot is None else by_wrt[slot] for slot in self._grad_slots)

    def close(self) -> None:
        self.session.close()


def _constant_for_gradients(outputs: Sequence[Any], inputs: Sequence[Any],
                            forward_ops: int) -> list[Any]:
    """Float outputs of ``f``'s own non-differentiable ops computed from float inputs
    (stop_gradient): the tensors gradients treat as constants. A stop_gradient that a
    gradient rule put into the gradient graph (order 2) is not part of f: it is frozen only
    if the rule is wrong, which is what the check must see."""
    from gradverify.engine.inspect import creation_index
    seen: set[Any] = set()
    out: list[Any] = []
    stack = [t.op for t in outputs]  # the ancestor walk, stopping at frozen ops
    fed = set(inputs)
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        if (creation_index(op) < forward_ops and not op.opdef.differentiable and op.outputs
                and any(t.dtype.is_floating for t in op.inputs)):
            out.extend(t for t in op.outputs if t.dtype.is_floating and t not in fed)
            continue
        stack.extend(t.op for t in op.inputs if t not in fed)
    return sorted(out, key=lambda t: (creation_index(t.op), t.value_index))


def _outputs_at(f: Callable, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``f``'s outputs at ``arrays`` from a forward-only build (the cotangents of an order-2
    check need their shapes and dtypes; no gradient graph for that)."""
    import gradverify.engine as tf
    with tf.Graph().as_default() as graph:
        xs = [tf.placeholder(tf.as_dtype(a.dtype), list(a.shape), name=f"x{k}")
              for k, a in enumerate(arrays)]
        out = f(*xs)
        ys = [tf.convert_to_tensor(y) for y in (
            list(out) if isinstance(out, (list, tuple)) else [out])]
        with tf.Session(graph=graph) as session:
            return [np.asarray(y) for y in session.run(ys, dict(zip(xs, arrays)))]


def check_gradients(f: Callable, inputs: Sequence[Any], *, mode: str = "auto",
                    order: int = 1, seed: int = 0, **options: Any) -> GradientReport:
    """Check the engine's gradients of ``f`` (a function of engine tensors) at ``inputs``.

    Inputs are arrays; analytic gradients come from ``engine.gradients``; ``order=2`` checks
    the gradient of the gradient. Float32 inputs are checked against a float64 build of the
    same function. Options: see :class:`harness.Options`.

    >>> import numpy as np, engine as tf
    >>> r = check_gradients(lambda a, b: tf.matmul(a, b), [np.ones((2, 3)), np.ones((3, 2))])
    >>> r.verdict, r.mode
    ('PASS', 'full')
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    arrays = [np.asarray(x) for x in inputs]
    name = options.pop("function", None) or getattr(f, "__name__", "f")
    names = options.pop("names", None) or [f"x{k}" for k in range(len(arrays))]
    reproduce = (f"check_gradients({name}, inputs, mode={mode!r}, order={order}, "
                 f"seed={seed})")
    try:
        if order == 2:
            rng = np.random.default_rng([seed, 2])
            ys = _outputs_at(f, arrays)
            vs = [rng.standard_normal(y.shape).astype(y.dtype) for y in ys
                  if _is_float(y.dtype)]
            arrays = arrays + vs
            names = list(names) + [f"v{k}" for k in range(len(vs))]
        fn = EngineFunction(f, [a.shape for a in arrays[:len(inputs)]],
                            [a.dtype for a in arrays[:len(inputs)]], order)
        reference = None
        if any(_is_float(a.dtype) and a.dtype != np.float64 for a in arrays):
            ref = EngineFunction(f, [a.shape for a in arrays[:len(inputs)]],
                                 [np.float64 if _is_float(a.dtype) else a.dtype
                                  for a in arrays[:len(inputs)]], order)
            reference = (ref.forward, ref.vjp)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - a function that cannot be built
        from gradverify.harness.report import FAIL, Check
        report = GradientReport(seed=seed, mode=mode, order=order, function=name,
                                reproduce=reproduce)
        report.checks.append(Check("build", FAIL, f"the function raises while building the "
                                   f"graph (order {order}): {type(e).__name__}: {e}"))
        return report
    try:
        report = check_vjp(fn.forward, fn.vjp, arrays, mode=mode, seed=seed,
                           reference=reference, names=names, function=name,
                           reproduce=reproduce, **options)
    finally:
        fn.close()
    report.order = order
    return report


def assert_gradients(f: Callable, inputs: Sequence[Any], *, strict: bool = False,
                     **kwargs: Any) -> GradientReport:
    """``check_gradients`` that raises GradientError (an AssertionError carrying the whole
    report) on FAIL, and on INCONCLUSIVE too when ``strict``.

    >>> import numpy as np, engine as tf
    >>> assert_gradients(tf.nn.softmax, [np.array([[1.0, 2.0, 3.0]])]).verdict
    'PASS'
    """
    return check_gradients(f, inputs, **kwargs).raise_for_failure(strict=strict)
