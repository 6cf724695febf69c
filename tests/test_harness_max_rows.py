"""Fast mode at many ties in float32: ``reduce_max`` over rows holding tied zeros beside
entries from 1e-7 to 1e6. A zero steps by the input's RMS (in float32, up to ~1e3 beside
entries of 1), so a probe's steps cross the kinks of other rows, bisection finds some of
the kink entries or none, and the rest of the probe reads as a smooth slope that disagrees.
Such a probe is judged on the whole Jacobian's rows (``probe_kinks.without_missed_kinks``,
``fast.Probe.settle``): a correct gradient never FAILs, a wrong tie rule still does. Gate
seed 8 drew two such inputs; both FAILed before."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gradverify.harness import FAIL, check_vjp

ENTRIES = st.sampled_from([0.0, 0.0, 0.0, 1.0, -1.0, 1e3, 1003.0, 9.2e5, -5.5e-7])


def _max(x):
    return x.max(axis=1)


def _max_vjp(share_all: bool = False):
    """TF's rule (the upstream gradient split equally over the tied entries), or with
    ``share_all`` the full gradient to each of them (outside the hull: FAIL)."""
    def vjp(xs, gs):
        x = xs[0]
        hit = (x == x.max(axis=1, keepdims=True)).astype(x.dtype)
        count = 1 if share_all else hit.sum(axis=1, keepdims=True)
        return (hit / count * gs[0][:, None],)
    return vjp


@settings(max_examples=6, deadline=None)
@given(x=arrays(np.float32, st.tuples(st.integers(8, 16), st.just(5)), elements=ENTRIES),
       seed=st.integers(0, 7))
def test_tied_zeros_beside_spread_magnitudes_never_fail(x, seed):
    r = check_vjp(_max, _max_vjp(), [x], mode="fast", seed=seed)
    assert r.verdict != FAIL, str(r)


def test_the_inputs_gate_seed_8_drew():
    rows = [[0, 0, 0, 0, 1], [0, 0, 0, 0, 9.2451400e5], [1003, 0, 0, 0, 0], [0, 0, 0, 0, 1],
            [-1, -1, -1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1],
            [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, -1, -1, -5.5112105e-07, 0], [0, 0, 0, 0, 1],
            [0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1]]
    x = np.array(rows, np.float32)
    for seed in range(3):
        assert check_vjp(_max, _max_vjp(), [x], mode="fast", seed=seed).verdict != FAIL
    assert check_vjp(_max, _max_vjp(share_all=True), [x], mode="fast",
                     seed=0).verdict == FAIL
