"""The op registry: the one place an op is defined.

An op is one block: the NumPy kernel (decorated by :func:`op` with its tester metadata), an
optional shape rule, and its gradient in TF1's ``(op, grad)`` form, built from engine ops so
higher orders work. The registry then gives the public builder (``engine.nn.relu``), the
session its kernel, ``gradients`` its rule and ``properties/`` its metadata.

>>> import numpy as np
>>> from gradverify.engine import meta
>>> @op("MySquare", inputs={"x": meta.reals}, api=None)
... def my_square(x):
...     return x * x
>>> @my_square.gradient
... def _my_square_grad(op, grad):
...     return grad * 2.0 * op.inputs[0]
>>> lookup("MySquare") is my_square
True
>>> unregister("MySquare")
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradverify.engine import dtypes as _dt
from gradverify.engine import meta as _meta
from gradverify.engine.graph import (
    Operation,
    Tensor,
    _graph_of,
    _infer_dtype,
    constant_value,
    convert_to_tensor,
)
from gradverify.engine.shapes import TensorShape, as_shape, broadcast_shapes, unknown_shape

__all__ = ["op", "OpDef", "ShapeContext", "lookup", "get", "list_ops", "ops", "unregister",
           "export", "public_names", "api_paths", "materialize_namespaces", "REQUIRED"]

REQUIRED = object()  # marks an attribute with no default
_OPS: dict[str, OpDef] = {}
# The engine package whose (sub)modules receive exported names: "gradverify.engine".
_ENGINE = __name__.rpartition(".")[0]
_API: dict[str, dict[str, Any]] = {}
_API_SOURCE: dict[str, str] = {}


def _source_of(fn: Callable) -> str:
    while getattr(fn, "__wrapped__", None) is not None:  # a decorated kernel: its own line
        fn = fn.__wrapped__
    code = getattr(fn, "__code__", None)
    if code is None:
        return repr(fn)
    return f"{code.co_filename}:{code.co_firstlineno}"


class ShapeContext:
    """What a shape rule sees: input shapes and dtypes, attributes, constant input values.

    Built from an Operation at construction time and from concrete arrays when a kernel fails
    at run time, so one rule yields TF's message in both cases.
    """

    __slots__ = ("name", "type", "input_shapes", "input_dtypes", "attrs", "_const", "_tensors")

    def __init__(self, name: str, type: str, input_shapes: Sequence[TensorShape],
                 input_dtypes: Sequence[_dt.DType], attrs: Mapping[str, Any],
                 const: Callable[[int], np.ndarray | None]):
        self.name = name
        self.type = type
        self.input_shapes = list(input_shapes)
        self.input_dtypes = list(input_dtypes)
        self.attrs = attrs
        self._const = const
        self._tensors: Sequence[Tensor] | None = None  # the op's inputs, when built from one

    @classmethod
    def of_op(cls, op: Operation) -> ShapeContext:
        ctx = cls(op.name, op.type, [t.shape for t in op.inputs], [t.dtype for t in op.inputs],
                  op.attrs, lambda i: constant_value(op.inputs[i]))
        ctx._tensors = op.inputs
        return ctx

    @classmethod
    def of_arrays(cls, op: Operation, arrays: Sequence[Any]) -> ShapeContext:
        arrays = [np.asarray(a) for a in arrays]
        return cls(op.name, op.type, [TensorShape(a.shape) for a in arrays],
                   [t.dtype for t in op.inputs], op.attrs, lambda i: arrays[i])

    def const(self, i: int) -> np.ndarray | None:
        """The value of input ``i`` if known now (a constant, or the run-time value)."""
        return self._const(i)

    def const_as_shape(self, i: int) -> TensorShape:
        """What is known of shape-valued input ``i``: a partial shape (``[n, 3]`` with ``n``
        unknown is ``[None, 3]``), from its value if known, else from how it was built."""
        value = self._const(i)
        if value is not None:
            return TensorShape([None if int(d) < 0 else int(d)
                                for d in np.asarray(value).reshape(-1)])
        if self._tensors is None:
            n = self.input_shapes[i].as_tuple()
            return unknown_shape(n[0] if n else None)
        from gradverify.engine.static_shapes import constant_value_as_shape
        return constant_value_as_shape(self._tensors[i])

    def fail(self, message: str) -> ValueError:
        """A ValueError in TF's form: message, op name and type, input shapes."""
        shapes = ", ".join(s.as_tf_str() for s in self.input_shapes)
        return ValueError(f"{message} for '{self.name}' (op: '{self.type}') with input "
                          f"shapes: {shapes}.")

    def rank_at_least(self, i: int, rank: int) -> TensorShape:
        s = self.input_shapes[i]
        if s.ndims is not None and s.ndims < rank:
            raise self.fail(f"Shape must be at least rank {rank} but is rank {s.ndims}")
        return s

    def rank_exactly(self, i: int, rank: int) -> TensorShape:
        s = self.input_shapes[i]
        if s.ndims is not None and s.ndims != rank:
            raise self.fail(f"Shape must be rank {rank} but is rank {s.ndims}")
        return s if s.ndims is not None else unknown_shape(rank)

    def merge(self, a: int | None, b: int | None) -> int | None:
        """Merge two dims; a conflict is TF's "Dimensions must be equal" error."""
        if a is not None and b is not None and a != b:
            raise self.fail(f"Dimensions must be equal, but are {a} and {b}")
        return a if a is not None else b

    def normalize_axis(self, axis: int, rank: int, what: str = "axis") -> int:
        if not -rank <= axis < rank:
            raise self.fail(f"Invalid {what} {axis}: must be in range [-{rank}, {rank})")
        return axis % rank if rank else 0


