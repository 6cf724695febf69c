"""``pad`` modes REFLECT and SYMMETRIC: the ops MirrorPad and MirrorPadGrad (TF's names).

REFLECT mirrors about the edge element without repeating it (``[1, 2, 3]`` padded by 2 on
both sides: ``[3, 2, 1, 2, 3, 2, 1]``), so each padding must be smaller than the dimension;
SYMMETRIC repeats it (``[2, 1, 1, 2, 3, 3, 2]``), so each padding may equal the dimension.
The gradient folds every mirrored cell back onto its source; the two ops are each other's
gradients (both linear in their first input).

>>> import gradverify.engine as tf
>>> tf.Session().run(tf.pad(tf.constant([1, 2, 3]), [[2, 2]], "REFLECT")).tolist()
[3, 2, 1, 2, 3, 2, 1]
"""

from __future__ import annotations

import numpy as np

from gradverify.engine import meta as m
from gradverify.engine.ops.array_ops import _invalid
from gradverify.engine.registry import REQUIRED, op
from gradverify.engine.shapes import TensorShape, unknown_shape

_MODES = ("REFLECT", "SYMMETRIC")
_EXAMPLES = (  # padded as far as each mode allows, size-1 dims, unpadded axes
    {"shapes": {"input": (3, 4), "paddings": (2, 2)},
     "values": {"paddings": [[2, 1], [0, 3]]}, "attrs": {"mode": "REFLECT"}},
    {"shapes": {"input": (2, 1, 3), "paddings": (3, 2)},
     "values": {"paddings": [[2, 2], [1, 0], [0, 3]]}, "attrs": {"mode": "SYMMETRIC"}},
    {"shapes": {"input": (5,), "paddings": (1, 2)},
     "values": {"paddings": [[4, 1]]}, "attrs": {"mode": "REFLECT"}})


def _offset(mode: str) -> int:
    """How far inside the edge the mirror starts: REFLECT skips the edge element."""
    return 1 if mode == "REFLECT" else 0


def _limits(dims: list, pads: np.ndarray, mode: str) -> str | None:
    """TF's message when a padding is too large for its dimension (None when all fit)."""
    off = _offset(mode)
    for d, (a, b) in zip(dims, pads.tolist()):
        if a < 0 or b < 0:
            return f"Paddings must be non-negative: {a} {b}"
        if d is not None and (a > d - off or b > d - off):
            rule = "less than" if off else "no greater than"
            return (f"paddings must be {rule} the dimension size: {a}, {b} not {rule} {d}")
    return None


def _pad_rule(ctx, sign: int):
    """Output shape of MirrorPad (sign +1) or MirrorPadGrad (sign -1)."""
    mode = ctx.attrs["mode"]
    if mode not in _MODES:
        raise ctx.fail(f"mode must be either REFLECT or SYMMETRIC, got {mode!r}")
    x = ctx.input_shapes[0]
    p = ctx.rank_exactly(1, 2).as_list()
    if p[1] is not None and p[1] != 2:
        raise ctx.fail(f"Dimension 1 in both shapes must be equal, but are {p[1]} and 2")
    if x.ndims is not None and p[0] is not None and p[0] != x.ndims:
        raise ctx.fail(f"Shape must be rank {p[0]} but is rank {x.ndims}")
    rank = x.ndims if x.ndims is not None else p[0]
    if rank is None:
        return unknown_shape()
    pads = ctx.const(1)
    if pads is None:
        return unknown_shape(rank)
    pads = np.asarray(pads).reshape(rank, 2)
    dims = x.as_list() if x.ndims is not None else [None] * rank
    out = [None if d is None else d + sign * int(a + b) for d, (a, b) in zip(dims, pads)]
    problem = _limits(out if sign < 0 else dims, pads, mode)
    if problem is None and any(d is not None and d < 0 for d in out):
        problem = "the padded gradient is smaller than its paddings"
    if problem:
        raise ctx.fail(problem)
    return TensorShape(out)


def _check(x: np.ndarray, paddings: np.ndarray, mode: str, sign: int) -> np.ndarray:
    p = np.asarray(paddings).reshape(-1, 2) if np.size(paddings) else np.zeros((0, 2), int)
    if p.shape != (x.ndim, 2):
        raise _invalid(f"The first dimension of paddings must be the rank of inputs"
                       f"[{p.shape[0]},2] [{','.join(map(str, x.shape))}]")
    dims = list(x.shape) if sign > 0 else [d - a - b for d, (a, b) in zip(x.shape, p.tolist())]
    problem = _limits(dims, p, mode) or (
        "the padded gradient is smaller than its paddings" if min(dims, default=0) < 0
        else None)
    if problem:
        raise _invalid(problem)
    return p


@op("MirrorPad", inputs={"input": m.anything, "paddings": m.structural("paddings", of="input")},
    attrs={"mode": REQUIRED}, choices={"mode": _MODES}, signature="custom",
    dtypes=m.FLOAT + m.INT, examples=_EXAMPLES, api="_internal.mirror_pad",
    reference=lambda x, p, mode: np.pad(x, np.asarray(p).reshape(-1, 2), mode=mode.lower()))
def mirror_pad(input, paddings, *, mode):
    """``input`` padded by mirror images of itself (``mode`` REFLECT or SYMMETRIC)."""
    p = _check(input, paddings, mode, +1)
    if input.ndim == 0:
        return input.copy()
    return np.pad(input, p, mode=mode.lower())


@mirror_pad.shape_rule
def _(ctx):
    return _pad_rule(ctx, +1)


@mirror_pad.gradient
def _(op, grad):
    return [mirror_pad_grad(grad, op.inputs[1], mode=op.attrs["mode"]), None]


@op("MirrorPadGrad", inputs={"input": m.reals,
                             "paddings": m.structural("paddings", of="input")},
    attrs={"mode": REQUIRED}, choices={"mode": _MODES}, signature="custom",
    examples=tuple({**e, "shapes": {"input": tuple(
        d + sum(p) for d, p in zip(e["shapes"]["input"], e["values"]["paddings"])),
        "paddings": e["shapes"]["paddings"]}} for e in _EXAMPLES))
def mirror_pad_grad(input, paddings, *, mode):
    """MirrorPad's gradient: the padded-shape ``input`` with every mirrored cell added back
    onto the cell it copies (axis by axis)."""
    p = _check(input, paddings, mode, -1)
    off = _offset(mode)
    g = input
    for axis, (a, b) in enumerate(p.tolist()):
        n = g.shape[axis] - a - b
        g = np.moveaxis(g, axis, 0)
        core = g[a:a + n].copy()
        if a:  # before: cells a-1+off, ..., off of the input, in that order
            core[off:off + a] += g[:a][::-1]
        if b:  # after: cells n-1-off, ..., n-off-b
            core[n - off - b:n - off] += g[a + n:][::-1]
        g = np.moveaxis(core, 0, axis)
    return np.ascontiguousarray(g)


@mirror_pad_grad.shape_rule
def _(ctx):
    return _pad_rule(ctx, -1)


@mirror_pad_grad.gradient
def _(op, grad):
    return [mirror_pad(grad, op.inputs[1], mode=op.attrs["mode"]), None]
