"""TF1's optimizers with slot variables: Momentum (and Nesterov), Adam, Adagrad, RMSProp.

Each one follows TF1's ``tensorflow/python/training/<name>.py`` (constructor signature and
defaults, slot names and creation order, which hyperparameters are cast to the variable's
dtype) and its fused kernel in ``training_ops.cc`` (the update formulas, in TF's evaluation
order: see the ``Apply*`` blocks in ``engine/ops/state_ops.py``). Import them as
``tf.train.MomentumOptimizer`` etc.

Slots are global, non-trainable variables named ``<var>/<optimizer name>`` (a second slot
of the same variable gets ``_1``, a third ``_2``), created by ``apply_gradients`` for the
variables that got a gradient. ``global_variables_initializer()`` built before ``minimize``
does not cover them: running the train op then raises ``FailedPreconditionError`` naming the
uninitialised slot.

Every hyperparameter may be a Python number (an exact constant of the variable's dtype), a
tensor or variable (cast to the variable's dtype, evaluated on every run: a placeholder can
change between runs) or a callable returning either.

Deviations from TF1 (all numerical, none in the formulas):

- Python-number hyperparameters become constants of the variable's dtype; TF1 makes a
  float32 tensor and casts it, so in a float64 model ``0.9`` is ``float64(float32(0.9))``.
- Adam's ``beta1_power`` / ``beta2_power`` get the dtype of the variable they are colocated
  with (TF1: ``min(var_list, key=name)``; so does the engine); TF1 creates them from the
  Python float, hence float32 (cast to each variable's dtype when used). In a float64
  model the engine's bias correction is therefore exact to float64 rounding.
- A ``beta1``/``beta2`` given as a Variable starts the beta power from that variable's
  initial value (TF1: its current value if initialised, else its initial value), so one
  ``global_variables_initializer()`` run initialises both.
- An uninitialised slot is reported as ``Attempting to use uninitialized value
  w/Momentum`` (TF1's fused kernels say ``uninitialized variables: w/Momentum``).

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     w = tf.Variable([1.0, -2.0], name="w")
...     opt = tf.train.AdamOptimizer(0.1)
...     step = opt.minimize(tf.reduce_sum(w * w))
...     [v.op.name for v in opt.variables()], opt.get_slot_names()
(['beta1_power', 'beta2_power', 'w/Adam', 'w/Adam_1'], ['m', 'v'])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine.graph import Tensor
from gradverify.engine.ops.core_ops import cast, group
from gradverify.engine.ops.state_ops import (
    apply_adagrad,
    apply_adam,
    apply_centered_rms_prop,
    apply_momentum,
    apply_rms_prop,
)
from gradverify.engine.train import GradientDescentOptimizer, Optimizer
from gradverify.engine.variables import Variable, assign

__all__ = ["MomentumOptimizer", "AdamOptimizer", "AdagradOptimizer", "RMSPropOptimizer",
           "OPTIMIZERS"]


class MomentumOptimizer(Optimizer):
    """TF1 ``MomentumOptimizer(learning_rate, momentum, use_locking=False, name="Momentum",
    use_nesterov=False)``.

    Slot ``"momentum"`` (zeros, ``<var>/Momentum``). Kernel ``ApplyMomentum``:
    ``accum = accum * momentum + grad``; ``var -= accum * lr``; Nesterov:
    ``var -= grad * lr + accum * momentum * lr`` with the new ``accum``. Update rule names:
    ``"momentum"`` / ``"nesterov"``.

    >>> MomentumOptimizer(0.1, 0.9, use_nesterov=True)._rule
    'nesterov'
    """

    def __init__(self, learning_rate: Any, momentum: Any, use_locking: bool = False,
                 name: str = "Momentum", use_nesterov: bool = False):
        super().__init__(use_locking, name)
        self._learning_rate = learning_rate
        self._momentum = momentum
        self._use_nesterov = bool(use_nesterov)
        self._rule = "nesterov" if use_nesterov else "momentum"

    def _create_slots(self, var_list: list[Variable]) -> None:
        for v in var_list:
            self._zeros_slot(v, "momentum", self._name)

    def _apply_dense(self, grad: Tensor, var: Variable) -> tuple[Any, dict[str, Tensor]]:
        lr = self._hyper("learning_rate", self._learning_rate, var.dtype)
        mu = self._hyper("momentum", self._momentum, var.dtype)
        update = apply_momentum(var, self.get_slot(var, "momentum"), lr, grad, mu,
                                use_locking=self._use_locking,
                                use_nesterov=self._use_nesterov)
        return update, {"learning_rate": lr, "momentum": mu}


class AdamOptimizer(Optimizer):
    """TF1 ``AdamOptimizer(learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-08,
    use_locking=False, name="Adam")``.

    Slots ``"m"`` (``<var>/Adam``) and ``"v"`` (``<var>/Adam_1``), zeros; non-slot variables
    ``beta1_power`` and ``beta2_power`` (once per graph, starting at ``beta1``, ``beta2``).
    Kernel ``ApplyAdam``: ``alpha = lr * sqrt(1 - beta2_power) / (1 - beta1_power)``;
    ``m += (grad - m) * (1 - beta1)``; ``v += (grad^2 - v) * (1 - beta2)``;
    ``var -= m * alpha / (sqrt(v) + epsilon)``. After every update (``_finish``):
    ``beta1_power *= beta1``, ``beta2_power *= beta2`` (recorded as ``"scale"`` writes).
    Update rule name: ``"adam"``. Epsilon is TF1's "epsilon hat", added to ``sqrt(v)``.
    """

    _rule = "adam"

    def __init__(self, learning_rate: Any = 0.001, beta1: Any = 0.9, beta2: Any = 0.999,
                 epsilon: Any = 1e-08, use_locking: bool = False, name: str = "Adam"):
        super().__init__(use_locking, name)
        self._lr = learning_rate
        self._beta1 = beta1
        self._beta2 = beta2
        self._epsilon = epsilon

    def _get_beta_accumulators(self, graph: Any = None) -> tuple[Variable, Variable]:
        return self._get_non_slot("beta1_power", graph), self._get_non_slot(
            "beta2_power", graph)

    def _create_slots(self, var_list: list[Variable]) -> None:
        first = min(var_list, key=lambda v: v.name)  # TF1: sorted, so every worker agrees
        for name, beta in (("beta1_power", self._beta1), ("beta2_power", self._beta2)):
            if callable(beta):
                beta = beta()
            if isinstance(beta, Variable):
                # TF1 guards an initial value against uninitialised variables it reads
                # (``_try_guard_against_uninitialized_dependencies``), so one
                # global_variables_initializer() run sets both: start from beta's initial
                # value (the engine reads every variable before any write in a run).
                beta = beta.initialized_value()
            initial = (cast(beta, first.dtype) if isinstance(beta, Tensor)
                       else np.asarray(beta, dtype=first.dtype.np))
            self._non_slot(name, initial, colocate_with=first)
        for v in var_list:
            self._zeros_slot(v, "m", self._name)
            self._zeros_slot(v, "v", self._name)

    def _apply_dense(self, grad: Tensor, var: Variable) -> tuple[Any, dict[str, Tensor]]:
        b1p, b2p = self._get_beta_accumulators(var.graph)
        hyper = {
            "beta1_power": self._hyper("beta1_power", b1p, var.dtype),
            "beta2_power": self._hyper("beta2_power", b2p, var.dtype),
            "learning_rate": self._hyper("learning_rate", self._lr, var.dtype),
            "beta1": self._hyper("beta1", self._beta1, var.dtype),
            "beta2": self._hyper("beta2", self._beta2, var.dtype),
            "epsilon": self._hyper("epsilon", self._epsilon, var.dtype),
        }
        update = apply_adam(var, self.get_slot(var, "m"), self.get_slot(var, "v"),
                            hyper["beta1_power"], hyper["beta2_power"],
                            hyper["learning_rate"], hyper["beta1"], hyper["beta2"],
                            hyper["epsilon"], grad, use_locking=self._use_locking)
        return update, hyper

    def _finish(self, update_ops: list[Any], name: str) -> Any:
        graph = update_ops[0].graph
        writes = []
        powers = self._get_beta_accumulators(graph)
        for power, key, beta in zip(powers, ("beta1", "beta2"), (self._beta1, self._beta2)):
            factor = self._hyper(key, beta, power.dtype)
            with graph.control_dependencies(update_ops):  # TF1: after every update
                new = assign(power, power * factor, use_locking=self._use_locking)
            self._record_write(new.op, power, "scale", {"factor": factor})
            writes.append(new)
        return group(*update_ops, *writes, name=name)


class AdagradOptimizer(Optimizer):
    """TF1 ``AdagradOptimizer(learning_rate, initial_accumulator_value=0.1,
    use_locking=False, name="Adagrad")``.

    Slot ``"accumulator"`` (``<var>/Adagrad``) starting at ``initial_accumulator_value``
    (must be positive). Kernel ``ApplyAdagrad``: ``accum += grad^2``;
    ``var -= grad * lr * rsqrt(accum)`` (the new accum). Update rule name: ``"adagrad"``.
    """

    _rule = "adagrad"

    def __init__(self, learning_rate: Any, initial_accumulator_value: float = 0.1,
                 use_locking: bool = False, name: str = "Adagrad"):
        if initial_accumulator_value <= 0.0:
            raise ValueError("initial_accumulator_value must be positive: "
                             f"{initial_accumulator_value}")
        super().__init__(use_locking, name)
        self._learning_rate = learning_rate
        self._initial_accumulator_value = initial_accumulator_value

    def _create_slots(self, var_list: list[Variable]) -> None:
        for v in var_list:
            self._slot(v, "accumulator", self._name, self._initial_accumulator_value)

    def _apply_dense(self, grad: Tensor, var: Variable) -> tuple[Any, dict[str, Tensor]]:
        lr = self._hyper("learning_rate", self._learning_rate, var.dtype)
        update = apply_adagrad(var, self.get_slot(var, "accumulator"), lr, grad,
                               use_locking=self._use_locking)
        return update, {"learning_rate": lr}


class RMSPropOptimizer(Optimizer):
    """TF1 ``RMSPropOptimizer(learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10,
    use_locking=False, centered=False, name="RMSProp")``.

    Slots, in TF1's creation order: ``"rms"`` (ONES, ``<var>/RMSProp``), then if centered
    ``"mg"`` (zeros, ``<var>/RMSProp_1``), then ``"momentum"`` (zeros, ``<var>/RMSProp_1``,
    or ``<var>/RMSProp_2`` when centered). Kernel ``ApplyRMSProp``:
    ``ms += (grad^2 - ms) * (1 - decay)``;
    ``mom = mom * momentum + grad * lr / sqrt(ms + epsilon)``; ``var -= mom``.
    ``ApplyCenteredRMSProp`` also keeps ``mg += (grad - mg) * (1 - decay)`` and divides by
    ``sqrt((ms - mg^2) + epsilon)``. Epsilon is inside the square root in both. Update rule
    names: ``"rmsprop"`` / ``"centered_rmsprop"``.
    """

    def __init__(self, learning_rate: Any, decay: Any = 0.9, momentum: Any = 0.0,
                 epsilon: Any = 1e-10, use_locking: bool = False, centered: bool = False,
                 name: str = "RMSProp"):
        super().__init__(use_locking, name)
        self._learning_rate = learning_rate
        self._decay = decay
        self._momentum = momentum
        self._epsilon = epsilon
        self._centered = bool(centered)
        self._rule = "centered_rmsprop" if centered else "rmsprop"

    def _create_slots(self, var_list: list[Variable]) -> None:
        for v in var_list:
            self._slot(v, "rms", self._name, 1)
            if self._centered:
                self._zeros_slot(v, "mg", self._name)
            self._zeros_slot(v, "momentum", self._name)

    def _apply_dense(self, grad: Tensor, var: Variable) -> tuple[Any, dict[str, Tensor]]:
        hyper = {k: self._hyper(k, value, var.dtype) for k, value in (
            ("learning_rate", self._learning_rate), ("decay", self._decay),
            ("momentum", self._momentum), ("epsilon", self._epsilon))}
        args = (hyper["learning_rate"], hyper["decay"], hyper["momentum"], hyper["epsilon"],
                grad)
        rms, mom = self.get_slot(var, "rms"), self.get_slot(var, "momentum")
        if self._centered:
            update = apply_centered_rms_prop(var, self.get_slot(var, "mg"), rms, mom, *args,
                                             use_locking=self._use_locking)
        else:
            update = apply_rms_prop(var, rms, mom, *args, use_locking=self._use_locking)
        return update, hyper


def _factory(cls: type, *args: Any, **kwargs: Any) -> Any:
    def make() -> Optimizer:
        return cls(*args, **kwargs)
    make.__name__ = make.__qualname__ = f"{cls.__name__}{args}{kwargs or ''}"
    return make


# (name, factory): one per update rule, with learning rates small enough for random models.
OPTIMIZERS: tuple[tuple[str, Any], ...] = (
    ("sgd", _factory(GradientDescentOptimizer, 0.05)),
    ("momentum", _factory(MomentumOptimizer, 0.02, 0.9)),
    ("nesterov", _factory(MomentumOptimizer, 0.02, 0.9, use_nesterov=True)),
    ("adam", _factory(AdamOptimizer, 0.01)),
    ("adagrad", _factory(AdagradOptimizer, 0.05)),
    ("rmsprop", _factory(RMSPropOptimizer, 0.01, momentum=0.5)),
    ("centered_rmsprop", _factory(RMSPropOptimizer, 0.01, momentum=0.5, centered=True)),
)
