"""``tf.train``: optimizers and the global step.

``minimize`` = ``compute_gradients`` (gradients of the loss for ``var_list``, by default the
trainable variables) + ``apply_gradients`` (one update op per variable that got a gradient;
variables whose gradient is ``None`` are never touched). Each update is recorded as an
:class:`UpdateRecord` in the graph collection ``UPDATE_RECORDS``, so an auditor can read back
which variable changes, by which gradient tensor and rule.

The optimizers with slots (Momentum, Adam, Adagrad, RMSProp) live in ``engine.optimizers``
and are re-exported here, as is ``OPTIMIZERS``: ``(name, factory)`` pairs, one per update
rule, with small learning rates, for tests that draw an optimizer.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     w = tf.Variable(2.0); frozen = tf.Variable(5.0, trainable=False)
...     step = tf.train.GradientDescentOptimizer(0.5).minimize(w * w + frozen)
...     with tf.Session() as s:
...         _ = s.run(tf.global_variables_initializer()); _ = s.run(step)
...         float(s.run(w)), float(s.run(frozen))
(0.0, 5.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradverify.engine import dtypes as _dt
from gradverify.engine.gradients import gradients
from gradverify.engine.graph import (
    GraphKeys,
    Operation,
    Tensor,
    convert_to_tensor,
    get_default_graph,
)
from gradverify.engine.ops.core_ops import cast, group, zeros
from gradverify.engine.ops.state_ops import apply_gradient_descent
from gradverify.engine.variables import Variable, assign_add, trainable_variables

__all__ = ["Optimizer", "GradientDescentOptimizer", "UpdateRecord", "UPDATE_RECORDS",
           "get_global_step", "create_global_step", "get_or_create_global_step",
           "assert_global_step", "global_step",
           "MomentumOptimizer", "AdamOptimizer", "AdagradOptimizer", "RMSPropOptimizer",
           "OPTIMIZERS", "ApplyRecord", "APPLY_RECORDS"]

UPDATE_RECORDS = "gradverify_update_records"
APPLY_RECORDS = "gradverify_apply_records"


@dataclass
class UpdateRecord:
    """One variable update made by an optimizer: what an auditor needs to predict it.

    rule: the optimizer's rule name (``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adam"``,
    ``"adagrad"``, ``"rmsprop"``, ``"centered_rmsprop"``, or ``"scale"`` for a write that
    is not a gradient step, like Adam's ``beta1_power *= beta1``); hyper: every
    hyperparameter the update uses, as the tensors it consumes (in the variable's dtype;
    Adam's beta powers as read before the step); slots: slot name -> slot Variable, every
    slot the update writes. gradient: None for a ``"scale"`` write.
    loss / var_list: what ``compute_gradients`` differentiated and for which variables
    (``var_list`` is None when it defaulted to the trainable variables); both None when the
    gradient did not come from this optimizer's ``compute_gradients``.
    """

    op: Operation
    variable: Variable
    gradient: Tensor | None
    rule: str
    hyper: dict[str, Tensor]
    slots: dict[str, Variable] = field(default_factory=dict)
    optimizer: Any = None
    loss: Tensor | None = None
    var_list: tuple[Variable, ...] | None = None


@dataclass(frozen=True)
class ApplyRecord:
    """One ``apply_gradients`` call: the ops it made are those with a creation index in
    ``[first, end)``; a write among them that no ``UpdateRecord`` declares is one an auditor
    must not expect."""

    optimizer: Any
    train_op: Operation
    first: int
    end: int


class Optimizer:
    """Base class: subclasses give ``_rule``, ``_create_slots`` and ``_apply_dense``.

    Slot variables are global, not trainable, named ``<var>/<slot op name>``; create them
    with :meth:`_zeros_slot` / :meth:`_slot` in ``_create_slots``. Variables that belong to
    the optimizer rather than to one variable (Adam's beta powers) are made there too, with
    :meth:`_non_slot`, once per graph. Both are created outside any control-dependency
    block. A write that is not a gradient step (made in ``_finish``) must be declared with
    :meth:`_record_write` so an auditor expects it.
    """

    GATE_NONE, GATE_OP, GATE_GRAPH = 0, 1, 2
    _rule = "base"

    def __init__(self, use_locking: bool, name: str):
        if not name:
            raise ValueError("Must specify the optimizer name")
        self._use_locking = use_locking
        self._name = name
        self._slots: dict[str, dict[Variable, Variable]] = {}
        self._non_slot_vars: dict[tuple[str, Any], Variable] = {}   # (name, graph) -> variable
        self._pending: list[UpdateRecord] = []
        self._hyper_cache: dict[tuple[str, _dt.DType, Any], Tensor] = {}
        self._origin: dict[Tensor, tuple[Tensor, tuple[Variable, ...] | None]] = {}

    def get_name(self) -> str:
        return self._name

    # -- the TF1 protocol ------------------------------------------------------------------
    def minimize(self, loss: Any, global_step: Any = None, var_list: Any = None,
                 gate_gradients: int = GATE_OP, aggregation_method: Any = None,
                 colocate_gradients_with_ops: bool = False, name: str | None = None,
                 grad_loss: Any = None) -> Operation:
        """Add ops that update ``var_list`` to decrease ``loss``; returns the train op."""
        grads_and_vars = self.compute_gradients(loss, var_list=var_list, grad_loss=grad_loss)
        if all(g is None for g, _ in grads_and_vars):
            raise ValueError(
                "No gradients provided for any variable, check your graph for ops that do "
                "not support gradients, between variables "
                f"{[str(v) for _, v in grads_and_vars]} and loss {loss}.")
        return self.apply_gradients(grads_and_vars, global_step=global_step, name=name)

    def compute_gradients(self, loss: Any, var_list: Any = None,
                          gate_gradients: int = GATE_OP, aggregation_method: Any = None,
                          colocate_gradients_with_ops: bool = False,
                          grad_loss: Any = None) -> list[tuple[Tensor | None, Variable]]:
        """``[(gradient or None, variable)]`` for ``var_list`` (default: trainable)."""
        if callable(loss):
            raise ValueError("`loss` passed to Optimizer.compute_gradients should be a "
                             "Tensor in graph mode, not a callable.")
        loss = convert_to_tensor(loss)
        if not loss.dtype.is_floating:
            raise ValueError(f"Invalid type {loss.dtype.name} for {loss.name}, expected: "
                             "[float16, float32, float64].")
        with loss.graph.as_default():
            explicit = None if var_list is None else tuple(var_list)
            var_list = list(trainable_variables() if var_list is None else var_list)
            if not var_list:
                raise ValueError("No variables to optimize.")
            for v in var_list:
                if not isinstance(v, Variable):
                    raise TypeError(f"Argument is not a tf.Variable: {v!r}")
            grads = gradients(loss, var_list, grad_ys=grad_loss)
        for g in grads:  # remembered for the update records (what an auditor reads back)
            if g is not None:
                self._origin[g] = (loss, explicit)
        return list(zip(grads, var_list))

    def apply_gradients(self, grads_and_vars: Any, global_step: Any = None,
                        name: str | None = None) -> Operation:
        """One update op per (gradient, variable) with a gradient; then ``global_step += 1``
        if given. Returns the grouped train op (added to ``TRAIN_OP``)."""
        pairs = list(grads_and_vars)
        if not pairs:
            raise ValueError("No variables provided.")
        for g, v in pairs:
            if not isinstance(v, Variable):
                raise TypeError(f"Argument is not a tf.Variable: {v!r}")
            if g is not None and not isinstance(g, Tensor):
                raise TypeError(f"Gradient must be a Tensor or None, got {g!r} for {v.name}")
        live = [(g, v) for g, v in pairs if g is not None]
        if not live:
            raise ValueError(f"No gradients provided for any variable: "
                             f"{[(str(g), v.name) for g, v in pairs]}.")
        graph = live[0][1].graph
        first = graph.version
        with graph.as_default():
            with graph.control_dependencies(None), graph.name_scope(""):
                self._create_slots([v for _, v in live])
            with graph.name_scope(name or self._name) as scope:
                records = []
                for g, v in live:
                    g = convert_to_tensor(g)
                    if g.dtype is not v.dtype:
                        raise TypeError(f"Gradient {g.name} has dtype {g.dtype.name} but "
                                        f"variable {v.name} has dtype {v.dtype.name}")
                    with graph.name_scope("update_" + v.op.name):
                        update, hyper = self._apply_dense(g, v)
                    loss, var_list = self._origin.get(g, (None, None))
                    records.append(UpdateRecord(
                        op=update if isinstance(update, Operation) else update.op,
                        variable=v, gradient=g, rule=self._rule, hyper=hyper,
                        slots={s: t[v] for s, t in self._slots.items() if v in t},
                        optimizer=self, loss=loss, var_list=var_list))
                update_ops = [r.op for r in records]
                self._pending = []
                if global_step is None:
                    train_op = self._finish(update_ops, scope)
                else:  # TF1: the step increments after every update has run
                    with graph.control_dependencies([self._finish(update_ops, "update")]):
                        train_op = assign_add(global_step, 1, name=scope).op
                records += self._pending
                self._pending = []
            for r in records:
                graph.add_to_collection(UPDATE_RECORDS, r)
            graph.add_to_collection(GraphKeys.TRAIN_OP, train_op)
            graph.add_to_collection(APPLY_RECORDS,
                                    ApplyRecord(self, train_op, first, graph.version))
        return train_op

    # -- for subclasses --------------------------------------------------------------------
    def _create_slots(self, var_list: list[Variable]) -> None:
        """Create slot variables (called outside any control-dependency block)."""

    def _apply_dense(self, grad: Tensor, var: Variable) -> tuple[Any, dict[str, Tensor]]:
        """Return (update op or tensor, hyperparameter tensors used)."""
        raise NotImplementedError

    def _finish(self, update_ops: list[Operation], name: str) -> Operation:
        return group(*update_ops, name=name)

    def _hyper(self, name: str, value: Any, dtype: _dt.DType) -> Tensor:
        """A hyperparameter as a tensor of ``dtype``: a Python number becomes an exact
        constant of that dtype (no float32 round trip); a tensor is cast."""
        key = (name, dtype, get_default_graph())  # one optimizer may serve several graphs
        t = self._hyper_cache.get(key)
        if t is None:
            if callable(value):
                value = value()
            if isinstance(value, (Tensor, Variable)):
                t = cast(value, dtype)
            else:
                t = convert_to_tensor(np.asarray(value, dtype=dtype.np), name=name)
            self._hyper_cache[key] = t
        return t

    def _zeros_slot(self, var: Variable, slot_name: str, op_name: str) -> Variable:
        """The slot ``slot_name`` of ``var``, made (zeros, named ``<var>/<op_name>``, made
        unique like any name: a second slot with the same op name gets ``_1``) if new."""
        return self._slot(var, slot_name, op_name, 0)

    def _slot(self, var: Variable, slot_name: str, op_name: str, initial: Any) -> Variable:
        """Like :meth:`_zeros_slot` with every entry starting at the number ``initial``."""
        table = self._slots.setdefault(slot_name, {})
        if var not in table:
            shape = var.shape.as_list()
            if None in shape:
                raise ValueError(f"Cannot make slot '{slot_name}' for {var.op.name}: its "
                                 f"shape {var.shape} is not fully defined")
            if np.all(np.asarray(initial) == 0):
                def init() -> Tensor:  # built inside the slot's name scope
                    return zeros(shape, var.dtype)
            else:
                init = np.full(shape, initial, dtype=var.dtype.np)
            table[var] = Variable(init, trainable=False, name=f"{var.op.name}/{op_name}")
        return table[var]

    def _non_slot(self, name: str, initial: Any, colocate_with: Variable) -> Variable:
        """The optimizer's variable ``name`` in ``colocate_with``'s graph (TF1's
        ``_create_non_slot_variable``), made non-trainable from ``initial`` if new."""
        key = (name, colocate_with.graph)
        if key not in self._non_slot_vars:
            with colocate_with.graph.as_default():
                self._non_slot_vars[key] = Variable(initial, trainable=False, name=name)
        return self._non_slot_vars[key]

    def _get_non_slot(self, name: str, graph: Any = None) -> Variable | None:
        return self._non_slot_vars.get((name, graph or get_default_graph()))

    def _record_write(self, op: Any, variable: Variable, rule: str,
                      hyper: dict[str, Tensor]) -> None:
        """Declare a write made outside ``_apply_dense`` (in ``_finish``): it becomes an
        :class:`UpdateRecord` without a gradient, so an auditor predicts it."""
        self._pending.append(UpdateRecord(
            op=op if isinstance(op, Operation) else op.op, variable=variable, gradient=None,
            rule=rule, hyper=hyper, optimizer=self))

    def _slot_owners(self) -> dict[Variable, tuple[str, Variable]]:
        """slot variable -> (slot name, the variable it belongs to), for an auditor."""
        return {slot: (name, var) for name, table in self._slots.items()
                for var, slot in table.items()}

    def get_slot(self, var: Variable, name: str) -> Variable | None:
        """The slot variable ``name`` of ``var``, or None."""
        return self._slots.get(name, {}).get(var)

    def get_slot_names(self) -> list[str]:
        """The slot names this optimizer uses, sorted (TF1)."""
        return sorted(self._slots)

    def variables(self) -> list[Variable]:
        """Slot and non-slot variables this optimizer created in the default graph, sorted
        by name (TF1)."""
        graph = get_default_graph()
        out = [v for table in self._slots.values() for v in table.values()]
        out += list(self._non_slot_vars.values())
        return sorted((v for v in out if v.graph is graph), key=lambda v: v.name)


class GradientDescentOptimizer(Optimizer):
    """Plain SGD: ``var -= learning_rate * grad``.

    learning_rate: a float, a scalar tensor (evaluated each run) or a callable.

    >>> GradientDescentOptimizer(0.5).get_name()
    'GradientDescent'
    """

    _rule = "sgd"

    def __init__(self, learning_rate: Any, use_locking: bool = False,
                 name: str = "GradientDescent"):
        super().__init__(use_locking, name)
        self._learning_rate = learning_rate

    def _apply_dense(self, grad: Tensor, var: Variable) -> tuple[Any, dict[str, Tensor]]:
        lr = self._hyper("learning_rate", self._learning_rate, var.dtype)
        return apply_gradient_descent(var, lr, grad, use_locking=self._use_locking), {
            "learning_rate": lr}


# -- global step -----------------------------------------------------------------------------
def assert_global_step(global_step_tensor: Any) -> None:
    """TypeError unless ``global_step_tensor`` is an integer scalar Variable or Tensor."""
    if not isinstance(global_step_tensor, (Variable, Tensor)):
        raise TypeError(f'Existing "global_step" must be a Variable or Tensor: '
                        f"{global_step_tensor}.")
    if not global_step_tensor.dtype.is_integer:
        raise TypeError(f'Existing "global_step" does not have integer type: '
                        f"{global_step_tensor.dtype.name}")
    if global_step_tensor.shape.ndims != 0 and global_step_tensor.shape.is_fully_defined():
        raise TypeError(f'Existing "global_step" is not scalar: {global_step_tensor.shape}')


def get_global_step(graph: Any = None) -> Variable | None:
    """The graph's global step: the one entry of collection ``GLOBAL_STEP``, else the
    variable named ``global_step``; None if there is none (or, as TF1, several)."""
    graph = graph or get_default_graph()
    found = graph.get_collection(GraphKeys.GLOBAL_STEP)
    if len(found) > 1:
        return None  # TF1 logs "Multiple tensors in global_step collection." and gives None
    if found:
        step = found[0]
    else:
        step = next((v for v in graph.get_collection(GraphKeys.GLOBAL_VARIABLES)
                     if v.op.name == "global_step"), None)
        if step is None:
            try:
                step = graph.get_tensor_by_name("global_step:0")
            except KeyError:
                return None
    assert_global_step(step)
    return step


def create_global_step(graph: Any = None) -> Variable:
    """A non-trainable int64 scalar ``global_step`` starting at 0 (made with
    ``get_variable`` in the current variable scope, in collection ``GLOBAL_STEP``)."""
    from gradverify.engine.initializers import Zeros
    from gradverify.engine.variable_scope import get_variable
    graph = graph or get_default_graph()
    if get_global_step(graph) is not None:
        raise ValueError('"global_step" already exists.')
    with graph.as_default(), graph.name_scope(""):
        return get_variable(GraphKeys.GLOBAL_STEP, shape=[], dtype=_dt.int64,
                            initializer=Zeros(), trainable=False,
                            collections=[GraphKeys.GLOBAL_VARIABLES, GraphKeys.GLOBAL_STEP])


def get_or_create_global_step(graph: Any = None) -> Variable:
    """The graph's global step, created if there is none.

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     step = tf.train.get_or_create_global_step()
    ...     step is tf.train.get_or_create_global_step(), step.name, step.dtype.name
    (True, 'global_step:0', 'int64')
    """
    graph = graph or get_default_graph()
    step = get_global_step(graph)
    return step if step is not None else create_global_step(graph)


def global_step(sess: Any, global_step_tensor: Any) -> int:
    """The global step's value in ``sess`` as a Python int."""
    return int(sess.run(global_step_tensor))


from gradverify.engine import schedules as _schedules  # noqa: E402, F401 - exports train.*
from gradverify.engine.optimizers import (  # noqa: E402  (they subclass Optimizer, defined above)
    OPTIMIZERS,
    AdagradOptimizer,
    AdamOptimizer,
    MomentumOptimizer,
    RMSPropOptimizer,
)
from gradverify.engine.registry import public_names as _public_names  # noqa: E402

globals().update(_public_names("train"))
