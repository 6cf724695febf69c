"""Audit rules: plain SGD, the optimizers with slots (``engine.optimizers``) and Adam's
``"scale"``; the registry ``RULES`` a new optimizer rule is added to.

Each rule predicts, in float64 from the values before the step, the new value of the
variable AND of every slot its update writes, following TF1's fused kernels
(``training_ops.cc``) in their evaluation order:

- ``momentum``: ``accum = accum*momentum + g``; ``var -= accum*lr``
- ``nesterov``: the same accum; ``var -= g*lr + accum*momentum*lr``
- ``adam``: ``alpha = lr*sqrt(1 - beta2_power)/(1 - beta1_power)``;
  ``m += (g - m)(1 - beta1)``; ``v += (g² - v)(1 - beta2)``;
  ``var -= m*alpha/(sqrt(v) + epsilon)`` (beta powers as read before the step)
- ``adagrad``: ``accum += g²``; ``var -= g*lr*(1/sqrt(accum))``
- ``rmsprop``: ``ms += (g² - ms)(1 - decay)``; ``mom = mom*momentum + g*lr/sqrt(ms + eps)``;
  ``var -= mom``
- ``centered_rmsprop``: also ``mg += (g - mg)(1 - decay)``; the root is of
  ``(ms - mg²) + eps``
- ``scale``: ``x *= factor`` (Adam's beta powers, after the updates)

The error model. ``audit_step`` accepts ``|actual - predicted| <= safety * eps *
(|old| + |delta| + |predicted| + bound)`` per entry. For SGD ``bound`` is 0: the two
roundings of ``var - lr*g`` are covered by the first three terms. These rules compute
``bound`` by running error analysis (Wilkinson): every value carries a first-order bound on
the rounding error of the kernel that computed it, in units of the unit roundoff ``u =
eps/2``; each operation propagates its operands' bounds (through its derivatives) and adds
``|result|``, its own rounding. So the bound grows exactly where the arithmetic is
ill-conditioned and nowhere else: cancellation in ``m*beta1 + (1-beta1)*g``, the divisions
by ``sqrt(v) + epsilon`` when ``v`` is tiny, ``ms - mg²`` in centered RMSProp. With the
default safety 4 (``8u`` per unit of bound) the tolerance is four times the worst case of
the kernel's rounding plus the (smaller or equal) rounding of the float64 prediction; a
fault changes a value by far more than that (a factor ``1/(1 - beta1_power)`` in Adam, a
missing ``momentum`` factor).

A rounding that lands in the subnormal range is off by up to half the smallest subnormal,
not by ``u`` relative: each nonzero result also adds ``tiny`` (the smallest normal number,
which is that half-subnormal in units of ``u``). Where first-order analysis breaks down the
bound is infinite and ``audit_step`` says INCONCLUSIVE instead of guessing: a divisor, or
the operand of a square root that may be negative (centered RMSProp's ``(ms - mg²) + eps``),
within ``BREAKDOWN`` times its error bound of zero. TF1 computes garbage there too (float32
centered RMSProp under a near-constant gradient makes ``ms - mg²`` pure rounding noise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Rounded", "BREAKDOWN", "RULES", "register_rule"]

# rule name -> predict(record, value_of) -> {variable: predicted new value (float64), or
# (prediction, rounding-error bound in units of the unit roundoff)}
RULES: dict[str, Callable[..., dict[Any, Any]]] = {}


def register_rule(name: str) -> Callable:
    """Register how to predict an optimizer rule's update (one per ``UpdateRecord.rule``).

    The function gets the record and ``value_of(tensor_or_variable)`` (values before the
    step, float64) and returns ``{variable: new value}`` for the variable and its slots; a
    value may be a pair ``(new value, bound)`` where ``bound`` is a first-order bound on the
    kernel's rounding error in units of the unit roundoff, added to the tolerance's
    magnitude terms (see the module docstring).

    >>> @register_rule("halve")
    ... def _halve(record, value_of):
    ...     return {record.variable: value_of(record.variable) / 2}
    >>> "halve" in RULES
    True
    >>> del RULES["halve"]
    """
    def deco(fn: Callable) -> Callable:
        if name in RULES:
            raise KeyError(f"Registering two audit rules named '{name}'")
        RULES[name] = fn
        return fn
    return deco


@register_rule("sgd")
def _sgd(record: Any, value_of: Callable[[Any], np.ndarray]) -> dict[Any, np.ndarray]:
    lr = value_of(record.hyper["learning_rate"])
    return {record.variable: value_of(record.variable) - lr * value_of(record.gradient)}

# A divisor (or a possibly negative square-root operand) within BREAKDOWN * u * bound of zero
# makes the prediction meaningless: the tolerance allows 8u per unit of bound (safety 4).
BREAKDOWN = 8.0


class Rounded:
    """A float64 value with a first-order bound on the rounding error made computing it
    in the kernel's precision, in units of that precision's unit roundoff ``u``; ``tiny``
    (the smallest normal number) is what a rounding into the subnormal range can add.

    >>> x = Rounded(1.0, u=2.0 ** -24) + Rounded(1e-8, u=2.0 ** -24)
    >>> float(x.value), float(x.bound)     # one rounding of a result of size ~1
    (1.00000001, 1.00000001)
    >>> round(float((x - 1.0).bound), 8)    # the cancellation keeps the earlier error
    1.00000002
    >>> float((1.0 / (x - 1.0)).bound)      # dividing by pure rounding noise: no bound
    inf
    """

    __slots__ = ("bound", "tiny", "u", "value")

    def __init__(self, value: Any, bound: Any = 0.0, *, u: float, tiny: float = 0.0):
        self.value = np.asarray(value, dtype=np.float64)
        self.bound = np.asarray(bound, dtype=np.float64)
        self.u = u
        self.tiny = tiny

    def _lift(self, other: Any) -> Rounded:
        return other if isinstance(other, Rounded) else Rounded(other, u=self.u,
                                                                 tiny=self.tiny)

    def _new(self, value: Any, propagated: Any) -> Rounded:
        # the rounding of this result: u relative, or half a subnormal (tiny in units of u)
        own = np.abs(value) + np.where(value != 0, self.tiny, 0.0)
        return Rounded(value, propagated + own, u=self.u, tiny=self.tiny)

    def __add__(self, other: Any) -> Rounded:
        o = self._lift(other)
        return self._new(self.value + o.value, self.bound + o.bound)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Rounded:
        o = self._lift(other)
        return self._new(self.value - o.value, self.bound + o.bound)

    def __rsub__(self, other: Any) -> Rounded:
        return self._lift(other) - self

    def __mul__(self, other: Any) -> Rounded:
        o = self._lift(other)
        return self._new(self.value * o.value,
                         np.abs(o.value) * self.bound + np.abs(self.value) * o.bound)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Rounded:
        """``(a + da) / (b + db) - a / b`` is at most ``(|da| + |q| |db|) / (|b| - |db|)``;
        infinite once ``b`` is within ``BREAKDOWN`` times its error bound of zero."""
        o = self._lift(other)
        absb = np.abs(o.value)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = self.value / o.value
            spread = (self.bound + np.abs(q) * o.bound) / (absb - o.bound * self.u)
        spread = np.where(absb <= BREAKDOWN * o.bound * self.u, np.inf, spread)
        return self._new(q, np.where(o.bound + self.bound == 0, 0.0, spread))

    def __rtruediv__(self, other: Any) -> Rounded:
        return self._lift(other) / self

    def sqrt(self, *, may_be_negative: bool = False) -> Rounded:
        """``sqrt``: a relative error d of the operand becomes d/2; near 0, where that
        first-order rule breaks down, ``sqrt(a + e) - sqrt(a) <= sqrt(e)`` bounds it (for a
        non-negative operand). ``may_be_negative``: the exact operand is not non-negative
        by construction, so one within ``BREAKDOWN`` times its bound of zero may come out
        negative in the kernel (NaN): no bound."""
        with np.errstate(divide="ignore", invalid="ignore"):
            root = np.sqrt(self.value)
            first = self.bound / (2 * root)
        near_zero = np.sqrt(self.bound / self.u)
        spread = np.where(self.bound == 0, 0.0, np.fmin(first, near_zero))
        if may_be_negative:
            spread = np.where(self.value <= BREAKDOWN * self.bound * self.u, np.inf, spread)
        return self._new(root, spread)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(prediction, bound) as an audit rule returns them."""
        return self.value, self.bound


