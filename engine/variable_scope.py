"""``tf.get_variable`` and ``tf.variable_scope``: TF1's named, shareable variables.

Variables made by ``get_variable`` are named ``<variable scope>/<name>`` whatever name scope
is open, and are remembered per graph, so a second ``get_variable`` of the same name either
returns the first (``reuse=True`` or ``AUTO_REUSE``) or is an error (TF1's messages).
``variable_scope("s")`` also opens the name scope ``s`` (uniquified: a second ``s`` gives op
names under ``s_1/``), while its variable names stay under ``s/``. Re-entering a captured
``VariableScope`` object uses its absolute name and its reuse setting.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     with tf.variable_scope("layer"):
...         w = tf.get_variable("w", [2, 2])
...     with tf.variable_scope("layer", reuse=True):
...         same = tf.get_variable("w")
...         y = tf.matmul(same, same)
...     w.name, same is w, y.name
('layer/w:0', True, 'layer_1/MatMul:0')
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from gradverify.engine import dtypes as _dt
from gradverify.engine.graph import (
    Graph,
    GraphKeys,
    Tensor,
    _graph_of,
    _infer_dtype,
    get_default_graph,
)
from gradverify.engine.registry import export
from gradverify.engine.variable_store import AUTO_REUSE, _store, _VariableStore
from gradverify.engine.variables import Variable

__all__ = ["AUTO_REUSE", "VariableScope", "variable_scope", "get_variable",
           "get_local_variable", "get_variable_scope"]

export("AUTO_REUSE")(AUTO_REUSE)


class VariableScope:
    """What a ``variable_scope`` block carries: its name, reuse mode and the defaults
    (initializer, regularizer, dtype, custom getter) for ``get_variable`` inside it.

    >>> VariableScope(False, name="a").name
    'a'
    """

    def __init__(self, reuse: Any, name: str = "", initializer: Any = None,
                 regularizer: Any = None, caching_device: Any = None, partitioner: Any = None,
                 custom_getter: Callable | None = None, name_scope: str = "",
                 dtype: Any = _dt.float32, use_resource: Any = None,
                 constraint: Any = None) -> None:
        self._reuse = reuse
        self._name = name
        self._initializer = initializer
        self._regularizer = regularizer
        self._caching_device = caching_device
        self._partitioner = partitioner
        self._custom_getter = custom_getter
        self._name_scope = name_scope
        self._dtype = _dt.as_dtype(dtype)
        self._use_resource = use_resource
        self._constraint = constraint

    name = property(lambda self: self._name)
    original_name_scope = property(lambda self: self._name_scope)
    reuse = property(lambda self: self._reuse)
    initializer = property(lambda self: self._initializer)
    regularizer = property(lambda self: self._regularizer)
    dtype = property(lambda self: self._dtype)
    custom_getter = property(lambda self: self._custom_getter)
    caching_device = property(lambda self: self._caching_device)
    partitioner = property(lambda self: self._partitioner)
    use_resource = property(lambda self: self._use_resource)
    constraint = property(lambda self: self._constraint)

    def reuse_variables(self) -> None:
        """From now on ``get_variable`` in this scope returns existing variables."""
        self._reuse = True

    def set_initializer(self, initializer: Any) -> None:
        self._initializer = initializer

    def set_regularizer(self, regularizer: Any) -> None:
        self._regularizer = regularizer

    def set_dtype(self, dtype: Any) -> None:
        self._dtype = _dt.as_dtype(dtype)

    def set_custom_getter(self, custom_getter: Callable | None) -> None:
        self._custom_getter = custom_getter

    def set_caching_device(self, caching_device: Any) -> None:
        self._caching_device = caching_device

    def set_partitioner(self, partitioner: Any) -> None:
        self._partitioner = partitioner

    def set_use_resource(self, use_resource: Any) -> None:
        self._use_resource = use_resource

    def get_collection(self, name: str) -> list[Any]:
        """Items of collection ``name`` whose names start with this scope's name."""
        return get_default_graph().get_collection(name, self._name + "/" if self._name else "")

    def global_variables(self) -> list[Variable]:
        return self.get_collection(GraphKeys.GLOBAL_VARIABLES)

    def trainable_variables(self) -> list[Variable]:
        return self.get_collection(GraphKeys.TRAINABLE_VARIABLES)

    def local_variables(self) -> list[Variable]:
        return self.get_collection(GraphKeys.LOCAL_VARIABLES)

    def get_variable(self, var_store: _VariableStore, name: str, shape: Any = None,
                     dtype: Any = None, initializer: Any = None, regularizer: Any = None,
                     reuse: Any = None, trainable: bool | None = None,
                     collections: Any = None, caching_device: Any = None,
                     partitioner: Any = None, validate_shape: bool = True,
                     use_resource: Any = None, custom_getter: Callable | None = None,
                     constraint: Any = None, **unused: Any) -> Variable:
        """``var_store.get_variable`` with this scope's name and defaults applied."""
        if regularizer is None:
            regularizer = self._regularizer
        if partitioner is None:
            partitioner = self._partitioner
        if custom_getter is None:
            custom_getter = self._custom_getter
        if reuse is None:
            reuse = self._reuse
        full_name = self._name + "/" + name if self._name else name
        if dtype is not None and initializer is not None and not callable(initializer):
            conv = getattr(initializer, "_as_graph_element", None)
            value = conv() if conv is not None else initializer
            init_dtype = value.dtype if isinstance(value, Tensor) else _infer_dtype(value)
            if init_dtype is not _dt.as_dtype(dtype):
                raise ValueError(f"Initializer type '{init_dtype!r}' and explicit dtype "
                                 f"'{_dt.as_dtype(dtype)!r}' don't match.")
        if initializer is None:
            initializer = self._initializer
        if dtype is None:
            dtype = self._dtype
        if constraint is None:
            constraint = self._constraint
        graph = get_default_graph()
        with graph.name_scope(""):  # variable names ignore the current name scope
            return var_store.get_variable(
                full_name, shape=shape, dtype=dtype, initializer=initializer,
                regularizer=regularizer, reuse=reuse, trainable=trainable,
                collections=collections, partitioner=partitioner,
                validate_shape=validate_shape, custom_getter=custom_getter,
                constraint=constraint)

    def __repr__(self) -> str:
        return f"<VariableScope '{self._name}' reuse={self._reuse}>"


