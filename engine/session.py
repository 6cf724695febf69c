"""Session: runs the subgraph a fetch needs, through a compiled and cached execution plan.

A plan is compiled once per (fetches, feed keys) into a straight-line Python function: one
line per kernel call, constants folded, variable reads hoisted to the top (so a value that
nothing orders after a write is computed from the state at the start of the run, even beside
a train op), except reads that ``control_dependencies`` orders after a write of their
variable: those read where they run and see the written value, as in TF.
A repeated ``run`` costs feed conversion plus the kernel calls. When a kernel raises, the
failing line names the op, and its shape rule re-run on the actual input shapes gives TF's
message.

>>> import gradverify.engine as tf
>>> g = tf.Graph()
>>> with g.as_default():
...     x = tf.placeholder(tf.float32, [None, 2])
...     y = tf.reduce_sum(x * 2.0)
>>> with tf.Session(graph=g) as sess:
...     float(sess.run(y, {x: [[1.0, 2.0]]}))
6.0
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from types import CodeType
from typing import Any

import numpy as np

from gradverify.engine import errors
from gradverify.engine.graph import Graph, Operation, Tensor, get_default_graph
from gradverify.engine.inspect import ancestors
from gradverify.engine.kernel_checks import output_checker
from gradverify.engine.ordering import writes_before
from gradverify.engine.registry import ShapeContext
from gradverify.engine.shapes import TensorShape

__all__ = ["Session", "InteractiveSession", "get_default_session"]

_thread = threading.local()
DEFAULT_GRAPH_SEED = 87654321
# GRADVERIFY_CHECK_KERNELS=always: check every kernel output on every run (slower; for
# debugging an op whose output shape or dtype depends on input values).
_ALWAYS_CHECK = os.environ.get("GRADVERIFY_CHECK_KERNELS", "") == "always"


def _session_stack() -> list[Session]:
    stack = getattr(_thread, "sessions", None)
    if stack is None:
        stack = _thread.sessions = []
    return stack


def get_default_session() -> Session | None:
    """The innermost session of this thread's ``with session:`` blocks, or None."""
    stack = _session_stack()
    return stack[-1] if stack else None


def _session_for(session: Session | None, graph: Graph, what: str) -> Session:
    if session is None:
        session = get_default_session()
        if session is None:
            raise ValueError(f"Cannot {what} using `eval()` or `run()`: No default session "
                             "is registered. Use `with sess.as_default()` or pass an explicit "
                             "session to `eval(session=sess)`")
    if session.graph is not graph:
        raise ValueError(f"Cannot use the given session to {what}: the graph of the "
                         "fetched element is different from the session's graph.")
    return session


class RunContext:
    """What a stateful kernel gets first: the session's variable store and a seeded RNG."""

    __slots__ = ("session", "op", "state", "_rng")

    def __init__(self, session: Session, op: Operation):
        self.session = session
        self.op = op
        self.state = session._state
        self._rng: np.random.Generator | None = None

    def locked(self, refs: Any) -> contextlib.ExitStack:
        """Hold the session's locks of the variables ``refs`` (TF1's ``use_locking``): a
        locked update's read-modify-write is atomic against other locked updates."""
        stack = contextlib.ExitStack()
        for ref in sorted(set(refs), key=lambda r: r._id):  # one order: no deadlock
            stack.enter_context(self.session._variable_lock(ref))
        return stack

    @property
    def rng(self) -> np.random.Generator:
        """This op's generator in this session: seeded from (graph seed, op seed) if set."""
        if self._rng is None:
            seed, seed2 = self.op.attrs.get("seed"), self.op.attrs.get("seed2")
            if seed is None and seed2 is None:
                self._rng = np.random.default_rng()
            else:
                self._rng = np.random.default_rng([int(seed or 0), int(seed2 or 0)])
        return self._rng


class _Plan:
    __slots__ = ("fn", "code", "checked_fn", "checked_code", "verified", "line_ops",
                 "line_inputs", "namespace", "fetches", "feeds",
                 "n_kernel_calls")


def _is_variable(op: Operation) -> bool:
    return op.type in ("VariableV2", "Variable")


