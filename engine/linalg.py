"""`tf.linalg`: the registered ops exported under `linalg.` (filled by the op registry)."""

import gradverify.engine.ops  # noqa: F401 - registers every built-in op
from gradverify.engine.registry import public_names as _public_names

globals().update(_public_names("linalg"))