# -- per-graph, per-thread state: the scope stack ----------------------------------------
class _ScopeState:
    def __init__(self) -> None:
        self.current = VariableScope(False)
        self.counts: dict[str, int] = {}  # opened scope name -> times (for default_name)


def _scope_state(graph: Graph) -> _ScopeState:
    state = getattr(graph._local, "var_scope", None)
    if state is None:
        state = graph._local.var_scope = _ScopeState()
    return state


@export("get_variable_scope")
def get_variable_scope() -> VariableScope:
    """The current ``VariableScope`` of the default graph (the root scope has name ``""``).

    >>> get_variable_scope().name
    ''
    """
    return _scope_state(get_default_graph()).current


def _unique_scope_name(state: _ScopeState, prefix: str) -> str:
    base = state.current.name + "/" + prefix if state.current.name else prefix
    if not state.counts.get(base):
        return prefix
    i = 1
    while state.counts.get(f"{base}_{i}"):
        i += 1
    return f"{prefix}_{i}"


@export("variable_scope")
class variable_scope:  # noqa: N801 - TF1's public name
    """``with tf.variable_scope(name_or_scope, default_name=None, values=None, ...,
    reuse=None, ...) as scope:`` names ``get_variable``'s variables ``scope/...`` and sets
    their reuse mode (``True``, ``tf.AUTO_REUSE``, or inherited; ``False`` cannot undo an
    outer ``True``) and defaults (initializer, regularizer, dtype, custom getter).

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     with tf.variable_scope(None, default_name="dense") as a:
    ...         pass
    ...     with tf.variable_scope(None, default_name="dense") as b:
    ...         pass
    ...     a.name, b.name
    ('dense', 'dense_1')
    """

    def __init__(self, name_or_scope: str | VariableScope | None,
                 default_name: str | None = None, values: Any = None,
                 initializer: Any = None, regularizer: Any = None, caching_device: Any = None,
                 partitioner: Any = None, custom_getter: Callable | None = None,
                 reuse: Any = None, dtype: Any = None, use_resource: Any = None,
                 constraint: Any = None, auxiliary_name_scope: bool = True) -> None:
        if default_name is None and name_or_scope is None:
            raise TypeError("If default_name is None then name_or_scope is required")
        if name_or_scope is not None and not isinstance(name_or_scope, (str, VariableScope)):
            raise TypeError(f"VariableScope: name_or_scope must be a string or VariableScope, "
                            f"got {name_or_scope!r}.")
        if reuse is False:  # TF1: reuse cannot be switched off once on; False means inherit
            reuse = None
        if not (reuse is True or reuse is None or reuse is AUTO_REUSE):
            raise ValueError("The reuse parameter must be True or False or None.")
        if not isinstance(auxiliary_name_scope, bool):
            raise TypeError("The auxiliary_name_scope must be `True` or `False`, while get "
                            f"{auxiliary_name_scope}")
        self._name_or_scope = name_or_scope
        self._default_name = default_name
        self._values = values
        self._defaults = dict(initializer=initializer, regularizer=regularizer,
                              caching_device=caching_device, partitioner=partitioner,
                              custom_getter=custom_getter, dtype=dtype,
                              use_resource=use_resource, constraint=constraint)
        self._reuse = reuse
        self._auxiliary_name_scope = auxiliary_name_scope
        self._exit: contextlib.ExitStack | None = None

    def __enter__(self) -> VariableScope:
        stack = contextlib.ExitStack()
        try:
            scope = self._enter(stack)
        except BaseException:
            stack.close()
            raise
        self._exit = stack
        return scope

    def __exit__(self, *exc: Any) -> None:
        stack, self._exit = self._exit, None
        if stack is not None:
            stack.__exit__(*exc)

    def _enter(self, stack: contextlib.ExitStack) -> VariableScope:
        graph = _graph_of(self._values) if self._values else get_default_graph()
        stack.enter_context(graph.as_default())
        state = _scope_state(graph)
        given = self._name_or_scope
        if not self._auxiliary_name_scope:
            current = graph.get_name_scope()
            name_scope = graph.name_scope(current + "/" if current else "")
        elif given is None:
            if self._reuse is True:
                raise ValueError("reuse=True cannot be used without a name_or_scope")
            name_scope = graph.name_scope(self._default_name)
        elif isinstance(given, str):
            name_scope = graph.name_scope(given) if given else None
        else:
            name_scope = graph.name_scope(given.name.split("/")[-1])
        opened = stack.enter_context(name_scope) if name_scope is not None else ""
        old = state.current
        if isinstance(given, VariableScope):
            scope = VariableScope(
                self._reuse or given.reuse, name=given.name, initializer=given.initializer,
                regularizer=given.regularizer, caching_device=given.caching_device,
                partitioner=given.partitioner, custom_getter=given.custom_getter,
                name_scope=given.original_name_scope, dtype=given.dtype,
                use_resource=given.use_resource, constraint=given.constraint)
            saved_counts = dict(state.counts)
        else:
            short = given if given is not None else _unique_scope_name(
                state, self._default_name)
            new_name = old.name + "/" + short if old.name else short
            scope = VariableScope(
                self._reuse or old.reuse, name=new_name, initializer=old.initializer,
                regularizer=old.regularizer, caching_device=old.caching_device,
                partitioner=old.partitioner, custom_getter=old.custom_getter,
                name_scope=opened, dtype=old.dtype, use_resource=old.use_resource,
                constraint=old.constraint)
            saved_counts = None
        state.counts[scope.name] = state.counts.get(scope.name, 0) + 1
        for key, value in self._defaults.items():
            if value is not None:
                getattr(scope, "set_" + key)(value)
        state.current = scope

        def restore() -> None:
            state.current = old
            if saved_counts is not None:
                state.counts = saved_counts
            else:  # sub-scopes of a closed scope start counting afresh when it is reopened
                prefix = scope.name + "/"
                for k in state.counts:
                    if k.startswith(prefix):
                        state.counts[k] = 0
        stack.callback(restore)
        return scope


