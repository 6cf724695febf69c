"""The precision check at the edge of float32's range: a derivative factor beyond the range
(the chain rule forms -1/y^2 = -4e38 at y = 5e-20 before the cotangent weights it) makes a
correct float32 gradient inf where the float64 one, v times it, fits. That is
GRADIENT_OVERFLOWS (not verifiable there), never FAIL; a finite wrong value there, and a wrong
value at an ordinary entry beside them, still FAIL."""

from __future__ import annotations

import numpy as np
import pytest

from gradverify.harness import FAIL, check_vjp
from gradverify.harness.reasons import Reason

F32 = np.float32
X = np.array([5e-20, -8e-20, 1.5, 3e-15], F32)


def _reciprocal(x):
    return 1 / x


def _vjp_tf_realdiv(xs, gs):
    # TF's RealDiv gradient for 1 / y: g * ((-1 / y) / y), the factor formed first
    y = xs[0]
    with np.errstate(over="ignore"):
        return (gs[0] * ((-1 / y) / y),)


def _vjp_wrong_sign(xs, gs):
    # the faulty gradient computed without overflow: (g / y) / y with the sign lost
    y = xs[0]
    return ((gs[0] / y) / y,)


def _vjp_doubled_at_ordinary_entry(xs, gs):
    # right (and overflowing like TF's) at the tiny entries, twice too large at 1.5
    y = xs[0]
    with np.errstate(over="ignore"):
        g = gs[0] * ((-1 / y) / y)
    return (np.where(np.abs(y) > 1, 2 * g, g),)


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_derivative_factor_beyond_float32_is_not_a_fail(mode, seed):
    report = check_vjp(_reciprocal, _vjp_tf_realdiv, [X], mode=mode, seed=seed)
    assert report.verdict != FAIL, str(report)
    assert Reason.GRADIENT_OVERFLOWS in report.codes, str(report)


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("vjp", [_vjp_wrong_sign, _vjp_doubled_at_ordinary_entry])
def test_faults_at_the_range_edge_still_fail(mode, vjp):
    report = check_vjp(_reciprocal, vjp, [X], mode=mode, seed=0)
    assert report.verdict == FAIL, str(report)
