"""TF1's variable initializers (``tf.zeros_initializer()`` ... ``tf.glorot_uniform_initializer()``).

An initializer is a callable ``init(shape, dtype=None, partition_info=None) -> Tensor`` that
builds the ops producing an initial value; ``get_variable`` calls it inside the variable's
``Initializer`` name scope, so each run of the variable's initializer draws anew. Random
initializers take TF1's ``seed`` (combined with the graph seed by ``get_seed``), so a graph
built the same way with the same seeds starts from the same values.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     v = tf.get_variable("w", [2, 3], initializer=tf.constant_initializer(0.5))
...     with tf.Session() as s:
...         _ = s.run(tf.global_variables_initializer())
...         s.run(v).tolist()
[[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]
"""

from __future__ import annotations

import math
from typing import Any

from gradverify.engine import dtypes as _dt

# Imported as modules: the names exported into this module (``initializers.zeros`` ...)
# would shadow plainly imported functions of the same name.
from gradverify.engine import graph as _graph
from gradverify.engine.ops import core_ops as _core
from gradverify.engine.ops import random_ops as _random
from gradverify.engine.registry import export

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "TruncatedNormal",
           "RandomUniform", "VarianceScaling", "GlorotUniform", "GlorotNormal"]

# scipy.stats.truncnorm.std(a=-2, b=2, loc=0, scale=1): a truncated normal with this stddev
# scaled by 1/it has the variance asked for (TF1's VarianceScaling constant).
_TRUNCNORM_STD = 0.87962566103423978


def _float_dtype(dtype: Any) -> _dt.DType:
    dtype = _dt.as_dtype(dtype)
    if not dtype.is_floating:
        raise ValueError(f"Expected floating point type, got {dtype.name}.")
    return dtype


def _dims(shape: Any) -> list[int]:
    return [int(getattr(d, "value", d)) for d in (
        shape.as_list() if hasattr(shape, "as_list") else shape)]


def _compute_fans(shape: list[int]) -> tuple[float, float]:
    """TF1's fan-in/fan-out: matrices [in, out]; conv kernels [..., in, out] times the
    receptive field; vectors fan_in = fan_out = n; scalars 1."""
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = float(math.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: ``init(shape, dtype=None, partition_info=None)`` builds the value ops."""

    dtype: _dt.DType = _dt.float32

    def __call__(self, shape: Any, dtype: Any = None, partition_info: Any = None) -> Any:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (TF1's ``get_config``)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@export("zeros_initializer", "initializers.zeros")
class Zeros(Initializer):
    """All zeros (any dtype).

    >>> Zeros()([2], dtype="int32").dtype.name
    'int32'
    """

    def __init__(self, dtype: Any = _dt.float32):
        self.dtype = _dt.as_dtype(dtype)

    def __call__(self, shape: Any, dtype: Any = None, partition_info: Any = None) -> Any:
        return _core.zeros(_dims(shape), _dt.as_dtype(dtype or self.dtype))

    def get_config(self) -> dict[str, Any]:
        return {"dtype": self.dtype.name}


@export("ones_initializer", "initializers.ones")
class Ones(Initializer):
    """All ones (any dtype)."""

    def __init__(self, dtype: Any = _dt.float32):
        self.dtype = _dt.as_dtype(dtype)

    def __call__(self, shape: Any, dtype: Any = None, partition_info: Any = None) -> Any:
        return _core.ones(_dims(shape), _dt.as_dtype(dtype or self.dtype))

    def get_config(self) -> dict[str, Any]:
        return {"dtype": self.dtype.name}


@export("constant_initializer", "initializers.constant")
class Constant(Initializer):
    """``value`` (a number, or a list filling the shape as ``tf.constant`` does: fewer
    elements are padded with the last one, more are a ValueError).

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     t = Constant([1, 2])([4])
    ...     tf.Session().run(t).tolist()
    [1.0, 2.0, 2.0, 2.0]
    """

    def __init__(self, value: Any = 0, dtype: Any = _dt.float32, verify_shape: bool = False):
        self.value = value
        self.dtype = _dt.as_dtype(dtype)
        self._verify_shape = verify_shape

    def __call__(self, shape: Any, dtype: Any = None, partition_info: Any = None,
                 verify_shape: bool | None = None) -> Any:
        verify = self._verify_shape if verify_shape is None else verify_shape
        return _graph.constant(self.value, dtype=_dt.as_dtype(dtype or self.dtype),
                        shape=_dims(shape), verify_shape=verify)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value, "dtype": self.dtype.name}


@export("random_normal_initializer", "initializers.random_normal")
class RandomNormal(Initializer):
    """Samples of N(mean, stddev²), drawn anew by every run of the variable's initializer."""

    def __init__(self, mean: float = 0.0, stddev: float = 1.0, seed: int | None = None,
                 dtype: Any = _dt.float32):
        self.mean, self.stddev, self.seed = mean, stddev, seed
        self.dtype = _float_dtype(dtype)

    def __call__(self, shape: Any, dtype: Any = None, partition_info: Any = None) -> Any:
        return _random.random_normal(_dims(shape), self.mean, self.stddev,
                             _float_dtype(dtype or self.dtype), seed=self.seed)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed,
                "dtype": self.dtype.name}