# -- default shape rules, chosen by the op's ``signature`` ---------------------------------
_GROUPS = r"(\([^)]*\)(?:\s*,\s*\([^)]*\))*)"
_GUFUNC = re.compile(rf"^\s*{_GROUPS}\s*->\s*{_GROUPS}\s*$")


def _parse_gufunc(sig: str) -> tuple[list[list[str]], list[list[str]]]:
    m = _GUFUNC.match(sig)
    if m is None:
        raise ValueError(f"Bad gufunc signature {sig!r}")

    def parts(s: str) -> list[list[str]]:
        return [[d.strip() for d in grp.split(",") if d.strip()]
                for grp in re.findall(r"\(([^)]*)\)", s)]
    return parts(m.group(1)), parts(m.group(2))


def _gufunc_rule(sig: str) -> Callable[[ShapeContext], list[TensorShape]]:
    ins, outs = _parse_gufunc(sig)

    def rule(ctx: ShapeContext) -> list[TensorShape]:
        bound: dict[str, int | None] = {}
        loops = []
        for i, core in enumerate(ins):
            s = ctx.rank_at_least(i, len(core))
            if s.ndims is None:
                loops.append(unknown_shape())
                for d in core:
                    bound.setdefault(d, None)
                continue
            dims = s.as_list()
            loops.append(TensorShape(dims[:len(dims) - len(core)]))
            for sym, d in zip(core, dims[len(dims) - len(core):]):
                bound[sym] = ctx.merge(bound.get(sym), d)
        loop = broadcast_shapes(loops, ctx.name, ctx.type)
        if loop.ndims is None:
            return [unknown_shape() for _ in outs]
        return [TensorShape(loop.as_list() + [bound.get(d) for d in core]) for core in outs]
    return rule


def _elementwise_rule(ctx: ShapeContext) -> list[TensorShape]:
    return [ctx.input_shapes[0]]


def _broadcast_rule(ctx: ShapeContext) -> list[TensorShape]:
    return [broadcast_shapes(ctx.input_shapes, ctx.name, ctx.type)]