class Session:
    """Runs ops and evaluates tensors of one graph; holds the values of its variables.

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default() as g:
    ...     v = tf.Variable(3.0)
    ...     inc = v.assign_add(1.0)
    >>> with tf.Session(graph=g) as s:
    ...     s.run(v.initializer); float(s.run(inc)), float(s.run(v))
    (4.0, 4.0)
    """

    def __init__(self, target: str = "", graph: Graph | None = None, config: Any = None):
        from gradverify.engine.config import ConfigProto
        if config is not None and not isinstance(config, ConfigProto):
            raise TypeError(f"config must be a tf.ConfigProto, but got {type(config)}")
        self.config = config  # kept, not acted on: every op runs on the CPU
        self.graph = graph if graph is not None else get_default_graph()
        self.sess_str = target
        self._closed = False
        self._state: dict[Operation, np.ndarray] = {}
        self._plans: dict[Any, _Plan] = {}
        self._contexts: dict[Operation, RunContext] = {}
        self._ctx_stack: list[Any] = []
        self._var_locks: dict[Operation, threading.Lock] = {}
        self._var_locks_guard = threading.Lock()

    def _variable_lock(self, var: Operation) -> threading.Lock:
        lock = self._var_locks.get(var)
        if lock is None:
            with self._var_locks_guard:
                lock = self._var_locks.setdefault(var, threading.Lock())
        return lock

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        self._closed = True
        self._plans.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Session:
        g = self.graph.as_default()
        d = self.as_default()
        g.__enter__()
        d.__enter__()
        self._ctx_stack.append((g, d))
        return self

    def __exit__(self, *exc: Any) -> None:
        g, d = self._ctx_stack.pop()
        d.__exit__(*exc)
        g.__exit__(*exc)
        self.close()

    @contextlib.contextmanager
    def as_default(self) -> Iterator[Session]:
        """Make this the default session (for ``Tensor.eval``) inside the block."""
        stack = _session_stack()
        stack.append(self)
        try:
            yield self
        finally:
            stack.remove(self)

    # -- running ---------------------------------------------------------------------------
    def run(self, fetches: Any, feed_dict: Mapping[Any, Any] | None = None,
            options: Any = None, run_metadata: Any = None) -> Any:
        """Evaluate ``fetches`` (any nesting of list/tuple/namedtuple/dict of tensors,
        operations, variables or names) with ``feed_dict`` substituted.

        Operations fetch ``None``; a scalar fetches a NumPy scalar.
        """
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        flat: list[Any] = []
        structure = _flatten(fetches, flat)
        feed_keys = tuple(feed_dict) if feed_dict else ()
        key = (tuple(flat), feed_keys)
        try:
            plan = self._plans.get(key)
        except TypeError:  # an unhashable fetch (a NumPy array): TF1's TypeError names it
            for f in flat:
                self._resolve(f)
            raise
        if plan is None:
            plan = self._plans[key] = self._make_plan(flat, feed_keys)
        feeds = [_feed_value(t, feed_dict[k]) for t, k in zip(plan.feeds, feed_keys)]
        values = self._execute(plan, feeds)
        if structure is None:
            return values[0]
        return _pack(structure, iter(values))

    def make_callable(self, fetches: Any, feed_list: Any = None) -> Any:
        """A function of the feed values (in ``feed_list`` order) returning ``fetches``:
        ``run`` without the per-call dict and structure handling."""
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        flat: list[Any] = []
        structure = _flatten(fetches, flat)
        plan = self._make_plan(flat, tuple(feed_list or ()))

        def call(*feed_values: Any) -> Any:
            if self._closed:
                raise RuntimeError("Attempted to use a closed Session.")
            if len(feed_values) != len(plan.feeds):
                raise TypeError(f"Expected {len(plan.feeds)} feed values, got "
                                f"{len(feed_values)}")
            values = self._execute(
                plan, [_feed_value(t, v) for t, v in zip(plan.feeds, feed_values)])
            return values[0] if structure is None else _pack(structure, iter(values))
        return call

    def _execute(self, plan: _Plan, feeds: list[np.ndarray]) -> list[Any]:
        # Kernel outputs are checked against the static dtypes/shapes once per feed-shape
        # signature (a kernel's output shape follows its input shapes); later runs with
        # the same shapes take the unchecked plan.
        signature = tuple([f.shape for f in feeds])
        fn = plan.fn if signature in plan.verified and not _ALWAYS_CHECK else plan.checked_fn
        try:
            with np.errstate(all="ignore"):  # like TF: inf/nan flow on, no warnings
                out = fn(feeds, self._state)
            if fn is plan.checked_fn:
                plan.verified.add(signature)
        except Exception as e:
            raise self._translate(plan, e) from e
        return [None if f is None else _fetched(v) for f, v in zip(plan.fetches, out)]

    # -- compiling a plan ------------------------------------------------------------------
    def _resolve(self, element: Any, *, for_feed: bool = False) -> Tensor | Operation:
        """A fetch or feed key as a graph element, with TF1's error classes and texts."""
        if for_feed:  # TF1: any failure to interpret a feed key is a TypeError
            try:
                return self.graph.as_graph_element(element, allow_operation=False)
            except (TypeError, ValueError, KeyError) as e:
                raise TypeError("Cannot interpret feed_dict key as Tensor: "
                                f"{e.args[0] if e.args else e}") from None
        if element is None:
            raise TypeError("Fetch argument None has invalid type <class 'NoneType'>")
        conv = getattr(element, "_as_graph_element", None)
        target = conv() if conv is not None else element
        if not isinstance(target, (Tensor, Operation, str)):
            raise TypeError(f"Fetch argument {element!r} has invalid type {type(element)}, "
                            "must be a string or Tensor. (Can not convert a "
                            f"{type(element).__name__} into a Tensor or Operation.)")
        try:
            return self.graph.as_graph_element(target)
        except (ValueError, KeyError) as e:
            raise ValueError(f"Fetch argument {element!r} cannot be interpreted as a Tensor. "
                             f"({e.args[0] if e.args else e})") from None

    def _make_plan(self, flat: list[Any], feed_keys: tuple[Any, ...]) -> _Plan:
        fetches = [self._resolve(f) for f in flat]
        feeds = [self._resolve(k, for_feed=True) for k in feed_keys]
        for t in feeds:
            if t._is_ref:
                raise TypeError(f"Cannot feed the reference tensor {t.name} of a variable; "
                                "feed its value tensor instead.")
        return _compile(self, fetches, feeds)

    def _context(self, op: Operation) -> RunContext:
        ctx = self._contexts.get(op)
        if ctx is None:
            ctx = self._contexts[op] = RunContext(self, op)
        return ctx

    def _translate(self, plan: _Plan, exc: Exception) -> errors.OpError:
        """Turn an exception from a plan into an OpError naming the failing op."""
        tb = exc.__traceback__
        frame_locals: dict[str, Any] = {}
        line = None
        while tb is not None:
            # (code objects are shared by plans of the same text; globals are the plan's own)
            if (tb.tb_frame.f_code is plan.code or tb.tb_frame.f_code is plan.checked_code
                    ) and tb.tb_frame.f_globals is plan.namespace:
                line = tb.tb_lineno
                frame_locals = tb.tb_frame.f_locals
            tb = tb.tb_next
        op = plan.line_ops.get(line)
        if op is None:
            if isinstance(exc, errors.OpError):
                return exc
            return errors.UnknownError(None, None, f"{type(exc).__name__}: {exc}")
        if _is_variable(op) and isinstance(exc, KeyError):
            return errors.FailedPreconditionError(
                None, op, f"Attempting to use uninitialized value {op.name}")
        names = plan.line_inputs.get(line, ())
        return _error(op, exc, [frame_locals.get(n, plan.namespace.get(n)) for n in names])


