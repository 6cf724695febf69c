"""``gradverify.torch``: check PyTorch functions; drop-in ``gradcheck``/``gradgradcheck``.

>>> import torch
>>> from gradverify.adapters.torch_api import check, gradcheck
>>> x = torch.linspace(-1, 1, 5, dtype=torch.float64, requires_grad=True)
>>> check(torch.tanh, (x,)).verdict
'PASS'
>>> gradcheck(torch.tanh, (x,))
True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.autograd.gradcheck import GradcheckError as _TorchGradcheckError

from gradverify.adapters.common import (
    GradverifyWarning,
    WithMany,
    check_with_jvp,
    input_names,
    settle,
)
from gradverify.adapters.torch_checks import bfloat16_precision, undefined_grad_check
from gradverify.adapters.torch_function import (
    TorchFunction,
    as_tuple,
    differentiable_positions,
)
from gradverify.harness import INCONCLUSIVE, Check, GradientError, GradientReport

__all__ = ["GradcheckError", "check", "gradcheck", "gradgradcheck"]


class GradcheckError(_TorchGradcheckError, GradientError):
    """torch's ``GradcheckError`` (a RuntimeError) that is also gradverify's
    ``GradientError`` (an AssertionError): ``except``/``pytest.raises`` written for either
    keeps working. Its message is the whole report; ``.report`` holds it."""

    def __init__(self, report: GradientReport):
        GradientError.__init__(self, report)


def check(fn: Callable, inputs: Any, *, mode: str = "auto", order: int = 1, seed: int = 0,
          forward_ad: bool = False, fix_rng: bool = False, **options: Any) -> GradientReport:
    """Check torch autograd's gradients of ``fn`` at ``inputs`` (a tensor or a tuple).

    Checked inputs: floating tensors with ``requires_grad`` (all floating tensors if none
    requires grad); everything else is held fixed. Low-precision inputs (float32, float16,
    bfloat16) are checked against a float64 evaluation of ``fn`` when it computes in float64
    for float64 inputs. ``order=2`` checks the gradient of the gradient; ``forward_ad``
    checks forward-mode AD too. ``fix_rng`` reseeds torch's generator before every call
    (random ops inside ``fn`` then draw the same values each time). Options: see
    :class:`gradverify.harness.Options`.

    >>> import torch
    >>> a = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> check(torch.mm, (a, a.T.clone())).verdict
    'PASS'
    """
    return _check(fn, inputs, mode=mode, order=order, seed=seed, forward_ad=forward_ad,
                  fix_rng=fix_rng, **options)[0]


def _check(fn: Callable, inputs: Any, *, mode: str, order: int, seed: int, forward_ad: bool,
           fix_rng: bool, **options: Any) -> tuple[GradientReport, TorchFunction | None]:
    """:func:`check`, and the order-1 function it checked (None otherwise), whose first
    evaluation ``check_undefined_grad`` reuses."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    args = as_tuple(inputs)
    positions = differentiable_positions(args, all_floats=True)
    names = list(options.pop("names", None) or _input_names(fn, len(args)))
    name = options.pop("function", None) or _function_name(fn)
    reproduce = (f"gradverify.torch.check({name}, inputs, mode={mode!r}, order={order}, "
                 f"seed={seed})")
    rng_seed = seed if fix_rng else None
    if not positions:
        report = GradientReport(seed=seed, mode=mode, order=order, function=name,
                                reproduce=reproduce)
        report.checks.append(Check("gradient", INCONCLUSIVE, "no floating-point tensor "
                                   "inputs to differentiate"))
        return report, None
    if any(args[k].dtype == torch.bfloat16 for k in positions):
        return _check_bfloat16(fn, args, positions, mode=mode, order=order, seed=seed,
                               forward_ad=forward_ad, fix_rng=fix_rng, names=names,
                               function=name, reproduce=reproduce, **options), None
    if order == 1:
        tf = TorchFunction(fn, args, positions, seeded_rng=rng_seed)
        arrays, checked_names = tf.arrays, [names[k] for k in positions]
    else:
        first = TorchFunction(fn, args, positions, seeded_rng=rng_seed)
        vrng = np.random.default_rng([seed, 2])
        live_outs = first.forward(*first.arrays)
        vs = [vrng.standard_normal(y.shape).astype(y.dtype)
              for y, flag in zip(live_outs, first.live) if flag]
        tf = TorchFunction(fn, args, positions, order=2, vs=vs, seeded_rng=rng_seed)
        arrays = tf.arrays + vs
        checked_names = [names[k] for k in positions] + [f"v{k}" for k in range(len(vs))]
    jvp, unsupported = None, None
    if forward_ad and order == 1:
        jvp, unsupported = _forward_ad(tf)
    # (vjp_many: the linearity check's two cotangents look at the point once)
    report = check_with_jvp(tf, WithMany(tf.vjp, tf.vjp_many), jvp, arrays, mode=mode,
                            seed=seed,
                            names=checked_names, function=name, reproduce=reproduce,
                            **options)
    if unsupported:
        report.checks.append(Check("forward_mode", INCONCLUSIVE, unsupported))
    report.order = order
    return report, tf if order == 1 and rng_seed is None else None