class OpDef:
    """A registered op: kernel, shape rule, gradient and tester metadata together.

    Call it to build the op in a graph: ``relu(x, name="r")`` returns the output Tensor (a
    tuple for several outputs, the Operation for none).
    """

    def __init__(self, type: str, kernel: Callable, *, inputs: Mapping[str, _meta.Domain],
                 outputs: Sequence[str], attrs: Mapping[str, Any],
                 choices: Mapping[str, Any], signature: str, dtypes: Sequence[str],
                 out_dtype: Any, kinks: Sequence[float], ties: bool, order: int,
                 stateful: bool, random: bool, ref_inputs: Sequence[int],
                 variadic: str | None, differentiable: bool,
                 reference: Callable | None, examples: Sequence[Mapping[str, Any]],
                 alias: bool, doc: str | None, source: str):
        self.type = type
        self.kernel = kernel
        self.inputs = dict(inputs)
        self.outputs = tuple(outputs)
        self.attrs = dict(attrs)
        self.choices = dict(choices)
        self.signature = signature
        self.dtypes = tuple(dtypes)
        self.out_dtype = out_dtype
        self.kinks = tuple(kinks)
        self.ties = ties
        self.order = order
        self.stateful = stateful
        self.random = random
        self.ref_inputs = tuple(ref_inputs)
        self.variadic = variadic
        self.differentiable = differentiable
        self.reference = reference
        self.examples = tuple(examples)
        self.alias = alias
        self.source = source
        self.grad_fn: Callable | None = None
        self.grad_source: str | None = None
        self.fold_fn: Callable[[Tensor], np.ndarray | None] | None = None
        self.api_names: list[str] = []
        if signature == "elementwise":
            self.shape_fn: Callable = _elementwise_rule
        elif signature == "broadcast":
            self.shape_fn = _broadcast_rule
        elif "->" in signature:
            self.shape_fn = _gufunc_rule(signature)
        else:
            self.shape_fn = None  # "custom": the block must give @<op>.shape_rule
        self.__doc__ = doc or kernel.__doc__
        self.__name__ = kernel.__name__
        self.__qualname__ = kernel.__qualname__
        self.__module__ = kernel.__module__
        self.__wrapped__ = kernel

    # -- decorators for the rest of the block ----------------------------------------------
    def gradient(self, fn: Callable) -> Callable:
        """Register ``fn(op, *grads) -> grad or [grad per input]`` as this op's gradient."""
        if self.grad_fn is not None:
            raise KeyError(f"Registering two gradients for op type '{self.type}'! (Previous "
                           f"registration was in {self.grad_source})")
        if not self.differentiable:
            raise KeyError(f"Op type '{self.type}' is declared not differentiable "
                           f"({self.source}); it cannot have a gradient.")
        self.grad_fn = fn
        self.grad_source = _source_of(fn)
        return fn

    def shape_rule(self, fn: Callable[[ShapeContext], Any]) -> Callable:
        """Register ``fn(ctx) -> shape or [shape per output]`` (replaces the default rule)."""
        self.shape_fn = fn
        return fn

    def fold_rule(self, fn: Callable[[Tensor], np.ndarray | None]) -> Callable:
        """Register how to know an output's value at construction time (Shape, Const)."""
        self.fold_fn = fn
        return fn

    # -- facts -----------------------------------------------------------------------------
    @property
    def t_inputs(self) -> list[str]:
        """Inputs sharing the type attribute ``T`` (their domain names no dtypes)."""
        return [n for n, d in self.inputs.items() if d.dtypes is None]

    @property
    def differentiable_inputs(self) -> list[str]:
        if not self.differentiable:
            return []
        return [n for n, d in self.inputs.items() if d.differentiable]

    def __repr__(self) -> str:
        return f"<OpDef {self.type} ({self.source})>"

    # -- building --------------------------------------------------------------------------
    def __call__(self, *args: Any, name: str | None = None, **kwargs: Any) -> Any:
        names = list(self.inputs) + [a for a in self.attrs]
        if len(args) > len(names):
            raise TypeError(f"{self.__name__}() takes {len(names)} arguments but "
                            f"{len(args)} were given")
        bound = dict(zip(names, args))
        for k, v in kwargs.items():
            if k not in self.inputs and k not in self.attrs:
                raise TypeError(f"{self.__name__}() got an unexpected keyword argument '{k}'")
            if k in bound:
                raise TypeError(f"{self.__name__}() got multiple values for argument '{k}'")
            bound[k] = v
        for n in self.inputs:
            if n not in bound:
                raise TypeError(f"{self.__name__}() missing required argument '{n}'")
        attrs = {k: bound.get(k, v) for k, v in self.attrs.items()}
        return self.build([bound[n] for n in self.inputs], attrs, name)

    def build(self, values: Sequence[Any], attrs: Mapping[str, Any], name: str | None) -> Any:
        """Create the op: convert inputs, check dtypes and shapes, add it to the graph."""
        missing = [k for k, v in attrs.items() if v is REQUIRED]
        if missing:
            raise TypeError(f"{self.__name__}() missing required argument '{missing[0]}'")
        specs = list(self.inputs.items())
        if self.variadic is not None:  # one list-valued input, flattened into op.inputs
            pos = list(self.inputs).index(self.variadic)
            group = values[pos]
            if isinstance(group, (Tensor,)) or not isinstance(group, (list, tuple)):
                raise TypeError(f"Expected list for '{self.variadic}' argument to "
                                f"'{self.type}' Op, not {group!r}.")
            if not group:
                raise ValueError(f"List argument '{self.variadic}' to '{self.type}' Op with "
                                 "length 0 shorter than minimum length 1.")
            values = list(values[:pos]) + list(group) + list(values[pos + 1:])
            specs = specs[:pos] + [specs[pos]] * len(group) + specs[pos + 1:]
        graph = _graph_of([v for v in values])
        with graph.as_default():
            op_name = name[:-1] if name and name.endswith("/") else graph.unique_name(
                name or self.type)
            with graph.name_scope(op_name + "/"):  # constants made here are "<op>/<input>"
                tensors = self._convert(graph, specs, values)
        op = Operation(graph, op_name, self, tuple(tensors), dict(attrs),
                       graph._current_control_inputs())
        shapes, out_dtypes = self.infer(op)
        op.outputs = tuple(Tensor(op, i, d, s) for i, (s, d) in enumerate(zip(shapes, out_dtypes)))
        graph._add_op(op)
        if not op.outputs:
            return op
        return op.outputs[0] if len(op.outputs) == 1 else op.outputs

    def _convert(self, graph: Any, specs: list[tuple[str, _meta.Domain]],
                 values: Sequence[Any]) -> list[Tensor]:
        # T-typed inputs take the dtype of the first T-typed tensor, like TF's type attr.
        t_dtype = None
        for (_, d), v in zip(specs, values):
            v = _unwrap(v, ref=False)
            if d.dtypes is None and isinstance(v, Tensor):
                t_dtype = v.dtype
                break
        out: list[Tensor] = []
        first_t: str | None = None
        with graph.as_default():
            for i, ((n, d), v) in enumerate(zip(specs, values)):
                v = _unwrap(v, ref=i in self.ref_inputs)
                if isinstance(v, Tensor):
                    if v.graph is not graph:
                        raise ValueError(f"Tensor {v!r} must be from the same graph as "
                                         f"Tensor {out[0] if out else values[0]!r}.")
                    t = v
                else:
                    if d.dtypes is None:
                        want = t_dtype
                    else:  # keep the value's own dtype when the domain allows it
                        inferred = _infer_dtype(v).name
                        want = None if inferred in d.dtypes else _dt.as_dtype(d.dtypes[0])
                    try:
                        t = convert_to_tensor(v, dtype=want, name=n)
                    except TypeError as e:
                        raise TypeError(f"Input '{n}' of '{self.type}' Op: {e}") from None
                    if d.dtypes is None and t_dtype is None:
                        t_dtype = t.dtype
                allowed = self.dtypes if d.dtypes is None else d.dtypes
                if t.dtype.name not in allowed:
                    raise TypeError(f"Value passed to parameter '{n}' has DataType "
                                    f"{t.dtype.name} not in list of allowed values: "
                                    f"{', '.join(allowed)}")
                if d.dtypes is None:
                    if first_t is None:
                        first_t = n
                    elif t.dtype is not t_dtype:
                        raise TypeError(f"Input '{n}' of '{self.type}' Op has type "
                                        f"{t.dtype.name} that does not match type "
                                        f"{t_dtype.name} of argument '{first_t}'.")
                if i in self.ref_inputs and not t._is_ref:  # a reference read as a value is fine
                    raise TypeError(f"Input '{n}' of '{self.type}' Op requires a variable "
                                    f"reference, got {t!r}.")
                out.append(t)
        return out

    def infer(self, op: Operation) -> tuple[list[TensorShape], list[_dt.DType]]:
        """Static output shapes and dtypes of ``op`` (ValueError naming the op on conflict)."""
        if self.shape_fn is None:
            raise NotImplementedError(f"Op '{self.type}' ({self.source}) has signature "
                                      "'custom' but no @shape_rule.")
        shapes = self.output_shapes(ShapeContext.of_op(op))
        return shapes, self._out_dtypes(op, len(shapes))

    def output_shapes(self, ctx: ShapeContext) -> list[TensorShape]:
        """Run the shape rule: it returns a TensorShape, or a list with one per output."""
        shapes = self.shape_fn(ctx)
        shapes = [shapes] if isinstance(shapes, TensorShape) else list(shapes)
        if len(shapes) != len(self.outputs) and not self.variadic_outputs:
            raise TypeError(f"Shape rule of '{self.type}' returned {len(shapes)} shapes for "
                            f"{len(self.outputs)} outputs")
        return [as_shape(s) for s in shapes]

    @property
    def variadic_outputs(self) -> bool:
        """``outputs=("output*",)``: as many outputs as the shape rule returns (Unpack)."""
        return len(self.outputs) == 1 and self.outputs[0].endswith("*")

    def _out_dtypes(self, op: Operation, n: int) -> list[_dt.DType]:
        spec = self.out_dtype
        specs = spec if isinstance(spec, tuple) else (spec,) * n
        out = []
        for s in specs:
            if s is None:
                t = [t for t, (n, d) in zip(op.inputs, self._flat_specs(len(op.inputs)))
                     if d.dtypes is None]
                out.append(t[0].dtype)
            elif isinstance(s, str) and s.startswith("attr:"):
                out.append(_dt.as_dtype(op.attrs[s[5:]]))
            else:
                out.append(_dt.as_dtype(s))
        return out

    def _flat_specs(self, n: int) -> list[tuple[str, _meta.Domain]]:
        specs = list(self.inputs.items())
        if self.variadic is None:
            return specs
        pos = list(self.inputs).index(self.variadic)
        return specs[:pos] + [specs[pos]] * (n - len(specs) + 1) + specs[pos + 1:]

    # -- running ---------------------------------------------------------------------------
    def bind(self, op: Operation, ctx: Any = None) -> Callable:
        """The kernel with ``op``'s attributes (and the run context, if stateful) bound."""
        if self.stateful or self.random:
            return functools.partial(self.kernel, ctx, **op.attrs)
        return functools.partial(self.kernel, **op.attrs) if op.attrs else self.kernel

    def constant_fold(self, tensor: Tensor) -> np.ndarray | None:
        """The value of ``tensor`` if known when the graph is built, else None."""
        if self.fold_fn is not None:
            return self.fold_fn(tensor)
        if self.stateful or self.random:
            return None
        op = tensor.op
        vals = []
        for t in op.inputs:
            if t.shape.num_elements() is None or t.shape.num_elements() > 4096:
                return None
            v = constant_value(t)
            if v is None:
                return None
            vals.append(v)
        try:
            out = self.kernel(*vals, **op.attrs)
        except Exception:  # noqa: BLE001 - not foldable; the run will report the error
            return None
        return out[tensor.value_index] if len(op.outputs) > 1 else out