@export("truncated_normal_initializer", "initializers.truncated_normal")
class TruncatedNormal(RandomNormal):
    """Samples of N(mean, stddev²) with those beyond two stddevs re-drawn."""

    def __call__(self, shape: Any, dtype: Any = None, partition_info: Any = None) -> Any:
        return _random.truncated_normal(_dims(shape), self.mean, self.stddev,
                                _float_dtype(dtype or self.dtype), seed=self.seed)


@export("random_uniform_initializer", "initializers.random_uniform")
class RandomUniform(Initializer):
    """Samples uniform in [minval, maxval) (``maxval`` None means 1 for floats)."""

    def __init__(self, minval: float = 0, maxval: float | None = None,
                 seed: int | None = None, dtype: Any = _dt.float32):
        self.minval, self.maxval, self.seed = minval, maxval, seed
        self.dtype = _dt.as_dtype(dtype)

    def __call__(self, shape: Any, dtype: Any = None, partition_info: Any = None) -> Any:
        return _random.random_uniform(_dims(shape), self.minval, self.maxval,
                              _dt.as_dtype(dtype or self.dtype), seed=self.seed)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed,
                "dtype": self.dtype.name}


@export("variance_scaling_initializer", "initializers.variance_scaling")
class VarianceScaling(Initializer):
    """TF1's ``VarianceScaling``: variance ``scale / n`` with ``n`` the fan-in, fan-out or
    their mean (``mode``); ``distribution`` ``"truncated_normal"`` (alias ``"normal"``),
    ``"untruncated_normal"`` or ``"uniform"`` (limit ``sqrt(3 * scale / n)``).

    >>> VarianceScaling(mode="fan_avg", distribution="uniform").mode
    'fan_avg'
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("normal", "uniform", "truncated_normal", "untruncated_normal")

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed: int | None = None,
                 dtype: Any = _dt.float32):
        if scale <= 0.0:
            raise ValueError("`scale` must be positive float.")
        if mode not in self._MODES:
            raise ValueError(f"Invalid `mode` argument: {mode}")
        distribution = distribution.lower()
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(f"Invalid `distribution` argument: {distribution}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed
        self.dtype = _float_dtype(dtype)

    def __call__(self, shape: Any, dtype: Any = None, partition_info: Any = None) -> Any:
        dtype = _float_dtype(dtype or self.dtype)
        dims = _dims(getattr(partition_info, "full_shape", None) or shape)
        fan_in, fan_out = _compute_fans(dims)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}
        scale = self.scale / max(1.0, n[self.mode])
        shape = _dims(shape)
        if self.distribution in ("normal", "truncated_normal"):
            return _random.truncated_normal(shape, 0.0, math.sqrt(scale) / _TRUNCNORM_STD, dtype,
                                    seed=self.seed)
        if self.distribution == "untruncated_normal":
            return _random.random_normal(shape, 0.0, math.sqrt(scale), dtype, seed=self.seed)
        limit = math.sqrt(3.0 * scale)
        return _random.random_uniform(shape, -limit, limit, dtype, seed=self.seed)

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed, "dtype": self.dtype.name}


@export("glorot_uniform_initializer", "initializers.glorot_uniform")
class GlorotUniform(VarianceScaling):
    """Xavier uniform: limit ``sqrt(6 / (fan_in + fan_out))`` (``get_variable``'s default
    for floating variables)."""

    def __init__(self, seed: int | None = None, dtype: Any = _dt.float32):
        super().__init__(1.0, "fan_avg", "uniform", seed, dtype)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed, "dtype": self.dtype.name}


@export("glorot_normal_initializer", "initializers.glorot_normal")
class GlorotNormal(VarianceScaling):
    """Xavier normal: truncated normal with variance ``2 / (fan_in + fan_out)``."""

    def __init__(self, seed: int | None = None, dtype: Any = _dt.float32):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed, dtype)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed, "dtype": self.dtype.name}
