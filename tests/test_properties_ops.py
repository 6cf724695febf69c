"""The generated suite: every built-in op through every property that applies to it
(metadata, shapes, forward vs its reference, gradient float64 / float32 / second order,
no_gradient), under the active Hypothesis profile (``ci`` in CI: derandomised).

The default run gives shapes, forward, no_gradient and the second-order gradient 10
examples per op and the first-order gradients (float64, float32) the profile's budget; the
whole suite at the profile's budget is the ``slow`` copy, run by ``tox -e thorough``."""

from __future__ import annotations

import pytest

from gradverify import engine
from gradverify.properties import op_suite

# Built-in ops only: other test modules register ops of their own while the suite runs.
BUILT_IN = [o for o in engine.registry.ops().values()
            if o.kernel.__module__.startswith("gradverify.engine")]
QUICK = {"shapes": 10, "forward": 10, "no_gradient": 10, "gradient_order2": 10}

test_registered_op = op_suite(*BUILT_IN, examples=QUICK)
test_registered_op_full_budget = pytest.mark.slow(op_suite(*BUILT_IN))