def _function_name(fn: Callable) -> str:
    owner = getattr(fn, "__self__", None)  # SomeFunction.apply: name the Function
    if isinstance(owner, type) and issubclass(owner, torch.autograd.Function):
        return owner.__name__
    return getattr(fn, "__name__", type(fn).__name__)


def _input_names(fn: Callable, count: int) -> list[str]:
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, torch.autograd.Function):
        names = input_names(owner.forward, count + 1)[1:]  # drop ctx
        if not any(n.startswith("x") and n[1:].isdigit() for n in names):
            return names
    return input_names(fn, count)


def _check_bfloat16(fn: Callable, args: Sequence[Any], positions: list[int], *, seed: int,
                    reproduce: str, **kwargs: Any) -> GradientReport:
    """bfloat16 inputs: NumPy has no bfloat16, so the harness cannot model its rounding.
    The harness checks the same function on float64 copies of the (exact) bfloat16 values;
    the bfloat16 gradient is then held to the float64 one within bfloat16 rounding, the
    harness's float32 precision model with bfloat16's epsilon."""
    wide = list(args)
    for k in positions:
        wide[k] = args[k].detach().to(torch.float64).requires_grad_(args[k].requires_grad)
    low, high = TorchFunction(fn, args, positions), TorchFunction(fn, wide, positions)
    if not all(d == torch.float64 or not d.is_floating_point for d in high.out_dtypes):
        report = GradientReport(seed=seed, mode=kwargs["mode"], order=kwargs["order"],
                                function=kwargs["function"], reproduce=reproduce)
        report.checks.append(Check("precision", INCONCLUSIVE, "bfloat16 inputs need a float64"
                                   " evaluation (the function keeps a low-precision output "
                                   "for float64 inputs): not verifiable"))
        return report
    report = check(fn, wide, seed=seed, **kwargs)
    report.reproduce = reproduce
    report.inputs = [dict(i, dtype=str(args[k].dtype).removeprefix("torch."))
                     for i, k in zip(report.inputs, positions)]
    report.checks.append(bfloat16_precision(low, high, seed=seed))
    return report


def _forward_ad(tf: TorchFunction) -> tuple[Callable | None, str | None]:
    """The JVP if the function supports forward-mode AD, else the reason it does not."""
    try:
        tf.jvp(tf.arrays, [np.zeros_like(a) for a in tf.arrays])
    except (NotImplementedError, RuntimeError) as e:
        return None, f"forward-mode AD is not supported by this function: {e}"
    return tf.jvp, None


def gradcheck(func: Callable, inputs: Any, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
              check_batched_grad: bool = False, check_batched_forward_grad: bool = False,
              check_forward_ad: bool = False, check_backward_ad: bool = True,
              fast_mode: bool = False, masked: bool | None = None, seed: int = 0,
              mode: str | None = None, allow_inconclusive: bool = False,
              **options: Any) -> bool:
    """Drop-in for ``torch.autograd.gradcheck``: ``True``, or :class:`GradcheckError`
    carrying gradverify's report (``False`` with ``raise_exception=False``).

    Honoured: ``raise_exception``; ``fast_mode`` (random probes; otherwise the Jacobian,
    switching to probes above 256 elements); ``check_forward_ad``; ``check_undefined_grad``
    (a backward given no gradient for an output must act as given zeros);
    ``check_backward_ad=False`` checks forward mode only; ``nondet_tol > 0`` reseeds torch's
    generator before each call so random ops repeat. Replaced by the error model: ``eps``,
    ``atol``, ``rtol`` (steps and tolerances are derived per entry). Always on:
    ``check_grad_dtypes``. Not performed (a warning says so): ``check_batched_grad``,
    ``check_batched_forward_grad``; ``masked`` is ignored (dense inputs only). Ours:
    ``seed``, ``mode`` (overrides ``fast_mode``), ``allow_inconclusive`` (an unverifiable
    check returns True with a warning instead of raising), harness options.

    >>> import torch
    >>> x = torch.tensor([0.0, 1.0, 2.0], requires_grad=True)   # float32: checked too
    >>> gradcheck(torch.relu, (x,), fast_mode=True)
    True
    """
    del eps, atol, rtol, check_grad_dtypes, masked
    _not_performed(check_batched_grad=check_batched_grad,
                   check_batched_forward_grad=check_batched_forward_grad)
    args = as_tuple(inputs)
    if not any(isinstance(t, torch.Tensor) and t.requires_grad for t in args):
        raise ValueError("gradcheck expects at least one input tensor to require gradient, "
                         "but none of the them have requires_grad=True.")
    # (complex/sparse inputs: _check's differentiable_positions raises the clear error; with
    # an input requiring grad, it picks the same inputs as torch's rule)
    chosen = mode or ("fast" if fast_mode else "auto")
    report, tf = _check(func, args, mode=chosen, order=1, seed=seed,
                        forward_ad=check_forward_ad, fix_rng=nondet_tol > 0, **options)
    if not check_backward_ad:
        report.checks = [c for c in report.checks if not c.name.startswith("gradient")]
    if check_undefined_grad and check_backward_ad:
        report.checks.append(undefined_grad_check(func, args, seed=seed, tf=tf))
    report.reproduce = (f"gradverify.torch.gradcheck({report.function}, inputs, "
                        f"fast_mode={fast_mode}, seed={seed})")
    return settle(report, error=GradcheckError, raise_exception=raise_exception,
                  allow_inconclusive=allow_inconclusive)


