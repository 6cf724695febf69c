"""Hypothesis strategies built from the op registry's metadata.

``op_cases(op)`` draws a whole test case for a registered op: a dtype, attributes from the
op's ``choices``, input shapes from its signature (or one of its ``examples``), structural
inputs (reshape targets, indices, labels ...) consistent with those shapes, and values inside
each input's domain - with the hard cases drawn on purpose: exact kinks, exact ties, zeros,
duplicate indices, huge and tiny magnitudes, size-1 and non-square dimensions. The op's own
static shape rule is the final filter, so any op the registry can build can be drawn.

>>> from hypothesis import given
>>> from gradverify import engine
>>> @given(op_cases(engine.registry.lookup("Relu")))
... def test(case):
...     assert case.checked[0].dtype.kind == "f"
>>> test()
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from gradverify.engine import meta as m
from gradverify.engine.registry import OpDef

__all__ = ["OpCase", "shapes", "values_in", "op_cases", "GENERIC_KINDS"]

# Structural and integer kinds this module can generate without an example template.
GENERIC_KINDS = {"reals", "positive", "nonnegative", "nonzero", "bounded", "probabilities",
                 "one_hot", "labels", "indices", "bool", "any", "integers", "new_shape",
                 "multiples", "dims", "slice_begin", "slice_size", "paddings"}
VALUE_KINDS = {"reals", "positive", "nonnegative", "nonzero", "bounded", "probabilities",
               "one_hot", "any"}


def _check_int(name: str, value: Any, lo: int = 0) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise InvalidArgument(f"{name}={value!r} must be an integer >= {lo}")


# -- shapes ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)  # one strategy object per arguments (see values_in)
def shapes(*, min_rank: int = 0, max_rank: int = 4, min_side: int = 1,
           max_side: int = 5) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes with size-1 and non-square dimensions drawn on purpose.

    >>> from hypothesis import given
    >>> @given(shapes(min_rank=2, max_rank=2))
    ... def test(s):
    ...     assert len(s) == 2
    >>> test()
    """
    _check_int("min_rank", min_rank)
    _check_int("max_rank", max_rank)
    _check_int("min_side", min_side)
    _check_int("max_side", max_side)
    if min_rank > max_rank:
        raise InvalidArgument(f"min_rank={min_rank} must be <= max_rank={max_rank}")
    if min_side > max_side:
        raise InvalidArgument(f"min_side={min_side} must be <= max_side={max_side}")
    sides = st.one_of(st.just(min_side), st.integers(min_side, max_side))
    return st.lists(sides, min_size=min_rank, max_size=max_rank).map(tuple)


# -- values ------------------------------------------------------------------------------------
def _signed(mag: st.SearchStrategy[float]) -> st.SearchStrategy[float]:
    return st.tuples(mag, st.booleans()).map(lambda t: -t[0] if t[1] else t[0])


def _elements(domain: m.Domain, kinks: Sequence[float]) -> st.SearchStrategy[float]:
    """Floats in the domain, with special values on purpose (weights by repetition)."""
    huge = st.floats(1e3, 1e6)
    tiny = st.floats(1e-30, 1e-6)
    if domain.kind in ("positive", "nonnegative"):
        zero = [st.just(0.0)] if domain.kind == "nonnegative" else []
        specials = sorted({1.0, *[k for k in kinks if k > 0]})
        return st.one_of(*[st.floats(1e-2, 5.0)] * 5, st.sampled_from(specials), tiny, huge,
                         *zero)
    if domain.kind == "nonzero":
        return st.one_of(*[_signed(st.floats(1e-2, 5.0))] * 5, st.sampled_from([1.0, -1.0]),
                         _signed(huge))
    if domain.kind == "bounded":
        lo, hi = domain.lo, domain.hi
        inner_lo = lo if np.isfinite(lo) else -5.0
        inner_hi = hi if np.isfinite(hi) else 5.0
        span = inner_hi - inner_lo
        near = [st.floats(inner_lo + 1e-3 * span, inner_hi - 1e-3 * span)] * 4
        edges = []
        if np.isfinite(lo):
            edges.append(st.just(lo + 1e-6 * span))
        if np.isfinite(hi):
            edges.append(st.just(hi - 1e-6 * span))
        return st.one_of(*near, *edges)
    specials = sorted({0.0, 1.0, -1.0, *kinks})
    return st.one_of(*[st.floats(-3.0, 3.0)] * 6, st.sampled_from(specials),
                     st.sampled_from(specials), _signed(huge), _signed(tiny))


