"""Naming the bug: signatures that fit the failing entries of a gradient check.

Signatures (several may apply): ignores the upstream gradient; sign flipped; scaled by a
constant (which); zero where non-zero; transposed (2-D inputs, full mode); wrong for input k
only; wrong only near special values (zeros, ties, huge magnitudes, kinks); wrong only in low
precision.

>>> from gradverify.harness.report import Entry, FAIL, PASS
>>> bad = [Entry(0, (i,), analytic=-2.0 * i, numeric=2.0 * i, bound=0, tolerance=1e-9,
...              step=1e-6, verdict=FAIL) for i in (1, 2, 3)]
>>> signature(bad, [], [np.arange(4.0)], [True], ["x"])
['sign flipped']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradverify.harness.report import FAIL, PASS, Entry

__all__ = ["signature", "transposed_inputs", "diagnose"]

_RTOL = 1e-3  # how closely failing entries must share a ratio to call it a constant
# ... and at most this share of the ratio's distance from 1
_CONSTANT_SHARE = 0.1


def _one_constant(ratios: np.ndarray) -> bool:
    """The ratios analytic / numeric agree to ``_RTOL``, and far more closely than they
    differ from 1: one entry off by 1e-5 of a scalar loss, seen only through probes of
    different weights, gives ratios from 1 + 3e-8 to 1 + 3e-7, which agree to 1e-3 but are
    no constant (it was reported as "scaled by a constant (1x)")."""
    spread = float(np.ptp(ratios))
    return (spread <= _RTOL * float(np.max(np.abs(ratios)))
            and spread <= _CONSTANT_SHARE * abs(float(np.median(ratios)) - 1.0))


def _refuted(c: float, good: Sequence[Entry]) -> bool:
    """An entry that passed where a gradient scaled by ``c`` would have FAILed: one entry
    is wrong, the gradient is not scaled (x[2] alone off by 5/3 was "scaled by a
    constant")."""
    return any(e.verdict == PASS and abs(e.analytic - e.numeric) <= e.tolerance
               < abs(c - 1.0) * abs(e.numeric) for e in good)


def _factor(c: float) -> str:
    """``c`` with the digits that show how far it is from 1 (1.0000001, not 1).

    >>> _factor(2.0), _factor(1.0000001000002), _factor(1 / 3)
    ('2', '1.0000001', '0.3333333')
    """
    off = abs(c - 1.0)
    digits = 7 if off == 0 or off >= 1e-5 else int(np.ceil(-np.log10(off))) + 2
    return f"{c:.{digits}g}"


def _special(x: np.ndarray, index: tuple[int, ...]) -> str | None:
    v = float(x[index])
    if v == 0.0:
        return "zero"
    if abs(v) >= 1e4:
        return "huge magnitude"
    if np.count_nonzero(x == x[index]) > 1:
        return "tie"
    return None


def signature(bad: Sequence[Entry], good: Sequence[Entry], xs: Sequence[np.ndarray],
              diff: Sequence[bool], names: Sequence[str],
              localise: int | None = None) -> list[str]:
    """Signatures that fit the FAIL entries in ``bad`` (``good`` are entries that passed;
    ``localise``: how many entries fast mode's search pins before it stops)."""
    fails = [e for e in bad if e.verdict == FAIL and np.isfinite(e.analytic)
             and np.isfinite(e.numeric)]
    if any(e.index is not None for e in fails):  # localised entries say more than probes
        fails = [e for e in fails if e.index is not None]
    if not fails:
        return []
    out: list[str] = []
    # fast mode's search stops after ``localise`` entries, depth first into the worse half
    # of the probe: the entries it pinned may all lie in one input while another is wrong
    searched = localise is not None and any(e.index is None for e in bad)
    cut = searched and len(fails) >= localise
    # a search that ended by itself on fewer entries than the inputs hold found the rest
    # right (or zero): the fault is confined to them; one entry is no scaled gradient
    entries = sum(int(np.size(x)) for x, d in zip(xs, diff) if d)
    confined = (searched and not cut and all(e.index is not None for e in fails)
                and len(fails) < entries)
    big = [e for e in fails if abs(e.numeric) > e.tolerance]
    ratios = np.array([e.analytic / e.numeric for e in big])
    if big and np.all(np.abs(ratios + 1) <= _RTOL):
        out.append("sign flipped")
    elif big and np.all(np.abs(ratios) <= _RTOL):
        out.append("zero where non-zero")
    elif big and len(big) == len(fails) and _one_constant(ratios) and not (
            confined and len(fails) == 1) and not _refuted(float(np.median(ratios)), good):
        out.append(f"scaled by a constant ({_factor(float(np.median(ratios)))}x)")
    if confined and len(fails) <= 3:
        out.append("wrong at " + ", ".join(f"{names[e.input]}{list(e.index)}"
                                           for e in fails) + " only")
    inputs = {e.input for e in fails}
    if sum(bool(d) for d in diff) >= 2 and len(inputs) == 1 and not cut and all(
            e.index is not None for e in fails):
        k = inputs.pop()
        out.append(f"wrong for input {k} ({names[k]}) only")
    located = [e for e in fails if e.index is not None]
    if located and len(located) == len(fails):
        kinds = {_special(xs[e.input], e.index) or ("kink" if e.kind == "kink" else None)
                 for e in located}
        clean_pass = any(e.index is not None and _special(xs[e.input], e.index) is None
                         and e.kind != "kink" for e in good)
        if None not in kinds and clean_pass:
            out.append("wrong only near special values (" + ", ".join(sorted(kinds)) + ")")
    return out


def transposed_inputs(jac: np.ndarray, num: np.ndarray, blocks: Sequence[tuple[int, int]],
                      shapes: Sequence[tuple[int, ...]]) -> list[int]:
    """2-D inputs whose analytic Jacobian columns equal the numeric ones of the transposed
    positions (a missing or extra transpose in a matrix rule)."""
    out = []
    for k, off in blocks:
        shape = shapes[k]
        if len(shape) != 2 or shape[0] != shape[1] or shape[0] < 2:
            continue
        size = shape[0] * shape[1]
        a = jac[:, off:off + size].reshape(-1, *shape)
        n = num[:, off:off + size].reshape(-1, *shape)
        scale = max(float(np.max(np.abs(n))), 1e-300)
        if np.max(np.abs(a - n)) > 1e-6 * scale and np.max(
                np.abs(a - np.swapaxes(n, 1, 2))) <= 1e-6 * scale:
            out.append(k)
    return out


def diagnose(report: Any, xs: Sequence[np.ndarray]) -> str | None:
    """One line naming what went wrong, from the report's failing checks (or None)."""
    parts: list[str] = []
    mutated = report.check("hygiene.input_unchanged")
    if mutated is not None and mutated.verdict == FAIL:
        # The checks after it ran on changed inputs: their FAILs may be its consequences
        # (a backward halving its saved input looks like a VJP ignoring its cotangent).
        parts.append(f"writes into its inputs: {mutated.reason.split(': ', 1)[-1]}")
    lin = report.check("hygiene.linearity")
    if lin is not None and lin.verdict == FAIL and not parts:
        parts.append("ignores the upstream gradient")
    grad = report.check("gradient")
    if grad is not None and grad.verdict == FAIL:
        for name in grad.details.get("transposed", []):
            parts.append(f"transposed ({name})")
        parts += [s for s in grad.details.get("signature", [])
                  if not (parts and s.startswith("scaled"))]
    prec = report.check("precision")
    if prec is not None and prec.verdict == FAIL and prec.details.get("float64_not_linear"):
        parts.append("ignores the upstream gradient")  # (or squares it: not linear in it)
    elif prec is not None and prec.verdict == FAIL:
        parts.append(f"wrong only in low precision ({prec.details.get('dtype', '')})")
    failed = [c.name for c in report.checks if c.verdict == FAIL]
    if not parts and failed and failed[0].startswith("hygiene."):
        parts.append(failed[0].split(".", 1)[1].replace("_", " ") + " violated")
    seen: list[str] = []
    for s in parts:
        if s not in seen:
            seen.append(s)
    return "; ".join(seen) or None