def _unwrap(value: Any, *, ref: bool) -> Any:
    """Variables become their value tensor, or their reference for ref inputs."""
    if ref and hasattr(value, "_ref"):
        return value._ref()
    conv = getattr(value, "_as_graph_element", None)
    return conv() if conv is not None else value


def op(type: str, *, inputs: Mapping[str, _meta.Domain] | Sequence[str] = ("x",),
       outputs: Sequence[str] = ("y",), attrs: Mapping[str, Any] | None = None,
       choices: Mapping[str, Any] | None = None, signature: str = "elementwise",
       dtypes: Sequence[str] = _meta.FLOAT, out_dtype: Any = None,
       kinks: Sequence[float] = (), ties: bool = False, order: int = 2,
       stateful: bool = False, random: bool = False, ref_inputs: Sequence[int] = (),
       variadic: str | None = None, differentiable: bool = True,
       reference: Callable | None = None, examples: Sequence[Mapping[str, Any]] = (),
       alias: bool = False, api: str | Sequence[str] | None = None,
       doc: str | None = None) -> Callable[[Callable], OpDef]:
    """Register a NumPy kernel as op ``type`` with its tester metadata.

    inputs: name -> :class:`engine.meta.Domain` (a sequence of names means all ``reals``).
    outputs: output names; one name ending in ``*`` means as many outputs as the shape rule
    returns (Unpack's ``num``).
    attrs: name -> default (``REQUIRED`` for none); choices: attr -> values to test.
    signature: ``elementwise``, ``broadcast``, a gufunc like ``"(m,n),(n,p)->(m,p)"``, or
    ``custom`` (give ``@<op>.shape_rule``). dtypes: allowed names for ``T`` inputs.
    out_dtype: ``None`` (= T), a dtype name, ``"attr:<name>"``, or a tuple per output.
    kinks/ties: where the derivative is a subgradient. order: highest derivative order
    expected correct. stateful/random: the kernel takes the run context first.
    differentiable=False: gradients pass ``None`` through it. reference: an independent
    NumPy/SciPy forward for property tests. examples: explicit test cases
    (``{"inputs": {...}, "attrs": {...}}``). alias: the output is input 0 (no kernel call).
    api: public names (``"nn.relu"``) that expose the builder.

    >>> from gradverify.engine import meta
    >>> @op("Cube", inputs={"x": meta.reals}, api=None)
    ... def cube(x):
    ...     return x ** 3
    >>> cube.signature, cube.type
    ('elementwise', 'Cube')
    >>> unregister("Cube")
    """
    if isinstance(inputs, Mapping):
        input_specs = dict(inputs)
    else:
        input_specs = {n: _meta.reals for n in inputs}
    for n, d in input_specs.items():
        if not isinstance(d, _meta.Domain):
            raise TypeError(f"op {type!r}: input {n!r} needs an engine.meta.Domain, got {d!r}")
    if variadic is not None and variadic not in input_specs:
        raise ValueError(f"op {type!r}: variadic input {variadic!r} is not an input")

    def register(kernel: Callable) -> OpDef:
        if type in _OPS:
            raise KeyError(f"Registering two ops with name '{type}'! (Previous registration "
                           f"was in {_OPS[type].source})")
        opdef = OpDef(type, kernel, inputs=input_specs, outputs=outputs,
                      attrs=attrs or {}, choices=choices or {}, signature=signature,
                      dtypes=dtypes, out_dtype=out_dtype, kinks=kinks, ties=ties, order=order,
                      stateful=stateful, random=random, ref_inputs=ref_inputs,
                      variadic=variadic, differentiable=differentiable, reference=reference,
                      examples=examples, alias=alias, doc=doc, source=_source_of(kernel))
        _OPS[type] = opdef
        names = [api] if isinstance(api, str) else list(api or ())
        if names:
            export(*names)(opdef)
        return opdef
    return register


