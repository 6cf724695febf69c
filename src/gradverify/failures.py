"""What a failing check says: the readable text of whatever a property raised (a gradient
report, a property's message, or an exception from the op with the user's traceback), and
whether it counts as an error (the op raised) or a failure (a wrong value).

>>> failure_text(ValueError("bad"))
'ValueError: bad'
>>> raised(ValueError("bad")), raised(AssertionError("off by 2"))
(True, False)
"""

from __future__ import annotations

from gradverify.harness.report import FAIL

__all__ = ["failure_text", "leaves", "raised"]


def leaves(e: BaseException) -> list[BaseException]:
    if isinstance(e, BaseExceptionGroup):
        return [x for sub in e.exceptions for x in leaves(sub)]
    return [e]


def failure_text(e: BaseException, debug: bool = False) -> str:
    """The readable failure text: the report (or message and the user's traceback), what
    caused it, and Hypothesis's notes (the falsifying example)."""
    from gradverify.tracebacks import user_traceback
    if isinstance(e, AssertionError):
        parts = [str(e)]
    else:
        header = (f"the op called sys.exit({e.code!r}) during the check"
                  if isinstance(e, SystemExit) else f"{type(e).__name__}: {e}")
        tb = user_traceback(e, full=debug)
        parts = [header] + ([tb] if "Traceback" in tb else [])  # else: it repeats the header
    cause = e.__cause__
    if isinstance(e, AssertionError) and cause is not None and str(cause):
        parts.append(str(cause))
    shown = "\n".join(parts)
    for note in getattr(e, "__notes__", []):
        if "Explanation:" in note:
            continue
        if note.startswith(("Falsifying example", "Failing test case")) and (
                "\ncase: " in shown or shown.startswith("case: ")):
            continue   # the drawn case is shown already, in the op's own notation
        parts.append(note)
    # The harness's own reproduce line needs the drawn inputs: the check's reproduce line
    # (a gradverify command) replaces it.
    lines = "\n".join(p for p in parts if p).splitlines()
    return "\n".join(ln for ln in lines
                     if not ln.strip().startswith("reproduce: check_gradients("))


def raised(e: BaseException) -> bool:
    """Whether a failure is the op raising (JUnit <error>) rather than a wrong value: any
    exception but an assertion, or a gradient report whose function raised."""
    if not isinstance(e, AssertionError):
        return True
    report = getattr(e, "report", None)
    return report is not None and any(
        c.verdict == FAIL and (c.reason or "").startswith(("the function raises",
                                                           "the function raised"))
        for c in report.checks)
