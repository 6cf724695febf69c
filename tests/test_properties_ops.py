"""The generated suite: every built-in op through every property that applies to it
(metadata, shapes, forward vs its reference, gradient float64 / float32 / second order,
no_gradient), under the active Hypothesis profile (``ci`` in CI: derandomised)."""

from __future__ import annotations

from gradverify import engine
from gradverify.properties import op_suite

# Built-in ops only: other test modules register ops of their own while the suite runs.
BUILT_IN = [o for o in engine.registry.ops().values()
            if o.kernel.__module__.startswith("gradverify.engine")]

test_registered_op = op_suite(*BUILT_IN)
