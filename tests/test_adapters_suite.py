"""The framework-free side of the adapters' one-line suites (default test run): the input
strategies draw the hard cases on purpose, and a suite fails on FAIL, discards INCONCLUSIVE
examples and passes otherwise - shown with NumPy functions through ``check_vjp``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from gradverify.adapters.strategies import arrays, broadcastable, matmul_operands, same_shape
from gradverify.adapters.suite import suite_for
from gradverify.harness import check_vjp


def test_arrays_draw_kinks_ties_zeros_and_size_one_dims():
    find(arrays(kinks=(2.5,)), lambda a: (a == 2.5).any())
    find(arrays(), lambda a: a.size >= 2 and a.flat[0] == a.flat[-1] != 0)
    find(arrays(), lambda a: (a == 0).any())
    find(arrays(), lambda a: 1 in a.shape and a.ndim >= 2)
    find(arrays(), lambda a: (np.abs(a) >= 1e3).any())
    find(arrays(min_rank=2), lambda a: a.shape[0] != a.shape[1])


@settings(max_examples=50)
@given(arrays(domain="positive"), arrays(domain=(-1.0, 2.0)), arrays(domain="nonzero"))
def test_arrays_stay_in_their_domain(pos, bounded, nonzero):
    assert (pos > 0).all()
    assert ((bounded > -1.0) & (bounded < 2.0)).all()
    assert (nonzero != 0).all()


@settings(max_examples=30)
@given(matmul_operands(batch=True), broadcastable(3), same_shape(2, dtype=np.float32))
def test_tuples_fit_together(ab, xyz, pair):
    a, b = ab
    assert (a @ b).shape[-2:] == (a.shape[-2], b.shape[-1])
    np.broadcast_shapes(*(x.shape for x in xyz))
    assert pair[0].shape == pair[1].shape and pair[0].dtype == np.float32


def test_bad_domain_is_a_clear_error():
    with pytest.raises(ValueError, match="domain must be one of"):
        arrays(domain="complex")


def _numpy_check(fn, args, **kwargs):
    forward, vjp = fn
    return check_vjp(forward, vjp, list(args), **kwargs)


def _relu_vjp(xs, gs):
    return (gs[0] * (xs[0] > 0),)


def test_suite_passes_a_correct_function_with_kinks():
    suite_for(_numpy_check, (lambda x: np.maximum(x, 0), _relu_vjp),
              inputs=arrays(kinks=(0.0,)), max_examples=30)()


def test_suite_fails_with_the_report():
    wrong = (lambda x: np.abs(x), lambda xs, gs: (gs[0],))  # right only for x >= 0
    with pytest.raises(AssertionError, match="FAIL"):
        suite_for(_numpy_check, wrong, inputs=arrays(), max_examples=50)()


_EXP = (lambda x: np.exp(x * 1e3), lambda xs, gs: (gs[0] * 1e3 * np.exp(xs[0] * 1e3),))


def test_suite_discards_inconclusive_examples():
    from gradverify.properties.checks import INCONCLUSIVE_COUNTS
    before = sum(INCONCLUSIVE_COUNTS.values())
    points = st.sampled_from([np.array([1.0, 2.0]), np.array([-1e-3, 2e-4])])
    suite_for(_numpy_check, _EXP, inputs=points, max_examples=10)()  # exp overflows at 1, 2
    assert sum(INCONCLUSIVE_COUNTS.values()) > before


def test_suite_where_nothing_is_verifiable_does_not_pass():
    with pytest.raises(Unsatisfiable):
        suite_for(_numpy_check, _EXP, inputs=st.just(np.array([1.0, 2.0])), max_examples=5)()


def test_suite_needs_a_strategy():
    with pytest.raises(TypeError, match="Hypothesis strategy"):
        suite_for(_numpy_check, (np.sin, None), inputs=np.ones(3))


def test_default_imports_pull_in_no_framework():
    code = ("import sys, gradverify, gradverify.harness, gradverify.adapters.common, "
            "gradverify.adapters.strategies, gradverify.adapters.suite; "
            "assert not {'torch', 'jax'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
