"""The diagnosis line names only what the failing values show: a constant scaling only when
the values share one ratio far more closely than it differs from 1, with the digits that
show the ratio, and one wrong input only when fast mode's search was not cut short."""

from __future__ import annotations

import numpy as np
from test_harness_sensitivity import CASES, _one_entry, _uniform

from gradverify.harness import FAIL, check_vjp


def test_one_entry_of_a_scalar_loss_is_no_constant_scaling():
    # probes of different weights see one entry off by 1e-5 as ratios 1 + 3e-8 .. 1 + 3e-7:
    # they agree to 1e-3, but were reported as "scaled by a constant (1x)"
    f, vjp, inputs = CASES["softmax xent 128x10"]
    for seed in (0, 1):
        r = check_vjp(f, _one_entry(vjp, 1e-5), inputs, mode="fast", seed=seed)
        assert r.verdict == FAIL
        assert "scaled by a constant" not in (r.diagnosis or ""), str(r)


def test_a_scaling_close_to_one_shows_its_digits():
    f, vjp, _ = CASES["softmax xent 128x10"]
    x = [np.random.default_rng(3).standard_normal((16, 10))]
    r = check_vjp(f, _uniform(vjp, 1e-7), x, mode="full", seed=0)
    assert r.verdict == FAIL
    assert "scaled by a constant (1.0000001x)" in r.diagnosis, str(r)
    r = check_vjp(f, _uniform(vjp, 1e-6), x, mode="fast", seed=0)
    assert "scaled by a constant (1.000001x)" in r.diagnosis, str(r)


def test_a_search_cut_short_names_no_single_wrong_input():
    # both inputs scaled: the search pins `localise` entries depth first into the worse
    # half of the probe, all in one input, and stops; that input is not the only wrong one
    f, vjp, inputs = CASES["matmul 64x64"]
    r = check_vjp(f, _uniform(vjp, 1e-6), inputs, mode="fast", seed=0)
    assert r.verdict == FAIL
    located = {e.input for e in r.check("gradient").worst if e.index is not None}
    assert len(located) == 1  # the situation this test is about
    assert "wrong for input" not in r.diagnosis, str(r)
    assert "scaled by a constant (1.000001x)" in r.diagnosis


def test_one_wrong_input_is_still_named_when_the_search_finished():
    f, vjp, inputs = CASES["matmul 64x64"]

    def bad(xs, gs):  # one entry of x1's gradient off: the search pins it and finishes
        ga, gb = vjp(xs, gs)
        gb = np.array(gb)
        gb[5, 7] *= 1.5
        return ga, gb
    r = check_vjp(f, bad, inputs, mode="fast", seed=0)
    assert r.verdict == FAIL
    assert "wrong for input 1 (x1) only" in r.diagnosis, str(r)


def test_one_wrong_entry_is_not_called_a_scaled_gradient():
    # x[2] alone off by 5/3: the entries that passed, where 5/3 would have shown, refute a
    # constant factor (full mode sees them; it was "scaled by a constant (1.666667x)")
    def one_off(xs, gs):
        g = gs[0] * np.cos(xs[0])
        g[2] *= 5 / 3
        return (g,)

    x = [np.linspace(0.1, 2.0, 25)]
    r = check_vjp(np.sin, one_off, x, mode="full", seed=0)
    assert r.verdict == FAIL and "scaled" not in (r.diagnosis or ""), str(r)
    twice = check_vjp(np.sin, lambda xs, gs: (2 * gs[0] * np.cos(xs[0]),), x, mode="full",
                      seed=0)
    assert "scaled by a constant (2x)" in twice.diagnosis


def test_fast_mode_names_the_one_wrong_entry_it_found():
    def one_off(xs, gs):
        g = gs[0] * np.cos(xs[0])
        g[2] *= 5 / 3
        return (g,)

    r = check_vjp(np.sin, one_off, [np.linspace(0.1, 2.0, 1000)], mode="fast", seed=0)
    assert r.diagnosis == "wrong at x0[2] only", str(r)