def _shape_message(op: Operation, args: list[Any]) -> str | None:
    """TF's run-time message for a shape conflict, from the op's own shape rule."""
    if any(a is None or isinstance(a, Operation) for a in args):
        return None
    try:
        op.opdef.output_shapes(ShapeContext.of_arrays(op, args))
    except ValueError as e:
        if op.opdef.signature == "broadcast":
            shapes = " vs. ".join(TensorShape(np.shape(a)).as_tf_str() for a in args)
            return f"Incompatible shapes: {shapes}"
        return str(e)
    except Exception:  # noqa: BLE001 - a shape rule that cannot take concrete shapes
        return None
    return None


def _compile(session: Session, fetches: list[Tensor | Operation],
             feeds: list[Tensor]) -> _Plan:
    fed = {t: f"f{i}" for i, t in enumerate(feeds)}
    needed = ancestors([f for f in fetches if f not in fed], cut=fed)

    ns: dict[str, Any] = {}
    env: dict[Tensor, str] = dict(fed)       # tensor -> name in the generated code
    known: dict[Tensor, Any] = {}            # tensors whose value is fixed at compile time
    read_vars: list[Operation] = []          # variables read in this run, hoisted to the top
    body: list[tuple[str, Operation, tuple[str, ...]]] = []
    calls = 0

    def read(var: Operation) -> str:
        if var not in read_vars:
            read_vars.append(var)
            ns[f"v{var._id}"] = var
        return f"r{var._id}"

    def constant(t: Tensor, value: Any) -> None:
        if isinstance(value, np.ndarray) and value.flags.writeable:
            value.flags.writeable = False  # folded values are shared by every run
        name = f"c{t.op._id}_{t.value_index}"
        ns[name] = value
        env[t] = name
        known[t] = value

    # A read ordered after a write of its variable (control_dependencies, tf.group) reads
    # at its own place in the plan; every other read is hoisted to the start of the run.
    after = writes_before(needed, set(fed))
    source: dict[Tensor, Operation] = {}     # tensor -> variable it is a plain read of

    def reread(op: Operation, t: Tensor, j: int) -> str | None:
        var = source.get(t)
        if var is None or var not in after[op] or t in fed:
            return None
        name = f"q{op._id}_{j}"
        ns[f"v{var._id}"] = var
        body.append((f"{name} = S[v{var._id}]", var, (), None))
        return name

    for op in sorted(needed, key=lambda o: o._id):
        od = op.opdef
        if _is_variable(op):  # its output, as a reference, is the key into the state
            ns[f"v{op._id}"] = op
            env[op.outputs[0]] = f"v{op._id}"
            continue
        args = []
        for j, t in enumerate(op.inputs):
            if t._is_ref and j not in od.ref_inputs and t not in fed:
                source[t] = t.op
                args.append(reread(op, t, j) or read(t.op))
            elif j in od.ref_inputs:
                args.append(env[t])
            else:
                args.append(reread(op, t, j) or env[t])
        args = tuple(args)
        pure = not (od.stateful or od.random)
        if od.alias and op.outputs[0] not in fed:
            env[op.outputs[0]] = args[0]
            if op.inputs[0] in source:
                source[op.outputs[0]] = source[op.inputs[0]]
            if op.inputs[0] in known:
                known[op.outputs[0]] = known[op.inputs[0]]
            continue
        if pure and od.fold_fn is not None:
            folded = [od.fold_fn(t) for t in op.outputs]
            if all(v is not None for v in folded):
                for t, v in zip(op.outputs, folded):
                    constant(t, v)
                continue
        if pure and op.outputs and all(t in known for t in op.inputs):
            values = [known[t] for t in op.inputs]
            try:
                with np.errstate(all="ignore"):
                    out = output_checker(op)(od.bind(op)(*values))  # folded once: check
            except Exception as e:
                raise _error(op, e, values) from e
            for t, v in zip(op.outputs, out if len(op.outputs) > 1 else (out,)):
                constant(t, np.asarray(v) if np.ndim(v) == 0 else v)
            continue
        if not op.outputs and not od.stateful:
            continue  # NoOp / group: only orders its control inputs
        kname = f"k{op._id}"
        ns[kname] = od.bind(op, session._context(op) if (od.stateful or od.random) else None)
        outs = [f"t{op._id}_{k}" for k in range(len(op.outputs))]
        for t, n in zip(op.outputs, outs):
            if t not in fed:
                env[t] = n
        call = f"{kname}({', '.join(args)})"
        target = "" if not outs else (outs[0] + " = " if len(outs) == 1
                                      else ", ".join(outs) + ", = ")
        if target:  # the checked plan passes the result through the op's output check
            ns[f"K{op._id}"] = output_checker(op)
        checked = target + f"K{op._id}({call})" if target else None
        body.append((target + call, op, args, checked))
        calls += 1

    results = ["None" if isinstance(f, Operation) else read(f.op) if f._is_ref else env[f]
               for f in fetches]
    lines = ["def plan(F, S):"]
    if feeds:
        lines.append(f"    {', '.join(fed[t] for t in feeds)}, = F")
    line_ops: dict[int, Operation] = {}
    line_inputs: dict[int, tuple[str, ...]] = {}
    used = set(results).union(*(entry[2] for entry in body))
    for var in read_vars:
        if f"r{var._id}" not in used:  # every consumer reads it later, after a write
            continue
        lines.append(f"    r{var._id} = S[v{var._id}]")
        line_ops[len(lines)] = var
    checked_lines = list(lines)
    for text, op, args, checked in body:
        lines.append("    " + text)
        checked_lines.append("    " + (checked or text))  # same line numbers in both
        line_ops[len(lines)] = op
        line_inputs[len(lines)] = args
    end = f"    return ({''.join(r + ', ' for r in results)})"  # () if no fetches
    plan = _Plan()
    for attr, source in (("fn", lines), ("checked_fn", checked_lines)):
        exec(_code("\n".join(source + [end]) + "\n"), ns)
        setattr(plan, attr, ns["plan"])
    plan.code = plan.fn.__code__
    plan.checked_code = plan.checked_fn.__code__
    plan.verified = set()
    plan.line_ops = line_ops
    plan.line_inputs = line_inputs
    plan.namespace = ns
    plan.fetches = [None if isinstance(f, Operation) else f for f in fetches]
    plan.feeds = feeds
    plan.n_kernel_calls = calls
    return plan


