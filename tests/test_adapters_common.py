"""The framework-free parts of the adapters (default test run, no torch or jax): the
forward-mode consistency fallback, the drop-in verdict policy, and the clear error when a
framework is missing."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

from gradverify.adapters.common import (
    GradverifyWarning,
    InconclusiveWarning,
    check_with_jvp,
    input_names,
    jvp_consistency,
    low_precision_check,
    settle,
)
from gradverify.harness import Check, GradientError, GradientReport


def _sin_vjp(xs, vs):
    return (vs[0] * np.cos(xs[0]),)


def _matmul_pair():
    rng = np.random.default_rng(1)
    return [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))]


def _mm(a, b):
    return a @ b


def _mm_vjp(xs, gs):
    return (gs[0] @ xs[1].T, xs[0].T @ gs[0])


def _mm_jvp(xs, us):
    return (us[0] @ xs[1] + xs[0] @ us[1],)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_consistent_jvp_passes(seed):
    x = np.linspace(-3, 3, 7)
    assert jvp_consistency(np.sin, _sin_vjp, lambda xs, us: (us[0] * np.cos(xs[0]),), [x],
                           seed=seed).verdict == "PASS"
    assert jvp_consistency(_mm, _mm_vjp, _mm_jvp, _matmul_pair(), seed=seed).verdict == "PASS"


@pytest.mark.parametrize("wrong", [
    lambda xs, us: (-us[0] * np.cos(xs[0]),),                 # sign
    lambda xs, us: (us[0] * np.cos(xs[0]) * (1 + 1e-6),),     # small relative error
    lambda xs, us: (np.cos(xs[0]),),                          # ignores the tangent
    lambda xs, us: (us[0][::-1] * np.cos(xs[0]),),            # wrong entries
])
def test_inconsistent_jvp_fails(wrong):
    check = jvp_consistency(np.sin, _sin_vjp, wrong, [np.linspace(-3, 3, 7)], seed=0)
    assert check.verdict == "FAIL" and "<v, J u>" in check.reason


def test_jvp_missing_an_input_fails():
    bad = lambda xs, us: (us[0] @ xs[1],)  # forgets the second input's tangent
    assert jvp_consistency(_mm, _mm_vjp, bad, _matmul_pair(), seed=0).verdict == "FAIL"


def test_jvp_of_wrong_shape_fails():
    bad = lambda xs, us: (us[0].sum(),)
    check = jvp_consistency(np.sin, _sin_vjp, bad, [np.ones(3)], seed=0)
    assert check.verdict == "FAIL" and "shapes" in check.reason


def test_check_with_jvp_reports_forward_mode():
    report = check_with_jvp(np.sin, _sin_vjp, lambda xs, us: (2 * us[0] * np.cos(xs[0]),),
                            [np.linspace(-1, 1, 4)], mode="auto", seed=0)
    assert report.verdict == "FAIL"
    # the harness's own forward-mode checks ("jvp...") or the adapters' fallback
    assert any(c.name.startswith(("jvp", "forward_mode")) and c.verdict == "FAIL"
               for c in report.checks), str(report)


def test_settle_conventions():
    passed = GradientReport(checks=[Check("gradient", "PASS")])
    failed = GradientReport(checks=[Check("gradient", "FAIL", "off")])
    unsure = GradientReport(checks=[Check("gradient", "INCONCLUSIVE", "round-off")])
    assert settle(passed, error=GradientError) is True
    with pytest.raises(GradientError):
        settle(failed, error=GradientError)
    assert settle(failed, error=GradientError, raise_exception=False) is False
    with pytest.raises(GradientError):  # never silently PASS
        settle(unsure, error=GradientError)
    with pytest.warns(InconclusiveWarning, match="round-off"):
        assert settle(unsure, error=GradientError, allow_inconclusive=True) is True


def test_a_pass_on_the_finite_part_warns_what_was_set_aside():
    # log at [-1, 2]: out[0] is nan, set aside; the drop-in's True must not hide it (torch's
    # own gradcheck raises there)
    report = check_with_jvp(np.log, lambda xs, gs: (gs[0] / xs[0],), None,
                            [np.array([-1.0, 2.0])], mode="auto", seed=0)
    assert report.verdict == "PASS", str(report)
    with pytest.warns(GradverifyWarning, match="1 output entries not finite at x set aside"):
        assert settle(report, error=GradientError) is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing set aside: no warning
        assert settle(GradientReport(checks=[Check("gradient", "PASS")]),
                      error=GradientError) is True


def test_input_names():
    assert input_names(lambda a, b, *rest: a, 3) == ["a", "b", "x2"]
    assert input_names(max, 2) == ["x0", "x1"]


@pytest.mark.parametrize(("module", "framework"), [("gradverify.torch", "torch"),
                                                    ("gradverify.jax", "jax")])
def test_missing_framework_is_a_clear_error(module, framework):
    if importlib.util.find_spec(framework) is not None:
        pytest.skip(f"{framework} is installed")
    with warnings.catch_warnings(), pytest.raises(ModuleNotFoundError,
                                                  match=rf"gradverify\[{framework}\]"):
        importlib.import_module(module)


# -- the bfloat16 check and flush-to-zero ------------------------------------------------------
def _maximum64(a, b):
    return np.maximum(a, b)


def _maximum64_vjp(xs, gs):
    a, b, v = xs[0], xs[1], gs[0]
    tie = 0.5 * v * (a == b)
    return v * (a > b) + tie, v * (b > a) + tie


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_low_precision_check_models_flush_to_zero(seed):
    from tests import flush_to_zero as ftz
    low = [np.array([1e-40, 1.0, -2e-39], np.float32), np.array([0.0, 0.0, 1e-39], np.float32)]
    high = [a.astype(np.float64) for a in low]
    check = low_precision_check(ftz.maximum, ftz.maximum_vjp, low, _maximum64,
                                _maximum64_vjp, high, seed=seed)
    assert check.verdict == "PASS", check
    wrong = lambda xs, gs: ftz.maximum_vjp(xs, gs, scale32=1.5)  # wrong beyond the flush
    check = low_precision_check(ftz.maximum, wrong, low, _maximum64, _maximum64_vjp, high,
                                seed=seed)
    assert check.verdict == "FAIL", check
