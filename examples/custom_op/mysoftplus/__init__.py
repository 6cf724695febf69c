"""An example third-party op package: ``MySoftplus`` with its gradient, for the engine.

Importing the package registers the op (importing it again does nothing: Python imports a
module once).

>>> import numpy as np
>>> import gradverify.engine as tf
>>> from mysoftplus import my_softplus
>>> with tf.Graph().as_default(), tf.Session() as s:
...     s.run(my_softplus(np.array([0.0, 30.0, -800.0]))).round(4).tolist()
[0.6931, 30.0, 0.0]
"""

from mysoftplus.ops import my_softplus

__all__ = ["my_softplus"]
