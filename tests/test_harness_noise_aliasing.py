"""The measured noise sees a rounding staircase finer than its sample spacing, whatever
the stairs' phase: equally spaced samples alias it (``ecnoise.OFFSETS``)."""

import numpy as np
import pytest
from scipy.special import erf

from gradverify.harness import check_vjp
from gradverify.harness.ecnoise import noise
from gradverify.harness.numeric import Line

H = 1e-5
QUANTUM = 2.0 ** -40 / np.sqrt(2.0)  # no binary grid (the grid floor would see one)


@pytest.mark.parametrize("stairs_per_sample", [1000.0, 1000.001, 999.9995, 4096.0, 37.0])
@pytest.mark.parametrize("phase", [0.0, 0.3, 0.77])
def test_noise_sees_a_staircase_whose_stairs_fit_the_sample_spacing(stairs_per_sample,
                                                                    phase):
    # a slope rounded to a grid of QUANTUM, stairs of width H / 8 / stairs_per_sample:
    # a whole number of stairs (or nearly) between equally spaced samples puts all five on
    # one line, third differences 0
    width = H / 8 / stairs_per_sample
    slope = QUANTUM / width

    def stairs(t: float) -> np.ndarray:
        v = slope * (t + phase * width)
        return np.array([QUANTUM * np.floor(v / QUANTUM)])
    assert noise(Line(stairs), H)[0] > QUANTUM / 12


S2 = np.sqrt(2.0)


def _gelu(x):
    return x * (1 + erf(x / S2)) / 2  # 1 + erf rounds to multiples of 2^-53 in its tail


def _gelu_vjp(xs, gs):
    x = xs[0]
    return (gs[0] * ((1 + erf(x / S2)) / 2 + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)),)


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_gelu_in_its_rounded_tail_never_fails(mode):
    # x in [-7.2, -3]: stairs 1e-11 (x = -3) to 1e-5 (x = -7.2) wide. Far finer than the
    # step, the probes' noise readings aliased to 0 at some seeds (x = -5, -4.3, FAIL); near
    # the step, a probe that barely moves x sees one stair's slope on every fine rung
    # (x = -6.77, FAIL in fast mode: rung_agreement.recheck_probe)
    rng = np.random.default_rng(5)
    for seed in range(4):
        for x in np.linspace(-7.2, -3.0, 30):
            report = check_vjp(_gelu, _gelu_vjp, [np.array([x])], mode=mode, seed=seed)
            assert report.verdict != "FAIL", (x, seed, str(report))
        xs = rng.uniform(-7.2, -3.0, 8)
        assert check_vjp(_gelu, _gelu_vjp, [xs], mode=mode, seed=seed).verdict != "FAIL"


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_a_gelu_fault_in_its_rounded_tail_still_fails(mode):
    # the noise the tail shows is charged, not everything: a 1 % error on every entry of
    # x in [-5, -3] (stairs far below the step, derivatives resolved to ~1e-5) FAILs
    def off(xs, gs):
        (g,) = _gelu_vjp(xs, gs)
        return (g * 1.01,)
    for seed in range(3):
        xs = np.random.default_rng(seed).uniform(-5.0, -3.0, 6)
        assert check_vjp(_gelu, off, [xs], mode=mode, seed=seed).verdict == "FAIL"
