"""Sensitivity targets in float64: a gradient off by 1e-6 relative on every entry, or by
1e-5 on one entry, FAILs in auto and fast mode for matmul 64x64, tanh on 1e5 elements and
mean softmax cross-entropy 128x10; 1e-7 relative FAILs in full mode; the correct gradient
never FAILs, and the report states the relative error it resolved."""

from __future__ import annotations

import numpy as np
import pytest

from gradverify.harness import FAIL, PASS, check_vjp
from gradverify.harness.probes import enough_directions

RNG = np.random.default_rng(11)
LABELS = np.eye(10)[RNG.integers(0, 10, 128)]


def _mm(a, b):
    return a @ b


def _mm_vjp(xs, gs):
    return gs[0] @ xs[1].T, xs[0].T @ gs[0]


def _xent(z, labels=LABELS):
    z = z - z.max(axis=1, keepdims=True)
    return np.asarray(-(labels[:len(z)] * (z - np.log(np.exp(z).sum(axis=1, keepdims=True)))
                        ).sum(axis=1).mean())


def _xent_vjp(xs, gs, labels=LABELS):
    z = xs[0] - xs[0].max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return ((p - labels[:len(z)]) * gs[0] / len(z),)


def _tanh_vjp(xs, gs):
    return (gs[0] * (1 - np.tanh(xs[0]) ** 2),)


CASES = {
    "matmul 64x64": (_mm, _mm_vjp, [RNG.standard_normal((64, 64)),
                                    RNG.standard_normal((64, 64))]),
    "tanh 1e5": (np.tanh, _tanh_vjp, [RNG.standard_normal(100_000)]),
    "softmax xent 128x10": (_xent, _xent_vjp, [RNG.standard_normal((128, 10))]),
}


def _uniform(vjp, rtol):
    return lambda xs, gs: tuple(g * (1 + rtol) for g in vjp(xs, gs))


