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

__all__ = ["COMPILE_AFTER", "EAGER_SLOW", "compiled_program", "output_structure", "remembered",
           "signature"]

COMPILE_AFTER = 2  # the checks (JaxFunction objects) that ask for a program, first eager
# An eager run this slow (seconds) compiles its program at once: a function that traces a
# scan, a cond or an ODE solver on every eager call costs ~0.1 s per call, and a check
# makes dozens to hundreds of them (a scan over 100 entries: 20 s eagerly, 0.2 s compiled)
EAGER_SLOW = 0.02
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


def _reads(fn: Any, depth: int = 3) -> tuple:
    """The values ``fn`` reads that a compiled program would bake in: Python scalars and
    small arrays among the globals its code names and its closure cells, followed into the
    functions it calls (a ``custom_vjp``'s ``fwd``/``bwd``, a ``partial``'s ``func``) up to
    ``depth`` levels. A flag flipped between two checks (``BUG = True``) then makes a new
    program instead of reusing one compiled with the old value."""
    found: list[Any] = []
    seen: set[int] = set()
    todo = [(fn, 0)] if _users(fn) else []  # jnp.matmul itself: nothing of the user's
    while todo:
        obj, level = todo.pop()
        if id(obj) in seen or level > depth:
            continue
        seen.add(id(obj))
        inner = [getattr(obj, a, None) for a in ("func", "fun", "fwd", "bwd", "jvp",
                                                 "__wrapped__")]
        todo += [(f, level) for f in inner if callable(f)]
        code = getattr(obj, "__code__", None)
        if code is None:
            continue
        names, codes = set(), [code]
        while codes:  # names of nested lambdas and comprehensions too
            c = codes.pop()
            names.update(c.co_names)
            codes += [k for k in c.co_consts if hasattr(k, "co_names")]
        scope = getattr(obj, "__globals__", {})
        cells = [("cell", c.cell_contents) for c in (obj.__closure__ or ())
                 if _filled(c)]
        for name, value in [(n, scope[n]) for n in sorted(names) if n in scope] + cells:
            try:
                found.append((name, _plain(value)))
            except Exception:  # noqa: BLE001 - not a plain value: a function to follow?
                if _users(value):
                    todo.append((value, level + 1))
    return tuple(found)


def _plain(value: Any, room: int = 64) -> Any:
    """``value`` as a key: a scalar or small array (:func:`_freeze`), or a small dict,
    list or tuple of such (``state["bug"] = True`` mutates a dict a backward reads);
    TypeError for anything else."""
    if isinstance(value, dict) and len(value) <= room:
        return ("dict", tuple((repr(k), _plain(v, room // 2)) for k, v in value.items()))
    if isinstance(value, (list, tuple)) and len(value) <= room:
        return (type(value).__name__, tuple(_plain(v, room // 2) for v in value))
    return _freeze(value)


# Libraries whose functions a checked function calls: not followed (their module-level
# values are no user's switches, and walking them costs more than the check)
_LIBRARIES = {"jax", "jaxlib", "numpy", "scipy", "builtins", "functools", "math",
              "operator", "flax", "optax", "equinox", "haiku", "chex"}


def _users(value: Any) -> bool:
    if not callable(value) or isinstance(value, type):
        return False
    module = getattr(value, "__module__", None) or ""
    return module.partition(".")[0] not in _LIBRARIES


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def _key(jf: Any, *parts: Any) -> tuple:
    """What a program of ``jf`` depends on besides its arguments' signature (TypeError:
    not cacheable): the function, the fixed leaves, and what it reads (:func:`_reads`,
    taken once per check)."""
    fixed = tuple((k, _freeze(leaf)) for k, leaf in enumerate(jf.leaves)
                  if k not in jf.positions)
    reads = jf.__dict__.get("_reads")
    if reads is None:
        reads = jf._reads = _reads(jf.f)
    key = (jf.f, jf.treedef, fixed, reads, jf.order, bool(jax.config.jax_enable_x64),
           *parts)
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
    def structure() -> list[Any]:
        outs = jf._flat(*[jax.numpy.asarray(jf.leaves[k]) for k in jf.positions])
        for k, o in enumerate(outs):
            if not hasattr(o, "dtype"):
                raise TypeError(f"gradverify.jax: output leaf {k} of the function is a "
                                f"{type(o).__name__} ({o!r}), not an array: return "
                                "jnp arrays (a Python number is not differentiable)")
        return [jax.ShapeDtypeStruct(np.shape(o), o.dtype) for o in outs]
    return remembered(jf, "outputs", arrays, structure)


def compiled_program(jf: Any, kind: str, leaves: Sequence[Any], extra: Sequence[Any],
                     force: bool = False) -> Callable | None:
    """The compiled program ``kind`` of ``jf`` (a ``JaxFunction``) for this call's
    signature, in the current x64 mode; None while it should still run eagerly (or when
    its key cannot be cached: fixed leaves too large to compare). ``force``: compile now,
    whatever the count (an eager run was slow: ``EAGER_SLOW``)."""
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
    if count < COMPILE_AFTER and not force:
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
