"""The generated suite: every registered op through every property that applies to it
(metadata, shapes, forward vs its reference, gradient float64 / float32 / second order,
no_gradient), under the active Hypothesis profile (``ci`` in CI: derandomised).

The default run puts every op through every property with a small budget of examples; the
profile's full budget (25 under ``ci``, 400 under ``thorough``) runs as the ``slow`` copy,
under ``tox -e thorough`` (``gradverify check`` runs 20 per property over the same ops)."""

from __future__ import annotations

import pytest

from gradverify import engine
from gradverify.properties import op_suite

BUILT_IN = [o for o in engine.registry.ops().values()
            if o.kernel.__module__.startswith("gradverify.engine")]

test_registered_op = op_suite(*BUILT_IN, examples=10)
test_registered_op_full_budget = pytest.mark.slow(op_suite(*BUILT_IN))
