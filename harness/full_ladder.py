"""Which columns of a full check climb the step ladder, in which order, and when a FAIL is
certain enough to stop.

The first pass leaves an entry undecided when it disagrees with the analytic value beyond
the round-off budget (truncation is unknown there). A wrong gradient leaves thousands of
columns undecided (matmul 64x64 with one input's gradient scaled by 1 + 1e-6: 4 095
columns, each ~30 evaluations on the ladder), yet a few of them settle the verdict. With
more than ``LADDER_ALL`` such columns the ladder runs row by row, the most discordant
entry of each input first, until every input holding undecided entries has a *certain*
FAIL - an entry the ladder FAILed that no later stage can revisit:

- smooth (no kink, no jump) and not flat (the numeric slope not near 0 beside the
  analytic one: the joint Clarke judgement looks at those);
- its column shows no kink in any row and its row no kink in any column, every undecided
  entry of that row laddered (the joint judgement groups kinked columns and the failing
  entries beside kinks; an entry with neither is never regrouped).

The columns left out keep their first-pass values; the report counts their entries as
*not confirmed* (per input), never as PASS. An input whose most discordant rows
(``ATTEMPTS`` of them) show no certain FAIL climbs the ladder column by column as before,
so a PASS or INCONCLUSIVE check always ladders every undecided column.

>>> plan = LadderPlan(np.array([0, 0]), np.array([0, 1]), np.array([1.0, 2.0]),
...                   np.array([0, 0]), inputs=1)
>>> [int(c) for c, _ in plan]    # two columns: at most LADDER_ALL, all laddered in order
[0, 1]
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["LadderPlan", "LADDER_ALL", "ATTEMPTS"]

LADDER_ALL = 64  # up to this many undecided columns, every one is laddered in column order
ATTEMPTS = 4     # rows tried per input for a certain FAIL before laddering all its columns


class LadderPlan:
    """The ladder's work list over the undecided entries (positions into the judged
    arrays): iterate for ``(column, positions)``; report each column's outcome with
    :meth:`record`; :attr:`skipped` lists the positions never laddered.

    row, col: the undecided entries' row and column; excess: their first-pass
    disagreement in units of its tolerance; block: the input each column belongs to.
    """

    def __init__(self, row: np.ndarray, col: np.ndarray, excess: np.ndarray,
                 block_of_entry: np.ndarray, inputs: int):
        self.row, self.col = np.asarray(row), np.asarray(col)
        self.excess = np.nan_to_num(np.asarray(excess, float), nan=np.inf)
        self.block = np.asarray(block_of_entry)
        self.inputs = inputs
        order = np.argsort(self.col, kind="stable")
        columns, firsts = np.unique(self.col[order], return_index=True)
        self.columns = columns
        self.entries = dict(zip(columns.tolist(), np.split(order, firsts[1:])))
        self.done: set[int] = set()
        self.kinked_cols: set[int] = set()
        self.kinked_rows: set[int] = set()
        self.failing: dict[int, list[tuple[int, int, bool]]] = {}  # row -> (col, input, flat)
        self.stopped = False

    # -- outcome of one column ---------------------------------------------------------------
    def record(self, c: int, rows: np.ndarray, failed: np.ndarray, kink: np.ndarray,
               flat: np.ndarray) -> None:
        """Column ``c``'s ladder verdicts on its undecided ``rows``: which FAILed, which
        are kinks, which FAILed looking flat."""
        self.done.add(int(c))
        if kink.any():
            self.kinked_cols.add(int(c))
            self.kinked_rows.update(int(r) for r in rows[kink])
        k = int(self.block[self.entries[int(c)][0]])
        for r, fl in zip(rows[failed].tolist(), flat[failed].tolist()):
            self.failing.setdefault(int(r), []).append((int(c), k, bool(fl)))

    def _certain(self, r: int) -> set[int]:
        """Inputs with a certain FAIL in row ``r`` (every undecided entry of the row
        laddered, see the module docstring)."""
        if r in self.kinked_rows or r not in self.failing:
            return set()
        row_cols = self.col[self.row == r]
        if not all(int(c) in self.done for c in row_cols):
            return set()
        return {k for c, k, fl in self.failing[r] if not fl and c not in self.kinked_cols}

    # -- the work list -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        if self.columns.size <= LADDER_ALL:
            for c in self.columns.tolist():
                yield c, self.entries[c]
            return
        settled: set[int] = set()
        for k in range(self.inputs):
            tried = 0
            while k not in settled:
                left = np.flatnonzero((self.block == k) & ~np.isin(
                    self.col, np.fromiter(self.done, int, len(self.done))))
                if not left.size:
                    break
                if tried >= ATTEMPTS:  # no certain FAIL in its worst rows: ladder it all
                    for c in np.unique(self.col[left]).tolist():
                        yield c, self.entries[c]
                    break
                tried += 1
                r = int(self.row[left[np.argmax(self.excess[left])]])
                for c in np.unique(self.col[self.row == r]).tolist():
                    if c not in self.done:
                        yield c, self.entries[c]
                settled |= self._certain(r)
        self.stopped = len(self.done) < self.columns.size

    @property
    def skipped(self) -> np.ndarray:
        """Positions of the undecided entries whose column never climbed the ladder."""
        if not self.stopped:
            return np.zeros(0, np.int64)
        rest = [self.entries[c] for c in self.columns.tolist() if c not in self.done]
        return np.concatenate(rest) if rest else np.zeros(0, np.int64)
