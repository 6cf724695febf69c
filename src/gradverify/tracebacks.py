"""Tracebacks a user can act on: when a kernel raises, the frames in the user's files (and in
the libraries they call), without gradverify's, Hypothesis' or the standard library's.

>>> def kernel():
...     raise ValueError("bad shape")
>>> try:
...     kernel()
... except ValueError as e:
...     text = user_traceback(e)
>>> text.splitlines()[-1]
'ValueError: bad shape'
"""

from __future__ import annotations

import sysconfig
import traceback
from pathlib import Path

__all__ = ["user_traceback"]


def _internal_roots() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(package roots: gradverify's folders and the machinery's libraries; stdlib roots)."""
    import hypothesis

    import gradverify
    import gradverify.engine
    import gradverify.harness
    import gradverify.properties
    packages = [Path(m.__file__).resolve().parent for m in (
        gradverify, gradverify.engine, gradverify.harness, gradverify.properties, hypothesis)]
    for name in ("pebble", "_pytest", "pluggy"):
        try:
            packages.append(Path(__import__(name).__file__).resolve().parent)
        except ImportError:
            continue
    stdlib = {Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "platstdlib")}
    return (tuple(f"{r}/" for r in packages), tuple(f"{r}/" for r in stdlib))


def _internal(filename: str, roots: tuple[tuple[str, ...], tuple[str, ...]]) -> bool:
    if filename.startswith("<"):
        # the engine's compiled session plans are internal; other exec'd or doctest code
        # is the user's
        return filename.startswith("<plan")
    resolved = str(Path(filename).resolve())
    packages, stdlib = roots
    return resolved.startswith(packages) or (
        resolved.startswith(stdlib) and "-packages/" not in resolved)


def user_traceback(error: BaseException, full: bool = False) -> str:
    """The traceback of ``error`` (and of its causes) with only the user's frames; every
    frame when ``full`` (``--debug``). The last line is the exception itself."""
    if full:
        return "".join(traceback.format_exception(error)).rstrip()
    roots = _internal_roots()
    chain = []
    current: traceback.TracebackException | None = (
        traceback.TracebackException.from_exception(error))
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__
                                        else current.__context__)
    parts = []
    for i, exc in enumerate(reversed(chain)):
        frames = [f for f in exc.stack if not _internal(f.filename, roots)]
        if i and not frames and i == len(chain) - 1:
            break  # the wrapper raised by the machinery: its message is shown already
        if i:
            parts.append("which led to:")
        if frames:
            parts.append("Traceback, user code (--debug shows every frame):")
            parts.append("".join(traceback.StackSummary.from_list(frames).format()).rstrip())
        parts.append("".join(exc.format_exception_only()).rstrip())
    return "\n".join(parts)