def _one_entry(vjp, rtol):
    def bad(xs, gs):
        out = [np.array(g, dtype=np.float64) for g in vjp(xs, gs)]
        flat = out[0].reshape(-1)
        flat[flat.size // 3] *= 1 + rtol
        return tuple(out)
    return bad


def _fails_in_auto_and_fast(f, good_vjp, bad_vjp, inputs) -> None:
    """The faulty gradient FAILs in fast mode, and in auto mode: auto on inputs beyond
    ``full_max`` *is* fast mode (the same path at the same seed), which the correct
    gradient's auto report shows; only an auto check that chose full mode runs again."""
    auto = check_vjp(f, good_vjp, inputs, mode="auto", seed=1)
    assert auto.verdict == PASS, str(auto)
    assert check_vjp(f, bad_vjp, inputs, mode="fast", seed=1).verdict == FAIL
    if auto.mode != "fast":
        assert check_vjp(f, bad_vjp, inputs, mode="auto", seed=1).verdict == FAIL


@pytest.mark.parametrize("name", list(CASES))
def test_sensitivity_targets(name):
    f, vjp, inputs = CASES[name]
    for mode in ("auto", "fast"):
        good = check_vjp(f, vjp, inputs, mode=mode, seed=1)
        assert good.verdict == PASS, str(good)
        assert good.resolved_rtol is not None and good.resolved_rtol < 1e-6
    _fails_in_auto_and_fast(f, vjp, _uniform(vjp, 1e-6), inputs)


# A scalar loss is in the class: each of its 1280 entries moves the loss by ~1e-4 of its
# size, so one entry off by 1e-5 is a change below the loss's rounding at the first step;
# the coarser Richardson rungs resolve it.
@pytest.mark.parametrize("name", list(CASES))
def test_one_entry_off_by_1e5_fails(name):
    f, vjp, inputs = CASES[name]
    _fails_in_auto_and_fast(f, vjp, _one_entry(vjp, 1e-5), inputs)


def test_the_scalar_loss_resolves_its_one_entry_fault_at_every_seed():
    # The fault moves the loss by 2e-8 of ||g s|| at the first pass's step, where a
    # direction resolves ~1.9e-8: the later directions are taken at 4 times the step
    # (miss_bound.widened), which resolves ~4.7e-9, in 8 forward evaluations instead of
    # 10. Before, seed 9 missed it.
    f, vjp, inputs = CASES["softmax xent 128x10"]
    for seed in range(20):
        good = check_vjp(f, vjp, inputs, mode="fast", seed=seed)
        assert good.verdict == PASS and good.evaluations["forward"] == 8, str(good)
        assert good.check("gradient").details["directions"] == 3
        bad = check_vjp(f, _one_entry(vjp, 1e-5), inputs, mode="fast", seed=seed)
        assert bad.verdict == FAIL, f"seed {seed}: {bad}"


def test_elementwise_functions_keep_the_first_pass_step(monkeypatch):
    # tanh on 1e5 entries resolves 6e-10 per direction at h: two directions bound the
    # miss, and a 4-times step would only add truncation (and its rungs); the scalar
    # loss's directions are widened
    import gradverify.harness.fast as fast_mode
    scales = []
    spy = fast_mode.widened
    monkeypatch.setattr(fast_mode, "widened", lambda *a: scales.append(spy(*a)) or scales[-1])
    for name, widened in (("tanh 1e5", {1.0}), ("softmax xent 128x10", {4.0})):
        f, vjp, inputs = CASES[name]
        scales.clear()
        r = check_vjp(f, vjp, inputs, mode="fast", seed=0)
        assert r.verdict == PASS and set(scales) == widened, (name, scales)
    assert r.evaluations["forward"] == 8


@pytest.mark.parametrize(("f", "vjp", "inputs"), [
    (_mm, _mm_vjp, [RNG.standard_normal((16, 16)), RNG.standard_normal((16, 16))]),
    (_xent, _xent_vjp, [RNG.standard_normal((16, 10))]),
    (np.tanh, _tanh_vjp, [RNG.standard_normal(50)]),
], ids=["matmul 16x16", "softmax xent 16x10", "tanh 50"])
def test_full_mode_resolves_1e7(f, vjp, inputs):
    assert check_vjp(f, vjp, inputs, mode="full").verdict == PASS
    assert check_vjp(f, _uniform(vjp, 1e-7), inputs, mode="full").verdict == FAIL


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_evaluations_do_not_depend_on_the_number_of_elements(seed):
    # the first pass: f(x) twice (hygiene), then 2 per direction, whatever the size: 2 to
    # 4 directions (fewer when they resolve far below detect_rtol: enough_directions)
    for n in (10, 100_000):
        x = np.random.default_rng(seed).uniform(-2, 2, n)
        r = check_vjp(np.tanh, _tanh_vjp, [x], mode="fast", seed=seed)
        assert r.verdict == PASS, str(r)
        assert r.resolved_rtol < 1e-6
        assert (r.evaluations["forward"], r.evaluations["backward"]) in {
            (2 + 2 * k, 3) for k in (2, 3, 4)}


def test_fewer_directions_keep_the_miss_bound():
    # two directions only when each resolves >= 1e3 below detect_rtol (32^-4 ~ 1e-6)
    assert enough_directions([1e-9, 9e-10], 1e-6)
    assert not enough_directions([1e-9], 1e-6)  # one direction is one draw
    assert not enough_directions([2e-9, 2e-9], 1e-6)
    assert enough_directions([2e-9, 2e-9, 2e-9], 1e-6)
    assert not enough_directions([1e-12, np.inf], 1e-6)  # an undecided direction
    x = np.random.default_rng(3).uniform(0.5, 1.5, 1000)
    r = check_vjp(np.tanh, _tanh_vjp, [x], mode="fast", seed=3, detect_rtol=1e-3)
    gradient = next(c for c in r.checks if c.name == "gradient")
    assert r.verdict == PASS and gradient.details["directions"] == 2


def test_probes_adapt_and_say_what_they_could_not_resolve():
    f, vjp, inputs = CASES["softmax xent 128x10"]
    r = check_vjp(f, vjp, inputs, mode="fast", seed=0, detect_rtol=1e-14)
    check = next(c for c in r.checks if c.name == "gradient")
    assert r.verdict == PASS
    assert check.details["directions"] > 4  # more directions were tried
    assert "not detect_rtol 1e-14" in check.reason
    assert r.resolved_rtol > 1e-14


@pytest.mark.parametrize("seed", range(8))
def test_two_entry_fault_with_opposite_signs_cannot_cancel(seed):
    # e = +d on one entry, -d on another: a probe sees d (u_i - u_j), never exactly 0
    x = np.random.default_rng(seed).uniform(0.5, 1.5, 1000)

    def bad(xs, gs):
        g = gs[0] * (1 - np.tanh(xs[0]) ** 2)
        g[10] += 1e-4 * abs(g[10])
        g[20] -= 1e-4 * abs(g[10])
        return (g,)
    assert check_vjp(np.tanh, bad, [x], mode="fast", seed=seed).verdict == FAIL


def _near_zero_entries(x: np.ndarray, g: np.ndarray, count: int) -> list[int]:
    """The entries with the largest gradients among those where |x| is small beside the
    input's RMS: the ones a probe stepping relative to |x| alone would hardly weigh."""
    a, rms = np.abs(x).ravel(), float(np.sqrt(np.mean(x * x)))
    near = np.flatnonzero(a < 0.1 * rms)
    return [int(i) for i in near[np.argsort(-np.abs(g.ravel()[near]))][:count]]


@pytest.mark.parametrize("seed", [1, 2])
def test_one_entry_fault_where_x_is_near_zero_fails_in_fast_mode(seed):
    # a logit of 0.008 beside logits of 1 with its row's largest gradient (its label): a
    # fault there weighs in fast mode like one on any other entry (probe_sums.probe_scales)
    f, vjp, inputs = CASES["softmax xent 128x10"]
    g = vjp(inputs, [np.ones(())])[0]
    for k in _near_zero_entries(inputs[0], g, 4):
        def bad(xs, gs, k=k):
            out = np.array(vjp(xs, gs)[0], dtype=np.float64)
            out.reshape(-1)[k] *= 1 + 1e-5
            return (out,)
        assert check_vjp(f, bad, inputs, mode="fast", seed=seed).verdict == FAIL, k
