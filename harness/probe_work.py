"""Fast mode's work arrays (``probes.FirstPass``): reused from direction to direction and,
pooled per thread, from check to check. On 1e5 entries a fresh array costs more in page
faults (malloc returns large blocks to the system on free) than the arithmetic done in
it; every work array is overwritten before it is read.

>>> import numpy as np
>>> w = WorkArrays()
>>> w.buffer(("x",), np.zeros(3)) is w.buffer(("x",), np.ones(3))
True
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from gradverify.harness.calls import aligned_empty

__all__ = ["WorkArrays"]

# Work arrays outliving a check (WorkArrays.release_work), per thread, up to this many
# entries (32 MB of float64); a check nested in a checked function finds the pool empty.
_POOL = threading.local()
_POOL_ENTRIES = 1 << 22


class WorkArrays:
    """Named work arrays; with ``pool``, those of this thread's previous check."""

    def __init__(self, pool: bool = False):
        self._work: dict[tuple, np.ndarray] = _POOL.__dict__.pop("work", {}) if pool else {}

    def buffer(self, key: tuple, like: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
        """The work array named ``key`` of ``like``'s shape and ``dtype`` (made once)."""
        key = (*key, np.shape(like), dtype)  # (each caller names its dtype one way)
        buf = self._work.get(key)
        if buf is None:
            buf = self._work[key] = aligned_empty(np.shape(like), dtype)
        return buf

    def release_work(self) -> None:
        """Done: the work arrays go to this thread's next check."""
        work, self._work = self._work, {}
        if sum(b.size for b in work.values()) <= _POOL_ENTRIES:
            _POOL.work = work
