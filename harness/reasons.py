"""The closed list of reasons a gradient check is INCONCLUSIVE or NOT_APPLICABLE.

Every non-PASS, non-FAIL outcome of the checker carries exactly one of these codes; the
human-readable text is the code's ``value`` (details may follow after a colon). README
section "harness - gradient checks" documents each with an example.

>>> Reason.ROUNDED_AWAY.verdict
'INCONCLUSIVE'
>>> Reason.NO_FLOAT_OUTPUTS.verdict
'NOT_APPLICABLE'
>>> Reason.of("round-off dominated: the estimate resolves 3e-04") is Reason.ROUNDOFF_DOMINATED
True
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Reason"]


class Reason(StrEnum):
    """Why a check could not be decided (INCONCLUSIVE) or does not apply (NOT_APPLICABLE)."""

    # -- INCONCLUSIVE: the numeric reference is not trustworthy at this point -------------
    NONFINITE_NEAR_X = "non-finite values near x"
    OUTPUT_NOT_FINITE = "the output is not finite at x"
    ROUNDOFF_DOMINATED = "round-off dominated"
    TRUNCATION_DOMINATED = "truncation dominated"
    STRUCTURE_BELOW_STEP = "structure below the step"
    ROUNDED_AWAY = "change rounded away inside the function"
    GRADIENT_OVERFLOWS = "the gradient overflows its dtype"
    SUBNORMAL_FLUSHED = "subnormal values may be flushed to zero"
    KINK_UNRESOLVED = "kinks not resolved"
    JUMPS_UNRESOLVED = "discontinuities not isolated"
    JUMPS_WITHIN_STEP = "jumps within the step"
    # -- NOT_APPLICABLE: there is no derivative to verify ----------------------------------
    NO_FLOAT_INPUTS = "no floating-point inputs"
    NO_FLOAT_OUTPUTS = "no floating-point outputs"
    DISCONTINUOUS = "discontinuous at x"

    @property
    def verdict(self) -> str:
        return "NOT_APPLICABLE" if self in _NOT_APPLICABLE else "INCONCLUSIVE"

    def text(self, detail: str | None = None) -> str:
        """The reason as report text: the code's words, then the detail."""
        return f"{self.value}: {detail}" if detail else self.value

    @classmethod
    def of(cls, text: str | None) -> Reason | None:
        """The code a reason text starts with (None for free text, e.g. a FAIL reason)."""
        if not text:
            return None
        return next((r for r in cls if text.startswith(r.value)), None)


_NOT_APPLICABLE = {Reason.NO_FLOAT_INPUTS, Reason.NO_FLOAT_OUTPUTS, Reason.DISCONTINUOUS}