def gradgradcheck(func: Callable, inputs: Any, grad_outputs: Any = None, *,
                  eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True,
                  nondet_tol: float = 0.0, check_undefined_grad: bool = True,
                  check_grad_dtypes: bool = False, check_batched_grad: bool = False,
                  check_fwd_over_rev: bool = False, check_rev_over_rev: bool = True,
                  fast_mode: bool = False, masked: bool = False, seed: int = 0,
                  mode: str | None = None, allow_inconclusive: bool = False,
                  **options: Any) -> bool:
    """Drop-in for ``torch.autograd.gradgradcheck``: checks the gradient of the gradient,
    ``(x, v) -> J(x)^T v``, as a function of both (``v`` = ``grad_outputs`` if given, else
    random from ``seed``). Same conventions as :func:`gradcheck`; ``check_fwd_over_rev`` and
    ``check_batched_grad`` are not performed (a warning says so), nor is
    ``check_undefined_grad`` at second order.

    >>> import torch
    >>> x = torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True)
    >>> gradgradcheck(torch.sin, (x,))
    True
    """
    del eps, atol, rtol, gen_non_contig_grad_outputs, check_grad_dtypes, masked
    del check_undefined_grad
    _not_performed(check_batched_grad=check_batched_grad,
                   check_fwd_over_rev=check_fwd_over_rev)
    args = as_tuple(inputs)
    if not any(isinstance(t, torch.Tensor) and t.requires_grad for t in args):
        raise ValueError("gradgradcheck expects at least one input tensor to require "
                         "gradient, but none of the them have requires_grad=True.")
    if not check_rev_over_rev:
        return True  # torch checks nothing else by default either
    chosen = mode or ("fast" if fast_mode else "auto")
    if grad_outputs is not None:
        report = _check_given_cotangents(func, args, as_tuple(grad_outputs), chosen, seed,
                                         nondet_tol > 0, options)
    else:
        report = check(func, args, mode=chosen, order=2, seed=seed, fix_rng=nondet_tol > 0,
                       **options)
    return settle(report, error=GradcheckError, raise_exception=raise_exception,
                  allow_inconclusive=allow_inconclusive)


def _check_given_cotangents(func: Callable, args: Sequence[Any], grad_outputs: Sequence[Any],
                            mode: str, seed: int, fix_rng: bool,
                            options: dict[str, Any]) -> GradientReport:
    positions = differentiable_positions(args, all_floats=False)
    first = TorchFunction(func, args, positions, seeded_rng=seed if fix_rng else None)
    live = [k for k, flag in enumerate(first.live) if flag]
    if len(grad_outputs) != len(first.live):
        raise ValueError(f"gradgradcheck: {len(grad_outputs)} grad_outputs for "
                         f"{len(first.live)} outputs")
    for k in live:
        given = grad_outputs[k]
        if not isinstance(given, torch.Tensor) or tuple(given.shape) != first.out_shapes[k]:
            raise ValueError(f"gradgradcheck: grad_outputs[{k}] has shape "
                             f"{tuple(getattr(given, 'shape', ()))}, output {k} of "
                             f"{_function_name(func)} has shape "
                             f"{first.out_shapes[k]}")
    vs = [TorchFunction(lambda g: g, [grad_outputs[k].detach()], [0]).arrays[0]
          for k in live]
    tf = TorchFunction(func, args, positions, order=2, vs=vs,
                       seeded_rng=seed if fix_rng else None)
    names = _input_names(func, len(args))
    report = check_with_jvp(tf.forward, tf.vjp, None, tf.arrays + vs, mode=mode, seed=seed,
                            names=[names[k] for k in positions] + [f"v{k}" for k in live],
                            function=_function_name(func),
                            reproduce=(f"gradverify.torch.gradgradcheck({_function_name(func)}"
                                       f", inputs, grad_outputs, mode={mode!r}, seed={seed})"),
                            **options)
    report.order = 2
    return report


def _not_performed(**flags: bool) -> None:
    asked = [k for k, v in flags.items() if v]
    if asked:
        warnings.warn(f"gradverify.torch does not perform {', '.join(asked)}; use "
                      "torch.autograd's own checker for that", GradverifyWarning,
                      stacklevel=3)