def export(*names: str) -> Callable[[Any], Any]:
    """Expose ``obj`` as ``engine.<name>`` (``"nn.relu"`` -> ``engine.nn.relu``)."""
    def deco(obj: Any) -> Any:
        for full in names:
            ns, _, short = full.rpartition(".")
            table = _API.setdefault(ns, {})
            if short in table and table[short] is not obj:
                raise KeyError(f"Registering two public functions named '{full}'! (Previous "
                               f"registration was in {_API_SOURCE[full]})")
            table[short] = obj
            _API_SOURCE[full] = _source_of(getattr(obj, "__wrapped__", obj))
            module = sys.modules.get(f"{_ENGINE}.{ns}" if ns else _ENGINE)
            if module is None and _NAMESPACES_READY and not ns.startswith("_"):
                module = _namespace_module(ns)
            if module is not None and not ns.startswith("_"):
                setattr(module, short, obj)  # ops registered after import appear too
            if isinstance(obj, OpDef):
                obj.api_names.append(full)
        return obj
    return deco


_NAMESPACES_READY = False


def _namespace_module(ns: str) -> types.ModuleType | None:
    """``engine.<ns>`` as a module: the real one if a file defines it, else a namespace made
    here holding the names exported into it (``manip.reshape`` -> ``engine.manip``)."""
    full = f"{_ENGINE}.{ns}"
    if full in sys.modules:
        return sys.modules[full]
    parent_ns, _, short = ns.rpartition(".")
    parent = _namespace_module(parent_ns) if parent_ns else sys.modules.get(_ENGINE)
    if parent is None:
        return None
    existing = getattr(parent, short, None)
    if isinstance(existing, types.ModuleType):
        return existing
    if getattr(parent, "__path__", None) and importlib.util.find_spec(full) is not None:
        return None  # a real module not imported yet: it takes its names when it is
    module = types.ModuleType(full, f"``tf.{ns}``: the engine's functions exported there.")
    module.__dict__.update(_API.get(ns, {}))
    sys.modules[full] = module
    setattr(parent, short, module)
    return module


