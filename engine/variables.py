"""``tf.Variable`` (TF1 reference variables), collections of variables, initialisers.

A Variable is four ops: ``Variable`` (storage, a reference output), ``Variable/initial_value``
(when the value is not already a tensor), ``Variable/Assign`` (the initialiser) and
``Variable/read`` (an Identity that reads the value). Gradients are taken with respect to the
reference, so every read path reaches it.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     w = tf.Variable([[1.0, 2.0]], name="w")
...     [op.name for op in w.graph.get_operations()]
['w/initial_value', 'w', 'w/Assign', 'w/read']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradverify.engine import dtypes as _dt
from gradverify.engine.graph import (
    GraphKeys,
    Operation,
    Tensor,
    _graph_of,
    _OperatorMixin,
    convert_to_tensor,
    get_default_graph,
)
from gradverify.engine.ops.core_ops import group, identity
from gradverify.engine.ops.state_ops import assign_add_op, assign_op, assign_sub_op, variable_op
from gradverify.engine.registry import export
from gradverify.engine.shapes import as_shape

__all__ = ["Variable", "global_variables", "trainable_variables", "local_variables",
           "variables_initializer", "global_variables_initializer", "assign", "assign_add",
           "assign_sub"]


@export("Variable")
class Variable(_OperatorMixin):
    """A mutable tensor whose value lives in a Session and persists across runs.

    Python operators act on its value: ``w * 2.0``. ``trainable=True`` adds it to
    ``TRAINABLE_VARIABLES`` (what optimizers update by default).

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     v = tf.Variable(tf.zeros([2, 3]), trainable=False)
    ...     v.name, v.shape.as_list(), v in tf.trainable_variables()
    ('Variable:0', [2, 3], False)
    """

    def __init__(self, initial_value: Any = None, trainable: bool = True,
                 collections: Any = None, validate_shape: bool = True,
                 caching_device: Any = None, name: str | None = None,
                 variable_def: Any = None, dtype: Any = None, expected_shape: Any = None,
                 import_scope: Any = None, constraint: Any = None,
                 use_resource: Any = None) -> None:
        if initial_value is None:
            raise ValueError("initial_value must be specified.")
        if variable_def is not None:
            raise ValueError("variable_def is not supported by this engine.")
        graph = _graph_of([initial_value]) if not callable(initial_value) else (
            get_default_graph())
        with graph.as_default(), graph.name_scope(name or "Variable") as scope:
            if callable(initial_value):  # TF1 builds it in the "Initializer" name scope
                with graph.name_scope("Initializer"):
                    initial_value = initial_value()
            init = convert_to_tensor(initial_value, dtype=dtype, name="initial_value")
            if validate_shape and not init.shape.is_fully_defined():
                raise ValueError(f"initial_value must have a shape specified: {init!r}")
            shape = init.shape if validate_shape else as_shape(None)
            self._variable = variable_op(shape=shape, dtype=init.dtype,
                                         validate_shape=validate_shape, name=scope)
            self._variable._is_ref = True
            self._initial_value = init
            self._initializer_op = assign_op(self._variable, init,
                                             validate_shape=validate_shape,
                                             name="Assign").op
            self._snapshot = identity(self._variable, name="read")
        self._trainable = bool(trainable)
        self.constraint = constraint
        if collections is None:
            collections = [GraphKeys.GLOBAL_VARIABLES]
        collections = list(collections)
        if self._trainable and GraphKeys.TRAINABLE_VARIABLES not in collections:
            collections.append(GraphKeys.TRAINABLE_VARIABLES)
        graph.add_to_collections(collections, self)

    # -- identity ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._variable.name

    @property
    def op(self) -> Operation:
        return self._variable.op

    @property
    def graph(self) -> Any:
        return self._variable.graph

    @property
    def dtype(self) -> _dt.DType:
        return self._variable.dtype

    @property
    def shape(self) -> Any:
        return self._variable.shape

    def get_shape(self) -> Any:
        return self._variable.shape

    @property
    def trainable(self) -> bool:
        return self._trainable

    @property
    def device(self) -> str:
        return ""

    @property
    def initializer(self) -> Operation:
        """The op that (re)initialises the variable from its initial value."""
        return self._initializer_op

    @property
    def initial_value(self) -> Tensor:
        return self._initial_value

    def _ref(self) -> Tensor:
        return self._variable

    def _as_graph_element(self) -> Tensor:
        return self._snapshot

    def value(self) -> Tensor:
        """The tensor reading the variable (``<name>/read:0``)."""
        return self._snapshot

    def read_value(self) -> Tensor:
        """A new op reading the variable."""
        with self.graph.as_default():
            return identity(self._variable, name="read")

    def initialized_value(self) -> Tensor:
        return self._initial_value

    def eval(self, session: Any = None) -> np.ndarray:
        return self._snapshot.eval(session=session)

    def load(self, value: Any, session: Any = None) -> None:
        """Set the value in ``session`` (default session) without adding ops."""
        from gradverify.engine.session import _session_for
        s = _session_for(session, self.graph, "load a variable")
        arr = np.array(value, dtype=self.dtype.np)
        if not self.shape.is_compatible_with(arr.shape):
            raise ValueError(f"Cannot load value of shape {arr.shape} into variable "
                             f"{self.op.name} of shape {self.shape}")
        arr.flags.writeable = False
        s._state[self.op] = arr

    # -- updates -----------------------------------------------------------------------------
    def assign(self, value: Any, use_locking: bool = False, name: str | None = None,
               read_value: bool = True) -> Any:
        return assign(self, value, use_locking=use_locking, name=name)

    def assign_add(self, delta: Any, use_locking: bool = False, name: str | None = None,
                   read_value: bool = True) -> Any:
        return assign_add(self, delta, use_locking=use_locking, name=name)

    def assign_sub(self, delta: Any, use_locking: bool = False, name: str | None = None,
                   read_value: bool = True) -> Any:
        return assign_sub(self, delta, use_locking=use_locking, name=name)

    def __repr__(self) -> str:
        return (f"<tf.Variable '{self.name}' shape={self.shape} "
                f"dtype={self.dtype.name}_ref>")

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: Any) -> bool:
        return self is other


def _target(ref: Any, what: str) -> Any:
    if isinstance(ref, Variable):
        return ref
    if isinstance(ref, Tensor) and ref._is_ref:
        return ref
    raise TypeError(f"'{what}' needs a Variable, got {ref!r}")


def _update(opdef: Any, what: str, ref: Any, value: Any, name: str | None,
            **attrs: Any) -> Tensor:
    var = _target(ref, what)
    graph = var.graph
    as_tensor = getattr(value, "_as_graph_element", lambda: value)()
    if isinstance(as_tensor, Tensor) and as_tensor.dtype is not var.dtype:  # TF: TypeError
        raise TypeError(f"Input 'value' of '{opdef.type}' Op has type {as_tensor.dtype.name} "
                        f"that does not match type {var.dtype.name} of argument 'ref'.")
    with graph.as_default():
        return opdef(var, convert_to_tensor(value, dtype=var.dtype), name=name, **attrs)


@export("assign")
def assign(ref: Any, value: Any, validate_shape: bool | None = None,
           use_locking: bool | None = None, name: str | None = None) -> Tensor:
    """Store ``value`` in variable ``ref``; the output is the new value."""
    return _update(assign_op, "assign", ref, value, name,
                   validate_shape=True if validate_shape is None else validate_shape,
                   use_locking=bool(use_locking))


@export("assign_add")
def assign_add(ref: Any, value: Any, use_locking: bool | None = None,
               name: str | None = None) -> Tensor:
    """Add ``value`` to variable ``ref``; the output is the new value."""
    return _update(assign_add_op, "assign_add", ref, value, name,
                   use_locking=bool(use_locking))


@export("assign_sub")
def assign_sub(ref: Any, value: Any, use_locking: bool | None = None,
               name: str | None = None) -> Tensor:
    """Subtract ``value`` from variable ``ref``; the output is the new value."""
    return _update(assign_sub_op, "assign_sub", ref, value, name,
                   use_locking=bool(use_locking))


@export("global_variables", "all_variables")
def global_variables(scope: str | None = None) -> list[Variable]:
    """Variables in ``GLOBAL_VARIABLES`` of the default graph, in creation order."""
    return get_default_graph().get_collection(GraphKeys.GLOBAL_VARIABLES, scope)


@export("trainable_variables")
def trainable_variables(scope: str | None = None) -> list[Variable]:
    """Variables in ``TRAINABLE_VARIABLES`` of the default graph, in creation order."""
    return get_default_graph().get_collection(GraphKeys.TRAINABLE_VARIABLES, scope)


@export("local_variables")
def local_variables(scope: str | None = None) -> list[Variable]:
    return get_default_graph().get_collection(GraphKeys.LOCAL_VARIABLES, scope)


@export("variables_initializer")
def variables_initializer(var_list: Any, name: str = "init") -> Operation:
    """One op running the initialisers of ``var_list`` (a NoOp if it is empty)."""
    var_list = list(var_list)
    graph = var_list[0].graph if var_list else get_default_graph()
    with graph.as_default():
        return group(*[v.initializer for v in var_list], name=name)


@export("global_variables_initializer", "initialize_all_variables")
def global_variables_initializer() -> Operation:
    """Initialise the variables that exist now (build it after ``minimize``: optimizer
    slots created later are not covered)."""
    return variables_initializer(global_variables())


@export("local_variables_initializer")
def local_variables_initializer() -> Operation:
    return variables_initializer(local_variables(), name="init_1")
