"""TF1 dtypes: float32, float64, int32, int64, bool (plus float16 for casts).

A DType wraps a NumPy dtype and knows the two spellings TF uses: the Python name
(``float32``) in TypeErrors and the proto name (``float``) in run-time messages.

>>> float32.name, float32.proto_name, as_dtype("float64") is float64
('float32', 'float', True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "DType", "as_dtype", "float16", "float32", "float64", "int32", "int64", "bool",
    "uint8", "string",
]


class DType:
    """A tensor element type; compare with ``is`` or ``==``.

    >>> float32.as_numpy_dtype
    <class 'numpy.float32'>
    """

    __slots__ = ("name", "proto_name", "as_numpy_dtype", "np")

    def __init__(self, name: str, proto_name: str, np_type: type):
        self.name = name
        self.proto_name = proto_name
        self.as_numpy_dtype = np_type
        self.np = np.dtype(np_type)

    @property
    def base_dtype(self) -> DType:
        return self

    @property
    def is_floating(self) -> bool:
        return self.np.kind == "f"

    @property
    def is_integer(self) -> bool:
        return self.np.kind in "iu"

    @property
    def is_bool(self) -> bool:
        return self.np.kind == "b"

    @property
    def min(self) -> Any:
        return np.finfo(self.np).min if self.is_floating else np.iinfo(self.np).min

    @property
    def max(self) -> Any:
        return np.finfo(self.np).max if self.is_floating else np.iinfo(self.np).max

    def __repr__(self) -> str:
        return f"tf.{self.name}"

    def __reduce__(self):  # pickles as the singleton (pytest-xdist, multiprocessing)
        return as_dtype, (self.name,)


float16 = DType("float16", "half", np.float16)
float32 = DType("float32", "float", np.float32)
float64 = DType("float64", "double", np.float64)
int32 = DType("int32", "int32", np.int32)
int64 = DType("int64", "int64", np.int64)
uint8 = DType("uint8", "uint8", np.uint8)
bool = DType("bool", "bool", np.bool_)
string = DType("string", "string", np.object_)

_BY_KEY: dict[Any, DType] = {}
for _d in (float16, float32, float64, int32, int64, uint8, bool, string):
    _BY_KEY[_d.name] = _d
    _BY_KEY[_d.np] = _d
    _BY_KEY[_d.as_numpy_dtype] = _d
_BY_KEY.update({"float": float32, "double": float64, "half": float16, float: float64,
                int: int32, np.dtype(np.str_): string})


def as_dtype(value: Any) -> DType:
    """Convert a DType, NumPy dtype or type, or name to a DType.

    >>> as_dtype(np.float64) is float64, as_dtype("float") is float32
    (True, True)
    """
    if isinstance(value, DType):
        return value
    try:
        return _BY_KEY[value]
    except (KeyError, TypeError):
        pass
    try:
        npd = np.dtype(value)
    except TypeError:
        npd = None
    if npd is not None:
        if npd in _BY_KEY:
            return _BY_KEY[npd]
        if npd.kind in "US":
            return string
    raise TypeError(f"Cannot convert {value!r} to a dtype.")