@export("get_variable")
def get_variable(name: str, shape: Any = None, dtype: Any = None, initializer: Any = None,
                 regularizer: Any = None, trainable: bool | None = None,
                 collections: Any = None, caching_device: Any = None,
                 partitioner: Any = None, validate_shape: bool = True,
                 use_resource: Any = None, custom_getter: Callable | None = None,
                 constraint: Any = None, synchronization: Any = None,
                 aggregation: Any = None) -> Variable:
    """The variable ``<scope>/<name>``: created (``initializer`` default: Glorot uniform for
    floats, zeros for integers) or, in a reusing scope, the existing one.

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     with tf.variable_scope("s", reuse=tf.AUTO_REUSE):
    ...         a = tf.get_variable("b", [3], initializer=tf.zeros_initializer())
    ...         a is tf.get_variable("b", [3])
    True
    """
    return get_variable_scope().get_variable(
        _store(get_default_graph()), name, shape=shape, dtype=dtype, initializer=initializer,
        regularizer=regularizer, trainable=trainable, collections=collections,
        caching_device=caching_device, partitioner=partitioner,
        validate_shape=validate_shape, use_resource=use_resource,
        custom_getter=custom_getter, constraint=constraint)


@export("get_local_variable")
def get_local_variable(name: str, shape: Any = None, dtype: Any = None,
                       initializer: Any = None, regularizer: Any = None,
                       trainable: bool = False, collections: Any = None,
                       **kwargs: Any) -> Variable:
    """``get_variable`` into ``LOCAL_VARIABLES`` (not trainable, not global)."""
    collections = list(collections or []) + [GraphKeys.LOCAL_VARIABLES]
    return get_variable(name, shape=shape, dtype=dtype, initializer=initializer,
                        regularizer=regularizer, trainable=False, collections=collections,
                        **kwargs)
