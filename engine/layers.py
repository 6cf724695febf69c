"""``tf.layers`` (TF1): dense, conv2d, max_pooling2d, flatten, dropout, on ``get_variable``.

Each call opens ``variable_scope(name, default_name=<layer>, reuse=reuse)``, so with no name
the layers are ``dense``, ``dense_1``, ... and their variables ``dense/kernel`` and
``dense/bias``; ``name=`` plus ``reuse=True`` (or ``tf.AUTO_REUSE``) shares them. Kernels
default to ``get_variable``'s Glorot-uniform initializer, biases to zeros; the variables
take the input's dtype. ``kernel_regularizer`` / ``bias_regularizer`` losses go to
``GraphKeys.REGULARIZATION_LOSSES`` as ``get_variable`` puts them.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     x = tf.placeholder(tf.float32, [None, 4])
...     h = tf.layers.dense(x, 3, activation=tf.nn.relu)
...     y = tf.layers.dense(h, 2, use_bias=False)
...     [v.name for v in tf.trainable_variables()], y.shape.as_list()
(['dense/kernel:0', 'dense/bias:0', 'dense_1/kernel:0'], [None, 2])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradverify.engine import nn
from gradverify.engine.graph import Tensor, convert_to_tensor
from gradverify.engine.initializers import Zeros
from gradverify.engine.registry import api, export
from gradverify.engine.variable_scope import get_variable, variable_scope

__all__ = ["dense", "conv2d", "max_pooling2d", "flatten", "dropout"]


def _pair(value: int | Sequence[int], what: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"The `{what}` argument must be a tuple of 2 integers. Received: "
                         f"{value}")
    return pair  # type: ignore[return-value]


def _padding(padding: str) -> str:
    p = str(padding).upper()
    if p not in ("VALID", "SAME"):
        raise ValueError(f"The `padding` argument must be one of 'valid', 'same'. "
                         f"Received: {padding}")
    return p


def _channels_last(data_format: str, layer: str) -> None:
    if data_format != "channels_last":
        raise ValueError(f"{layer}: data_format={data_format!r} is not supported (the "
                         "engine computes NHWC only: use 'channels_last')")


def _bias_and_activation(out: Tensor, units: int, use_bias: bool, bias_initializer: Any,
                         bias_regularizer: Any, trainable: bool, activation: Any) -> Tensor:
    if use_bias:
        bias = get_variable("bias", [units], dtype=out.dtype, initializer=bias_initializer,
                            regularizer=bias_regularizer, trainable=trainable)
        out = nn.bias_add(out, bias)
    return activation(out) if activation is not None else out


@export("layers.dense")
def dense(inputs: Any, units: int, activation: Any = None, use_bias: bool = True,
          kernel_initializer: Any = None, bias_initializer: Any = None,
          kernel_regularizer: Any = None, bias_regularizer: Any = None,
          activity_regularizer: Any = None, kernel_constraint: Any = None,
          bias_constraint: Any = None, trainable: bool = True, name: str | None = None,
          reuse: Any = None) -> Tensor:
    """``activation(inputs @ kernel + bias)`` over the last axis (any rank >= 2)."""
    x = convert_to_tensor(inputs)
    shape = x.shape
    if shape.ndims is not None and shape.ndims < 2:
        raise ValueError(f"Input 0 of layer {name or 'dense'} is incompatible with the "
                         f"layer: expected min_ndim=2, found ndim={shape.ndims}. Full shape "
                         f"received: {shape.as_list()}")
    last = None if shape.ndims is None else shape.as_list()[-1]
    if last is None:
        raise ValueError("The last dimension of the inputs to `Dense` should be defined. "
                         "Found `None`.")
    with variable_scope(name, default_name="dense", values=[x], reuse=reuse):
        kernel = get_variable("kernel", [last, int(units)], dtype=x.dtype,
                              initializer=kernel_initializer, regularizer=kernel_regularizer,
                              trainable=trainable)
        if shape.ndims == 2:
            out = api("matmul")(x, kernel)
        else:  # flatten the leading axes, multiply, restore them
            flat = api("reshape")(x, [-1, last])
            lead = api("shape")(x)[:-1]
            out = api("reshape")(api("matmul")(flat, kernel),
                                 api("concat")([lead, [int(units)]], 0))
            out.set_shape(shape.as_list()[:-1] + [int(units)])
        return _bias_and_activation(out, int(units), use_bias,
                                    bias_initializer or Zeros(), bias_regularizer,
                                    trainable, activation)


@export("layers.conv2d")
def conv2d(inputs: Any, filters: int, kernel_size: Any, strides: Any = (1, 1),
           padding: str = "valid", data_format: str = "channels_last",
           dilation_rate: Any = (1, 1), activation: Any = None, use_bias: bool = True,
           kernel_initializer: Any = None, bias_initializer: Any = None,
           kernel_regularizer: Any = None, bias_regularizer: Any = None,
           activity_regularizer: Any = None, kernel_constraint: Any = None,
           bias_constraint: Any = None, trainable: bool = True, name: str | None = None,
           reuse: Any = None) -> Tensor:
    """2-D convolution of NHWC ``inputs`` with a ``[kh, kw, in, filters]`` kernel."""
    _channels_last(data_format, "conv2d")
    x = convert_to_tensor(inputs)
    if x.shape.ndims is not None and x.shape.ndims != 4:
        raise ValueError(f"Input 0 of layer {name or 'conv2d'} is incompatible with the "
                         f"layer: expected ndim=4, found ndim={x.shape.ndims}. Full shape "
                         f"received: {x.shape.as_list()}")
    channels = None if x.shape.ndims is None else x.shape.as_list()[-1]
    if channels is None:
        raise ValueError("The channel dimension of the inputs should be defined. Found "
                         "`None`.")
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(strides, "strides")
    dh, dw = _pair(dilation_rate, "dilation_rate")
    with variable_scope(name, default_name="conv2d", values=[x], reuse=reuse):
        kernel = get_variable("kernel", [kh, kw, channels, int(filters)], dtype=x.dtype,
                              initializer=kernel_initializer, regularizer=kernel_regularizer,
                              trainable=trainable)
        out = nn.conv2d(x, kernel, strides=[1, sh, sw, 1], padding=_padding(padding),
                        dilations=[1, dh, dw, 1])
        return _bias_and_activation(out, int(filters), use_bias,
                                    bias_initializer or Zeros(), bias_regularizer,
                                    trainable, activation)


@export("layers.max_pooling2d")
def max_pooling2d(inputs: Any, pool_size: Any, strides: Any, padding: str = "valid",
                  data_format: str = "channels_last", name: str | None = None) -> Tensor:
    """Max over ``pool_size`` windows of NHWC ``inputs`` (TF1: strides are required)."""
    _channels_last(data_format, "max_pooling2d")
    ph, pw = _pair(pool_size, "pool_size")
    sh, sw = _pair(strides, "strides")
    x = convert_to_tensor(inputs)
    with variable_scope(name, default_name="max_pooling2d", values=[x]):
        return nn.max_pool(x, ksize=[1, ph, pw, 1], strides=[1, sh, sw, 1],
                           padding=_padding(padding))


@export("layers.flatten")
def flatten(inputs: Any, name: str | None = None,
            data_format: str = "channels_last") -> Tensor:
    """``[batch, ...] -> [batch, prod(...)]`` (the batch size may be unknown)."""
    _channels_last(data_format, "flatten")
    x = convert_to_tensor(inputs)
    dims = x.shape.as_list() if x.shape.ndims is not None else None
    if dims is not None and len(dims) < 1:
        raise ValueError(f"Input 0 of layer flatten is incompatible: expected min_ndim=1, "
                         f"found ndim=0. Full shape received: {dims}")
    with variable_scope(name, default_name="flatten", values=[x]):
        if dims is not None and None not in dims[1:]:
            size = int(np.prod(dims[1:], dtype=np.int64))
            out = api("reshape")(x, [-1, size])
            out.set_shape([dims[0], size])
            return out
        lead = api("shape")(x)[:1]
        return api("reshape")(x, api("concat")([lead, [-1]], 0))


@export("layers.dropout")
def dropout(inputs: Any, rate: Any = 0.5, noise_shape: Any = None, seed: Any = None,
            training: Any = False, name: str | None = None) -> Tensor:
    """Zero a ``rate`` fraction of ``inputs`` and scale the rest by ``1 / (1 - rate)``
    when ``training`` (a Python bool or a boolean tensor, e.g. a placeholder); else the
    inputs unchanged."""
    x = convert_to_tensor(inputs)
    with variable_scope(name, default_name="dropout", values=[x]):
        if isinstance(training, (bool, np.bool_)):
            if not training:
                return api("identity")(x)
            return nn.dropout(x, rate=rate, noise_shape=noise_shape, seed=seed)
        on = api("cast")(convert_to_tensor(training), x.dtype)
        dropped = nn.dropout(x, rate=rate, noise_shape=noise_shape, seed=seed)
        return on * dropped + (1.0 - on) * x
