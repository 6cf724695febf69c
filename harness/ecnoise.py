"""The noise level of a line phi near 0, measured (after Moré and Wild's ECnoise).

Round-off hidden by cancellation inside a function (``reduce_sum([0, 1, 65534, -65535])``)
is invisible to ``eps |phi|``; the scatter of closely spaced samples about a smooth curve
shows it: smooth terms vanish like a power of the spacing, noise does not.

>>> import numpy as np
>>> from gradverify.harness.numeric import Line
>>> line = Line(lambda t: np.array([np.sin(1.0 + t)]), np.float64)
>>> bool(noise(line, 1e-4)[0] < 1e-15)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradverify.harness.budget import fit_noise, noise_level, quantum_level

if TYPE_CHECKING:
    from gradverify.harness.numeric import Line

__all__ = ["noise", "noise_samples", "NOISE_SPACING", "OFFSETS"]

NOISE_SPACING = 1 / 8  # noise samples at multiples of h/8: smooth terms vanish like h^3


def _irregular(k: np.ndarray, frac: float) -> np.ndarray:
    # k + a jitter of up to 0.45 from a Weyl sequence: no two sample gaps alike, so no
    # staircase period fits a whole number of stairs between every pair of samples
    return k + 0.9 * np.mod(k * frac, 1.0) - 0.45


WINDOW = 7  # samples per side: a quadratic fit leaves 4 degrees of freedom per window
_K = np.arange(1.0, WINDOW + 1.0)
# Sample offsets in units of the spacing: WINDOW on each side of x, each side's own jitter.
OFFSETS = np.concatenate([-_irregular(_K, 2.0 ** 0.5)[::-1],
                          _irregular(_K, (5.0 ** 0.5 - 1) / 2)])

# A finer spacing's estimate more than this far above a coarser one's says the coarser
# was a chance low (a smooth function's falls 512-fold per level, noise keeps its size).
REBOUND = 8.0
# Readings of one noise at two spacings stay within this factor of each other; a shape
# c / t finer than the step (a near-zero row's cosine) rises 8-fold per level.
RISE = 4.0


def noise(line: Line, h: float, levels: int = 4) -> np.ndarray:
    """Noise level sigma of phi near 0 per channel (14 evaluations per spacing).

    Two one-sided windows of ``WINDOW`` samples at irregular offsets (:data:`OFFSETS`), t
    in [delta, 7 delta] and its mirror (:func:`noise_samples`). A kink or jump at x lies
    outside every window, so it is not mistaken for noise (one just beside x spoils one
    window only). Spacings delta = h/8, h/64, ...: noise shows the same sigma at every
    spacing, a smooth function's curvature 512 times less at each finer one (steps far
    beyond the function's natural scale: sin at 7e5), so the spacing is refined while any
    channel's estimate still falls that way. A reading fallen 8-fold replaces the coarser
    one (unless it dipped: the finer spacing's rebounds more than ``REBOUND``-fold above
    it, a chance low of the noise); a finer reading at most ``RISE``-fold above reads the
    same noise and is pooled with it (one window is a rough estimate alone).
    """
    readings: list[np.ndarray] = []
    spacing = NOISE_SPACING
    for _ in range(levels):
        sigma = noise_samples([line(float(k * h * spacing))[0] for k in OFFSETS], OFFSETS)
        readings.append(sigma)
        spacing /= 8
        if len(readings) == 1 and not (sigma > 0).any():
            break  # no smooth part to shed: a finer reading could not lower a 0
        if len(readings) > 1 and not ((sigma < readings[-2] / 8) & (sigma > 0)).any():
            break
    r = np.array(readings)
    with np.errstate(invalid="ignore", over="ignore"):
        # a dip - a reading fallen from the coarser one that the finer one rebounds far
        # above - is no estimate of its own
        dip = np.zeros_like(r, dtype=bool)
        dip[1:-1] = (np.isfinite(r[2:]) & (r[2:] > REBOUND * r[1:-1])
                     & (r[1:-1] < r[:-2] / 8))
        est = r[0]
        for k in range(1, r.shape[0]):
            # fallen 8-fold: a smooth part gone, the finer reading replaces it; at most
            # RISE-fold above: two readings of one noise, pooled; risen further: structure
            # finer than the step (a 1/t shape), the coarser reading stands
            fell = r[k] < est / 8
            same = ~fell & (r[k] <= RISE * est)
            pooled = np.sqrt((est * est + r[k] * r[k]) / 2)
            est = np.where(dip[k], est, np.where(fell, r[k], np.where(same, pooled, est)))
    return est


def noise_samples(samples: list[np.ndarray], offsets: np.ndarray | None = None) -> np.ndarray:
    """sigma from two windows of samples (channels last), the first half on one side of x,
    the second on the other: the smaller of the two estimates (pooled when within
    ``POOL``-fold of each other), never below the level of the grid all samples are rounded
    to (:func:`quantum_level`: a coarse staircase can have zero third differences).
    ``offsets``: the samples' positions (:data:`OFFSETS`), fitted by a quadratic per
    window; None: equally spaced (k = -5 .. -1, 1 .. 5), ECnoise's third differences."""
    f = np.array(samples)
    half = f.shape[0] // 2
    if offsets is None:
        left, right = noise_level(f[:half]), noise_level(f[half:])
    else:
        left = fit_noise(f[:half], offsets[:half])
        right = fit_noise(f[half:], offsets[half:])
    with np.errstate(invalid="ignore", over="ignore"):
        # comparable windows both read the noise: pooled (twice the degrees of freedom);
        # one far above the other met a kink or jump beside x: the smaller counts
        pooled = np.sqrt((left * left + right * right) / 2)
        one = np.where(np.fmax(left, right) <= POOL * np.fmin(left, right), pooled,
                       np.fmin(left, right))
    return np.fmax(one, quantum_level(f))


POOL = 16.0  # windows within this factor of each other are pooled