def values_in(domain: m.Domain, shape: tuple[int, ...], *, dtype: Any = np.float64,
              kinks: Sequence[float] = (), of_shape: tuple[int, ...] | None = None,
              ) -> st.SearchStrategy[np.ndarray]:
    """Arrays of ``shape`` inside ``domain`` (an ``engine.meta.Domain``), special values on
    purpose. ``of_shape`` is the shape of the input the domain refers to (labels, indices).

    >>> from hypothesis import given
    >>> from gradverify.engine import meta
    >>> @given(values_in(meta.positive, (3,)))
    ... def test(x):
    ...     assert (x > 0).all()
    >>> test()
    """
    if not isinstance(domain, m.Domain):
        raise InvalidArgument(f"domain={domain!r} must be an engine.meta.Domain")
    key = (domain, tuple(int(d) for d in shape), np.dtype(dtype), tuple(kinks),
           None if of_shape is None else tuple(of_shape))
    try:
        return _cached_values_in(*key)
    except TypeError:  # an unhashable domain field: build it afresh
        return _values_in(*key)


# The same arguments give the same strategy object: Hypothesis validates and compiles a
# strategy once per object, which was a tenth of the gate's time when every example drew
# through a fresh one. The draws do not depend on the object, so the examples are unchanged.
@functools.lru_cache(maxsize=4096)
def _cached_values_in(*key: Any) -> st.SearchStrategy[np.ndarray]:
    return _values_in(*key)


def _values_in(domain: m.Domain, shape: tuple[int, ...], dtype: np.dtype,
               kinks: tuple[float, ...], of_shape: tuple[int, ...] | None,
               ) -> st.SearchStrategy[np.ndarray]:
    kind = domain.kind
    if int(np.prod(shape)) > _BIG:  # too large to draw element by element: a drawn seed
        return st.integers(0, 2**32 - 1).map(
            lambda seed: _numpy_fill(domain, shape, dtype, of_shape, seed))
    if kind == "bool" or dtype.kind == "b":
        return hnp.arrays(np.bool_, shape)
    if kind in ("labels", "indices", "integers") or (kind == "any" and dtype.kind in "iu"):
        if kind == "integers" or of_shape is None or not of_shape:
            hi = 4
        else:
            hi = max(int(of_shape[-1] if kind == "labels" else of_shape[0]), 1)
        if kind in ("labels", "indices") and of_shape is not None and 0 in of_shape:
            return st.nothing()
        return hnp.arrays(dtype, shape, elements=st.integers(0, hi - 1)).map(_duplicate)
    if kind == "probabilities":
        return st.tuples(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3)),
                         st.booleans()).map(lambda t: _rows(t[0], t[1], dtype))
    if kind == "one_hot":
        return hnp.arrays(np.float64, shape, elements=st.floats(-3, 3)).map(
            lambda a: _rows(a, True, dtype))
    base = hnp.arrays(np.float64, shape, elements=_elements(domain, kinks))
    return base.map(lambda a: a.astype(dtype))


_BIG = 512


def _numpy_fill(domain: m.Domain, shape: tuple[int, ...], dtype: np.dtype,
                of_shape: tuple[int, ...] | None, seed: int) -> np.ndarray:
    """A large array inside ``domain`` from a NumPy generator seeded by Hypothesis."""
    rng = np.random.default_rng(seed)
    kind = domain.kind
    if kind == "bool" or dtype.kind == "b":
        return rng.random(shape) < 0.5
    if kind in ("labels", "indices", "integers") or dtype.kind in "iu":
        hi = 4 if not of_shape else int(of_shape[-1] if kind == "labels" else of_shape[0])
        return _duplicate(rng.integers(0, max(hi, 1), shape).astype(dtype))
    x = rng.standard_normal(shape)
    if kind in ("positive", "nonnegative"):
        x = np.abs(x) + 1e-2
    elif kind == "nonzero":
        x = np.sign(x + 1e-300) * (np.abs(x) + 1e-2)
    elif kind == "bounded":
        lo = domain.lo if np.isfinite(domain.lo) else -5.0
        hi = domain.hi if np.isfinite(domain.hi) else 5.0
        x = lo + (hi - lo) * (0.001 + 0.998 * rng.random(shape))
    elif kind in ("probabilities", "one_hot"):
        return _rows(x, kind == "one_hot", dtype)
    return x.astype(dtype)


