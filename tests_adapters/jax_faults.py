"""Seeded faulty ``jax.custom_vjp`` functions, one per bug kind of the project's
gradient-bug list, each with the arguments that expose it and the check that must FAIL.
The forward of each is correct; the backward is one a library developer could write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclass
class Fault:
    name: str
    fn: Any
    args: Any            # seed -> tuple of arrays
    diagnosis: str | None
    check: str
    gap: str | None = None


def _rand(seed: int, *shape: int, dtype: Any = np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _custom(forward: Any, backward: Any) -> Any:
    """A custom_vjp function from forward(*xs) and backward(xs, g) -> gradients."""
    f = jax.custom_vjp(forward)
    f.defvjp(lambda *xs: (forward(*xs), xs), backward)
    return f


def _tie(seed: int) -> tuple[np.ndarray, np.ndarray]:
    a = _rand(seed, 5)
    b = a.copy()
    b[::2] += 1.0
    return a, b


def _with_zero(seed: int) -> tuple[np.ndarray]:
    x = _rand(seed, 4)
    x[2] = 0.0
    return (x,)


FAULTS = [
    Fault("missing transpose", _custom(lambda a, b: a @ b,
                                       lambda s, g: (g @ s[1], s[0].T @ g)),
          lambda seed: (_rand(seed, 3, 3), _rand(seed + 1, 3, 3)), None, "gradient"),
    Fault("sign flipped", _custom(lambda x: x * x, lambda s, g: (-2 * s[0] * g,)),
          lambda seed: (_rand(seed, 4, 3),), "sign flipped", "gradient"),
    Fault("constant factor", _custom(lambda x: jnp.sum(x * x) / 2,
                                     lambda s, g: (2 * s[0] * g,)),
          lambda seed: (_rand(seed, 6),), "scaled by a constant", "gradient"),
    Fault("ignores upstream", _custom(jnp.exp, lambda s, g: (jnp.exp(s[0]),)),
          lambda seed: (_rand(seed, 5),), "ignores the upstream gradient",
          "hygiene.linearity"),
    Fault("valid on part of the domain", _custom(jnp.abs, lambda s, g: (g,)),
          lambda seed: (_rand(seed, 6),), None, "gradient"),
    Fault("wrong normalisation", _custom(
        lambda x: jnp.mean(x, axis=1),
        lambda s, g: (jnp.broadcast_to(g[:, None], s[0].shape) / s[0].shape[0],)),
        lambda seed: (_rand(seed, 2, 5),), None, "gradient"),
    Fault("NaN at zero", _custom(
        lambda x: jnp.sqrt(jnp.sum(x * x)),
        lambda s, g: (g * s[0] / jnp.sqrt(jnp.sum(s[0] * s[0])),)),
        lambda seed: (np.zeros(3, np.float32),), None, "gradient"),
    Fault("x/out trick with zeros", _custom(
        lambda x: jnp.prod(x), lambda s, g: (g * jnp.prod(s[0]) / s[0],)), _with_zero, None,
        "gradient"),
    Fault("masked branch NaN leaks", _custom(
        lambda x: jnp.where(x > 0, jnp.sqrt(jnp.abs(x)), 0.0),
        lambda s, g: (jnp.where(s[0] > 0, g * 0.5 / jnp.sqrt(jnp.abs(s[0])), 0.0) + 0.0 * g
                      / jnp.sqrt(s[0]),)),
        lambda seed: (np.array([-1.0, 0.5, 2.0], np.float32),), None, "gradient"),
    Fault("tie convention: full gradient to both", _custom(
        jnp.maximum, lambda s, g: (g * (s[0] >= s[1]), g * (s[1] >= s[0]))),
        _tie, None, "gradient"),
    Fault("wrong for one input only", _custom(
        lambda a, b: a * b, lambda s, g: (g * s[1], 3 * g * s[0])),
        lambda seed: (_rand(seed, 4), _rand(seed + 1, 4)), None, "gradient"),
    Fault("wrong only in float32 (internal float16)", _custom(
        lambda x: x ** 3,
        lambda s, g: ((3 * s[0].astype(jnp.float16) ** 2).astype(s[0].dtype) * g
                      if s[0].dtype != jnp.float64 else 3 * s[0] ** 2 * g,)),
        lambda seed: (_rand(seed, 4) * 300,), None, "precision"),
]


def _gather(x: Any, idx: Any) -> Any:
    return x[idx]


_gather_overwrite = jax.custom_vjp(_gather, nondiff_argnums=(1,))
_gather_overwrite.defvjp(
    lambda x, idx: (_gather(x, idx), x),
    lambda idx, x, g: (jnp.zeros_like(x).at[idx].set(g),))  # duplicates: last write wins
FAULTS.append(Fault("duplicate indices overwritten", _gather_overwrite,
                    lambda seed: (_rand(seed, 4, 3), np.array([0, 2, 0, 3])), None, "gradient"))


def params(pytest: Any) -> list[Any]:
    """The faults as pytest params; a known harness gap is a non-strict xfail."""
    return [pytest.param(f, id=f.name, marks=[pytest.mark.xfail(reason=f.gap, strict=False)]
                         if f.gap else []) for f in FAULTS]


def wrong_jvp() -> Any:
    """A custom_jvp whose tangent rule is off by a factor 2 (so is the VJP JAX derives by
    transposing it): forward mode and reverse mode both FAIL."""
    @jax.custom_jvp
    def softplus(x: Any) -> Any:
        return jnp.logaddexp(x, 0.0)

    @softplus.defjvp
    def _jvp(primals: Any, tangents: Any) -> Any:
        (x,), (t,) = primals, tangents
        return softplus(x), 2 * jax.nn.sigmoid(x) * t
    return softplus


def second_order_fault() -> Any:
    """First order right, second order wrong: the backward stops the gradient through a
    saved intermediate (``stop_gradient``), as if it were a constant."""
    return _custom(lambda x: x ** 3,
                   lambda s, g: (3 * jax.lax.stop_gradient(s[0]) ** 2 * g,))
