"""Graph, Operation and Tensor: the TF1 data structures, and the per-thread default graph.

Ops are created by registered op definitions (``engine.registry``); this module only holds
them. Creation order is a topological order (inputs exist before their consumers), which the
session and ``gradients`` rely on.

>>> g = Graph()
>>> with g.as_default(), name_scope("layer"):
...     c = constant(1.0)
>>> c.name, c.graph is g
('layer/Const:0', True)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from gradverify.engine import dtypes as _dt
from gradverify.engine.shapes import TensorShape, as_shape

__all__ = [
    "Graph", "Operation", "Tensor", "GraphKeys", "get_default_graph", "reset_default_graph",
    "name_scope", "control_dependencies", "convert_to_tensor", "add_to_collection",
    "get_collection", "get_collection_ref", "set_random_seed", "constant_value",
]


class GraphKeys:
    """Standard collection names."""

    GLOBAL_VARIABLES = "variables"
    TRAINABLE_VARIABLES = "trainable_variables"
    LOCAL_VARIABLES = "local_variables"
    MODEL_VARIABLES = "model_variables"
    TRAIN_OP = "train_op"
    LOSSES = "losses"
    REGULARIZATION_LOSSES = "regularization_losses"
    GLOBAL_STEP = "global_step"
    UPDATE_OPS = "update_ops"
    SUMMARIES = "summaries"


def _operator(fn_name: str, op_name: str, reverse: bool = False) -> Any:
    def method(self: Any, other: Any) -> Any:
        from gradverify.engine.registry import api
        fn = api(fn_name)
        return fn(other, self, name=op_name) if reverse else fn(self, other, name=op_name)
    method.__name__ = fn_name
    return method


def _unary(fn_name: str, op_name: str) -> Any:
    def method(self: Any) -> Any:
        from gradverify.engine.registry import api
        return api(fn_name)(self, name=op_name)
    method.__name__ = fn_name
    return method


class _OperatorMixin:
    """Python operators build ops: ``a + b`` is ``add(a, b, name="add")`` (TF1's names)."""

    __slots__ = ()
    __array_ufunc__ = None  # ndarray <op> Tensor defers to the Tensor's reflected method

    __add__ = _operator("add", "add")
    __radd__ = _operator("add", "add", reverse=True)
    __sub__ = _operator("subtract", "sub")
    __rsub__ = _operator("subtract", "sub", reverse=True)
    __mul__ = _operator("multiply", "mul")
    __rmul__ = _operator("multiply", "mul", reverse=True)
    __truediv__ = _operator("truediv", "truediv")
    __rtruediv__ = _operator("truediv", "truediv", reverse=True)
    __floordiv__ = _operator("floordiv", "floordiv")
    __rfloordiv__ = _operator("floordiv", "floordiv", reverse=True)
    __mod__ = _operator("floormod", "mod")
    __rmod__ = _operator("floormod", "mod", reverse=True)
    __pow__ = _operator("pow", "pow")
    __rpow__ = _operator("pow", "pow", reverse=True)
    __matmul__ = _operator("matmul", "matmul")
    __rmatmul__ = _operator("matmul", "matmul", reverse=True)
    __lt__ = _operator("less", "Less")
    __le__ = _operator("less_equal", "LessEqual")
    __gt__ = _operator("greater", "Greater")
    __ge__ = _operator("greater_equal", "GreaterEqual")
    __and__ = _operator("logical_and", "LogicalAnd")
    __rand__ = _operator("logical_and", "LogicalAnd", reverse=True)
    __or__ = _operator("logical_or", "LogicalOr")
    __ror__ = _operator("logical_or", "LogicalOr", reverse=True)
    __neg__ = _unary("negative", "Neg")
    __abs__ = _unary("abs", "Abs")
    __invert__ = _unary("logical_not", "LogicalNot")

    def __getitem__(self, key: Any) -> Any:
        from gradverify.engine.registry import api
        return api("_internal.getitem")(self, key)


class Tensor(_OperatorMixin):
    """One output of an Operation: symbolic, valued only inside ``Session.run``.

    Python operators build ops (``a + b`` is an ``Add`` op named ``add``).
    """

    __slots__ = ("op", "value_index", "dtype", "_shape", "_consumers", "_is_ref",
                 "__weakref__")

    def __init__(self, op: Operation, value_index: int, dtype: _dt.DType,
                 shape: TensorShape, is_ref: bool = False):
        self.op = op
        self.value_index = value_index
        self.dtype = dtype
        self._shape = shape
        self._consumers: list[Operation] = []
        self._is_ref = is_ref

    @property
    def name(self) -> str:
        return f"{self.op.name}:{self.value_index}"

    @property
    def graph(self) -> Graph:
        return self.op.graph

    @property
    def shape(self) -> TensorShape:
        return self._shape

    def get_shape(self) -> TensorShape:
        return self._shape

    def set_shape(self, shape: Any) -> None:
        """Narrow the static shape (ValueError if incompatible)."""
        self._shape = self._shape.merge_with(as_shape(shape))

    @property
    def device(self) -> str:
        return ""

    def consumers(self) -> list[Operation]:
        return list(self._consumers)

    def eval(self, feed_dict: dict | None = None, session: Any = None) -> np.ndarray:
        """Value of this tensor in ``session`` (default: the default session)."""
        from gradverify.engine.session import _session_for
        return _session_for(session, self.graph, "evaluate tensor").run(self, feed_dict)

    def __repr__(self) -> str:
        return (f"<tf.Tensor '{self.name}' shape={self._shape} "
                f"dtype={self.dtype.name}{'_ref' if self._is_ref else ''}>")

    __str__ = __repr__

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: Any) -> bool:  # identity, as in TF1 (tensors are dict keys)
        return self is other

    def __bool__(self) -> bool:
        raise TypeError("Using a `tf.Tensor` as a Python `bool` is not allowed. Use `if t is "
                        "not None:` instead of `if t:` to test if a tensor is defined, and use "
                        "TensorFlow ops such as tf.cond to execute subgraphs conditioned on "
                        "the value of a tensor.")

    def __iter__(self) -> Iterator:
        dims = self._shape.as_tuple()
        if dims is None or not dims or dims[0] is None:
            raise TypeError("Tensor objects are only iterable when eager execution is "
                            "enabled or the first dimension is known.")
        return iter(self[i] for i in range(dims[0]))

    def __len__(self) -> int:
        raise TypeError(f"len is not well defined for symbolic Tensors. ({self.name}) "
                        "Please call `x.shape` rather than `len(x)` for shape information.")