def _duplicate(a: np.ndarray) -> np.ndarray:
    """Make the last entry repeat the first: duplicate indices on purpose."""
    if a.size >= 2:
        a = a.copy()
        a.flat[-1] = a.flat[0]
    return a


def _rows(logits: np.ndarray, one_hot: bool, dtype: np.dtype) -> np.ndarray:
    if logits.ndim == 0 or logits.shape[-1] == 0:
        return np.ones(logits.shape, dtype) if logits.ndim == 0 else logits.astype(dtype)
    if one_hot:
        return np.eye(logits.shape[-1], dtype=dtype)[np.argmax(logits, axis=-1)]
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(dtype)


# -- whole cases for an op -----------------------------------------------------------------------
@dataclass
class OpCase:
    """A drawn call of ``op``: the arrays the gradient check perturbs (``checked``, with their
    ``names``), the inputs held fixed (``fixed``: position -> value: structural, integer,
    boolean or non-differentiable), attributes, and the dtype of the T-typed inputs."""

    op: OpDef
    values: list[Any]                      # one per op input in order; variadic as a list
    checked_slots: list[tuple[int, int | None]] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float64"
    template: int | None = None            # index of the example the case was drawn from

    @property
    def checked(self) -> list[np.ndarray]:
        return [self._get(slot) for slot in self.checked_slots]

    @property
    def names(self) -> list[str]:
        names = list(self.op.inputs)
        return [names[i] + ("" if j is None else f"[{j}]") for i, j in self.checked_slots]

    def _get(self, slot: tuple[int, int | None]) -> np.ndarray:
        i, j = slot
        return self.values[i] if j is None else self.values[i][j]

    def function(self) -> Any:
        """``f(*checked tensors) -> op output(s)``: the fixed inputs become constants."""
        def f(*tensors: Any) -> Any:
            values = [list(v) if isinstance(v, list) else v for v in self.values]
            for (i, j), t in zip(self.checked_slots, tensors):
                if j is None:
                    values[i] = t
                else:
                    values[i][j] = t
            out = self.op.build(values, {**self.op.attrs, **self.attrs}, None)
            return out.outputs if hasattr(out, "outputs") and not hasattr(out, "op") else out
        f.__name__ = self.op.type
        return f

    def __repr__(self) -> str:
        parts = []
        for name, v in zip(self.op.inputs, self.values):
            if isinstance(v, list):
                parts.append(f"{name}=[{', '.join(_show(a) for a in v)}]")
            else:
                parts.append(f"{name}={_show(v)}")
        attrs = ", ".join(f"{k}={v!r}" for k, v in self.attrs.items())
        return f"{self.op.type}({', '.join(parts)}{', ' if attrs else ''}{attrs})"


def _show(a: Any) -> str:
    a = np.asarray(a)
    if a.size <= 12:
        return f"np.array({a.tolist()!r}, dtype='{a.dtype}')"
    return f"<{a.dtype} array {a.shape}>"


def _float_dtypes(op: OpDef) -> list[str]:
    return [d for d in op.dtypes if d in ("float32", "float64")]


def op_cases(op: OpDef, *, dtype: str | None = None, use_examples: bool = True,
             ) -> st.SearchStrategy[OpCase]:
    """Cases for the registered op ``op`` (an ``engine.registry.OpDef``).

    dtype: the T dtype (default: float64 when allowed, else the op's first dtype).
    use_examples: also draw from the op's ``examples`` templates (shapes and pinned values
    taken from a template, everything else drawn).

    >>> from gradverify import engine
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(op_cases(engine.registry.lookup("MatMul")))
    ... def test(case):
    ...     a, b = case.checked
    ...     assert a.ndim >= 2 and b.ndim >= 2
    >>> test()
    """
    if not isinstance(op, OpDef):
        raise InvalidArgument(f"op={op!r} must be an engine.registry.OpDef")
    floats = _float_dtypes(op)
    chosen = dtype or ("float64" if "float64" in op.dtypes else (floats or list(op.dtypes))[0])
    if chosen not in op.dtypes:
        raise InvalidArgument(f"dtype={chosen!r} is not allowed for op {op.type} "
                              f"(allowed: {', '.join(op.dtypes)})")
    generic = can_generate(op)
    if not generic and not (use_examples and op.examples):
        raise InvalidArgument(f"op {op.type} ({op.source}): no example templates and input "
                              "kinds this strategy cannot generate on its own: "
                              + ", ".join(sorted({d.kind for d in op.inputs.values()}
                                                 - GENERIC_KINDS)))
    return _cases(op, chosen, generic, use_examples)


