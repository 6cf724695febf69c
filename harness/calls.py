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

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["CallError", "Problem", "as_arrays"]


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


def _raised(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        return f"called sys.exit({e.code!r}) (SystemExit)"
    return f"raised {type(e).__name__}: {e}"


class Problem:
    """The function pair at a point, with counted, wrapped evaluations.

    ``xs`` are private copies of the inputs (the caller's arrays are never touched);
    ``diff`` marks the floating-point (differentiated) inputs.
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

    def forward(self, xs: Sequence[np.ndarray], fn: Callable | None = None,
                ) -> list[np.ndarray]:
        self.n_forward += 1
        return as_arrays(_call(fn or self.forward_fn, tuple(xs), "forward", self.timeout),
                         "forward")

    def vjp(self, xs: Sequence[np.ndarray], cts: Sequence[np.ndarray],
            fn: Callable | None = None) -> list[Any]:
        self.n_backward += 1
        out = _call(fn or self.vjp_fn, (tuple(xs), tuple(cts)), "vjp", self.timeout)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    def jvp(self, xs: Sequence[np.ndarray], tangents: Sequence[np.ndarray | None],
            ) -> list[np.ndarray]:
        self.n_jvp += 1
        out = _call(self.jvp_fn, (tuple(xs), tuple(tangents)), "jvp", self.timeout)
        return as_arrays(out, "jvp")
