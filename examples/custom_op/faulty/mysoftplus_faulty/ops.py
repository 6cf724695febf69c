"""``MySoftplusFaulty``: the forward pass of softplus is right, the gradient is not.

The bug is a classic sign slip: ``sigmoid(-x)`` (which is ``1 - sigmoid(x)``, the
derivative of ``softplus(-x)`` up to sign) instead of ``sigmoid(x)``. Both agree at
``x = 0``, so a hand-written test at zero passes; the property suite does not.
"""

from __future__ import annotations

import numpy as np

import gradverify.engine as tf
from gradverify.engine import meta


@tf.op("MySoftplusFaulty", inputs={"features": meta.reals}, api=None,
       reference=lambda x: np.logaddexp(0, x))
def my_softplus_faulty(features):
    """``log(1 + exp(x))`` without overflow: ``max(x, 0) + log1p(exp(-|x|))``."""
    return np.maximum(features, 0) + np.log1p(np.exp(-np.abs(features)))


@my_softplus_faulty.gradient
def _my_softplus_faulty_grad(op, grad):
    return grad * tf.sigmoid(-op.inputs[0])  # BUG: should be sigmoid(op.inputs[0])
