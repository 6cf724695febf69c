"""Calling user code: counted, exception-wrapped, optionally time-limited evaluations.

A forward or VJP that raises (``SystemExit`` included) becomes a :class:`CallError` the
checker turns into a named FAIL; one that does not return within ``timeout`` seconds is
abandoned on a daemon thread and reported the same way, and the harness goes on.
``KeyboardInterrupt`` is never caught: it still stops the run.

>>> import numpy as np
>>> p = Problem(np.sin, lambda xs, gs: (gs[0] * np.cos(xs[0]),), [np.ones(2)], timeout=None)
>>> p.forward(p.xs)[0].shape, p.n_forward
((2,), 1)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["CallError", "Problem", "aligned_copy", "aligned_empty", "as_arrays"]


# Arrays the harness makes for the user's function start on this many bytes: XLA's CPU
# client then reads a NumPy input in place instead of copying it (a jitted tanh of 1e5
# float64 entries: 0.06 against 0.25 ms of CPU).
_ALIGN = 64
# Below this many bytes the copy XLA makes costs less than aligning (~1.6 us a call)
_SMALL = 1 << 14


def aligned_empty(shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """``np.empty(shape, dtype)`` whose data starts on a multiple of 64 bytes (NumPy's
    own large arrays start 16 bytes past a page); below 16 KB plain ``np.empty``.

    >>> aligned_empty((300, 50)).ctypes.data % 64, aligned_empty((3, 5)).shape
    (0, (3, 5))
    """
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    if size < _SMALL:
        return np.empty(shape, dtype)
    raw = np.empty(size + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    return raw[start:start + size].view(dtype).reshape(shape)


def aligned_copy(x: np.ndarray, dtype: Any = None) -> np.ndarray:
    """A copy of ``x`` (cast to ``dtype`` if given) in :func:`aligned_empty` memory.

    >>> aligned_copy(np.arange(3), np.float64).tolist()
    [0.0, 1.0, 2.0]
    """
    x = np.asarray(x)
    out = aligned_empty(x.shape, x.dtype if dtype is None else dtype)
    np.copyto(out, x, casting="unsafe")
    return out


class CallError(Exception):
    """User code misbehaved: ``where`` (forward / vjp / jvp) and a one-line ``message``."""

    def __init__(self, where: str, message: str, exc: BaseException | None = None):
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message
        self.exc = exc


def as_arrays(out: Any, where: str) -> list[np.ndarray]:
    """A function's output as a list of arrays; ``None``, strings and other non-numeric
    objects are a CallError naming what came back."""
    if type(out) is np.ndarray and out.dtype.kind in "biuf":  # the common case, fast
        return [out]
    if type(out) is tuple and all(type(o) is np.ndarray and o.dtype.kind in "biuf"
                                  for o in out):  # an adapter's outputs: as fast
        return list(out)
    items = list(out) if isinstance(out, (tuple, list)) else [out]
    arrays = []
    for k, o in enumerate(items):
        if o is None or isinstance(o, (str, bytes, dict, set)):
            raise CallError(where, f"output {k} is {type(o).__name__}, not an array")
        a = np.asarray(o)
        if a.dtype.kind not in "biuf":
            raise CallError(where, f"output {k} has dtype {a.dtype}, not a real number type")
        arrays.append(a)
    return arrays


def _call(fn: Callable, args: tuple, where: str, timeout: float | None) -> Any:
    if timeout is None:
        try:  # (the checker runs under np.errstate(all="ignore"): NaN/Inf is information)
            return fn(*args)
        except (Exception, SystemExit) as e:
            raise CallError(where, _raised(e), e) from e
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            with np.errstate(all="ignore"):
                box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - carried back to the caller's thread
            box["error"] = e

    worker = threading.Thread(target=run, daemon=True, name=f"gradverify-{where}")
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise CallError(where, f"did not return within {timeout:g} s")
    if "error" in box:
        e = box["error"]
        if isinstance(e, KeyboardInterrupt):
            raise e
        raise CallError(where, _raised(e), e) from e
    return box["value"]


def _same_point(xs: Sequence[Any], ref: Sequence[np.ndarray]) -> bool:
    """Whether ``xs`` is the point ``ref`` (same shapes, dtypes, bits). A moved point
    (every entry moved) is told apart by its first and last entries, without a pass."""
    if len(xs) != len(ref):
        return False
    for x, r in zip(xs, ref):
        if type(x) is not np.ndarray or x.shape != r.shape or x.dtype != r.dtype:
            return False
        if x is not r and x.size and not (x.flat[0] == r.flat[0] and x.flat[-1] == r.flat[-1]):
            return False
    # (x == r).all(): array_equal's answer (NaN unequal) without its wrapper's cost
    return all(x is r or bool((x == r).all()) for x, r in zip(xs, ref))


def _bitwise_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Same shape, dtype and values, NaN equal to NaN. One comparison pass in the common
    case: ``array_equal(..., equal_nan=True)`` makes several (1e5 entries: ~1 ms against
    ~30 us), and is only needed when the plain comparison finds a difference."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if bool((a == b).all()):
        return True
    return a.dtype.kind == "f" and bool(np.array_equal(a, b, equal_nan=True))


def _results(out: Any, count: int, where: str) -> list[Any]:
    """The results of a ``many`` call: one per input, else a CallError."""
    if not isinstance(out, (tuple, list)) or len(out) != count:
        raise CallError(where, f"{where}.many returned {type(out).__name__} "
                        f"{len(out) if isinstance(out, (tuple, list)) else ''} for {count} "
                        "inputs, not one result each")
    return list(out)


def _raised(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        return f"called sys.exit({e.code!r}) (SystemExit)"
    return f"raised {type(e).__name__}: {e}"


class Problem:
    """The function pair at a point, with counted, wrapped evaluations.

    ``xs`` are private copies of the inputs (the caller's arrays are never touched);
    ``diff`` marks the floating-point (differentiated) inputs.

    Evaluations at the checked point ``xs`` itself: once two of them agreed bit for bit,
    later ones are served from them (not counted). A forward may offer one it already
    made: ``forward.take_evaluation(xs)`` returning its outputs at exactly ``xs`` (once),
    or None (a framework adapter's forward with autograd, made for the VJP anyway); it is
    counted as an evaluation, and the determinism check's second one is a real call. The
    arrays it returns are the harness's own (the forward keeps no reference to them): they
    are kept as they are, where a forward's own outputs are copied (a function may return
    a buffer it overwrites on its next call).
    """

    def __init__(self, forward: Callable, vjp: Callable, inputs: Sequence[Any], *,
                 timeout: float | None = None, names: Sequence[str] | None = None,
                 rng: np.random.Generator | None = None, jvp: Callable | None = None):
        self.forward_fn, self.vjp_fn, self.jvp_fn = forward, vjp, jvp
        self.xs = [np.array(x) for x in inputs]
        self.timeout = timeout
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.n_forward = 0
        self.n_backward = 0
        self.n_jvp = 0
        # fast mode's first-pass directions and central differences, kept for the JVP
        # check when there is a JVP (harness/probes.py, harness/forward_mode.py)
        self.probe_record: list | None = None
        self.names = list(names) if names else [f"x{k}" for k in range(len(self.xs))]
        self.diff = [x.dtype.kind == "f" for x in self.xs]
        # f(x): the first evaluation at the checked point, and once a second one agreed
        # with it bit for bit, the settled outputs (forward below)
        self._first_at_x: list[np.ndarray] | None = None
        self._settled: list[np.ndarray] | None = None

    def forward(self, xs: Sequence[np.ndarray], fn: Callable | None = None, *,
                moved: bool = False) -> list[np.ndarray]:
        """``fn`` (default: the user's forward) at ``xs``, counted; ``moved``: the caller
        knows ``xs`` is not the checked point (no comparison with it)."""
        fn = fn or self.forward_fn
        at_x = not moved and fn is self.forward_fn and _same_point(xs, self.xs)
        if at_x and self._settled is not None:
            return [y.copy() for y in self._settled]
        take = getattr(fn, "take_evaluation", None) if at_x else None
        made = take(xs) if take is not None else None
        self.n_forward += 1
        ys = as_arrays(made if made is not None else
                       _call(fn, tuple(xs), "forward", self.timeout), "forward")
        if at_x:
            self._remember_at_x(ys, private=made is not None)
        return ys

    def _remember_at_x(self, ys: list[np.ndarray], private: bool = False) -> None:
        # Two evaluations at x that agree bit for bit (the determinism check's pair) settle
        # f(x): a later forward at exactly x (the precision check's) is served from them.
        # Not before: the determinism check needs two evaluations of its own.
        if self._first_at_x is None:
            self._first_at_x = list(ys) if private else [y.copy() for y in ys]
        elif len(ys) == len(self._first_at_x) and all(
                _bitwise_equal(a, b) for a, b in zip(ys, self._first_at_x)):
            self._settled = self._first_at_x

    def vjp(self, xs: Sequence[np.ndarray], cts: Sequence[np.ndarray],
            fn: Callable | None = None) -> list[Any]:
        self.n_backward += 1
        out = _call(fn or self.vjp_fn, (tuple(xs), tuple(cts)), "vjp", self.timeout)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    def vjps(self, xs: Sequence[np.ndarray], cts: Sequence[Sequence[np.ndarray]],
             fn: Callable | None = None) -> list[list[Any]]:
        """``vjp`` for each cotangent tuple in ``cts`` at one point: one call of
        ``fn.many(xs, cts)`` when the VJP offers it (a framework's pullback serves every
        cotangent from one forward), else one call each. Each counts as a VJP."""
        fn = fn or self.vjp_fn
        many = getattr(fn, "many", None)
        if many is None or len(cts) < 2:
            return [self.vjp(xs, c, fn) for c in cts]
        self.n_backward += len(cts)
        out = _results(_call(many, (tuple(xs), [tuple(c) for c in cts]), "vjp",
                             self.timeout), len(cts), "vjp")
        return [list(o) if isinstance(o, (tuple, list)) else [o] for o in out]

    def jvps(self, xs: Sequence[np.ndarray],
             tangents: Sequence[Sequence[np.ndarray | None]]) -> list[list[np.ndarray]]:
        """``jvp`` for each tangent tuple at one point: one call of ``jvp_fn.many`` when
        offered (see :meth:`vjps`), else one call each. Each counts as a JVP."""
        many = getattr(self.jvp_fn, "many", None)
        if many is None or len(tangents) < 2:
            return [self.jvp(xs, t) for t in tangents]
        self.n_jvp += len(tangents)
        out = _results(_call(many, (tuple(xs), [tuple(t) for t in tangents]), "jvp",
                             self.timeout), len(tangents), "jvp")
        return [as_arrays(o, "jvp") for o in out]

    def jvp(self, xs: Sequence[np.ndarray], tangents: Sequence[np.ndarray | None],
            ) -> list[np.ndarray]:
        self.n_jvp += 1
        out = _call(self.jvp_fn, (tuple(xs), tuple(tangents)), "jvp", self.timeout)
        return as_arrays(out, "jvp")