class Operation:
    """A node: ``type``, ``name``, ``inputs``, ``outputs``, ``control_inputs``, attrs."""

    __slots__ = ("graph", "name", "type", "opdef", "inputs", "outputs", "control_inputs",
                 "attrs", "_id", "__weakref__")

    def __init__(self, graph: Graph, name: str, opdef: Any, inputs: tuple[Tensor, ...],
                 attrs: dict[str, Any], control_inputs: list[Operation]):
        self.graph = graph
        self.name = name
        self.opdef = opdef
        self.type = opdef.type
        self.inputs = inputs
        self.attrs = attrs
        self.control_inputs = list(control_inputs)
        self.outputs: tuple[Tensor, ...] = ()
        self._id = -1

    def get_attr(self, name: str) -> Any:
        try:
            return self.attrs[name]
        except KeyError:
            raise ValueError(f"Operation '{self.name}' has no attr named '{name}'.") from None

    @property
    def node_def(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.type,
                "input": [t.name for t in self.inputs]
                + ["^" + c.name for c in self.control_inputs],
                "attr": dict(self.attrs)}

    def values(self) -> tuple[Tensor, ...]:
        return self.outputs

    @property
    def device(self) -> str:
        return ""

    def _add_control_input(self, op: Operation) -> None:
        if op._id > self._id:
            raise ValueError(f"Control input '{op.name}' of '{self.name}' must be created "
                             "before the op it controls.")
        if op not in self.control_inputs:
            self.control_inputs.append(op)

    def run(self, feed_dict: dict | None = None, session: Any = None) -> None:
        """Run this op in ``session`` (default: the default session)."""
        from gradverify.engine.session import _session_for
        _session_for(session, self.graph, "execute operation").run(self, feed_dict)

    def __repr__(self) -> str:
        return f"<tf.Operation '{self.name}' type={self.type}>"

    __str__ = __repr__


