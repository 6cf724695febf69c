"""Sliding-window arithmetic shared by the convolution and pooling ops (no ops here).

TF's rules (``GetWindowedOutputSizeVerbose``): with the effective window
``eff = (k - 1) * dilation + 1``,

- ``VALID``: ``out = (in - eff + stride) // stride``, no padding; ``in < eff`` is TF's
  "Negative dimension size caused by subtracting eff from in" error;
- ``SAME``: ``out = ceil(in / stride)``, total padding ``max((out - 1) * stride + eff - in,
  0)``, of which ``total // 2`` goes before and the rest (one more when odd) after.

The helpers work on NHWC arrays and loop over window offsets (``kh * kw`` iterations), never
over pixels: each iteration is one strided slice of the whole batch.

>>> window_size(5, 3, 2, 1, "SAME"), window_size(5, 3, 2, 1, "VALID")
((3, 1, 1), (2, 0, 0))
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from gradverify.engine import errors

__all__ = ["window_size", "check_4", "Geometry", "geometry", "im2col", "col2im",
           "window_slices"]

PADDINGS = ("SAME", "VALID")


def window_size(size: int, k: int, stride: int, dilation: int, padding: str,
                ) -> tuple[int, int, int]:
    """``(out, pad_before, pad_after)`` along one spatial axis; ``out < 0`` when VALID and
    the window is larger than the input (the caller raises TF's error)."""
    eff = (k - 1) * dilation + 1
    if padding == "VALID":
        return (size - eff + stride) // stride if size >= eff else -1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2, total - total // 2


def check_4(name: str, values: Any, op_type: str) -> tuple[int, int, int, int]:
    """A 4-vector attribute (``strides``, ``ksize``, ``dilations``) as TF validates it."""
    try:
        v = tuple(int(x) for x in values)
    except TypeError:
        raise ValueError(f"{op_type} requires the {name} attribute to be a list of 4 "
                         f"ints, got {values!r}") from None
    if len(v) != 4:
        raise ValueError(f"{op_type} requires the {name} attribute to contain 4 values, but "
                         f"got: {len(v)}")
    if any(x < 1 for x in v):
        raise ValueError(f"{op_type}: {name} must be positive, got {list(v)}")
    if name != "ksize" and (v[0] != 1 or v[3] != 1):
        what = "strides" if name == "strides" else "dilations"
        raise ValueError(f"Current implementation does not yet support {what} in the batch "
                         "and depth dimensions.")
    return v  # type: ignore[return-value]


class Geometry:
    """One window layout over an NHWC input: sizes, strides, dilations, padding."""

    __slots__ = ("n", "h", "w", "c", "kh", "kw", "sh", "sw", "dh", "dw", "oh", "ow",
                 "top", "bottom", "left", "right", "_offsets")

    def __init__(self, in_shape: Sequence[int], kh: int, kw: int, strides: Sequence[int],
                 dilations: Sequence[int], padding: str):
        self.n, self.h, self.w, self.c = (int(d) for d in in_shape)
        self.kh, self.kw = int(kh), int(kw)
        self.sh, self.sw = int(strides[1]), int(strides[2])
        self.dh, self.dw = int(dilations[1]), int(dilations[2])
        self.oh, self.top, self.bottom = window_size(self.h, self.kh, self.sh, self.dh, padding)
        self.ow, self.left, self.right = window_size(self.w, self.kw, self.sw, self.dw, padding)
        self._offsets: list[tuple[int, int, tuple[slice, slice]]] | None = None

    @property
    def padded(self) -> bool:
        return bool(self.top or self.bottom or self.left or self.right)

    @property
    def padded_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.h + self.top + self.bottom, self.w + self.left + self.right,
                self.c)

    def pad(self, x: np.ndarray, value: float = 0.0) -> np.ndarray:
        if not self.padded:
            return x
        # (np.pad's generic machinery cost ~300 µs here, most of a small pooling call)
        xp = np.full(self.padded_shape, value, dtype=x.dtype)
        xp[:, self.top:self.top + self.h, self.left:self.left + self.w, :] = x
        return xp

    def unpad(self, xp: np.ndarray) -> np.ndarray:
        if not self.padded:
            return xp
        return xp[:, self.top:self.top + self.h, self.left:self.left + self.w, :]

    def offsets(self) -> list[tuple[int, int, tuple[slice, slice]]]:
        """``(i, j, (rows, cols))`` per window offset: the slices of the padded input that
        the offset meets in every window (computed once per layout; do not mutate)."""
        if self._offsets is not None:
            return self._offsets
        out = []
        for i in range(self.kh):
            r0 = i * self.dh
            rows = slice(r0, r0 + (self.oh - 1) * self.sh + 1, self.sh)
            for j in range(self.kw):
                c0 = j * self.dw
                out.append((i, j, (rows, slice(c0, c0 + (self.ow - 1) * self.sw + 1,
                                               self.sw))))
        self._offsets = out
        return out


