"""What a gradient check can resolve, by the precision it evaluates in (like JAX's tolerance
tables by dtype): ``detect_rtol``, the relative error fast mode's probes aim to resolve, and
``inconclusive_rtol``, the relative error an entry's tolerance must resolve not to be
INCONCLUSIVE.

Central differences at the step balancing truncation and rounding resolve about
``eps ** (2/3)`` relative at best (float64 4e-11, float32 2e-5, float16 1e-2); the error
budget charges an output a few dozen roundings and the verdict a safety factor on top
(``C_ROUND × SAFETY`` = 128), so a float32 evaluation's tolerance lands near 1e-3 and a
float16 one near 1e-1. Asking float32 for 1e-3 made every cast to float32 INCONCLUSIVE;
asking float64 for 1e-2 would let a gradient off by 0.5 % PASS. Each dtype is asked for
what its own rounding allows:

========  ===========  =================
dtype     detect_rtol  inconclusive_rtol
========  ===========  =================
float64   1e-6         1e-3
float32   1e-3         1e-2
float16   1e-2         1e-1
bfloat16  1e-1         3e-1
========  ===========  =================

The dtype is the one the tight check evaluates in: float64 when a float64 reference exists
(float32 inputs are then held to float64's table, their low-precision gradient to the
precision check), else the coarsest float dtype among the inputs and outputs (a cast to
float32 rounds its output at float32's spacing). A value given explicitly
(``check_vjp(..., inconclusive_rtol=...)``) always wins.

>>> rtols(np.finfo(np.float32).eps)
(0.001, 0.01)
>>> rtols(2.0 ** -52), dtype_name(np.finfo(np.float16).eps)
((1e-06, 0.001), 'float16')
"""

from __future__ import annotations

import numpy as np

__all__ = ["TABLE", "rtols", "dtype_name"]

# (name, eps of the dtype, detect_rtol, inconclusive_rtol), finest first.
TABLE: tuple[tuple[str, float, float, float], ...] = (
    ("float64", float(np.finfo(np.float64).eps), 1e-6, 1e-3),
    ("float32", float(np.finfo(np.float32).eps), 1e-3, 1e-2),
    ("float16", float(np.finfo(np.float16).eps), 1e-2, 1e-1),
    ("bfloat16", 2.0 ** -7, 1e-1, 3e-1),
)


def _row(eps: float) -> tuple[str, float, float, float]:
    """The table row of the finest dtype whose spacing is at least ``eps``: an evaluation
    rounding at ``eps`` is held to that dtype's resolution (anything coarser than bfloat16
    to bfloat16's)."""
    for row in TABLE:
        if eps <= row[1] * (1 + 1e-9):
            return row
    return TABLE[-1]


def rtols(eps: float) -> tuple[float, float]:
    """``(detect_rtol, inconclusive_rtol)`` for an evaluation rounding at ``eps``."""
    _, _, detect, inconclusive = _row(float(eps))
    return detect, inconclusive


def dtype_name(eps: float) -> str:
    """The name of the table row used for ``eps`` (reported with the resolved rtol)."""
    return _row(float(eps))[0]
