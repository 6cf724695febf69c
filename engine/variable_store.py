"""The per-graph store behind ``tf.get_variable``: variables by full name, TF1's reuse rules.

``get_variable`` (in ``engine.variable_scope``) resolves the name and defaults from the
current variable scope and asks the graph's store; the store returns the existing variable
(when reuse allows) or creates one with the initializer (Glorot uniform for floats, zeros
for integers by default), raising TF1's errors otherwise.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default() as g:
...     v = tf.get_variable("v", [1])
...     _store(g).vars == {"v": v}
True
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from gradverify.engine import dtypes as _dt
from gradverify.engine.graph import Graph, GraphKeys, get_default_graph
from gradverify.engine.initializers import GlorotUniform, Zeros
from gradverify.engine.shapes import as_shape
from gradverify.engine.variables import Variable

__all__ = ["AUTO_REUSE"]

_STORE_KEY = "__variable_store"


class _ReuseMode(enum.Enum):
    AUTO_REUSE = 1


AUTO_REUSE = _ReuseMode.AUTO_REUSE

class _VariableStore:
    """The variables ``get_variable`` made in one graph, by full name."""

    def __init__(self) -> None:
        self.vars: dict[str, Variable] = {}

    def get_variable(self, name: str, shape: Any = None, dtype: Any = _dt.float32,
                     initializer: Any = None, regularizer: Any = None, reuse: Any = None,
                     trainable: bool | None = None, collections: Any = None,
                     partitioner: Any = None, validate_shape: bool = True,
                     custom_getter: Callable | None = None,
                     constraint: Any = None) -> Variable:
        if partitioner is not None:
            raise NotImplementedError(f"Variable {name}: partitioned variables are not "
                                      "supported by this engine (partitioner must be None).")
        kwargs = dict(shape=shape, dtype=dtype, initializer=initializer,
                      regularizer=regularizer, reuse=reuse, trainable=trainable,
                      collections=collections, validate_shape=validate_shape,
                      constraint=constraint)
        if custom_getter is not None:
            return custom_getter(self._true_getter, name, **kwargs)
        return self._true_getter(name, **kwargs)

    def _true_getter(self, name: str, shape: Any = None, dtype: Any = _dt.float32,
                     initializer: Any = None, regularizer: Any = None, reuse: Any = None,
                     trainable: bool | None = None, collections: Any = None,
                     validate_shape: bool = True, constraint: Any = None,
                     **unused: Any) -> Variable:
        from_value = initializer is not None and not callable(initializer)
        if from_value and shape is not None:
            raise ValueError("If initializer is a constant, do not specify shape.")
        dtype = _dt.as_dtype(dtype)
        shape = as_shape(shape)
        if name in self.vars:
            return self._existing(name, shape, dtype, reuse)
        if reuse is True:
            raise ValueError(f"Variable {name} does not exist, or was not created with "
                             "tf.get_variable(). Did you mean to set reuse=tf.AUTO_REUSE in "
                             "VarScope?")
        if from_value:
            init_val: Any = initializer
            var_dtype = None
        else:
            if initializer is None:
                initializer = _default_initializer(name, dtype)
            if isinstance(initializer, type):
                initializer = initializer()
            if not shape.is_fully_defined():
                raise ValueError(f"Shape of a new variable ({name}) must be fully defined, "
                                 f"but instead was {shape}.")
            dims, init = shape.as_list(), initializer

            def init_val() -> Any:
                return init(dims, dtype=dtype)
            var_dtype = dtype
        graph = get_default_graph()
        with graph.control_dependencies(None):  # TF1's init_scope
            var = Variable(init_val, trainable=True if trainable is None else trainable,
                           collections=collections, validate_shape=validate_shape,
                           name=name, dtype=var_dtype, constraint=constraint)
        self.vars[name] = var
        if regularizer:
            with graph.name_scope(name + "/Regularizer/"):
                loss = regularizer(var)
            if loss is not None:
                graph.add_to_collection(GraphKeys.REGULARIZATION_LOSSES, loss)
        return var

    def _existing(self, name: str, shape: Any, dtype: _dt.DType, reuse: Any) -> Variable:
        found = self.vars[name]
        if reuse is not True and reuse is not AUTO_REUSE:
            raise ValueError(f"Variable {name} already exists, disallowed. Did you mean to "
                             "set reuse=True or reuse=tf.AUTO_REUSE in VarScope?")
        if not shape.is_compatible_with(found.shape):
            raise ValueError(f"Trying to share variable {name}, but specified shape {shape} "
                             f"and found shape {found.shape}.")
        if dtype is not found.dtype:
            raise ValueError(f"Trying to share variable {name}, but specified dtype "
                             f"{dtype!r} and found dtype {found.dtype!r}.")
        return found


def _default_initializer(name: str, dtype: _dt.DType) -> Any:
    """TF1: Glorot uniform for floating variables, zeros for integers and bools."""
    if dtype.is_floating:
        return GlorotUniform()
    if dtype.is_integer or dtype.is_bool:
        return Zeros()
    raise ValueError(f"An initializer for variable {name} of {dtype!r} is required")


def _store(graph: Graph) -> _VariableStore:
    ref = graph.get_collection_ref(_STORE_KEY)
    if not ref:
        ref.append(_VariableStore())
    return ref[0]


