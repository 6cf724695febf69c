"""Run the checks of ``gradverify check`` in worker processes that can be killed.

Each check runs in a process of a ``pebble`` pool (forked, so ops that the user's modules
registered exist there too). The gate survives what CI throws at it:

- a check still running after ``timeout`` seconds is killed: FAIL "timed out after S s";
- a worker that dies (``os._exit``, a segfault, the OOM killer) is a FAIL naming how it
  died; the pool starts a new worker and the other checks go on;
- SIGTERM (CI's cancel) and SIGINT (Ctrl-C) stop the pool, terminating every worker, and
  raise :class:`RunInterrupted` carrying the results finished so far.

Workers ignore SIGINT (a terminal sends it to the whole process group; the parent decides)
and die on SIGTERM, which is how the pool stops them.

>>> from gradverify.runner import RunOptions, Target
>>> [r.verdict for r in run_tasks([(Target("Square", "op", ("shapes",)), "shapes")],
...                               RunOptions(examples=2), jobs=1, timeout=60)]
['PASS']
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import multiprocessing
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from gradverify.harness.report import FAIL
from gradverify.runner import CheckResult, RunOptions, Target, reproduce_line, run_check

__all__ = ["run_tasks", "RunInterrupted", "signals_interrupt", "EXIT_STATUS"]

# The shell's convention for a process ended by a signal: 128 + the signal's number.
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


class RunInterrupted(BaseException):
    """The run was stopped by a signal; ``results`` are the checks that finished."""

    def __init__(self, signum: int, results: Sequence[CheckResult] = ()):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.results = list(results)

    @property
    def status(self) -> int:
        return EXIT_STATUS.get(self.signum, 128 + self.signum)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """While active, SIGTERM and SIGINT raise :class:`RunInterrupted` in the main thread
    (a second signal while the first is handled is ignored: the reports get written)."""
    def handler(signum: int, _frame: Any) -> None:
        for s in EXIT_STATUS:
            signal.signal(s, signal.SIG_IGN)
        raise RunInterrupted(signum)

    previous = {s: signal.signal(s, handler) for s in EXIT_STATUS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Everything the parent imported (NumPy, SciPy, Hypothesis, the engine's registry) lives
    # as long as the worker: out of the collector's sight, a full collection scans only
    # what the checks allocate (a tenth of a worker's time went to rescanning it).
    gc.freeze()


def _crashed(target: Target, prop: str, opts: RunOptions, message: str) -> CheckResult:
    from gradverify.runner import derive_seed
    result = CheckResult(target=target.name, check=prop, verdict=FAIL,
                         seed=derive_seed(opts.seed, target.name, prop), message=message,
                         kind="error")
    result.reproduce = reproduce_line(target.name, prop, opts)
    return result


def _outcome(future: Any, target: Target, prop: str, opts: RunOptions,
             timeout: float | None) -> CheckResult:
    from pebble import ProcessExpired
    try:
        return future.result()
    except concurrent.futures.TimeoutError:
        return _crashed(target, prop, opts, f"timed out after {timeout:g} s (--timeout): the "
                        "check was killed; an op that never returns, or a check too slow "
                        "for the limit")
    except ProcessExpired as e:
        code = e.exitcode
        how = (f"killed by signal {signal.Signals(-code).name}" if code is not None
               and code < 0 and -code in signal.valid_signals() else f"exit code {code}")
        return _crashed(target, prop, opts, f"the worker process died ({how}) while "
                        "running this check: the op crashed the interpreter (os._exit, a "
                        "segfault in native code, or out of memory)")
    except BaseException as e:  # noqa: BLE001 - whatever escaped the check is its outcome
        return _crashed(target, prop, opts, f"the check raised {type(e).__name__}: {e}")


def run_tasks(tasks: Sequence[tuple[Target, str]], opts: RunOptions, jobs: int = 1,
              timeout: float | None = None,
              on_done: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """Run every (target, property) in ``jobs`` worker processes, each check killed after
    ``timeout`` seconds (None: no limit). Results sorted by target and property, so they
    do not depend on ``jobs``. Raises :class:`RunInterrupted` (with the finished results)
    when a signal arrives under :func:`signals_interrupt`; no worker outlives the call."""
    from pebble import ProcessPool

    from gradverify.runner import sort_results
    results: list[CheckResult] = []
    if not tasks:
        return results
    pool = ProcessPool(max_workers=max(1, min(jobs, len(tasks))), initializer=_worker_init,
                       context=multiprocessing.get_context("fork"))
    try:
        futures = {pool.schedule(run_check, args=(t, p, opts), timeout=timeout): (t, p)
                   for t, p in tasks}
        for future in concurrent.futures.as_completed(futures):
            t, p = futures[future]
            results.append(_outcome(future, t, p, opts, timeout))
            if on_done:
                on_done(results[-1])
    except RunInterrupted as e:
        pool.stop()
        pool.join()
        e.results = sort_results(results)
        raise
    except BaseException:
        pool.stop()
        pool.join()
        raise
    pool.close()
    pool.join()
    return sort_results(results)