def geometry(op_type: str, in_shape: Sequence[int], kh: int, kw: int, strides: Any,
             dilations: Any, padding: str) -> Geometry:
    """The layout, or TF's run-time error for a window larger than a VALID input."""
    g = Geometry(in_shape, kh, kw, strides, dilations, padding)
    if g.oh < 0 or g.ow < 0:
        eff = (kh - 1) * g.dh + 1 if g.oh < 0 else (kw - 1) * g.dw + 1
        size = g.h if g.oh < 0 else g.w
        raise errors.InvalidArgumentError(
            None, None, f"{op_type}: Computed output size would be negative: "
            f"{(size - eff + (g.sh if g.oh < 0 else g.sw)) // (g.sh if g.oh < 0 else g.sw)}"
            f" [input_size: {size}, effective_filter_size: {eff}]")
    return g


def window_slices(g: Geometry, xp: np.ndarray) -> list[np.ndarray]:
    """The ``kh * kw`` strided views of the padded input ``xp``, one per window offset."""
    return [xp[:, rows, cols, :] for _, _, (rows, cols) in g.offsets()]


_RECENT = threading.local()  # per thread: the last few patch matrices, see im2col
_KEEP = 2


def im2col(g: Geometry, x: np.ndarray) -> np.ndarray:
    """Patches of ``x`` as a read-only ``(n * oh * ow, kh * kw * c)`` matrix (offset-major,
    channel minor: the row order of a ``[kh, kw, c, o]`` filter reshaped to 2-D).

    A training step builds the same patches twice, for Conv2D and for its filter gradient,
    from the same input array; the last few are kept and reused when the very same array
    comes back with unchanged values (checked against a snapshot, so an input updated in
    place is never served stale patches).
    """
    key = (id(x), x.dtype.str, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.top, g.left, g.oh, g.ow)
    recent = getattr(_RECENT, "entries", None)
    if recent is None:
        recent = _RECENT.entries = {}
    hit = recent.get(key)
    if hit is not None and hit[0] is x and np.array_equal(hit[1], x):
        return hit[2]
    cols = _patches(g, x)
    cols.flags.writeable = False
    recent.pop(key, None)
    recent[key] = (x, x.copy(), cols)
    while len(recent) > _KEEP:
        del recent[next(iter(recent))]
    return cols


def _patches(g: Geometry, x: np.ndarray) -> np.ndarray:
    xp = g.pad(x)
    cols = np.empty((g.n, g.oh, g.ow, g.kh * g.kw, g.c), x.dtype)
    for k, view in enumerate(window_slices(g, xp)):
        cols[:, :, :, k, :] = view
    return cols.reshape(g.n * g.oh * g.ow, g.kh * g.kw * g.c)


def col2im(g: Geometry, cols: np.ndarray) -> np.ndarray:
    """The adjoint of :func:`im2col`: patch entries added back into an input-shaped array."""
    cols = cols.reshape(g.n, g.oh, g.ow, g.kh * g.kw, g.c)
    xp = np.zeros(g.padded_shape, cols.dtype)
    for k, (_, _, (rows, cls)) in enumerate(g.offsets()):
        xp[:, rows, cls, :] += cols[:, :, :, k, :]
    return g.unpad(xp)
