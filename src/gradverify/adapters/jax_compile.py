"""Compiled programs for the JAX adapter: ahead-of-time compilations of the checked forward,
VJP and JVP, shared by the checks of the same function at the same shapes and dtypes.

Why ahead of time, on a throwaway wrapper: jax (0.10) caches the conversion of a NumPy
array to a JAX constant by the array alone, not by the x64 mode it was converted in, for as
long as a trace that holds it lives. A ``jax.jit`` of the user's function keeps its trace,
so after the native (x64 off) trace of ``lambda z: z[labels]`` the float64 evaluation's
trace (under ``jax.enable_x64``) gets the int32 ``labels`` and fails (``lax.add requires
arguments to have the same dtypes, got int32, int64``), as does the user's own jit in the
other mode after a check. A ``Compiled`` object from ``jit(wrapper).trace().lower()
.compile()`` of a wrapper made for the occasion keeps no trace alive: both modes compile,
and nothing is left behind for the user's code.

A program is compiled once ``COMPILE_AFTER`` checks have asked for it (same function,
same signature, same x64 mode): a one-off check (Hypothesis drawing new shapes) runs
eagerly, where compiling would cost more than it saves; a check repeated on the same
function (a test suite's seeds and points, a benchmark) runs compiled from its second on.
Like ``jax.jit``, a compiled program sees the constants the function closed over when it was
compiled: mutating such a NumPy array in place afterwards is not seen.

>>> signature([np.ones((2, 3), np.float32)], ())
((((2, 3), '<f4'),), ())
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

__all__ = ["COMPILE_AFTER", "compiled_program", "output_structure", "remembered",
           "signature"]

COMPILE_AFTER = 2  # the checks (JaxFunction objects) that ask for a program, first eager
_MAX = 128
_FROZEN_MAX = 4096  # fixed array leaves up to this size are part of the key
_COMPILED: OrderedDict[Any, Callable | None] = OrderedDict()
_SEEN: dict[Any, tuple[int, int | None]] = {}
_TOKENS = itertools.count()
_FACTS: OrderedDict[Any, Any] = OrderedDict()


def signature(leaves: Sequence[Any], extra: Sequence[Any]) -> tuple:
    """Shapes and dtypes of a call's arrays (what a compiled program is specific to)."""
    def avals(items: Sequence[Any]) -> tuple:
        return tuple((np.shape(a), np.asarray(a).dtype.str) for a in items)
    return avals(leaves), tuple(avals(e) if isinstance(e, (list, tuple)) else avals([e])
                                for e in extra)


def _freeze(leaf: Any) -> Any:
    if leaf is None or isinstance(leaf, (bool, int, float, str)):
        return (type(leaf).__name__, leaf)
    a = np.asarray(leaf)
    if a.size > _FROZEN_MAX or a.dtype.kind not in "biuf":
        raise TypeError("not a cacheable constant")
    return ("array", a.shape, a.dtype.str, a.tobytes())


def _key(jf: Any, *parts: Any) -> tuple:
    """What a program of ``jf`` depends on besides its arguments' signature (TypeError:
    not cacheable)."""
    fixed = tuple((k, _freeze(leaf)) for k, leaf in enumerate(jf.leaves)
                  if k not in jf.positions)
    key = (jf.f, jf.treedef, fixed, jf.order, bool(jax.config.jax_enable_x64), *parts)
    hash(key)
    return key


def remembered(jf: Any, what: str, arrays: Sequence[np.ndarray],
               compute: Callable[[], Any]) -> Any:
    """``compute()``, remembered for later checks of the same function at the same
    signature (``what`` names the fact: the outputs' structure, forward-mode support)."""
    try:
        key = _key(jf, what, signature(arrays, ()))
    except TypeError:
        return compute()
    if key not in _FACTS:
        _FACTS[key] = compute()
        if len(_FACTS) > _MAX:
            _FACTS.popitem(last=False)
    return _FACTS[key]


def output_structure(jf: Any, arrays: Sequence[np.ndarray]) -> list[Any]:
    """The outputs of ``jf``'s function at arrays like ``arrays`` (objects with ``shape``
    and ``dtype``): from the last check of the same function and signature, else from one
    eager evaluation (which also shows that the function runs)."""
    return remembered(jf, "outputs", arrays, lambda: [
        jax.ShapeDtypeStruct(np.shape(o), o.dtype)
        for o in jf._flat(*[jax.numpy.asarray(jf.leaves[k]) for k in jf.positions])])


def compiled_program(jf: Any, kind: str, leaves: Sequence[Any], extra: Sequence[Any],
                     ) -> Callable | None:
    """The compiled program ``kind`` of ``jf`` (a ``JaxFunction``) for this call's
    signature, in the current x64 mode; None while it should still run eagerly (or when
    its key cannot be cached: fixed leaves too large to compare)."""
    try:
        key = _key(jf, tuple(jf.out_float), kind, signature(leaves, extra))
    except TypeError:
        return None
    program = _COMPILED.get(key)
    if program is not None:
        _COMPILED.move_to_end(key)
        return program
    # a check asks for a program many times: count the checks, each by a token of its own
    # (not id(): a collected JaxFunction's id is reused by the next check's)
    # (looked up first: setdefault's default would draw a token on every call)
    token = jf.__dict__.get("_check_token")
    if token is None:
        token = jf._check_token = next(_TOKENS)
    count, last = _SEEN.get(key, (0, None))
    if last != token:
        count, last = count + 1, token
        _SEEN[key] = (count, last)
    if count < COMPILE_AFTER:
        return None
    if len(_SEEN) > 4 * _MAX:
        _SEEN.clear()
    method = getattr(jf, "_" + kind)

    def wrapper(*args: Any) -> Any:  # made for this compilation only (module docstring)
        return method(*args)

    program = jax.jit(wrapper).trace(list(leaves), *extra).lower().compile()
    _COMPILED[key] = program
    if len(_COMPILED) > _MAX:
        _COMPILED.popitem(last=False)
    return program
