"""The input moves of the precision check's rounding sensitivity
(``precision._rounding_sensitivity``): sign patterns over the differentiable inputs' entries,
each entry moved by a few units of its low-precision rounding (+1, -1) or held (0). A
float32 computation rounds its inputs and every intermediate; the float64 gradient must be
seen to move that much under some move before a difference of that size counts against the
float32 one.

>>> import numpy as np
>>> from gradverify.harness.calls import Problem
>>> p = Problem(np.add, None, [np.zeros(4), np.zeros(4)])
>>> len(input_moves(p, p.xs))   # together, 2 index bits, each input alone, 4 halves, random
10
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gradverify.harness.calls import Problem

__all__ = ["SEPARATING_BITS", "input_moves"]

# Index bits used: every pair among 2^12 entries is moved apart by one pattern; beyond that
# the random pattern separates a pair at one chance in two.
SEPARATING_BITS = 12


def _apart(b: int, k: int, x: np.ndarray) -> np.ndarray:
    # bit b of the flat index sets the sign (b = 0: the checkerboard); input k flips it
    return (-1.0) ** (((np.arange(x.size) >> b) & 1) + k).reshape(x.shape)


def _half(b: int, side: int, x: np.ndarray) -> np.ndarray:
    # the entries whose bit b is ``side`` move, the others are held
    return (((np.arange(x.size) >> b) & 1) == side).astype(float).reshape(x.shape)


def input_moves(p: Problem, xs: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
    """The sign patterns, one array per input (the caller adds their negatives):

    - every entry together, and a random pattern for the rest;
    - neighbouring entries, and corresponding entries of different inputs, apart (x / y
      does not move when x and y move alike, nor softmax when all logits do; softmax's two
      tied 1000s in float32 round their logsumexp by 3e-5, which only moving them apart
      reproduces in float64): bit b of the flat index gives pattern b;
    - parts alone, the rest held: each input, and the entries with bit b set (or clear).
      An intermediate that only some entries feed rounds by its own ulp: in
      tanh(sum(sigmoid(t1 t0))) + tanh(t0), 1 - tanh^2 of the sum is 1.8e-4 and carries
      3e-4 of relative rounding into t1's gradient; a move of t0 too lets tanh(t0) set the
      output's change, and the move, scaled to that (``_output_rounding_scale``), falls far
      short of reproducing it.
    """
    n = max((x.size for x in xs), default=1)
    bits = range(min(max(n - 1, 1).bit_length(), SEPARATING_BITS))
    together = [np.ones(x.shape) for x in xs]
    apart = [[_apart(b, k, x) for k, x in enumerate(xs)] for b in bits]
    alone = [[np.ones(x.shape) if j == k else np.zeros(x.shape) for j, x in enumerate(xs)]
             for k in range(len(xs)) if p.diff[k] and sum(p.diff) > 1]
    halves = [[_half(b, side, x) for x in xs] for b in bits for side in (0, 1)]
    random = [p.rng.choice(np.array([-1.0, 1.0]), size=x.shape) for x in xs]
    return [together, *apart, *alone, *halves, random]
