"""The generated suite: every registered op through every property that applies to it
(metadata, shapes, forward vs its reference, gradient float64 / float32 / second order,
no_gradient), under the active Hypothesis profile (``ci`` in CI: derandomised)."""

from __future__ import annotations

from gradverify import engine
from gradverify.properties import op_suite

test_registered_op = op_suite(*engine.registry.ops().values())
