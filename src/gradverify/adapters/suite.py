"""One-line pytest suites for framework functions: ``test_op = torch_suite(fn,
inputs=strategy)`` draws inputs with Hypothesis and checks every example with the adapter's
``check``. A FAIL fails the test with the whole report; an INCONCLUSIVE example (the numeric
derivative cannot be trusted there) is discarded and counted, as in the property suite.

>>> import numpy as np
>>> from gradverify.adapters.strategies import arrays
>>> from gradverify.harness import check_vjp
>>> numpy_check = lambda pair, xs, **kw: check_vjp(*pair, list(xs), **kw)
>>> tanh = (np.tanh, lambda xs, gs: (gs[0] * (1 - np.tanh(xs[0]) ** 2),))
>>> test_tanh = suite_for(numpy_check, tanh, inputs=arrays(), max_examples=5)
>>> test_tanh()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from gradverify.harness import FAIL, INCONCLUSIVE, GradientError, GradientReport

__all__ = ["jax_suite", "suite_for", "torch_suite"]


def _as_args(drawn: Any) -> tuple[Any, ...]:
    return tuple(drawn) if isinstance(drawn, (tuple, list)) else (drawn,)


def suite_for(check: Callable[..., GradientReport], fn: Any,
              inputs: st.SearchStrategy[Any], *, convert: Callable[[Any], Any] = _as_args,
              max_examples: int | None = None, **check_kwargs: Any) -> Callable[[], None]:
    """A Hypothesis test of ``check(fn, convert(drawn), **check_kwargs)`` for every drawn
    value of ``inputs``: assign it to a ``test_`` name. ``max_examples`` overrides the
    Hypothesis profile's count for this test."""
    if not isinstance(inputs, st.SearchStrategy):
        raise TypeError(f"inputs must be a Hypothesis strategy, got {type(inputs).__name__}")

    # a check costs tens of evaluations; the first one compiles
    @settings(deadline=None, **({} if max_examples is None else {"max_examples": max_examples}))
    @given(inputs)
    def test_gradients(drawn: Any) -> None:
        __tracebackhide__ = True
        report = check(fn, convert(drawn), **check_kwargs)
        if report.verdict == INCONCLUSIVE:
            from gradverify.properties.checks import INCONCLUSIVE_COUNTS
            INCONCLUSIVE_COUNTS[f"{report.function}: {'; '.join(report.reasons)[:120]}"] += 1
            reject()
        if report.verdict == FAIL:
            raise GradientError(report)

    test_gradients._gradverify_suite = True  # the plugin shows failures as reports
    return test_gradients


def torch_suite(fn: Callable, inputs: st.SearchStrategy[Any], *, dtype: Any = None,
                order: int = 1, mode: str = "auto", seed: int = 0,
                max_examples: int | None = None, **options: Any) -> Callable[[], None]:
    """``test_x = torch_suite(fn, inputs=strategy)``: check torch autograd's gradients of
    ``fn`` on every drawn input (an array or a tuple of arrays, made tensors that require
    grad; ``dtype`` e.g. ``torch.float32`` casts floating ones).

    >>> import torch
    >>> from gradverify.adapters.strategies import arrays
    >>> test_relu = torch_suite(torch.relu, inputs=arrays(kinks=(0.0,)))
    >>> test_relu()
    """
    import torch

    def convert(drawn: Any) -> tuple[Any, ...]:
        out = []
        for a in _as_args(drawn):
            if isinstance(a, np.ndarray):
                t = torch.from_numpy(np.array(a))
                if t.is_floating_point():
                    t = (t.to(dtype) if dtype is not None else t).requires_grad_(True)
                a = t
            out.append(a)
        return tuple(out)

    from gradverify.adapters.torch_api import check
    return suite_for(check, fn, inputs, convert=convert, max_examples=max_examples,
                     order=order, mode=mode, seed=seed, **options)


def jax_suite(f: Callable, inputs: st.SearchStrategy[Any], *, dtype: Any = None,
              order: int = 1, modes: tuple[str, ...] = ("fwd", "rev"), mode: str = "auto",
              seed: int = 0, max_examples: int | None = None,
              **options: Any) -> Callable[[], None]:
    """``test_x = jax_suite(f, inputs=strategy)``: check JAX's derivatives of ``f`` on every
    drawn input (an array or a tuple of arrays; ``dtype`` casts floating ones). Runs
    eagerly unless ``jit=True`` is passed.

    >>> import jax.numpy as jnp
    >>> from gradverify.adapters.strategies import arrays
    >>> test_abs = jax_suite(jnp.abs, inputs=arrays(kinks=(0.0,)), modes=("rev",))
    >>> test_abs()
    """
    def convert(drawn: Any) -> tuple[Any, ...]:
        return tuple(a.astype(dtype) if dtype is not None and isinstance(a, np.ndarray)
                     and a.dtype.kind == "f" else a for a in _as_args(drawn))

    from gradverify.adapters.jax_api import check
    # Hypothesis draws new shapes: compiling (jax_compile) costs more than it saves there
    # (compiled: +21% CPU time on the matmul suite of tests_adapters, -3% on maximum)
    options.setdefault("jit", False)
    return suite_for(check, f, inputs, convert=convert, max_examples=max_examples,
                     order=order, modes=modes, mode=mode, seed=seed, **options)
