"""The noise level of a line phi near 0, measured (Moré and Wild's ECnoise).

Round-off hidden by cancellation inside a function (``reduce_sum([0, 1, 65534, -65535])``)
is invisible to ``eps |phi|``; high-order differences of closely spaced samples show it:
smooth terms vanish like a power of the spacing, noise does not.

>>> import numpy as np
>>> from gradverify.harness.numeric import Line
>>> line = Line(lambda t: np.array([np.sin(1.0 + t)]), np.float64)
>>> bool(noise(line, 1e-4)[0] < 1e-15)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradverify.harness.budget import noise_level, quantum_level

if TYPE_CHECKING:
    from gradverify.harness.numeric import Line

__all__ = ["noise", "noise_samples", "NOISE_SPACING"]

NOISE_SPACING = 1 / 8  # noise samples at multiples of h/8: smooth terms vanish like h^3


def noise(line: Line, h: float, levels: int = 4) -> np.ndarray:
    """Noise level sigma of phi near 0 per channel (ECnoise; 10 evaluations per spacing).

    Two one-sided windows of 5 samples, t in [delta, 5 delta] and its mirror; the smaller
    estimate counts. A kink or jump at x lies outside every window, so it is not mistaken
    for noise (one just beside x spoils one window only). Spacings delta = h/8, h/64, ...:
    noise shows the same sigma at every spacing, a smooth function's curvature 512 times
    less at each finer one (steps far beyond the function's natural scale: sin at 7e5), so
    the spacing is refined while any channel's estimate still falls that way.
    """
    out = None
    spacing = NOISE_SPACING
    for _ in range(levels):
        sigma = noise_samples([line(k * h * spacing)[0]
                               for k in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5)])
        if out is None:
            out = sigma
            spacing /= 8
            continue
        smooth = (sigma < out / 8) & (sigma > 0)
        out = np.fmin(out, sigma)
        if not smooth.any():
            break
        spacing /= 8
    return out


def noise_samples(samples: list[np.ndarray]) -> np.ndarray:
    """sigma from two windows of 5 equally spaced samples each (channels last): the smaller
    of the two estimates, never below the level of the grid all samples are rounded to
    (:func:`quantum_level`: a coarse staircase can have zero third differences)."""
    f = np.array(samples)
    return np.fmax(np.fmin(noise_level(f[:5]), noise_level(f[5:])), quantum_level(f))