def _inputs(record: Any, value_of: Callable[[Any], np.ndarray]):
    """Exact inputs of the kernel (error bound 0): a getter for hyperparameters, the
    gradient, the variable's value and the slots' values."""
    dtype = record.variable.dtype.np
    floating = np.issubdtype(dtype, np.floating)
    u = float(np.finfo(dtype).eps) / 2 if floating else 0.0
    tiny = float(np.finfo(dtype).tiny) if floating else 0.0

    def exact(x: Any) -> Rounded:
        return Rounded(value_of(x), u=u, tiny=tiny)

    hyper = {k: exact(t) for k, t in record.hyper.items()}
    slots = {k: exact(s) for k, s in record.slots.items()}
    grad = None if record.gradient is None else exact(record.gradient)
    return hyper, grad, exact(record.variable), slots


@register_rule("momentum")
def _momentum(record: Any, value_of: Callable) -> dict[Any, Any]:
    h, g, w, s = _inputs(record, value_of)
    accum = s["momentum"] * h["momentum"] + g
    step = accum * h["learning_rate"]
    return {record.variable: (w - step).result(),
            record.slots["momentum"]: accum.result()}


@register_rule("nesterov")
def _nesterov(record: Any, value_of: Callable) -> dict[Any, Any]:
    h, g, w, s = _inputs(record, value_of)
    lr, mu = h["learning_rate"], h["momentum"]
    accum = s["momentum"] * mu + g
    step = g * lr + accum * mu * lr
    return {record.variable: (w - step).result(),
            record.slots["momentum"]: accum.result()}