def can_generate(op: OpDef) -> bool:
    """Whether cases can be drawn without an example template."""
    kinds = {d.kind for d in op.inputs.values()}
    if not kinds <= GENERIC_KINDS:
        return False
    return not any(isinstance(c, str) for c in op.choices.values())


@st.composite
def _cases(draw: Any, op: OpDef, dtype: str, generic: bool, use_examples: bool) -> OpCase:
    names = list(op.inputs)
    templates = list(op.examples) if use_examples else []
    template_i = None
    if templates and (not generic or draw(st.booleans())):
        template_i = draw(st.integers(0, len(templates) - 1))
    tpl = templates[template_i] if template_i is not None else {}
    attrs = dict(tpl.get("attrs", {}))
    # attributes that do not depend on shapes
    for a, choice in op.choices.items():
        if a in attrs:
            continue
        if isinstance(choice, tuple):
            attrs[a] = draw(st.sampled_from(choice))
        elif isinstance(choice, m.TransposeFlag):
            attrs[a] = draw(st.booleans())
    shapes_ = _draw_shapes(draw, op, tpl, attrs)
    # attributes that do
    for a, choice in op.choices.items():
        if a in attrs:
            continue
        attrs[a] = _draw_attr(draw, choice, shapes_, attrs)
    for a, default in op.attrs.items():
        attrs.setdefault(a, default)
    # values
    pinned = tpl.get("values", {})
    values: list[Any] = []
    checked: list[tuple[int, int | None]] = []
    for i, name in enumerate(names):
        domain = op.inputs[name]
        shape = shapes_[name]
        of_shape = shapes_.get(domain.of) if domain.of in shapes_ else None
        if domain.of is not None and isinstance(of_shape, list):
            of_shape = of_shape[0]
        in_dtype = dtype if domain.dtypes is None else domain.dtypes[0]
        if name in pinned:  # strings (serialized summaries) can only be pinned
            np_dtype = np.dtype(object if in_dtype == "string" else in_dtype)
            p = pinned[name]
            values.append([np.asarray(x, np_dtype) for x in p] if isinstance(shape, list)
                          else np.asarray(p, np_dtype))
        elif domain.kind == "shape_only":
            values.append(np.zeros(shape, np.dtype(in_dtype)))
        elif isinstance(shape, list):
            values.append([draw(values_in(domain, s, dtype=in_dtype, kinks=op.kinks))
                           for s in shape])
        elif domain.kind in GENERIC_KINDS - VALUE_KINDS - {"labels", "indices", "integers",
                                                          "bool"}:
            values.append(_structural(draw, domain, shape, shapes_, attrs))
        else:
            values.append(draw(values_in(domain, shape, dtype=in_dtype, kinks=op.kinks,
                                         of_shape=_indexed_shape(domain, of_shape, attrs))))
        if domain.differentiable and domain.kind in VALUE_KINDS and np.dtype(
                in_dtype).kind == "f":
            if isinstance(values[-1], list):
                checked += [(i, j) for j in range(len(values[-1]))]
            else:
                checked.append((i, None))
    if op.ties:
        _make_ties(draw, values, checked)
    case = OpCase(op=op, values=values, checked_slots=checked, attrs={
        k: v for k, v in attrs.items() if k in op.attrs}, dtype=dtype, template=template_i)
    assume(_builds(case))
    return case


_broadcastable = functools.lru_cache(maxsize=256)(hnp.mutually_broadcastable_shapes)


def _indexed_shape(domain: m.Domain, of_shape: Any, attrs: dict[str, Any]) -> Any:
    """For indices: the indexed dimension of ``of`` first (the op's ``axis`` attribute)."""
    if domain.kind != "indices" or of_shape is None or not of_shape:
        return of_shape
    axis = attrs.get("axis", 0) or 0
    return (of_shape[axis % len(of_shape)],)


