"""gradverify's harness: gradient checks with an error model, and training-step audits.

The core (``check_vjp``) knows nothing of the engine: it checks any
``forward(*arrays)`` against any ``vjp(inputs, cotangents)``. ``check_gradients`` and
``audit_step`` are the engine-facing entry points.

>>> import numpy as np
>>> from gradverify.harness import check_vjp
>>> check_vjp(np.sin, lambda xs, gs: (gs[0] * np.cos(xs[0]),), [np.arange(3.0)]).verdict
'PASS'
"""

from gradverify.harness.checker import Options, check_vjp
from gradverify.harness.report import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Check,
    Entry,
    GradientError,
    GradientReport,
)

__all__ = ["FAIL", "INCONCLUSIVE", "PASS", "Check", "Entry", "GradientError",
           "GradientReport", "Options", "assert_gradients", "audit_step", "check_gradients",
           "check_vjp"]


def __getattr__(name: str):
    # The engine-facing entry points import the engine only when asked for.
    if name in ("check_gradients", "assert_gradients"):
        from gradverify.harness import engine_adapter
        return getattr(engine_adapter, name)
    if name in ("audit_step", "StepAudit"):
        from gradverify.harness import audit
        return getattr(audit, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
