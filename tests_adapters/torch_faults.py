"""Seeded faulty custom ``torch.autograd.Function``s, one per bug kind of the project's
gradient-bug list, each with the input that exposes it and the diagnosis expected.

Every fault is a real backward a library developer could write; its forward is correct.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Fault:
    name: str
    fn: Any
    inputs: Any          # a function seed -> tuple of tensors
    diagnosis: str | None  # the harness's named signature, when one fits
    check: str           # the check that must FAIL
    gap: str | None = None  # a known harness gap that lets it through (xfail until fixed)


def _rand(seed: int, *shape: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_()


def _function(forward: Any, backward: Any) -> Any:
    """A custom autograd.Function from a forward(x...) and a backward(saved, grad)."""

    class Custom(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *xs: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(*xs)
            return forward(*xs)

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> Any:
            return backward(ctx.saved_tensors, grad)

    Custom.__name__ = forward.__name__
    return Custom.apply


def matmul_missing_transpose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a @ b


def square_sign(x: torch.Tensor) -> torch.Tensor:
    return x * x


def l2_half(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum() / 2


def exp_ignores_upstream(x: torch.Tensor) -> torch.Tensor:
    return x.exp()


def abs_positive_only(x: torch.Tensor) -> torch.Tensor:
    return x.abs()


def mean_rows(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=1)


def norm_nan_at_zero(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum().sqrt()


def prod_divide(x: torch.Tensor) -> torch.Tensor:
    return x.prod()


def max_both(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.maximum(a, b)


def scale_second_input(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a * b


def cube_half_precision(x: torch.Tensor) -> torch.Tensor:
    return x ** 3


def noisy(x: torch.Tensor) -> torch.Tensor:
    return x + 1e-3 * torch.rand_like(x)


def mutating(x: torch.Tensor) -> torch.Tensor:
    out = x * x
    x.mul_(0.5)
    return out


def _halve_saved(saved: Any, g: torch.Tensor) -> Any:
    (x,) = saved
    grad = 2 * x * g
    x.mul_(0.5)  # the backward writes into the tensor it saved: the caller's input
    return (grad,)


def rows_wrong_axis(x: torch.Tensor) -> torch.Tensor:
    return x.sum(dim=0)


def gather_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return x[idx]


def _gather_overwrite(saved: Any, g: torch.Tensor) -> Any:
    x, idx = saved
    grad = torch.zeros_like(x)
    grad[idx] = g  # duplicate indices: the last write wins instead of accumulating
    return grad, None


def matmul_flag(a: torch.Tensor, b: torch.Tensor, transpose_b: bool) -> torch.Tensor:
    return a @ (b.T if transpose_b else b)


def _matmul_flag_ignored(saved: Any, g: torch.Tensor) -> Any:
    a, b = saved
    return g @ b.T, a.T @ g, None  # the transpose_b=False rule used for both branches


class _MatmulFlag(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, transpose_b: bool) -> Any:
        ctx.save_for_backward(a, b if not transpose_b else b.T)
        ctx.transpose_b = transpose_b
        return matmul_flag(a, b, transpose_b)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> Any:
        ga, gb, _ = _matmul_flag_ignored(ctx.saved_tensors, g)
        return ga, gb, None  # gb is d/d(b.T) when transpose_b: the transpose is missing


def square_used_twice(x: torch.Tensor) -> torch.Tensor:
    return x * x


def _tie(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    a = _rand(seed, 5)
    b = a.detach().clone()
    b[::2] += 1.0  # ties at the odd entries, smooth elsewhere
    return a, b.requires_grad_()


FAULTS = [
    Fault("missing transpose", _function(
        matmul_missing_transpose, lambda s, g: (g @ s[1], s[0].T @ g)),
        lambda seed: (_rand(seed, 3, 3), _rand(seed + 1, 3, 3)), None, "gradient"),
    Fault("sign flipped", _function(square_sign, lambda s, g: (-2 * s[0] * g,)),
          lambda seed: (_rand(seed, 4, 3),), "sign flipped", "gradient"),
    Fault("constant factor", _function(l2_half, lambda s, g: (2 * s[0] * g,)),
          lambda seed: (_rand(seed, 6),), "scaled by a constant", "gradient"),
    Fault("ignores upstream", _function(exp_ignores_upstream, lambda s, g: (s[0].exp(),)),
          lambda seed: (_rand(seed, 5),), "ignores the upstream gradient",
          "hygiene.linearity"),
    Fault("valid on part of the domain", _function(abs_positive_only, lambda s, g: (g,)),
          lambda seed: (_rand(seed, 6),), None, "gradient"),
    Fault("wrong normalisation", _function(
        mean_rows, lambda s, g: (g[:, None].expand_as(s[0]) / s[0].shape[0],)),
        lambda seed: (_rand(seed, 2, 5),), None, "gradient"),
    Fault("reduced over the wrong axis", _function(
        rows_wrong_axis, lambda s, g: (g.sum() * torch.ones_like(s[0]) / s[0].shape[1],)),
        lambda seed: (_rand(seed, 3, 4),), None, "gradient"),
    Fault("NaN at zero", _function(
        norm_nan_at_zero, lambda s, g: (g * s[0] / (s[0] * s[0]).sum().sqrt(),)),
        lambda seed: (torch.zeros(3, dtype=torch.float64, requires_grad=True),), None,
        "gradient"),
    Fault("x/out trick with zeros", _function(
        prod_divide, lambda s, g: (g * s[0].prod() / s[0],)),
        lambda seed: (torch.cat([_rand(seed, 3).detach(), torch.zeros(1, dtype=torch.float64)]
                                ).requires_grad_(),), None, "gradient"),
    Fault("tie convention: full gradient to both", _function(
        max_both, lambda s, g: (g * (s[0] >= s[1]), g * (s[1] >= s[0]))),
        _tie, None, "gradient"),
    Fault("wrong for one input only", _function(
        scale_second_input, lambda s, g: (g * s[1], 3 * g * s[0])),
        lambda seed: (_rand(seed, 4), _rand(seed + 1, 4)), None, "gradient"),
    Fault("duplicate indices overwritten", _function(gather_rows, _gather_overwrite),
          lambda seed: (_rand(seed, 4, 3), torch.tensor([0, 2, 0, 3])), None, "gradient"),
    Fault("attribute branch ignored (transpose_b)", _MatmulFlag.apply,
          lambda seed: (_rand(seed, 2, 3), _rand(seed + 1, 3, 3), True), None, "gradient"),
    Fault("tensor used twice, one use dropped", _function(
        square_used_twice, lambda s, g: (g * s[0],)),
        lambda seed: (_rand(seed, 5),), "scaled by a constant", "gradient"),
    Fault("nondeterministic forward", noisy, lambda seed: (_rand(seed, 4),), None,
          "hygiene.deterministic"),
    Fault("mutates its input", _function(mutating, lambda s, g: (2 * s[0] * g,)),
          lambda seed: (_rand(seed, 4),), None, "hygiene.input_unchanged"),
    Fault("backward writes into its saved input", _function(square_sign, _halve_saved),
          lambda seed: (_rand(seed, 4),), "writes into its inputs", "hygiene.input_unchanged"),
    # wrong only in low precision: the backward squares in float16, which overflows at 300
    Fault("wrong only in float32 (internal float16)", _function(
        cube_half_precision,
        lambda s, g: ((3 * s[0].half() ** 2).to(s[0].dtype) * g
                      if s[0].dtype != torch.float64 else 3 * s[0] ** 2 * g,)),
        lambda seed: ((_rand(seed, 4).detach() * 300).float().requires_grad_(),), None,
        "precision"),
]


def params(pytest: Any) -> list[Any]:
    """The faults as pytest params, a known harness gap marked xfail (non-strict: it
    passes once the harness closes the gap)."""
    return [pytest.param(f, id=f.name, marks=[pytest.mark.xfail(reason=f.gap, strict=False)]
                         if f.gap else []) for f in FAULTS]


def second_order_fault() -> Any:
    """First order right, second order wrong: the backward treats a saved intermediate as a
    constant (``detach``), so double backward misses the dependence on x."""
    def cube(x: torch.Tensor) -> torch.Tensor:
        return x ** 3
    return _function(cube, lambda s, g: (3 * s[0].detach() ** 2 * g,))