class Graph:
    """A TF1 graph: ops in creation order, unique names, name scopes and collections.

    >>> g = Graph()
    >>> with g.as_default():
    ...     a = constant(1.0); b = constant(2.0)
    >>> [op.name for op in g.get_operations()]
    ['Const', 'Const_1']
    """

    def __init__(self) -> None:
        self._ops: list[Operation] = []
        self._by_name: dict[str, Operation] = {}
        self._names_in_use: dict[str, int] = {}
        self._collections: dict[str, list[Any]] = {}
        self._local = threading.local()
        self._lock = threading.RLock()
        self._finalized = False
        self.seed: int | None = None
        self._last_op_seed = 0

    # -- per-thread construction state -----------------------------------------------------
    @property
    def _name_stack(self) -> str:
        return getattr(self._local, "name_stack", "")

    @_name_stack.setter
    def _name_stack(self, value: str) -> None:
        self._local.name_stack = value

    @property
    def _control_stack(self) -> list[list[Operation] | None]:
        stack = getattr(self._local, "control_stack", None)
        if stack is None:
            stack = self._local.control_stack = []
        return stack

    # -- ops -------------------------------------------------------------------------------
    def _add_op(self, op: Operation) -> None:
        with self._lock:
            if self._finalized:
                raise RuntimeError("Graph is finalized and cannot be modified.")
            op._id = len(self._ops)
            self._ops.append(op)
            self._by_name[op.name] = op
            for t in op.inputs:
                t._consumers.append(op)

    def _current_control_inputs(self) -> list[Operation]:
        ops: list[Operation] = []
        for frame in self._control_stack:
            if frame is None:  # control_dependencies(None) clears outer frames
                ops = []
            else:
                ops.extend(o for o in frame if o not in ops)
        return ops

    def get_operations(self) -> list[Operation]:
        return list(self._ops)

    def get_operation_by_name(self, name: str) -> Operation:
        if not isinstance(name, str):
            raise TypeError(f"Operation names are strings (or similar), not {type(name)}.")
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"The name '{name}' refers to an Operation not in the "
                           "graph.") from None

    def get_tensor_by_name(self, name: str) -> Tensor:
        if not isinstance(name, str):
            raise TypeError(f"Tensor names are strings (or similar), not {type(name)}.")
        op_name, sep, index = name.rpartition(":")
        if not sep or not index.isdigit():
            raise ValueError(f"The name '{name}' looks a like an Operation name, not a Tensor "
                             "name. Tensor names must be of the form \"<op_name>:<output_index>\".")
        op = self._by_name.get(op_name)
        if op is None:
            raise KeyError(f"The name '{name}' refers to a Tensor which does not exist. The "
                           f"operation, '{op_name}', does not exist in the graph.")
        if int(index) >= len(op.outputs):
            raise KeyError(f"The name '{name}' refers to a Tensor which does not exist. The "
                           f"operation, '{op_name}', exists but only has {len(op.outputs)} "
                           "outputs.")
        return op.outputs[int(index)]

    def as_graph_element(self, obj: Any, allow_tensor: bool = True,
                         allow_operation: bool = True) -> Tensor | Operation:
        """Resolve a Tensor, Operation, Variable or name to an element of this graph."""
        if isinstance(obj, str):
            if ":" in obj and allow_tensor:
                return self.get_tensor_by_name(obj)
            if allow_operation:
                return self.get_operation_by_name(obj)
            raise ValueError(f"Name '{obj}' appears to refer to an Operation, not a Tensor.")
        conv = getattr(obj, "_as_graph_element", None)
        if conv is not None:
            obj = conv()
        allowed = (Tensor,) * allow_tensor + (Operation,) * allow_operation
        if isinstance(obj, (Tensor, Operation)) and not isinstance(obj, allowed):
            kinds = " or ".join(["Tensor"] * allow_tensor + ["Operation"] * allow_operation)
            raise TypeError(f"Can not convert a {type(obj).__name__} into a {kinds}.")
        if isinstance(obj, (Tensor, Operation)):
            if obj.graph is not self:
                raise ValueError(f"{obj} is not an element of this graph.")
            return obj
        kinds = " or ".join(["Tensor"] * allow_tensor + ["Operation"] * allow_operation)
        raise TypeError(f"Can not convert a {type(obj).__name__} into a {kinds}.")

    @property
    def version(self) -> int:
        return len(self._ops)

    @property
    def finalized(self) -> bool:
        return self._finalized

    def finalize(self) -> None:
        self._finalized = True

    # -- names -----------------------------------------------------------------------------
    def unique_name(self, name: str, mark_as_used: bool = True) -> str:
        """``name`` under the current scope, suffixed ``_1``, ``_2`` ... if already taken."""
        if self._name_stack:
            name = self._name_stack + "/" + name
        key = name.lower()
        count = self._names_in_use.get(key, 0)
        if mark_as_used:
            self._names_in_use[key] = count + 1
        if count > 0:
            base = name
            while True:
                name = f"{base}_{count}"
                if name.lower() not in self._names_in_use:
                    break
                count += 1
            if mark_as_used:
                self._names_in_use[name.lower()] = 1
        return name

    def get_name_scope(self) -> str:
        return self._name_stack

    @contextlib.contextmanager
    def name_scope(self, name: str | None) -> Iterator[str]:
        """Prefix names of ops created inside with ``name/``; a re-opened name gets ``_1``.

        A name ending in ``/`` is used verbatim; ``None`` or ``""`` resets to the top level.
        """
        old = self._name_stack
        if not name:
            new = ""
        elif name.endswith("/"):
            new = name[:-1]
        else:
            new = self.unique_name(name)
        self._name_stack = new
        try:
            yield new + "/" if new else ""
        finally:
            self._name_stack = old

    # -- control dependencies --------------------------------------------------------------
    @contextlib.contextmanager
    def control_dependencies(self, control_inputs: Any) -> Iterator[None]:
        """Ops created inside run only after ``control_inputs`` (ops or tensors)."""
        if control_inputs is None:
            frame = None
        else:
            frame = []
            for c in control_inputs:
                c = getattr(c, "_as_graph_element", lambda c=c: c)()
                if isinstance(c, Tensor):
                    c = c.op
                if not isinstance(c, Operation):
                    raise TypeError(f"Control input must be Operation or Tensor: {c!r}")
                if c.graph is not self:
                    raise ValueError(f"Control input {c} must be from the same graph.")
                frame.append(c)
        self._control_stack.append(frame)
        try:
            yield
        finally:
            self._control_stack.pop()

    # -- collections -----------------------------------------------------------------------
    def add_to_collection(self, name: str, value: Any) -> None:
        self._collections.setdefault(name, []).append(value)

    def add_to_collections(self, names: Any, value: Any) -> None:
        for name in [names] if isinstance(names, str) else set(names):
            self.add_to_collection(name, value)

    def get_collection(self, name: str, scope: str | None = None) -> list[Any]:
        """A copy of the collection, in insertion order, optionally filtered by name prefix."""
        items = self._collections.get(name, [])
        if scope is None:
            return list(items)
        return [i for i in items if getattr(i, "name", "").startswith(scope)]

    def get_collection_ref(self, name: str) -> list[Any]:
        return self._collections.setdefault(name, [])

    def get_all_collection_keys(self) -> list[str]:
        return list(self._collections)

    def clear_collection(self, name: str) -> None:
        self._collections.pop(name, None)

    # -- default graph ---------------------------------------------------------------------
    @contextlib.contextmanager
    def as_default(self) -> Iterator[Graph]:
        """Make this the default graph of the current thread inside the ``with`` block."""
        stack = _graph_stack()
        stack.append(self)
        try:
            yield self
        finally:
            stack.pop()

    def _next_op_seed(self) -> int:
        self._last_op_seed += 1
        return self._last_op_seed


