"""Plain-data facts about an op's inputs and attributes, for testers (``properties/``).

Nothing here imports Hypothesis or runs at kernel time. An input's :class:`Domain` says
which values are legal (``positive`` for log, ``labels(of="logits")`` for sparse
cross-entropy), which dtypes it takes and whether it is differentiable. Attribute choices
(:class:`AxisChoice`, plain tuples) say which attribute values a tester should try.

>>> positive.kind, positive.differentiable, labels(of="logits").dtypes
('positive', True, ('int32', 'int64'))
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "Domain", "reals", "shape_only", "positive", "nonnegative", "nonzero", "bounded",
    "probabilities", "one_hot_rows", "labels", "indices", "boolean", "anything", "integers",
    "structural",
    "AxisChoice", "TransposeFlag", "FLOAT", "INT", "ALL",
    "Permutation", "UnitAxes", "DimOf",
]

FLOAT = ("float32", "float64")
INT = ("int32", "int64")
ALL = ("float32", "float64", "int32", "int64", "bool")


@dataclass(frozen=True)
class Domain:
    """Where an input's values come from.

    kind: ``reals``, ``positive``, ``nonnegative``, ``nonzero``, ``bounded``,
    ``probabilities`` (rows on the last axis sum to 1), ``one_hot`` (rows are one-hot),
    ``labels`` (ints in [0, classes of input ``of``)), ``indices`` (ints indexing input
    ``of`` along the ``axis`` attribute; duplicates on purpose), ``bool``, ``any``,
    ``integers`` or a structural kind (``new_shape``, ``multiples``, ``dims``,
    ``slice_begin``, ``slice_size``) whose value depends on the shape of input ``of``, or
    ``shape_only`` (only the input's shape matters, and it must relate to another input's
    in a way the op's ``examples`` give: the gradient machinery's ``like`` inputs).
    dtypes: dtype names allowed; ``None`` means the op's ``T`` dtypes, shared by every input
    with ``dtypes=None`` (TF's type attribute ``T``).
    """

    kind: str
    lo: float | None = None
    hi: float | None = None
    of: str | None = None
    dtypes: tuple[str, ...] | None = None
    differentiable: bool = True

    def contains(self, value: Any) -> bool:
        """Whether every element of ``value`` (an ndarray) lies in the domain (scalar kinds)."""
        import numpy as np
        v = np.asarray(value)
        if self.kind == "positive":
            return bool(np.all(v > 0))
        if self.kind == "nonnegative":
            return bool(np.all(v >= 0))
        if self.kind == "nonzero":
            return bool(np.all(v != 0))
        if self.kind == "bounded":
            return bool(np.all((v > self.lo) & (v < self.hi)))
        return True


reals = Domain("reals")
shape_only = Domain("shape_only", differentiable=False)
positive = Domain("positive", lo=0.0)
nonnegative = Domain("nonnegative", lo=0.0)
nonzero = Domain("nonzero")
probabilities = Domain("probabilities", lo=0.0, hi=1.0)
one_hot_rows = Domain("one_hot", lo=0.0, hi=1.0)
boolean = Domain("bool", dtypes=("bool",), differentiable=False)
anything = Domain("any")  # T-typed: the op's dtypes say which (often ALL)
integers = Domain("integers", dtypes=INT, differentiable=False)


def bounded(lo: float, hi: float) -> Domain:
    """Reals in the open interval (lo, hi), e.g. ``bounded(-1, 1)`` for atanh."""
    if not lo < hi:
        raise ValueError(f"bounded() needs lo < hi, got lo={lo}, hi={hi}")
    return Domain("bounded", lo=float(lo), hi=float(hi))


def labels(*, of: str) -> Domain:
    """Integer class labels in [0, C), C the last dimension of input ``of``."""
    return Domain("labels", of=of, dtypes=INT, differentiable=False)


def indices(*, of: str) -> Domain:
    """Integer indices into input ``of`` along the op's ``axis`` attribute (default 0)."""
    return Domain("indices", of=of, dtypes=INT, differentiable=False)


def structural(kind: str, *, of: str | None = None) -> Domain:
    """An integer input that describes a shape (reshape target, tile multiples, ...)."""
    return Domain(kind, of=of, dtypes=INT, differentiable=False)


def with_dtypes(domain: Domain, dtypes: tuple[str, ...]) -> Domain:
    return replace(domain, dtypes=dtypes)


@dataclass(frozen=True)
class AxisChoice:
    """An axis attribute over input ``of``: single axes (negative ones too), optionally
    ``None`` (all axes) and tuples of distinct axes. ``extra`` widens the range by that many
    (``expand_dims`` may insert at ``rank``)."""

    of: int = 0
    allow_none: bool = False
    allow_tuple: bool = False
    extra: int = 0


@dataclass(frozen=True)
class TransposeFlag:
    """A boolean attribute that, when True, swaps the last two dims of input ``of`` relative
    to the op's gufunc signature (``transpose_a`` of MatMul)."""

    of: int


@dataclass(frozen=True)
class Permutation:
    """A permutation of the axes of input ``of`` as a tuple (Transpose's ``perm``); with
    ``allow_none``, ``None`` too (reverse the axes)."""

    of: int = 0
    allow_none: bool = True


@dataclass(frozen=True)
class UnitAxes:
    """A tuple of distinct axes of input ``of`` whose size is 1 (Squeeze's ``squeeze_dims``):
    draw the shape first, with some dims 1 on purpose, then pick among its size-1 axes
    (negative spellings too). The empty tuple means every size-1 axis."""

    of: int = 0


@dataclass(frozen=True)
class DimOf:
    """An int attribute equal to the size of input ``of`` along the axis held by attribute
    ``axis`` (Unpack's ``num``)."""

    of: int = 0
    axis: str = "axis"
