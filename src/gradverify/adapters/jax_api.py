"""``gradverify.jax``: check JAX functions; drop-in ``check_grads``.

>>> import jax.numpy as jnp, numpy as np
>>> from gradverify.adapters.jax_api import check, check_grads
>>> check(jnp.tanh, (np.linspace(-1, 1, 5, dtype=np.float32),)).verdict
'PASS'
>>> check_grads(jnp.tanh, (np.linspace(-1, 1, 5, dtype=np.float32),), order=2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from gradverify.adapters.common import (
    WithMany,
    check_with_jvp,
    input_names,
    low_precision_check,
    settle,
)
from gradverify.adapters.jax_compile import remembered
from gradverify.adapters.jax_forward_only import ForwardTranspose, reverse_mode_unsupported
from gradverify.adapters.jax_function import JaxFunction, forward_mode_unsupported
from gradverify.harness import FAIL, INCONCLUSIVE, Check, GradientError, GradientReport

__all__ = ["check", "check_grads"]

_MODES = ("fwd", "rev")


def check(f: Callable, args: Sequence[Any], *, order: int = 1,
          modes: Sequence[str] = _MODES, mode: str = "auto", seed: int = 0,
          **options: Any) -> GradientReport:
    """Check JAX's derivatives of ``f`` at ``args`` (a tuple of array pytrees): the VJP
    against finite differences, and with ``"fwd"`` in ``modes`` the JVP too. ``order=2``
    checks the derivatives of ``(x, v) -> J(x)^T v`` (order 1 is :func:`check_grads`'s job
    to add). Float32/float16 leaves are checked against a float64 evaluation (under
    ``jax.enable_x64``). From the second check of a function at the same shapes on, its
    programs run compiled (``adapters/jax_compile.py``; ``jit=False``, or a function that
    cannot be traced, runs eagerly). Options: see
    :class:`gradverify.harness.Options`.

    >>> import jax.numpy as jnp, numpy as np
    >>> check(lambda a, b: a @ b, (np.ones((2, 3)), np.ones((3, 4)))).verdict
    'PASS'
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    bad = [m for m in modes if m not in _MODES]
    if bad or not modes:
        raise ValueError(f"modes must be a non-empty subset of {_MODES}, got {modes!r}")
    args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
    name = options.pop("function", None) or getattr(f, "__name__", type(f).__name__)
    reproduce = (f"gradverify.jax.check({name}, args, order={order}, modes={tuple(modes)}, "
                 f"mode={mode!r}, seed={seed})")
    jit = options.pop("jit", True)
    if _has_bfloat16(args):
        return _check_bfloat16(f, args, order=order, modes=modes, mode=mode, seed=seed,
                               function=name, reproduce=reproduce, jit=jit, **options)
    jf = JaxFunction(f, args, jit=jit)
    names = options.pop("names", None) or _leaf_names(f, args, jf.positions)
    if not jf.positions:
        report = GradientReport(seed=seed, mode=mode, order=order, function=name,
                                reproduce=reproduce)
        report.checks.append(Check("gradient", INCONCLUSIVE, "no floating-point arguments"))
        return report
    if order == 2:
        rng = np.random.default_rng([seed, 2])
        ys = jf.forward(*jf.arrays)
        vs = [rng.standard_normal(y.shape).astype(y.dtype)
              for y, fl in zip(ys, jf.out_float) if fl]
        no_reverse = None if "rev" in modes else remembered(
            jf, "reverse mode", jf.arrays, partial(reverse_mode_unsupported, jf))
        if no_reverse:  # order 2 is (x, v) -> J(x)^T v: reverse mode inside
            report = GradientReport(seed=seed, mode=mode, order=order, function=name,
                                    reproduce=reproduce)
            report.checks.append(Check("gradient_order2", INCONCLUSIVE, (
                f"{no_reverse}; order 2 is checked through it, as (x, v) -> J(x)^T v")))
            return report
        jf = JaxFunction(f, args, order=2, vs=vs, jit=jit)
        names = list(names) + [f"v{k}" for k in range(len(vs))]
    jvp, unsupported = None, None
    if "fwd" in modes:
        unsupported = remembered(jf, "forward mode", jf.arrays, partial(_no_forward_mode, jf))
        jvp = None if unsupported else WithMany(jf.jvp, jf.jvp_many)
    vjp: Any = WithMany(jf.vjp, jf.vjp_many)
    forward_only = None
    if "rev" not in modes and jvp is not None:
        # forward-mode-only code (lax.while_loop): the VJP checked is forward mode's
        forward_only = remembered(jf, "reverse mode", jf.arrays,
                                  partial(reverse_mode_unsupported, jf))
        if forward_only:
            vjp = ForwardTranspose(jf)
    report = check_with_jvp(jf.forward, vjp, jvp, jf.arrays, mode=mode, seed=seed,
                            names=names, function=name, reproduce=reproduce, **options)
    grad = report.check("gradient")
    if forward_only and grad is not None:
        note = (forward_only + "; the gradient checked is the transpose of the Jacobian "
                "forward mode builds (one JVP per input entry)")
        grad.reason = f"{grad.reason}; {note}" if grad.reason else note
        grad.details["reverse_mode"] = "unsupported: forward mode transposed"
    if unsupported:
        report.checks.append(Check("forward_mode", INCONCLUSIVE, unsupported + " (pass "
                                   "modes=('rev',) to check reverse mode only)"))
    report.order = order
    return report


