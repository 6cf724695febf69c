"""The finite part of a function whose output overflows at x: judge what can be judged.

``exp`` at ``[1.0, 800.0]`` returns ``[e, inf]``: the derivative of the inf entry cannot be
verified (``0 * inf`` is nan in every chain rule, and no difference of infinities
resolves anything), but the first entry's can. The check goes on with a restricted pair:

- the outputs that are not finite at x are held constant (0) and get no cotangent;
- input entries whose gradient is still not finite with those cotangents removed
  (``0 * inf`` inside the VJP: they feed only the overflowing outputs, or feed them through
  a product) are held at x - the forward sees them unmoved and the gradient reports 0.

Everything else is checked as usual (a wrong gradient on the finite entries FAILs); the
report says how many entries were set aside. When nothing finite is left the check is
INCONCLUSIVE (``OUTPUT_NOT_FINITE``) as before.

>>> import numpy as np
>>> pair = restrict(lambda x: (np.exp(x),), lambda xs, gs: (gs[0] * np.exp(xs[0]),),
...                 [np.array([1.0, 800.0])], [np.array([np.e, np.inf])],
...                 [np.array([0.5, 0.5])])
>>> pair.forward(np.array([2.0, 900.0]))[0].tolist(), pair.frozen_inputs
([7.38905609893065, 0.0], 1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Restricted", "restrict"]


@dataclass
class Restricted:
    """The restricted forward/VJP pair and what was set aside."""

    forward: Callable
    vjp: Callable
    reference: tuple[Callable, Callable] | None
    masked_outputs: int
    frozen_inputs: int


def _as_list(out: Any) -> list[np.ndarray]:
    return [np.asarray(o) for o in out] if isinstance(out, (tuple, list)) else [
        np.asarray(out)]


def _wrap(forward: Callable, vjp: Callable, x0: Sequence[np.ndarray],
          out_masks: list[np.ndarray | None], in_masks: list[np.ndarray | None],
          ) -> tuple[Callable, Callable]:
    """The pair with masked outputs held at 0 and frozen inputs held at ``x0``."""
    def hold(xs: Sequence[Any]) -> list[Any]:
        return [x if m is None else np.where(m, np.asarray(x0k, np.asarray(x).dtype), x)
                for x, x0k, m in zip(xs, x0, in_masks)]

    def fwd(*xs: Any) -> tuple[np.ndarray, ...]:
        ys = _as_list(forward(*hold(xs)))
        return tuple(y if m is None or np.shape(y) != m.shape
                     else np.where(m, np.zeros((), y.dtype), y) for y, m in zip(ys, out_masks))

    def back(xs: Sequence[Any], cts: Sequence[Any]) -> list[Any]:
        cts = [c if m is None else np.where(m, np.zeros((), np.asarray(c).dtype), c)
               for c, m in zip(cts, out_masks)]
        gs = list(_as_list_or_none(vjp(tuple(hold(xs)), tuple(cts))))
        return [g if g is None or m is None or np.shape(g) != m.shape
                else np.where(m, np.zeros((), np.asarray(g).dtype), g)
                for g, m in zip(gs, in_masks)]
    return fwd, back


def _as_list_or_none(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def restrict(forward: Callable, vjp: Callable, xs: Sequence[np.ndarray],
             ys: Sequence[np.ndarray], cts: Sequence[np.ndarray],
             reference: tuple[Callable, Callable] | None = None) -> Restricted | None:
    """The finite part of ``forward``/``vjp`` at ``xs`` (outputs ``ys``, a random cotangent
    ``cts`` to find the input entries that only reach the overflow), or None when no
    finite output entry or no free input entry is left, or the VJP fails.
    ``reference``: a float64 pair of the same function, restricted alike (the input
    entries frozen are those either pair needs frozen)."""
    out_masks = [None if y.dtype.kind != "f" else ~np.isfinite(y) for y in ys]
    masked = sum(int(np.count_nonzero(m)) for m in out_masks if m is not None)
    if masked == 0 or all(m is None or m.all() for m in out_masks):
        return None
    zeroed = [c if m is None else np.where(m, np.zeros((), c.dtype), c)
              for c, m in zip(cts, out_masks)]
    in_masks: list[np.ndarray | None] = [None] * len(xs)
    pairs = [(vjp, list(xs))] + ([] if reference is None else [
        (reference[1], [x.astype(np.float64) if x.dtype.kind == "f" else x for x in xs])])
    for fn, at in pairs:
        cs = zeroed if fn is vjp else [c.astype(np.float64) if c.dtype.kind == "f" else c
                                       for c in zeroed]
        try:
            with np.errstate(all="ignore"):
                gs = _as_list_or_none(fn(tuple(at), tuple(cs)))
        except Exception:  # noqa: BLE001 - the unrestricted check reports the VJP's errors
            return None
        for k, (g, x) in enumerate(zip(gs, xs)):
            if g is None or x.dtype.kind != "f" or np.shape(g) != x.shape:
                continue
            bad = ~np.isfinite(np.asarray(g, np.float64))
            if bad.any():
                in_masks[k] = bad if in_masks[k] is None else in_masks[k] | bad
    frozen = sum(int(np.count_nonzero(m)) for m in in_masks if m is not None)
    free = sum(x.size for x in xs if x.dtype.kind == "f") - frozen
    if free == 0:
        return None
    fwd, back = _wrap(forward, vjp, xs, out_masks, in_masks)
    ref = None
    if reference is not None:
        xs64 = [x.astype(np.float64) if x.dtype.kind == "f" else x for x in xs]
        ref = _wrap(reference[0], reference[1], xs64, out_masks, in_masks)
    return Restricted(fwd, back, ref, masked, frozen)