@register_rule("adam")
def _adam(record: Any, value_of: Callable) -> dict[Any, Any]:
    h, g, w, s = _inputs(record, value_of)
    alpha = h["learning_rate"] * (1 - h["beta2_power"]).sqrt() / (1 - h["beta1_power"])
    m = s["m"] + (g - s["m"]) * (1 - h["beta1"])
    v = s["v"] + (g * g - s["v"]) * (1 - h["beta2"])
    new = w - (m * alpha) / (v.sqrt() + h["epsilon"])
    return {record.variable: new.result(), record.slots["m"]: m.result(),
            record.slots["v"]: v.result()}


@register_rule("adagrad")
def _adagrad(record: Any, value_of: Callable) -> dict[Any, Any]:
    h, g, w, s = _inputs(record, value_of)
    accum = s["accumulator"] + g * g
    new = w - g * h["learning_rate"] * (1 / accum.sqrt())
    return {record.variable: new.result(), record.slots["accumulator"]: accum.result()}


def _rmsprop(record: Any, value_of: Callable, centered: bool) -> dict[Any, Any]:
    h, g, w, s = _inputs(record, value_of)
    keep = 1 - h["decay"]
    ms = s["rms"] + (g * g - s["rms"]) * keep
    out = {record.slots["rms"]: ms.result()}
    if centered:
        mg = s["mg"] + (g - s["mg"]) * keep
        root = ((ms - mg * mg) + h["epsilon"]).sqrt(may_be_negative=True)
        out[record.slots["mg"]] = mg.result()
    else:
        root = (ms + h["epsilon"]).sqrt()
    mom = s["momentum"] * h["momentum"] + (g * h["learning_rate"]) / root
    out[record.slots["momentum"]] = mom.result()
    out[record.variable] = (w - mom).result()
    return out


@register_rule("rmsprop")
def _rmsprop_plain(record: Any, value_of: Callable) -> dict[Any, Any]:
    return _rmsprop(record, value_of, centered=False)


@register_rule("centered_rmsprop")
def _rmsprop_centered(record: Any, value_of: Callable) -> dict[Any, Any]:
    return _rmsprop(record, value_of, centered=True)


@register_rule("scale")
def _scale(record: Any, value_of: Callable) -> dict[Any, Any]:
    h, _, x, _ = _inputs(record, value_of)
    return {record.variable: (x * h["factor"]).result()}