# -- default graph: a per-thread stack over a lazily created global graph -------------------
_thread = threading.local()
_global_graph: Graph | None = None
_global_lock = threading.Lock()


def _graph_stack() -> list[Graph]:
    stack = getattr(_thread, "graphs", None)
    if stack is None:
        stack = _thread.graphs = []
    return stack


def get_default_graph() -> Graph:
    """The innermost graph of this thread's ``as_default`` blocks, else the global graph."""
    stack = _graph_stack()
    if stack:
        return stack[-1]
    global _global_graph
    if _global_graph is None:
        with _global_lock:
            if _global_graph is None:
                _global_graph = Graph()
    return _global_graph


def reset_default_graph() -> None:
    """Replace the global default graph; not allowed inside a ``Graph.as_default()`` block."""
    if _graph_stack():
        raise AssertionError("Do not use tf.reset_default_graph() to clear nested graphs. If "
                             "you need a cleared graph, exit the nesting and create a new "
                             "graph.")
    global _global_graph
    _global_graph = None


def name_scope(name: str | None, default_name: str | None = None,
               values: Any = None) -> Any:
    """``tf.name_scope``: a scope in the graph of ``values`` (else the default graph)."""
    g = _graph_of(values) if values else get_default_graph()
    return g.name_scope(name if name is not None else default_name)


