"""Autopacking: a (nested) list mixing tensors and numbers becomes one ``Pack`` op.

TF1 converts ``[tf.shape(x)[0], -1]`` to a tensor by packing it: the dtype is the first
tensor's (found depth first), the numbers become constants of that dtype, nested lists are
packed first, and a requested dtype that differs casts the tensors. So ``reshape(x,
[tf.shape(x)[0], -1])``, ``zeros([n, 3])`` and ``tile(x, [n, 1])`` take such lists.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     n = tf.placeholder(tf.int32, [])
...     t = tf.convert_to_tensor([n, 3])
...     t.op.type, t.dtype.name, t.shape.as_list()
('Pack', 'int32', [2])
"""

from __future__ import annotations

from typing import Any

from gradverify.engine import dtypes as _dt

__all__ = ["nested_tensor_dtype", "autopack"]


def _element(value: Any) -> Any:
    conv = getattr(value, "_as_graph_element", None)
    return conv() if conv is not None else value


def nested_tensor_dtype(value: Any) -> _dt.DType | None:
    """The dtype of the first tensor in the nested list/tuple ``value``; None if none."""
    from gradverify.engine.graph import Tensor
    if not isinstance(value, (list, tuple)):
        return None
    for elem in value:
        elem = _element(elem)
        if isinstance(elem, Tensor):
            return elem.dtype
        inner = nested_tensor_dtype(elem)
        if inner is not None:
            return inner
    return None


def autopack(value: list | tuple, dtype: _dt.DType | None, name: str | None) -> Any:
    """One Pack op (named ``name``, default ``packed``) for ``value``, which holds tensors."""
    inferred = nested_tensor_dtype(value)
    dtype = inferred if dtype is None else _dt.as_dtype(dtype)
    return _pack(value, dtype, name or "packed")


def _pack(value: list | tuple, dtype: _dt.DType, name: str) -> Any:
    from gradverify.engine.graph import Tensor, constant, get_default_graph
    from gradverify.engine.registry import api, lookup
    graph = get_default_graph()
    with graph.name_scope(name) as scope:
        elems: list[Any] = []
        must_pack = False
        for i, elem in enumerate(value):
            elem = _element(elem)
            if isinstance(elem, Tensor):
                if elem.dtype is not dtype:
                    if not (elem.dtype.is_integer or elem.dtype.is_floating) or not (
                            dtype.is_integer or dtype.is_floating):
                        raise TypeError(f"Cannot convert a list containing a tensor of dtype "
                                        f"{elem.dtype.name} to {dtype.name} (Tensor is: "
                                        f"{elem!r})")
                    elem = api("cast")(elem, dtype)
                must_pack = True
            elif isinstance(elem, (list, tuple)):
                elem = _pack(elem, dtype, str(i))
                must_pack = must_pack or isinstance(elem, Tensor)
            elems.append(elem)
        if not must_pack:
            return elems
        tensors = [e if isinstance(e, Tensor) else constant(e, dtype=dtype, name=str(i))
                   for i, e in enumerate(elems)]
        return lookup("Pack")(tensors, axis=0, name=scope)