def materialize_namespaces() -> None:
    """Make every namespace names were exported into reachable as ``engine.<ns>`` (called
    once the engine package has imported its own modules; later exports follow)."""
    global _NAMESPACES_READY
    _NAMESPACES_READY = True
    for ns in sorted(_API):
        if ns and not ns.startswith("_"):
            module = _namespace_module(ns)
            if module is not None:
                for short, obj in _API[ns].items():
                    setattr(module, short, obj)


def api_paths() -> dict[str, Any]:
    """Every public path exported so far (``"nn.relu"``, ``"manip.reshape"``) -> object;
    each resolves as an attribute path of the engine package.

    >>> api_paths()["manip.reshape"] is lookup("Reshape")
    True
    """
    return {f"{ns}.{short}" if ns else short: obj for ns, table in _API.items()
            if not ns.startswith("_") for short, obj in table.items()}


def public_names(namespace: str = "") -> dict[str, Any]:
    """Public functions exported into ``namespace`` (``""`` is the top level)."""
    return dict(_API.get(namespace, {}))


def api(name: str) -> Any:
    """The public function exported as ``name`` (used by Tensor's Python operators)."""
    ns, _, short = name.rpartition(".")
    return _API[ns][short]


def lookup(type: str) -> OpDef:
    """The OpDef registered as ``type``; KeyError naming it if none is."""
    try:
        return _OPS[type]
    except KeyError:
        raise KeyError(f"Op type not registered '{type}'") from None


get = lookup


def ops() -> dict[str, OpDef]:
    """All registered ops by type, in registration order."""
    return dict(_OPS)


def list_ops() -> list[str]:
    """Names of all registered op types, in registration order."""
    return list(_OPS)


def unregister(type: str) -> None:
    """Remove op ``type`` and its public names (for tests and temporary ops)."""
    opdef = _OPS.pop(type)
    for full in opdef.api_names:
        ns, _, short = full.rpartition(".")
        if _API.get(ns, {}).get(short) is opdef:
            del _API[ns][short]
            _API_SOURCE.pop(full, None)
            module = sys.modules.get(f"{_ENGINE}.{ns}" if ns else _ENGINE)
            if module is not None and getattr(module, short, None) is opdef:
                delattr(module, short)