def control_dependencies(control_inputs: Any) -> Any:
    """``tf.control_dependencies`` on the default graph."""
    return get_default_graph().control_dependencies(control_inputs)


def add_to_collection(name: str, value: Any) -> None:
    get_default_graph().add_to_collection(name, value)


def get_collection(key: str, scope: str | None = None) -> list[Any]:
    return get_default_graph().get_collection(key, scope)


def get_collection_ref(key: str) -> list[Any]:
    return get_default_graph().get_collection_ref(key)


def set_random_seed(seed: int | None) -> None:
    """Graph-level seed: random ops without their own seed become reproducible."""
    get_default_graph().seed = seed


def _graph_of(values: Any) -> Graph:
    """The graph of the first graph element among ``values``, else the default graph."""
    for v in values:
        t = getattr(v, "_as_graph_element", None)
        v = t() if t is not None else v
        if isinstance(v, (Tensor, Operation)):
            return v.graph
    return get_default_graph()


# -- conversion of Python and NumPy values ---------------------------------------------------
def _infer_dtype(value: Any) -> _dt.DType:
    if isinstance(value, np.ndarray | np.generic):
        return _dt.as_dtype(value.dtype)
    if isinstance(value, (list, tuple)):
        from gradverify.engine.autopack import nested_tensor_dtype
        packed = nested_tensor_dtype(value)  # a list holding tensors packs to their dtype
        if packed is not None:
            return packed
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        return _dt.float32
    if arr.dtype.kind in "iu":
        return _dt.int32 if arr.size == 0 or (
            np.all(arr >= -2**31) and np.all(arr < 2**31)) else _dt.int64
    if arr.dtype.kind == "b":
        return _dt.bool
    return _dt.as_dtype(arr.dtype)


def to_numpy(value: Any, dtype: _dt.DType | None, what: str = "value") -> np.ndarray:
    """Convert a Python/NumPy value to an ndarray of ``dtype``; TypeError on a lossy cast."""
    if dtype is None:
        dtype = _infer_dtype(value)
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"Failed to convert {what} {value!r} to a numpy array: {e}") from None
    if arr.dtype == object:
        raise TypeError(f"Failed to convert object of type {type(value)} to Tensor. Contents: "
                        f"{value!r}. Consider casting elements to a supported type.")
    if dtype.is_integer and arr.dtype.kind == "f" and (
            not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))):
            raise TypeError(f"Expected {dtype.name}, got {value!r} of type "
                            f"'{type(value).__name__}' instead.")
    if dtype.is_bool and arr.dtype.kind != "b":
        raise TypeError(f"Expected bool, got {value!r} of type '{type(value).__name__}' "
                        "instead.")
    if (not dtype.is_bool and arr.dtype.kind == "b") or arr.dtype.kind in "US":
        raise TypeError(f"Expected {dtype.name}, got {value!r} of type "
                        f"'{type(value).__name__}' instead.")
    return arr.astype(dtype.np, copy=False)