def _draw_shapes(draw: Any, op: OpDef, tpl: dict[str, Any], attrs: dict[str, Any],
                 ) -> dict[str, Any]:
    names = list(op.inputs)
    if "shapes" in tpl:
        out = {n: (list(map(tuple, s)) if isinstance(s, list) else tuple(s))
               for n, s in tpl["shapes"].items()}
        for n in names:  # inputs a template leaves out get drawn
            if n not in out:
                out[n] = draw(shapes(max_rank=3))
        return out
    value_inputs = [n for n in names if op.inputs[n].kind in VALUE_KINDS | {"bool"}]
    out: dict[str, Any] = {}
    sig = op.signature
    if "->" in sig:
        ins, outs = sig.replace(" ", "").split("->")
        first_out = re.findall(r"\([^)]*\)", outs)[0]  # only input shapes matter here
        drawn = draw(_broadcastable(signature=f"{ins}->{first_out}", max_dims=2,
                                    max_side=4))
        for k, (n, s) in enumerate(zip(names, drawn.input_shapes)):
            s = tuple(s)
            flag = next((a for a, c in op.choices.items()
                         if isinstance(c, m.TransposeFlag) and c.of == k), None)
            if flag is not None and attrs.get(flag) and len(s) >= 2:
                s = s[:-2] + (s[-1], s[-2])
            out[n] = s
    elif sig == "broadcast" and len(value_inputs) > 1:
        drawn = draw(_broadcastable(num_shapes=len(value_inputs), max_dims=3, max_side=4))
        out.update(zip(value_inputs, map(tuple, drawn.input_shapes)))
    else:
        base = draw(shapes(max_rank=3 if op.variadic else 4))
        for n in value_inputs:
            out[n] = base if (sig in ("elementwise", "broadcast") or op.variadic) else draw(
                _base_or_other(base))
    if op.variadic is not None:
        count = draw(st.integers(1, 3))
        base = out[op.variadic]
        axis_attr = "axis" in op.attrs and base
        items = []
        for _ in range(count):
            s = list(base)
            if axis_attr and draw(st.booleans()):
                s[draw(st.integers(0, len(s) - 1))] = draw(st.integers(1, 3))
            items.append(tuple(s))
        out[op.variadic] = items
    for n in names:
        d = op.inputs[n]
        if n in out:
            continue
        of = out.get(d.of, ()) if d.of else ()
        of = of[0] if isinstance(of, list) else of
        if d.kind == "labels":
            out[n] = tuple(of[:-1])
        elif d.kind in ("indices", "integers"):
            out[n] = draw(shapes(max_rank=2, max_side=4))
        elif d.kind in ("new_shape", "multiples", "slice_begin", "slice_size"):
            out[n] = (len(of),)
        elif d.kind == "paddings":
            out[n] = (len(of), 2)
        elif d.kind == "dims":
            out[n] = (draw(st.integers(0, 3)),)
        else:
            out[n] = draw(shapes(max_rank=3))
    return out


@functools.lru_cache(maxsize=256)  # one strategy object per base shape (see values_in)
def _base_or_other(base: tuple[int, ...]) -> st.SearchStrategy[tuple[int, ...]]:
    return st.one_of(st.just(base), shapes(max_rank=4))


def _draw_attr(draw: Any, choice: Any, shapes_: dict[str, Any], attrs: dict[str, Any]) -> Any:
    def shape_of(k: int) -> tuple[int, ...]:
        s = list(shapes_.values())[k]
        return s[0] if isinstance(s, list) else s
    if isinstance(choice, m.AxisChoice):
        rank = len(shape_of(choice.of)) + choice.extra
        options = []
        if choice.allow_none:
            options.append(st.none())
        if rank and choice.allow_tuple:  # the op's attribute is a tuple: one axis is (a,)
            options.append(st.lists(st.integers(-rank, rank - 1), min_size=0, max_size=rank,
                                    unique_by=lambda a: a % rank).map(tuple))
        elif rank:
            options.append(st.integers(-rank, rank - 1))
        return draw(st.one_of(*options)) if options else None
    if isinstance(choice, m.Permutation):
        rank = len(shape_of(choice.of))
        perm = draw(st.permutations(list(range(rank)))).copy() if rank else []
        if choice.allow_none and draw(st.booleans()):
            return None
        return tuple(perm)
    if isinstance(choice, m.UnitAxes):
        s = shape_of(choice.of)
        ones = [i for i, d in enumerate(s) if d == 1]
        picked = draw(st.lists(st.sampled_from(ones), unique=True)) if ones else []
        return tuple(i - len(s) if draw(st.booleans()) else i for i in picked)
    if isinstance(choice, m.DimOf):
        s = shape_of(choice.of)
        axis = attrs.get(choice.axis, 0) or 0
        return s[axis % len(s)] if s else 0
    return None