# Compiled plan code by source text. Names in a plan are op ids, which restart at 0 in
# every graph, so the same structure built again (a check's graph per drawn case) gives the
# same text: compiling it was a twentieth of the gate's time. Bounded: cleared when full.
_CODE_CACHE: dict[str, CodeType] = {}
_CODE_CACHE_SIZE = 4096


def _code(source: str) -> CodeType:
    code = _CODE_CACHE.get(source)
    if code is None:
        if len(_CODE_CACHE) >= _CODE_CACHE_SIZE:
            _CODE_CACHE.clear()
        code = _CODE_CACHE[source] = compile(source, "<plan>", "exec")
    return code


def _error(op: Operation, exc: Exception, args: list[Any]) -> errors.OpError:
    """The OpError for ``exc`` raised by ``op``'s kernel on ``args``."""
    if isinstance(exc, errors.OpError):
        exc.op = exc.op or op
        return exc
    message = _shape_message(op, args) or f"{type(exc).__name__}: {exc}"
    cls = (errors.InvalidArgumentError
           if isinstance(exc, (ValueError, IndexError, TypeError, np.linalg.LinAlgError))
           else errors.UnknownError)
    return cls(None, op, message)


# -- feeds and fetches ---------------------------------------------------------------------
def _feed_value(t: Tensor, value: Any) -> np.ndarray:
    if type(value) is np.ndarray and value.dtype == t.dtype.np and (
            value.shape == t.shape.as_tuple()):  # the common case: nothing to convert
        return value
    if isinstance(value, (Tensor, Operation)) or hasattr(value, "_as_graph_element"):
        raise TypeError("The value of a feed cannot be a tf.Tensor object. Acceptable feed "
                        "values include Python scalars, strings, lists, numpy ndarrays, or "
                        "TensorHandles.")
    want = t.dtype.np
    if isinstance(value, np.ndarray) and value.dtype == want:
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as e:
            raise TypeError(f"Cannot convert the feed value for {t.name} to an array: "
                            f"{e}") from None
        if arr.dtype == object or arr.dtype.kind in "USV":
            raise TypeError(f"Cannot feed a value of type {arr.dtype} for Tensor '{t.name}' "
                            f"of dtype {t.dtype.name}.")
        if t.dtype.is_integer and arr.dtype.kind == "f" and arr.size and np.any(
                arr != np.round(arr)):
            raise TypeError(f"Cannot feed non-integer values for Tensor '{t.name}' of dtype "
                            f"{t.dtype.name}.")
        arr = arr.astype(want, copy=False)
    dims = t.shape.as_tuple()
    if dims is not None and (len(dims) != arr.ndim or any(
            d is not None and d != a for d, a in zip(dims, arr.shape))):
        raise ValueError(f"Cannot feed value of shape {arr.shape} for Tensor '{t.name}', "
                         f"which has shape '{t.shape}'")
    return arr


