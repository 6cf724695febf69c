"""Side-by-side timing shared by the adapter benchmarks: each case runs both checkers in
the same process, interleaved, after a warm-up call of each (first-call costs such as
tracing are reported separately), and reports medians and their ratio."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(cases: Sequence[tuple[str, Callable[[], Any], Callable[[], Any]]], *,
            repeats: int, ours: str, theirs: str, json_path: str | None = None) -> None:
    """Print a table: case, first call and median of ours and theirs, median ratio."""
    rows = []
    print(f"{'case':<34}{ours + ' first':>14}{theirs + ' first':>14}"
          f"{ours:>11}{theirs:>11}{'ratio':>8}")
    for name, mine, other in cases:
        first_mine, first_other = _timed(mine), _timed(other)
        t_mine, t_other = [], []
        for _ in range(repeats):
            t_other.append(_timed(other))
            t_mine.append(_timed(mine))
        m, o = statistics.median(t_mine), statistics.median(t_other)
        rows.append({"case": name, "ours_s": m, "theirs_s": o, "ratio": m / o,
                     "ours_first_s": first_mine, "theirs_first_s": first_other})
        print(f"{name:<34}{first_mine * 1e3:>12.1f}ms{first_other * 1e3:>12.1f}ms"
              f"{m * 1e3:>9.1f}ms{o * 1e3:>9.1f}ms{m / o:>7.2f}x")
    if json_path:
        with open(json_path, "w") as fh:
            json.dump(rows, fh, indent=1)
