"""A TF1-style graph engine in NumPy: ``import gradverify.engine as tf`` runs classic TF1 programs.

>>> import gradverify.engine as tf
>>> graph = tf.Graph()
>>> with graph.as_default():
...     x = tf.placeholder(tf.float32, shape=[None, 3])
...     w = tf.Variable(tf.ones([3, 1]))
...     y = tf.matmul(x, w)
>>> with tf.Session(graph=graph) as session:
...     tf.global_variables_initializer().run()
...     session.run(y, feed_dict={x: [[1.0, 2.0, 3.0]]}).tolist()
[[6.0]]
"""

from gradverify.engine import dtypes, errors, registry
from gradverify.engine import ops as _ops
from gradverify.engine.dtypes import (
    DType, as_dtype, bool, float16, float32, float64, int32, int64, string, uint8,
)
from gradverify.engine.graph import (
    Graph, GraphKeys, Operation, Tensor, add_to_collection, constant_value,
    control_dependencies, convert_to_tensor, get_collection, get_collection_ref,
    get_default_graph, name_scope, reset_default_graph, set_random_seed,
)
from gradverify.engine.gradients import gradients
from gradverify.engine.registry import op, public_names as _public_names
from gradverify.engine.session import InteractiveSession, Session, get_default_session
from gradverify.engine.shapes import Dimension, TensorShape
from gradverify.engine.variables import Variable
from gradverify.engine import clip_ops, initializers, variable_scope as _variable_scope
from gradverify.engine.variable_scope import AUTO_REUSE, VariableScope

globals().update(_public_names(""))

from gradverify.engine import math, nn, random, train
from gradverify.engine import linalg

registry.materialize_namespaces()  # every exported path resolves: engine.manip.reshape ...

get_static_value = constant_value
newaxis = None

import types as _types

compat = _types.SimpleNamespace(v1=__import__(__name__))
