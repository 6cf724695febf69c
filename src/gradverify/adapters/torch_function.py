"""A PyTorch function as the NumPy ``forward``/``vjp``/``jvp`` triple the harness checks.

Gradients come from torch autograd (custom ``autograd.Function``s included); the JVP from
forward-mode AD (dual tensors). Inputs that are not checked (integer tensors, tensors that do
not require grad while others do, Python values) are held fixed.

Precision: the harness sees float64/float32/float16 inputs as such and bfloat16 ones as
float32 arrays holding bfloat16 values (NumPy has no bfloat16); the function always runs in
the input's own dtype, except when the harness asks for a float64 evaluation (float64 arrays
for a low-precision input), which runs the same function on float64 tensors.

>>> import torch
>>> f = TorchFunction(torch.sin, [torch.ones(2, dtype=torch.float64, requires_grad=True)])
>>> [a.dtype.name for a in f.arrays]
['float64']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.autograd.forward_ad as fwad

from gradverify.adapters.common import complex_error

__all__ = ["TorchFunction", "as_tuple", "differentiable_positions"]

_API = "gradverify.torch"
# The NumPy dtype the harness sees for each torch dtype it checks.
_NUMPY = {torch.float64: np.float64, torch.float32: np.float32, torch.float16: np.float16,
          torch.bfloat16: np.float32}


def as_tuple(inputs: Any) -> tuple[Any, ...]:
    """torch's convention: one tensor or a sequence of inputs."""
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs)
    raise TypeError(f"{_API}: inputs must be a tensor or a tuple of inputs, got "
                    f"{type(inputs).__name__}")


def differentiable_positions(inputs: Sequence[Any], *, all_floats: bool) -> list[int]:
    """Positions of the inputs to check: floating tensors requiring grad (torch's rule), or
    every floating tensor when none requires grad and ``all_floats``. Complex, sparse and
    non-strided tensors are rejected with a clear error."""
    for k, t in enumerate(inputs):
        if isinstance(t, torch.Tensor):
            if t.is_complex():
                raise complex_error(_API, "input", k, str(t.dtype), t.shape)
            if t.layout != torch.strided:
                raise TypeError(f"{_API}: input {k} has layout {t.layout} (shape "
                                f"{tuple(t.shape)}); only dense (strided) tensors are "
                                "supported")
        elif _holds_grad_tensor(t):
            raise TypeError(f"{_API}: input {k} is a {type(t).__name__} holding tensors that "
                            "require grad; only top-level tensor inputs are differentiated "
                            "(torch's gradcheck fails there too): pass them as inputs of "
                            "their own, e.g. gradcheck(lambda x, h, c: cell(x, (h, c)), "
                            "(x, h, c))")
    floats = [k for k, t in enumerate(inputs)
              if isinstance(t, torch.Tensor) and t.is_floating_point()]
    chosen = [k for k in floats if inputs[k].requires_grad]
    if not chosen and all_floats:
        chosen = floats
    for k in chosen:
        if inputs[k].dtype not in _NUMPY:
            raise TypeError(f"{_API}: input {k} has dtype {inputs[k].dtype} (shape "
                            f"{tuple(inputs[k].shape)}); checkable dtypes are float64, "
                            "float32, float16 and bfloat16")
    return chosen


def _holds_grad_tensor(obj: Any) -> bool:
    # a tensor requiring grad inside a (nested) tuple, list or dict input would be held
    # fixed without a word: its gradient never checked
    if isinstance(obj, torch.Tensor):
        return obj.requires_grad
    if isinstance(obj, dict):
        return any(_holds_grad_tensor(v) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        return any(_holds_grad_tensor(v) for v in obj)
    return False


def _outputs(out: Any) -> list[Any]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)) and all(isinstance(o, torch.Tensor) for o in out):
        return list(out)
    raise TypeError(f"{_API}: the function must return a tensor or a tuple of tensors, "
                    f"got {type(out).__name__}")


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.float()  # exact: every bfloat16 value is a float32 value
    return t.cpu().numpy()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    # (a == b).all(), not np.array_equal: the same answer (NaN unequal) without its
    # wrapper's conversions, which cost more than comparing a small array
    return a is b or (a.dtype == b.dtype and a.shape == b.shape and bool((a == b).all()))