def _no_forward_mode(jf: JaxFunction) -> str | None:
    """Why the function has no forward mode (a ``custom_vjp``), or None if it has one."""
    try:
        jf.jvp(jf.arrays, [np.zeros_like(a) for a in jf.arrays])
    except TypeError as e:
        if not forward_mode_unsupported(e):
            raise
        return f"forward mode is not supported by this function: {e}"
    return None


def _has_bfloat16(args: Sequence[Any]) -> bool:
    import jax
    return any(getattr(leaf, "dtype", None) == jax.numpy.bfloat16
               for leaf in jax.tree_util.tree_leaves(tuple(args)))


def _check_bfloat16(f: Callable, args: Sequence[Any], *, seed: int, reproduce: str,
                    **kwargs: Any) -> GradientReport:
    """bfloat16 leaves (NumPy cannot model bfloat16 rounding): the harness checks ``f`` on
    float32 copies of the exact bfloat16 values (against a float64 evaluation, as any
    float32 check), then the bfloat16 gradient is held to the float64 one within bfloat16
    rounding (:func:`low_precision_check`)."""
    import jax
    wide = jax.tree_util.tree_map(
        lambda leaf: np.asarray(leaf, np.float32) if getattr(leaf, "dtype", None)
        == jax.numpy.bfloat16 else leaf, tuple(args))
    report = check(f, wide, seed=seed, **kwargs)
    report.reproduce = reproduce
    low = JaxFunction(f, args)
    high = JaxFunction(f, wide)
    high64 = [np.asarray(a, np.float64) for a in high.arrays]  # the x64 evaluation
    report.checks.append(low_precision_check(low.forward, low.vjp, low.arrays, high.forward,
                                             high.vjp, high64, seed=seed))
    for info, a in zip(report.inputs, low.arrays):
        info["dtype"] = str(a.dtype)
    return report


def _leaf_names(f: Callable, args: Sequence[Any], positions: Sequence[int]) -> list[str]:
    import jax
    params = input_names(f, len(args))
    names = []
    for k, arg in enumerate(args):
        paths = jax.tree_util.tree_flatten_with_path(arg)[0]
        names += [params[k] + jax.tree_util.keystr(path) for path, _ in paths]
    return [names[k] for k in positions]


def check_grads(f: Callable, args: Sequence[Any], order: int,
                modes: Sequence[str] = _MODES, atol: Any = None, rtol: Any = None,
                eps: float | None = None, *, seed: int = 0, mode: str = "auto",
                allow_inconclusive: bool = False, **options: Any) -> None:
    """Drop-in for ``jax.test_util.check_grads``: checks every derivative order up to
    ``order`` in the given ``modes``; returns None or raises ``GradientError`` (an
    AssertionError, as jax's) carrying the report. ``atol``, ``rtol`` and ``eps`` are replaced
    by the error model. Ours: ``seed``, ``mode`` (``auto``/``full``/``fast``),
    ``allow_inconclusive`` (an unverifiable check warns instead of raising) and harness
    options.

    >>> import jax.numpy as jnp, numpy as np
    >>> check_grads(jnp.sin, (np.array([0.5, 1.0]),), order=1, modes=("fwd", "rev"))
    """
    loosened = atol is not None or rtol is not None
    del atol, rtol, eps
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be a positive integer, got {order!r}")
    if order > 2:
        raise NotImplementedError(f"gradverify.jax.check_grads checks orders 1 and 2, got "
                                  f"order={order}")
    for k in range(1, order + 1):
        report = check(f, args, order=k, modes=modes, mode=mode, seed=seed, **options)
        if loosened and report.verdict == FAIL:
            # a caller loosening jax's tolerances (an ODE solver's gradient, accurate to the
            # solver's own tolerance) learns why that did not help, and what does
            report.diagnosis = ((report.diagnosis + "; ") if report.diagnosis else "") + (
                "the atol/rtol given are not used (the error model decides): safety=k "
                "allows k times its budget, e.g. for a gradient accurate only to a solver's "
                "tolerance")
        settle(report, error=GradientError, allow_inconclusive=allow_inconclusive)
        if report.verdict == FAIL:  # pragma: no cover - settle raised
            return
