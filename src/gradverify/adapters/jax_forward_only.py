"""Functions JAX differentiates in forward mode only (``lax.while_loop``, a ``custom_jvp``
whose rule cannot be transposed), checked with ``modes=("fwd",)``: the harness needs a VJP,
so it gets the transpose of the Jacobian forward mode builds, one JVP per input entry at
each point (kept per point: the harness asks for many cotangents at few points). Checking
that VJP against finite differences checks the JVPs it is made of.

>>> import jax.numpy as jnp, numpy as np
>>> from gradverify.adapters.jax_function import JaxFunction
>>> jf = JaxFunction(jnp.sin, (np.array([0.0, 1.0]),))
>>> vjp = ForwardTranspose(jf)
>>> [round(float(g), 6) for g in vjp([np.array([0.0, 1.0])], [np.ones(2)])[0]]
[1.0, 0.540302]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["MAX_ENTRIES", "ForwardTranspose", "reverse_mode_unsupported"]

# Input entries up to which the Jacobian is built from JVPs (one per entry, per point; the
# unit tangents are held at once: 1 024 entries of 1 024 are 8 MB)
MAX_ENTRIES = 1024


def reverse_mode_unsupported(jf: Any) -> str | None:
    """Why ``jf`` (a ``JaxFunction``) has no reverse mode, or None if it has one."""
    try:
        jf.vjp(jf.arrays, [np.zeros(s.shape, s.dtype) for s in _outputs(jf)])
    except Exception as e:
        text = str(e)
        if "reverse-mode differentiation" in text.lower():
            return f"reverse mode is not supported by this function: {text.splitlines()[0]}"
        raise
    return None


def _outputs(jf: Any) -> list[np.ndarray]:
    return [np.asarray(y) for y in jf.forward(*jf.arrays)]


class ForwardTranspose:
    """``vjp(arrays, cotangents)`` as ``J^T v`` with ``J`` from forward mode
    (``jf.jvp_many`` on the unit tangents); ``many`` for several cotangents at a point."""

    def __init__(self, jf: Any):
        self.jf = jf
        self._jacobians: OrderedDict[tuple, list[list[np.ndarray]]] = OrderedDict()

    def _jacobian(self, arrays: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        """Per input k, per output o: the JVPs of input k's unit tangents, (entries, *o)."""
        key = tuple((a.dtype.str, a.shape, a.tobytes()) for a in map(np.asarray, arrays))
        found = self._jacobians.get(key)
        if found is not None:
            return found
        sizes = [np.asarray(a).size for a in arrays]
        if sum(sizes) > MAX_ENTRIES:
            raise ValueError(f"reverse mode is not supported and the inputs have "
                             f"{sum(sizes)} entries: more than {MAX_ENTRIES} JVPs per point")
        per_input = []
        for k, a in enumerate(arrays):
            a = np.asarray(a)
            tangents = []
            for i in range(a.size):
                unit = [np.zeros(np.shape(b), np.asarray(b).dtype) for b in arrays]
                unit[k].reshape(-1)[i] = 1
                tangents.append(unit)
            outs = self.jf.jvp_many(arrays, tangents) if tangents else []
            n_out = len(self.jf.out_float)
            per_input.append([np.array([np.asarray(t[o], np.float64) for t in outs])
                              for o in range(n_out)])
        self._jacobians[key] = per_input
        if len(self._jacobians) > 4:
            self._jacobians.popitem(last=False)
        return per_input

    def __call__(self, arrays: Sequence[np.ndarray], cts: Sequence[Any]) -> tuple[Any, ...]:
        jac = self._jacobian(arrays)
        out = []
        for a, columns in zip(arrays, jac):
            g = np.zeros(np.asarray(a).size)
            for ct, col, fl in zip(cts, columns, self.jf.out_float):
                if fl and col.size:
                    g += col.reshape(col.shape[0], -1) @ np.asarray(ct, np.float64).ravel()
            out.append(g.reshape(np.shape(a)).astype(np.asarray(a).dtype))
        return tuple(out)

    def many(self, arrays: Sequence[np.ndarray], many: Sequence[Sequence[Any]]) -> list[Any]:
        return [self(arrays, cts) for cts in many]