def _same_buffer(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` are views of the very same bytes (same start, layout and
    dtype): then what one holds, the other holds."""
    return (a.dtype == b.dtype and a.shape == b.shape and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _holds(leaves: Sequence[torch.Tensor], snapshot: Sequence[np.ndarray],
           arrays: Sequence[np.ndarray]) -> bool:
    """Whether ``arrays`` is the point ``snapshot`` the leaves were made at and the leaves
    still hold it (a converted dtype: cannot tell). Comparisons, no byte copies: the
    leaves of 1e5 entries are looked at on every VJP (a leaf viewing the bytes of the
    array just compared is not compared again)."""
    if not (len(leaves) == len(snapshot) == len(arrays)):
        return False
    try:
        for t, s, a in zip(leaves, snapshot, arrays):
            a = np.asarray(a)
            if not _same(a, s):
                return False
            held = t.detach().cpu().numpy()
            if not (_same_buffer(held, a) or _same(held, s)):
                return False
        return True
    except (TypeError, RuntimeError):
        return False


def _carry_writes(leaves: Sequence[torch.Tensor], arrays: Sequence[np.ndarray]) -> None:
    """A backward that writes into its saved inputs writes into the leaves; the leaves of
    the first graph are private copies, so copy such a write over to the caller's arrays,
    as shared memory would have: the harness's input check must see it."""
    for t, a in zip(leaves, arrays):
        held = t.detach()
        if held.dtype == torch.bfloat16 or held.device.type != "cpu":
            continue  # converted: the caller's array never shared the leaf's memory
        held = held.numpy()
        if (held.dtype == a.dtype and held.shape == a.shape and a.flags.writeable
                and not np.may_share_memory(held, a) and not _same(held, a)):
            np.copyto(a, held)


class _grad_mode:  # noqa: N801 - used like torch.no_grad
    """``torch.no_grad()`` / ``torch.enable_grad()`` at a fraction of their cost: a check
    enters one per evaluation (a class with slots: 0.5 µs, against 1.1 µs for
    ``torch.no_grad()`` and 1.0 µs for a ``contextlib`` generator)."""

    __slots__ = ("enabled", "before")

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self) -> None:
        self.before = torch.is_grad_enabled()
        torch._C._set_grad_enabled(self.enabled)

    def __exit__(self, *exc: object) -> None:
        torch._C._set_grad_enabled(self.before)


def _float_out(t: torch.Tensor) -> bool:
    return t.is_floating_point()


class TorchFunction:
    """``fn(*inputs)`` as ``forward(*arrays)``, ``vjp(arrays, cotangents)`` and
    ``jvp(arrays, tangents)`` over the arrays of the inputs at ``positions``.

    order=2: the checked function is ``(x, v) -> J(x)^T v`` (gradients with
    ``create_graph=True``), its VJP the gradient of that, and ``vs`` the cotangents ``v``.
    """

    def __init__(self, fn: Callable, inputs: Sequence[Any], positions: Sequence[int] | None
                 = None, *, order: int = 1, vs: Sequence[np.ndarray] | None = None,
                 seeded_rng: int | None = None):
        self.fn = fn
        self.inputs = list(inputs)
        self.positions = list(range(len(inputs))) if positions is None else list(positions)
        self.order = order
        self.seeded_rng = seeded_rng
        self.dtypes = [inputs[k].dtype for k in self.positions]
        self.devices = [inputs[k].device for k in self.positions]
        self.arrays = [_to_numpy(inputs[k]).astype(_NUMPY[inputs[k].dtype])
                       for k in self.positions]
        # The autograd graph at the last point (key, leaves, outputs): the harness asks for
        # several cotangents at one point, and one forward serves them all.
        self._graph: tuple[list[torch.Tensor], list[torch.Tensor], list[np.ndarray]
                           ] | None = None
        # The first evaluation, with autograd: it serves the harness's first VJPs at this
        # point too (its leaves are private copies, so they keep holding the point; the
        # point they are compared with is self.arrays, which no call writes to: the
        # harness evaluates on copies of its own).
        copies = [np.array(a) for a in self.arrays]
        outs = self._graph_at(copies, list(self.arrays))[1]
        # ... and the harness's first forward at the point (take_evaluation): copies, so
        # that nothing the harness does to them reaches the tensors autograd saved
        self._first: list[np.ndarray] | None = [np.array(_to_numpy(o)) for o in outs]
        if not all(_same(c, a) for c, a in zip(copies, self.arrays)):
            # the forward wrote into its inputs: the harness's own first forward runs it
            # again on its arrays, so the report blames the forward, not the VJP after it
            self._first = None
        for k, o in enumerate(outs):
            if o.is_complex():
                raise complex_error(_API, "output", k, str(o.dtype), o.shape)
        # Outputs autograd can differentiate (floating, connected to a checked input).
        self.live = [_float_out(o) and o.requires_grad for o in outs]
        self.out_dtypes = [o.dtype for o in outs]
        self.out_shapes = [tuple(o.shape) for o in outs]
        if order == 2:
            if vs is None:
                raise ValueError("order=2 needs the cotangents vs")
            self.vs = [np.asarray(v) for v in vs]

    # -- building calls ----------------------------------------------------------------------
    def _tensor(self, a: np.ndarray, k: int) -> torch.Tensor:
        """Array -> tensor for checked input k: in its own dtype, or float64 when the
        harness asks for the float64 evaluation of a low-precision input."""
        a = np.asarray(a)  # a 0-d input can arrive as a NumPy scalar
        t = torch.from_numpy(a)  # shares memory: an in-place change shows in the harness
        dtype = self.dtypes[k]
        if not (a.dtype == np.float64 and dtype != torch.float64) and t.dtype != dtype:
            t = t.to(dtype)
        return t.to(self.devices[k]) if self.devices[k].type != "cpu" else t

    def _call(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        args = list(self.inputs)
        for k, t in zip(self.positions, tensors):
            args[k] = t
        if self.seeded_rng is None:
            return _outputs(self.fn(*args))
        with torch.random.fork_rng(devices=[]):  # random ops draw the same each call
            torch.manual_seed(self.seeded_rng)
            return _outputs(self.fn(*args))

    def _outputs_with_grad(self, arrays: Sequence[np.ndarray]) -> list[torch.Tensor]:
        leaves = [self._tensor(np.array(a), k).detach().requires_grad_(True)
                  for k, a in enumerate(arrays)]
        with _grad_mode(True):
            return self._call(leaves)

    def _graph_at(self, arrays: Sequence[np.ndarray],
                  snapshot: list[np.ndarray] | None = None,
                  ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Leaves and outputs of a forward with autograd at ``arrays``, reused while the
        point is the same and its leaves (which share the first caller's memory, so that a
        backward writing into its inputs still shows) are unchanged. ``snapshot``: arrays
        holding the point that nothing writes to (else a copy of ``arrays`` is kept)."""
        if self._graph is not None and _holds(self._graph[0], self._graph[2], arrays):
            return self._graph[0], self._graph[1]
        leaves = [self._tensor(a, k).detach().requires_grad_(True)
                  for k, a in enumerate(arrays)]
        with _grad_mode(True):
            outs = self._call(leaves)
        self._graph = (leaves, outs, snapshot if snapshot is not None
                       else [np.array(a) for a in arrays])
        return leaves, outs

    def _cotangent(self, a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.array(a, order="C")).to(dtype=like.dtype,
                                                            device=like.device)

    def _grads(self, leaves: list[torch.Tensor], outs: Sequence[torch.Tensor],
               cts: Sequence[Any], create_graph: bool) -> list[torch.Tensor | None]:
        pairs = [(o, c) for o, c in zip(outs, cts)
                 if c is not None and _float_out(o) and o.requires_grad]
        if not pairs:
            return [None] * len(leaves)
        # retain_graph: the next cotangent at this point reuses the graph
        return list(torch.autograd.grad([o for o, _ in pairs], leaves,
                                        grad_outputs=[self._cotangent(c, o) for o, c in pairs],
                                        allow_unused=True, create_graph=create_graph,
                                        retain_graph=True))

    def output_specs(self) -> list[np.ndarray]:
        """Uninitialised arrays with the outputs' shapes and NumPy dtypes at the checked
        point (from its autograd evaluation, reused: no forward)."""
        outs = self._graph_at(self.arrays)[1]
        return [np.empty(tuple(o.shape), np.float32 if o.dtype == torch.bfloat16
                         else torch.empty((), dtype=o.dtype).numpy().dtype) for o in outs]

    def take_evaluation(self, arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, ...] | None:
        """The outputs of the first evaluation (with autograd, made for the VJPs), once,
        if ``arrays`` is its point: the harness's first forward there (calls.Problem)."""
        first, self._first = self._first, None
        if first is None or self.order != 1 or not self._at_point(arrays):
            return None
        return tuple(first)

    def _at_point(self, arrays: Sequence[np.ndarray]) -> bool:
        """Whether ``arrays`` is the checked point (a moved point differs in its first
        entry: told apart without a pass over the arrays)."""
        if len(arrays) != len(self.arrays):
            return False
        for a, b in zip(arrays, self.arrays):
            a = np.asarray(a)
            if a.shape != b.shape or a.dtype != b.dtype or (a.size and a.flat[0] != b.flat[0]):
                return False
        return all(_same(np.asarray(a), b) for a, b in zip(arrays, self.arrays))

    def __call__(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        """:meth:`forward`: the object itself is the forward the harness gets, so that it
        finds :meth:`take_evaluation` on it."""
        return self.forward(*arrays)

    # -- the triple the harness checks ------------------------------------------------------
    def forward(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        if self.order == 1:
            # At the checked point the function runs as in its first evaluation, with
            # autograd (inputs requiring grad): a function that takes another path without
            # it (nn.MultiheadAttention's fast path rounds differently) must not look
            # non-deterministic when the harness compares two evaluations there.
            grad = self._at_point(arrays)
            with _grad_mode(grad):
                return tuple(_to_numpy(o) for o in self._call(
                    [self._tensor(a, k).detach().requires_grad_(True) if grad
                     else self._tensor(a, k) for k, a in enumerate(arrays)]))
        n = len(self.positions)
        xs, vs = arrays[:n], arrays[n:]
        return tuple(_to_numpy(g) for g in self._first_grads(xs, vs, create_graph=False)[1])

    def _first_grads(self, xs: Sequence[np.ndarray], vs: Sequence[np.ndarray], *,
                     create_graph: bool, vs_require_grad: bool = False,
                     ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        leaves = [self._tensor(a, k).detach().requires_grad_(True) for k, a in enumerate(xs)]
        live = [k for k, flag in enumerate(self.live) if flag]
        with _grad_mode(True):
            outs = self._call(leaves)
            v_t = [self._cotangent(v, outs[k]).requires_grad_(vs_require_grad)
                   for k, v in zip(live, vs)]
            cts: list[Any] = [None] * len(outs)
            for k, v in zip(live, v_t):
                cts[k] = v
            pairs = [(o, c) for o, c in zip(outs, cts) if c is not None and o.requires_grad]
            raw = list(torch.autograd.grad([o for o, _ in pairs], leaves,
                                           grad_outputs=[c for _, c in pairs],
                                           allow_unused=True, create_graph=create_graph)
                       ) if pairs else [None] * len(leaves)
        grads = [torch.zeros_like(x) if g is None else g for g, x in zip(raw, leaves)]
        return leaves, grads, v_t

    def vjp(self, arrays: Sequence[np.ndarray], cts: Sequence[np.ndarray],
            ) -> tuple[np.ndarray | None, ...]:
        if self.order == 1:
            leaves, outs = self._graph_at(arrays)
            with _grad_mode(True):
                grads = self._grads(leaves, outs, cts, create_graph=False)
            _carry_writes(leaves, arrays)
        else:
            n = len(self.positions)
            leaves, firsts, v_t = self._first_grads(arrays[:n], arrays[n:], create_graph=True,
                                                    vs_require_grad=True)
            with _grad_mode(True):
                grads = self._grads(leaves + v_t, firsts, cts, create_graph=False)
        return tuple(None if g is None else self._grad_array(g, a)
                     for g, a in zip(grads, arrays))

    def vjp_many(self, arrays: Sequence[np.ndarray], cts: Sequence[Sequence[np.ndarray]],
                 ) -> list[tuple[np.ndarray | None, ...]]:
        """:meth:`vjp` for several cotangent tuples at one point: the point and the leaves
        are looked at once (one comparison pass, not one per cotangent), and each gradient
        is a backward of its own through the one graph."""
        if self.order != 1:
            return [self.vjp(arrays, c) for c in cts]
        leaves, outs = self._graph_at(arrays)
        with _grad_mode(True):
            grads = [self._grads(leaves, outs, c, create_graph=False) for c in cts]
        _carry_writes(leaves, arrays)
        return [tuple(None if g is None else self._grad_array(g, a)
                      for g, a in zip(gs, arrays)) for gs in grads]

    @staticmethod
    def _grad_array(g: torch.Tensor, like: np.ndarray) -> np.ndarray:
        out = _to_numpy(g)
        # bfloat16 gradients travel as float32, like their inputs
        return out.astype(like.dtype) if g.dtype == torch.bfloat16 else out

    def jvp(self, arrays: Sequence[np.ndarray], tangents: Sequence[np.ndarray],
            ) -> tuple[np.ndarray, ...]:
        """Output tangents J u by forward-mode AD (order 1 only)."""
        with fwad.dual_level():
            duals = [fwad.make_dual(self._tensor(a, k), self._tensor(
                np.zeros_like(np.asarray(a)) if u is None else np.array(u), k))  # None: fixed
                for k, (a, u) in enumerate(zip(arrays, tangents))]
            outs = self._call(duals)
            result = []
            for o in outs:
                primal, tangent = fwad.unpack_dual(o)
                result.append(_to_numpy(torch.zeros_like(primal) if tangent is None
                                        else tangent))
        return tuple(result)
