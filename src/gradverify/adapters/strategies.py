"""Hypothesis strategies for the inputs of framework functions: NumPy arrays with the hard
cases drawn on purpose (exact kinks, ties, zeros, huge and tiny magnitudes, size-1 and
non-square dimensions), built on the property suite's value generators.

>>> from hypothesis import given
>>> @given(arrays(domain="positive", max_rank=2))
... def test(x):
...     assert (x > 0).all()
>>> test()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradverify.engine import meta
from gradverify.properties.strategies import shapes, values_in

__all__ = ["arrays", "broadcastable", "matmul_operands", "same_shape"]

_DOMAINS = {"reals": meta.reals, "positive": meta.positive, "nonnegative": meta.nonnegative,
            "nonzero": meta.nonzero, "probabilities": meta.probabilities}


def _domain(domain: Any) -> meta.Domain:
    if isinstance(domain, meta.Domain):
        return domain
    if isinstance(domain, tuple) and len(domain) == 2:
        return meta.bounded(float(domain[0]), float(domain[1]))
    if domain in _DOMAINS:
        return _DOMAINS[domain]
    raise ValueError(f"domain must be one of {sorted(_DOMAINS)}, a (lo, hi) pair or an "
                     f"engine.meta.Domain, got {domain!r}")


def _tie(pair: tuple[np.ndarray, bool]) -> np.ndarray:
    """Copy the first entry onto the last: an exact tie on purpose (max, sort, ...)."""
    a, tie = pair
    if tie and a.size >= 2:
        a = a.copy()
        a.flat[-1] = a.flat[0]
    return a


def _values(shape: tuple[int, ...], domain: meta.Domain, kinks: Sequence[float],
            dtype: Any) -> st.SearchStrategy[np.ndarray]:
    drawn = values_in(domain, shape, dtype=dtype, kinks=tuple(kinks))
    return st.tuples(drawn, st.booleans()).map(_tie)


def arrays(shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None, *,
           domain: Any = "reals", kinks: Sequence[float] = (), dtype: Any = np.float64,
           min_rank: int = 0, max_rank: int = 3, max_side: int = 5,
           ) -> st.SearchStrategy[np.ndarray]:
    """Arrays of ``shape`` (a tuple, a strategy of tuples, or drawn: size-1 and non-square
    dimensions on purpose) inside ``domain`` (``"reals"``, ``"positive"``,
    ``"nonnegative"``, ``"nonzero"``, ``"probabilities"`` rows, ``(lo, hi)``), with the
    function's ``kinks`` (e.g. ``(0.0,)`` for relu) and ties drawn on purpose.

    >>> from hypothesis import given
    >>> @given(arrays((2, 3), kinks=(0.0,)))
    ... def test(x):
    ...     assert x.shape == (2, 3)
    >>> test()
    """
    dom = _domain(domain)
    if shape is None:
        shape = shapes(min_rank=min_rank, max_rank=max_rank, max_side=max_side)
    if isinstance(shape, st.SearchStrategy):
        return shape.flatmap(lambda s: _values(tuple(s), dom, kinks, dtype))
    return _values(tuple(shape), dom, kinks, dtype)


def same_shape(n: int, **kwargs: Any) -> st.SearchStrategy[tuple[np.ndarray, ...]]:
    """``n`` arrays of one drawn shape (elementwise binary ops); keywords as :func:`arrays`.

    >>> from hypothesis import given
    >>> @given(same_shape(2))
    ... def test(xy):
    ...     assert xy[0].shape == xy[1].shape
    >>> test()
    """
    shape_kw = {k: kwargs.pop(k) for k in ("min_rank", "max_rank", "max_side") if k in kwargs}
    return shapes(**shape_kw).flatmap(
        lambda s: st.tuples(*[arrays(s, **kwargs) for _ in range(n)]))


def broadcastable(n: int, *, max_dims: int = 3, **kwargs: Any,
                  ) -> st.SearchStrategy[tuple[np.ndarray, ...]]:
    """``n`` arrays of mutually broadcastable shapes (size-1 and missing dimensions: the
    unbroadcasting of gradients is exercised); keywords as :func:`arrays`.

    >>> from hypothesis import given
    >>> @given(broadcastable(2))
    ... def test(xy):
    ...     assert (xy[0] + xy[1]).ndim >= 0
    >>> test()
    """
    return hnp.mutually_broadcastable_shapes(num_shapes=n, max_dims=max_dims,
                                             max_side=4).flatmap(
        lambda bs: st.tuples(*[arrays(s, **kwargs) for s in bs.input_shapes]))


def matmul_operands(*, batch: bool = False, **kwargs: Any,
                    ) -> st.SearchStrategy[tuple[np.ndarray, np.ndarray]]:
    """``(a, b)`` with ``a @ b`` defined: non-square on purpose (a missing transpose shows),
    optionally with a broadcast batch dimension; keywords as :func:`arrays`.

    >>> from hypothesis import given
    >>> @given(matmul_operands())
    ... def test(ab):
    ...     assert (ab[0] @ ab[1]).ndim == 2
    >>> test()
    """
    side = st.integers(1, 5)
    lead = st.sampled_from([(), (1,), (2,)]) if batch else st.just(())
    return st.tuples(side, side, side, lead).flatmap(
        lambda t: st.tuples(arrays(t[3] + (t[0], t[1]), **kwargs),
                            arrays((t[1], t[2]), **kwargs)))
