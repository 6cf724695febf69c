"""A JAX function as the NumPy ``forward``/``vjp``/``jvp`` triple the harness checks.

``f(*args)`` (args and outputs: pytrees of arrays) becomes a flat function of the floating
leaves of ``args``; other leaves (integers, booleans) are held fixed. Each leaf keeps the
dtype JAX gives it (float32 for NumPy float64 data unless ``jax_enable_x64`` is on); when the
harness asks for a float64 evaluation of a low-precision input (it passes float64 arrays),
the same function runs under ``jax.enable_x64(True)`` on float64 leaves.

>>> import jax.numpy as jnp, numpy as np
>>> f = JaxFunction(jnp.sin, (np.ones(2, np.float32),))
>>> [a.dtype.name for a in f.arrays]
['float32']
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradverify.adapters.common import complex_error
from gradverify.adapters.jax_compile import EAGER_SLOW, compiled_program, output_structure

__all__ = ["JaxFunction", "forward_mode_unsupported"]

_API = "gradverify.jax"
# jax.enable_x64 is the context manager from jax 0.5 on; jax.experimental's before.
_enable_x64 = getattr(jax, "enable_x64", None)
if _enable_x64 is None:  # pragma: no cover - older jax
    from jax.experimental import enable_x64 as _enable_x64
_CHECKED = ("float64", "float32", "float16", "bfloat16")


def _to_numpy(a: Any) -> np.ndarray:
    out = np.asarray(a)
    if out.dtype == jax.dtypes.float0:  # the tangent type of integer values: zero
        return np.zeros(out.shape, np.float32)
    return out


def _as_held(leaf: Any) -> Any:
    """``leaf`` with the dtype JAX gives it (float64 data is float32 unless
    ``jax_enable_x64``). NumPy data stays on the host: a transfer to a JAX array and back
    costs 20 times a host copy (95 against 4 µs of CPU for 1e5 float32 entries)."""
    if isinstance(leaf, (np.ndarray, np.generic)):
        return np.asarray(leaf, jax.dtypes.canonicalize_dtype(leaf.dtype))
    return jnp.asarray(leaf)


def forward_mode_unsupported(exc: BaseException) -> bool:
    """Whether ``exc`` says the function has no forward mode (a ``custom_vjp``)."""
    text = str(exc)
    return isinstance(exc, TypeError) and ("jvp" in text or "forward-mode" in text)


class JaxFunction:
    """``f(*args)`` as ``forward``/``vjp``/``jvp`` over its floating leaves. order=2: the
    checked function is ``(x, v) -> J(x)^T v`` (``vs``: the cotangents ``v``)."""

    def __init__(self, f: Callable, args: Sequence[Any], *, order: int = 1,
                 vs: Sequence[np.ndarray] | None = None, jit: bool = True):
        # Compiled ahead of time once a program is asked for repeatedly (jax_compile.py)
        self.f, self.order = f, order
        self.jit = jit
        self._slow: set[str] = set()  # programs whose eager run was slow: compiled now
        # Eager runs: the pullback and the linearisation at the last points (the harness
        # asks for several cotangents, several tangents, at one point: x and its float64
        # copy), so that each point is traced once, not once per cotangent.
        self._linear: OrderedDict[tuple, tuple[Any, Callable]] = OrderedDict()
        leaves, self.treedef = jax.tree_util.tree_flatten(tuple(args))
        # Python ints and bools stay as they are (a function may use them as shapes or
        # axes); array-like leaves are read for their dtype; floating ones are checked.
        self.leaves = list(leaves)
        self.positions = []
        for k, leaf in enumerate(leaves):
            if not (hasattr(leaf, "dtype") or isinstance(leaf, (float, complex))):
                continue
            view = _as_held(leaf)
            if jnp.iscomplexobj(view):
                raise complex_error(_API, "argument leaf", k, str(view.dtype), view.shape)
            if jnp.issubdtype(view.dtype, jnp.floating):
                # NumPy data: a private copy (the function may get it in eager runs)
                self.leaves[k] = np.array(view) if view is leaf and isinstance(
                    leaf, np.ndarray) else view
                self.positions.append(k)
        for k in self.positions:
            if self.leaves[k].dtype.name not in _CHECKED:
                raise TypeError(f"{_API}: argument leaf {k} has dtype {self.leaves[k].dtype}"
                                f" (shape {self.leaves[k].shape}); checkable dtypes are "
                                "float64, float32, float16 and bfloat16")
        self.dtypes = [self.leaves[k].dtype for k in self.positions]
        self.arrays = [np.asarray(self.leaves[k]) for k in self.positions]
        outs = output_structure(self, [self.arrays[k] for k in range(len(self.positions))])
        for k, o in enumerate(outs):
            if jnp.issubdtype(o.dtype, jnp.complexfloating):
                raise complex_error(_API, "output leaf", k, str(o.dtype), o.shape)
        self.out_float = [jnp.issubdtype(o.dtype, jnp.floating) for o in outs]
        if order == 2:
            if vs is None:
                raise ValueError("order=2 needs the cotangents vs")
            self.vs = [np.asarray(v) for v in vs]
            self.arrays = self.arrays + self.vs

    # -- the checked function, flat ------------------------------------------------------
    def _flat(self, *xs: Any) -> tuple[Any, ...]:
        leaves = list(self.leaves)
        for k, x in zip(self.positions, xs):
            leaves[k] = x
        out = self.f(*jax.tree_util.tree_unflatten(self.treedef, leaves))
        return tuple(jax.tree_util.tree_leaves(out))

    def _checked(self, *arrays: Any) -> tuple[Any, ...]:
        if self.order == 1:
            return self._flat(*arrays)
        n = len(self.positions)
        outs, pullback = jax.vjp(self._flat, *arrays[:n])
        vs = iter(arrays[n:])
        cts = [next(vs) if fl else np.zeros(o.shape, jax.dtypes.float0)
               for o, fl in zip(outs, self.out_float)]
        return tuple(pullback(tuple(cts)))

    def _leaves(self, arrays: Sequence[np.ndarray]) -> tuple[list[Any], bool]:
        """JAX arrays for the harness's arrays, and whether this is the float64 evaluation
        of low-precision inputs."""
        native = self.dtypes + [np.dtype(v.dtype) for v in getattr(self, "vs", [])]
        wide = any(a.dtype == np.float64 and d != np.float64 for a, d in zip(arrays, native))
        return [np.asarray(a) if wide else np.asarray(a, d)
                for a, d in zip(arrays, native)], wide

    def _run(self, kind: str, arrays: Sequence[np.ndarray], *extra: Any) -> Any:
        leaves, wide = self._leaves(arrays)
        if wide:
            with _enable_x64(True):
                return self._program(kind, leaves, *extra)
        return self._program(kind, leaves, *extra)

    def _program(self, kind: str, leaves: list[np.ndarray], *extra: Any) -> Any:
        """Run program ``kind`` compiled (``jax_compile``: once asked for repeatedly,
        shared across checks of the same function) or eagerly; a function that cannot be
        traced (Python control flow on values) runs eagerly from then on."""
        if kind == "forward":
            eager = self._forward
        elif kind.endswith("_many"):  # eagerly: the pullback/linearisation traced once
            eager = partial(self._eager_many, kind.removesuffix("_many"))
        else:
            eager = partial(self._eager_linear, kind)
        if self.jit:
            try:
                program = compiled_program(self, kind, leaves, extra,
                                           force=kind in self._slow)
                if program is not None:
                    return program(list(leaves), *extra)
            except Exception:  # noqa: BLE001 - retried eagerly; a real error raises there
                result = eager(leaves, *extra)
                self.jit = False
                return result
            start = time.perf_counter()
            result = eager(leaves, *extra)
            if time.perf_counter() - start > EAGER_SLOW:
                self._slow.add(kind)
            return result
        return eager(leaves, *extra)

    def _forward(self, xs: list[Any]) -> tuple[Any, ...]:
        return tuple(self._checked(*xs))

    def _vjp(self, xs: list[Any], cts: Sequence[Any]) -> tuple[Any, ...]:
        outs, pullback = jax.vjp(self._checked, *xs)
        cotangents = tuple(
            jnp.asarray(c, o.dtype) if jnp.issubdtype(o.dtype, jnp.floating)
            else np.zeros(o.shape, jax.dtypes.float0) for o, c in zip(outs, cts))
        return tuple(pullback(cotangents))

    def _jvp(self, xs: list[Any], us: Sequence[Any]) -> tuple[Any, ...]:
        tangents = tuple(jnp.asarray(u, jnp.asarray(x).dtype) for u, x in zip(us, xs))
        return tuple(jax.jvp(self._checked, tuple(xs), tangents)[1])

    def _vjp_many(self, xs: list[Any], *cts: Sequence[Any]) -> list[tuple[Any, ...]]:
        # one forward for every cotangent (compiled: XLA computes the primal once)
        outs, pullback = jax.vjp(self._checked, *xs)
        return [tuple(pullback(tuple(
            jnp.asarray(c, o.dtype) if jnp.issubdtype(o.dtype, jnp.floating)
            else np.zeros(o.shape, jax.dtypes.float0) for o, c in zip(outs, ct))))
            for ct in cts]

    def _jvp_many(self, xs: list[Any], *us: Sequence[Any]) -> list[tuple[Any, ...]]:
        linear = jax.linearize(self._checked, *xs)[1]
        return [tuple(linear(*[jnp.asarray(t, jnp.asarray(x).dtype) for t, x in zip(u, xs)]))
                for u in us]

    def _eager_many(self, kind: str, xs: list[np.ndarray], *extra: Any) -> list[Any]:
        return [self._eager_linear(kind, xs, e) for e in extra]

    def _eager_linear(self, kind: str, xs: list[np.ndarray], extra: Sequence[Any],
                      ) -> tuple[Any, ...]:
        """``_vjp``/``_jvp`` run eagerly, from the pullback (``jax.vjp``) or linearisation
        (``jax.linearize``) at ``xs``, traced once per point and reused for every cotangent
        or tangent there (a function is linear at a point: same result, one trace)."""
        key = (kind, bool(jax.config.jax_enable_x64),
               tuple((a.dtype.str, a.shape, a.tobytes()) for a in map(np.asarray, xs)))
        linear = self._linear.get(key)
        if linear is None:
            if kind == "vjp":
                outs, pullback = jax.vjp(self._checked, *xs)
                linear = (outs, pullback)
            else:
                linear = (None, jax.linearize(self._checked, *xs)[1])
            self._linear[key] = linear
            if len(self._linear) > 4:
                self._linear.popitem(last=False)
        outs, fn = linear
        if kind == "vjp":
            cotangents = tuple(
                jnp.asarray(c, o.dtype) if jnp.issubdtype(o.dtype, jnp.floating)
                else np.zeros(o.shape, jax.dtypes.float0) for o, c in zip(outs, extra))
            return tuple(fn(cotangents))
        tangents = [jnp.asarray(u, np.asarray(x).dtype) for u, x in zip(extra, xs)]
        return tuple(fn(*tangents))

    # -- the triple the harness checks --------------------------------------------------
    def forward(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(_to_numpy(o) for o in self._run("forward", arrays))

    def vjp(self, arrays: Sequence[np.ndarray], cts: Sequence[np.ndarray],
            ) -> tuple[np.ndarray, ...]:
        floats = [np.asarray(c) if jnp.issubdtype(np.asarray(c).dtype, jnp.floating)
                  else np.zeros(np.shape(c), np.float32) for c in cts]  # bfloat16 is floating
        return tuple(_to_numpy(g) for g in self._run("vjp", arrays, floats))

    def jvp(self, arrays: Sequence[np.ndarray], tangents: Sequence[np.ndarray],
            ) -> tuple[np.ndarray, ...]:
        return tuple(_to_numpy(t) for t in self._run("jvp", arrays,
                                                     self._tangent_arrays(arrays, tangents)))

    @staticmethod
    def _tangent_arrays(arrays: Sequence[np.ndarray], tangents: Sequence[Any]) -> list[Any]:
        return [np.zeros(np.shape(a), np.asarray(a).dtype) if u is None else np.asarray(u)
                for a, u in zip(arrays, tangents)]  # None: this input does not move

    def vjp_many(self, arrays: Sequence[np.ndarray], cts: Sequence[Sequence[np.ndarray]],
                 ) -> list[tuple[np.ndarray, ...]]:
        """:meth:`vjp` of each cotangent tuple, from one forward (``Problem.vjps``)."""
        floats = [[np.asarray(c) if jnp.issubdtype(np.asarray(c).dtype, jnp.floating)
                   else np.zeros(np.shape(c), np.float32) for c in ct] for ct in cts]
        return [tuple(_to_numpy(g) for g in gs)
                for gs in self._run("vjp_many", arrays, *floats)]

    def jvp_many(self, arrays: Sequence[np.ndarray], tangents: Sequence[Sequence[Any]],
                 ) -> list[tuple[np.ndarray, ...]]:
        """:meth:`jvp` of each tangent tuple, from one linearisation (``Problem.jvps``)."""
        us = [self._tangent_arrays(arrays, t) for t in tangents]
        # padded to a power of two: a compiled program is specific to the count, and fast
        # mode's number of directions varies from check to check (2 to 8: 3 programs)
        size = 1 << max(len(us) - 1, 0).bit_length()
        us += [us[0]] * (size - len(us))  # (results dropped: the first again, no new array)
        out = self._run("jvp_many", arrays, *us)[:len(tangents)]
        return [tuple(_to_numpy(t) for t in ts) for ts in out]
