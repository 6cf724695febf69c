"""The tolerance table by dtype: each check is asked for what its dtype's rounding allows,
states the row it used, and still FAILs a gradient wrong beyond that."""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.harness import check_gradients, check_vjp
from gradverify.harness.dtype_tolerances import TABLE, dtype_name, rtols


def test_table_rows_are_ordered_and_consistent():
    eps = [row[1] for row in TABLE]
    assert eps == sorted(eps)
    for _, e, detect, inconclusive in TABLE:
        assert e < detect < inconclusive < 1  # a row never asks below its own rounding
    assert rtols(1e-30) == rtols(2.0 ** -52) == (1e-6, 1e-3)
    assert dtype_name(0.5) == "bfloat16"  # anything coarser is held to the last row


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("src", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["full", "fast"])
def test_a_cast_to_float32_passes_at_float32s_row(order, src, mode):
    x = np.array([-1.8127, -1.0, 0.5, 3.0, 2.7e-7]).astype(src)
    r = check_gradients(lambda t: tf.cast(t, tf.float32), [x], order=order, mode=mode)
    assert r.verdict == "PASS", str(r)
    grad = r.check("gradient")
    assert grad.details["rtol_dtype"] == "float32", grad.details
    assert grad.details["inconclusive_rtol"] == 1e-2


@pytest.mark.parametrize("scale", [1.05, 0.9, -1.0])
def test_a_wrong_cast_gradient_still_fails(scale):
    def vjp(xs, gs):
        return ((gs[0] * scale).astype(np.float64),)
    r = check_vjp(lambda x: x.astype(np.float32), vjp, [np.array([0.3, -2.0, 5.0])])
    assert r.verdict == "FAIL", str(r)


def test_float64_keeps_its_row_and_explicit_values_win():
    x = [np.array([0.3, -2.0])]
    r = check_vjp(np.sin, lambda xs, gs: (gs[0] * np.cos(xs[0]),), x)
    assert r.check("gradient").details["inconclusive_rtol"] == 1e-3
    r = check_vjp(lambda t: t.astype(np.float32), lambda xs, gs: (gs[0].astype(float),),
                  x, inconclusive_rtol=1e-9)
    assert r.verdict == "INCONCLUSIVE", str(r)
    assert r.check("gradient").details["inconclusive_rtol"] == 1e-9