def convert_to_tensor(value: Any, dtype: Any = None, name: str | None = None,
                      preferred_dtype: Any = None) -> Tensor:
    """A Tensor for ``value``: Tensors pass through, Variables give their value, anything
    else becomes a Const (Python floats are float32, ints int32, NumPy keeps its dtype).

    >>> with Graph().as_default():
    ...     convert_to_tensor([1.0, 2.0]).dtype
    tf.float32
    """
    dtype = None if dtype is None else _dt.as_dtype(dtype)
    conv = getattr(value, "_as_graph_element", None)
    if conv is not None:
        value = conv()
    if isinstance(value, Tensor):
        if dtype is not None and value.dtype is not dtype:
            raise ValueError(f"Tensor conversion requested dtype {dtype.name} for Tensor with "
                             f"dtype {value.dtype.name}: {value!r}")
        return value
    if isinstance(value, Operation):
        raise TypeError(f"Can't convert Operation '{value.name}' to Tensor (target dtype="
                        f"{dtype}, name={name}, as_ref=False)")
    if value is None:
        raise ValueError("None values not supported.")
    if isinstance(value, (list, tuple)):
        from gradverify.engine.autopack import autopack, nested_tensor_dtype
        if nested_tensor_dtype(value) is not None:  # [tf.shape(x)[0], -1]: one Pack op
            return autopack(value, dtype, name)
    if dtype is None and preferred_dtype is not None:
        try:
            return constant(value, dtype=preferred_dtype, name=name or "Const")
        except TypeError:
            pass
    return constant(value, dtype=dtype, name=name or "Const")


def constant(value: Any, dtype: Any = None, shape: Any = None, name: str = "Const",
             verify_shape: bool = False) -> Tensor:
    """``tf.constant``: a Const op holding ``value`` (broadcast to ``shape`` if given)."""
    from gradverify.engine.registry import lookup
    dtype = None if dtype is None else _dt.as_dtype(dtype)
    arr = to_numpy(value, dtype)
    if shape is not None:
        arr = _fit_to_shape(arr, shape, verify_shape)
    arr = np.array(arr, copy=True)
    arr.flags.writeable = False
    return lookup("Const")(value=arr, dtype=_dt.as_dtype(arr.dtype), name=name)


def _fit_to_shape(arr: np.ndarray, shape: Any, verify_shape: bool) -> np.ndarray:
    """TF1's ``make_tensor_proto`` with a shape: a scalar fills it; fewer values than the shape
    holds are padded with the last value (a proto's repeated field); more are an error."""
    dims = tuple(int(getattr(d, "value", d)) for d in (
        shape.as_list() if hasattr(shape, "as_list") else shape))
    if any(d < 0 for d in dims):
        raise ValueError(f"Dimension -1 must be >= 0 in shape {list(dims)} of a constant.")
    if verify_shape and arr.shape != dims:
        raise TypeError(f"Expected Tensor's shape: {dims}, got {arr.shape}.")
    if arr.shape == dims:
        return arr
    size = int(np.prod(dims, dtype=np.int64))
    if arr.size > size:
        raise ValueError(f"Too many elements provided. Needed at most {size}, but received "
                         f"{arr.size}")
    flat = arr.reshape(-1)
    if flat.size == 0:
        return np.zeros(dims, dtype=arr.dtype)
    pad = np.full(size - flat.size, flat[-1], dtype=arr.dtype)
    return np.concatenate([flat, pad]).reshape(dims)


def constant_value(tensor: Tensor) -> np.ndarray | None:
    """The value of ``tensor`` if it is known at graph-construction time, else None.

    Used by shape inference (``reshape(x, [-1, 784])``, ``fill(dims, v)``) and to fold
    shape arithmetic in gradients.
    """
    fold = getattr(tensor.op.opdef, "constant_fold", None)
    value = None if fold is None else fold(tensor)
    if value is None and tensor.op.type == "StridedSlice":
        from gradverify.engine.static_shapes import shape_slice_value
        value = shape_slice_value(tensor)  # tf.shape(x)[1] with x's dim 1 known
    return value