def _structural(draw: Any, domain: m.Domain, own_shape: tuple[int, ...],
                shapes_: dict[str, Any], attrs: dict[str, Any]) -> np.ndarray:
    of = shapes_.get(domain.of, ()) if domain.of else ()
    of = tuple(of[0] if isinstance(of, list) else of)
    kind = domain.kind
    if kind == "new_shape":
        size = int(np.prod(of))
        factors = [f for f in range(1, size + 1) if size % f == 0] or [1]
        first = draw(st.sampled_from(factors))
        target = [first, size // first] if draw(st.booleans()) else [size]
        if draw(st.booleans()):
            target[draw(st.integers(0, len(target) - 1))] = -1
        return np.array(target, np.int32)
    if kind == "multiples":
        return np.array([draw(st.integers(1, 3)) for _ in of], np.int32)
    if kind == "dims":
        n = own_shape[0] if own_shape else 0
        return np.array([draw(st.integers(1, 3)) for _ in range(n)], np.int32)
    if kind == "slice_begin":
        begin = [draw(st.integers(0, max(d - 1, 0))) for d in of]
        attrs["_slice_begin"] = begin
        return np.array(begin, np.int32)
    if kind == "slice_size":
        begin = attrs.pop("_slice_begin", [0] * len(of))
        return np.array([draw(st.sampled_from([-1, d - b])) if d - b > 0 else 0
                         for d, b in zip(of, begin)], np.int32)
    if kind == "paddings":
        return np.array([[draw(st.integers(0, 2)), draw(st.integers(0, 2))] for _ in of],
                        np.int32)
    raise InvalidArgument(f"cannot generate structural input of kind {kind!r}")


def _make_ties(draw: Any, values: list[Any], checked: list[tuple[int, int | None]]) -> None:
    """Exact ties on purpose: copy entries within an input, and between inputs of one shape."""
    if not checked or not draw(st.booleans()):
        return

    def get(slot: tuple[int, int | None]) -> np.ndarray:
        return values[slot[0]] if slot[1] is None else values[slot[0]][slot[1]]

    def put(slot: tuple[int, int | None], array: np.ndarray) -> None:
        if slot[1] is None:
            values[slot[0]] = array
        else:
            values[slot[0]][slot[1]] = array

    a = get(checked[0]).copy()
    if a.size >= 2:
        i, j = draw(st.integers(0, a.size - 1)), draw(st.integers(0, a.size - 1))
        a.flat[j] = a.flat[i]
        put(checked[0], a)
    for slot in checked[1:]:
        b = get(slot)
        if b.shape == a.shape and b.size:
            mask = np.array(draw(st.lists(st.booleans(), min_size=b.size, max_size=b.size)),
                            bool).reshape(b.shape)
            put(slot, np.where(mask, a, b))


def _builds(case: OpCase) -> bool:
    """The op's own static checks accept the case (a throwaway graph), remembered per
    (op, attributes, checked shapes and dtypes, fixed values): the checked inputs enter as
    placeholders, so nothing else can change the answer, and the same signature is drawn
    again and again (a graph per draw was a fiftieth of the gate's time)."""
    key = _build_key(case)
    if key is None:
        return _try_build(case)
    hit = _BUILDS.get(key)
    if hit is None or hit[0] is not case.op:
        if len(_BUILDS) >= _BUILDS_SIZE:
            _BUILDS.clear()
        hit = _BUILDS[key] = (case.op, _try_build(case))
    return hit[1]


_BUILDS: dict[Any, tuple[OpDef, bool]] = {}
_BUILDS_SIZE = 4096


def _build_key(case: OpCase) -> Any:
    """What decides whether ``case`` builds, hashable; None when an attribute is not."""
    checked = set(case.checked_slots)

    def of(v: Any, slot: tuple[int, int | None]) -> Any:
        a = np.asarray(v)
        if slot in checked:
            return ("checked", a.shape, a.dtype.str)
        if a.dtype.kind == "O":
            return ("object", a.shape, repr(a.tolist()))
        return (a.shape, a.dtype.str, a.tobytes())

    values = tuple(tuple(of(x, (i, j)) for j, x in enumerate(v)) if isinstance(v, list)
                   else of(v, (i, None)) for i, v in enumerate(case.values))
    key = (case.op.type, tuple(sorted(case.attrs.items())), values)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _try_build(case: OpCase) -> bool:
    import gradverify.engine as tf
    try:
        with tf.Graph().as_default():
            f = case.function()
            f(*[tf.placeholder(tf.as_dtype(x.dtype), x.shape) for x in case.checked])
    except (ValueError, TypeError, IndexError, NotImplementedError):
        return False
    return True
