"""The op ``MySoftplus``: one block, as the engine's own ops are written.

- ``@op(...)`` registers the NumPy kernel with the metadata the property suite generates
  cases from (``inputs`` domains) and an INDEPENDENT reference for the forward check.
- ``@my_softplus.gradient`` is TF1's ``(op, grad)`` rule, built from engine ops so that the
  gradient can itself be differentiated (the suite checks second order too).

``my_softplus`` is the builder: ``my_softplus(x, name=None)`` returns the output tensor.
"""

from __future__ import annotations

import numpy as np

import gradverify.engine as tf
from gradverify.engine import meta


@tf.op("MySoftplus", inputs={"features": meta.reals}, api=None,
       reference=lambda x: np.logaddexp(0, x))
def my_softplus(features):
    """``log(1 + exp(x))`` without overflow: ``max(x, 0) + log1p(exp(-|x|))``."""
    return np.maximum(features, 0) + np.log1p(np.exp(-np.abs(features)))


@my_softplus.gradient
def _my_softplus_grad(op, grad):
    # d/dx log(1 + exp(x)) = sigmoid(x), times the upstream gradient.
    return grad * tf.sigmoid(op.inputs[0])
