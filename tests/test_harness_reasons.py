"""Every INCONCLUSIVE / NOT_APPLICABLE reason is a documented code with a working example
(docs/verdicts.md lists the same examples)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.harness import check_gradients, check_vjp
from gradverify.harness.reasons import Reason
from tests import flush_to_zero

DOC = (Path(__file__).resolve().parents[1] / "docs" / "verdicts.md").read_text()


def _exp_vjp(xs, gs):
    return (gs[0] * np.exp(xs[0]),)


def _relu_diff():
    relu = lambda x: np.maximum(x, 0)
    vjp = lambda xs, gs: (gs[0] * (xs[0] >= 0), -gs[0] * (xs[1] >= 0))
    # beyond FULL_FALLBACK (4096) elements: below it the whole Jacobian judges the kinks
    return check_vjp(lambda a, b: relu(a) - relu(b), vjp, [np.zeros(2100), np.zeros(2100)],
                     mode="fast")


EXAMPLES = {
    Reason.NONFINITE_NEAR_X: lambda: check_vjp(
        np.sqrt, lambda xs, gs: (gs[0] * np.where(
            xs[0] > 0, 0.5 / np.sqrt(np.abs(xs[0]) + (xs[0] == 0)), 0.0),),
        [np.array([0.0, 1.0])]),
    Reason.OUTPUT_NOT_FINITE: lambda: check_vjp(np.exp, _exp_vjp, [np.array([1000.0, 800.0])]),
    Reason.ROUNDOFF_DOMINATED: lambda: check_vjp(
        lambda x: np.exp(x) - 1e4, _exp_vjp, [np.array([0.5, 1.0])], inconclusive_rtol=1e-9),
    Reason.TRUNCATION_DOMINATED: lambda: check_vjp(
        lambda x: np.floor(x * 1e6) / 1e6, lambda xs, gs: (gs[0],), [np.array([3.3])]),
    Reason.STRUCTURE_BELOW_STEP: lambda: check_vjp(
        lambda x: x + np.sign(x - 1) * np.maximum(np.abs(x - 1) - 3e-8, 0),
        lambda xs, gs: (gs[0],), [np.array([1.0])]),
    Reason.ROUNDED_AWAY: lambda: check_vjp(
        lambda x: (x * 1e-3 + 1e10) - 1e10, lambda xs, gs: (gs[0] * 1e-3,),
        [np.array([1.0, 2.0])]),
    Reason.GRADIENT_OVERFLOWS: lambda: check_vjp(
        lambda x: 1 / np.sqrt(x), lambda xs, gs: (gs[0] * -0.5 * xs[0] ** -1.5,),
        [np.array([1e-30, 1.0], dtype=np.float32)]),
    Reason.SUBNORMAL_FLUSHED: lambda: check_vjp(
        flush_to_zero.relu_scaled, flush_to_zero.relu_scaled_vjp,
        [np.array([1e-10, 1.0], dtype=np.float32)]),
    Reason.KINK_UNRESOLVED: _relu_diff,
    Reason.JUMPS_UNRESOLVED: lambda: check_vjp(
        np.sign, lambda xs, gs: (np.zeros_like(gs[0]),), [np.zeros(400)], mode="fast"),
    Reason.JUMPS_WITHIN_STEP: lambda: check_vjp(
        np.mod, lambda xs, gs: (gs[0], -gs[0] * np.floor(xs[0] / xs[1])),
        [np.array([1e15]), np.array([3.0])]),
    Reason.NO_FLOAT_INPUTS: lambda: check_vjp(lambda x: x * 2, lambda xs, gs: (None,),
                                              [np.array([1, 2])]),
    Reason.NO_FLOAT_OUTPUTS: lambda: check_gradients(lambda x: tf.cast(x, tf.int32),
                                                     [np.array([1.5])]),
    Reason.DISCONTINUOUS: lambda: check_vjp(np.sign, lambda xs, gs: (np.zeros_like(gs[0]),),
                                            [np.array([0.0])]),
}


def test_the_list_is_closed_and_documented():
    assert set(EXAMPLES) == set(Reason)
    for code in Reason:
        assert f"`{code.name}`" in DOC, code


@pytest.mark.parametrize("code", list(Reason), ids=lambda c: c.name)
def test_each_reason_has_a_working_example(code):
    report = EXAMPLES[code]()
    assert report.verdict == code.verdict, str(report)
    assert code in report.codes, str(report)


def test_codes_show_an_unlisted_reason_as_its_text():
    # a check that gives up with free text must not vanish from ``codes`` (the tricky-case
    # test compares codes with the allowed ones)
    from gradverify.harness.report import INCONCLUSIVE, Check, GradientReport
    report = GradientReport(checks=[Check("gradient", INCONCLUSIVE, "something unlisted")])
    assert report.codes == ["something unlisted"]