def _fetched(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return value[()]
        if not value.flags.writeable:  # shared with state or constants: the caller gets a copy
            return value.copy()
        return value
    if isinstance(value, np.generic):
        return value
    return np.asarray(value)


def _flatten(fetches: Any, out: list[Any]) -> Any:
    """Append the leaves of ``fetches`` to ``out``; return the structure (None for a leaf)."""
    if isinstance(fetches, (list, tuple)) and not hasattr(fetches, "_as_graph_element"):
        return (type(fetches), [_flatten(f, out) for f in fetches])
    if isinstance(fetches, Mapping):
        return (type(fetches), [(k, _flatten(v, out)) for k, v in fetches.items()])
    out.append(fetches)
    return None


def _pack(structure: Any, values: Iterator[Any]) -> Any:
    if structure is None:
        return next(values)
    kind, items = structure
    if issubclass(kind, Mapping):
        packed = {k: _pack(s, values) for k, s in items}
        return packed if kind is dict else kind(packed)
    seq = [_pack(s, values) for s in items]
    if kind is list:
        return seq
    if kind is tuple:
        return tuple(seq)
    if hasattr(kind, "_fields"):  # namedtuple
        return kind(*seq)
    return kind(seq)


class InteractiveSession(Session):
    """A Session that makes itself the default on creation (for shells and notebooks)."""

    def __init__(self, target: str = "", graph: Graph | None = None, config: Any = None):
        super().__init__(target, graph, config)
        self._default = self.as_default()
        self._default.__enter__()

    def close(self) -> None:
        if not self._closed and getattr(self, "_default", None) is not None:
            with contextlib.suppress(ValueError):
                self._default.__exit__(None, None, None)
        super().close()
