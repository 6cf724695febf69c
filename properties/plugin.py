"""The pytest plugin: ``--gradverify-ops``, the ``gradverify`` mark, readable failures of the
generated op tests, and a summary of discarded (INCONCLUSIVE) examples.

Installed with the package (entry point ``pytest11``), so in any project that has gradverify:

- ``pytest --gradverify-ops=mypkg.ops`` imports ``mypkg.ops`` (a module name, a ``.py`` path
  or a package directory; op type names work too; comma-separate several) and adds one test
  per (op, property) for every op whose kernel that module (or package) defines: metadata,
  shapes, forward, gradient (float64, float32, second order where declared), no_gradient.
  The items are named ``gradverify[<Op>-<property>]``; ``-k gradverify_ops`` runs only them
  (``-m gradverify`` runs them and the ``op_suite`` tests). A target that does not exist or
  registers no op is a usage error (exit code 4); an exception while importing it is a
  collection error with its traceback.
- Inside a test module, the same suite in one line (see :func:`op_suite`)::

      import mypkg.ops
      from gradverify.properties import op_suite
      test_mypkg_ops = op_suite(mypkg.ops)

- The plugin changes nothing it does not own: Hypothesis' global settings are untouched, so
  a project's own ``@given`` tests keep their profile. The generated tests carry their own
  settings: profile ``--hypothesis-profile``, else ``HYPOTHESIS_PROFILE``, else ``ci`` when
  the ``CI`` environment variable is set, else ``dev`` (see
  :mod:`gradverify.properties.profiles`); a failure ends with the command that replays it
  (node id, profile, seed).
- Examples a gradient check could not verify are discarded, not failed; the terminal summary
  counts them by reason (also under pytest-xdist: the counts travel with the test reports).
"""

from __future__ import annotations

import shlex
import sys
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any

import pytest
from _pytest._code.code import ReprExceptionInfo, ReprFileLocation, ReprTracebackNative

from gradverify.properties.targets import TargetError, import_target, ops_of

# Imported by pytest in every project where gradverify is installed: the engine and the
# property machinery load only when a gradverify feature is used.
OpDef = Any

__all__ = ["op_suite", "ops_of", "import_target", "run_property", "TargetError"]

_MARK = "gradverify"
_INCONCLUSIVE_KEY = "gradverify_inconclusive"  # user_properties entry: {reason: count}


def _cases(ops: Iterable[OpDef]) -> list[tuple[OpDef, str]]:
    from gradverify.properties.checks import op_properties
    return [(o, prop) for o in ops for prop in ("metadata", *op_properties(o))]


def run_property(op: OpDef, name: str, *, profile: str | None = None,
                 seed: int | None = None, nodeid: str | None = None,
                 examples: int | Mapping[str, int] | None = None) -> None:
    """Run one property of ``op`` under its own settings (raises on failure): Hypothesis
    profile ``profile`` (default: ``HYPOTHESIS_PROFILE``, else ``ci`` when ``CI`` is set,
    else ``dev``) without deadline or "Explanation" phase. A random profile draws from
    ``seed`` (default: a fresh one); a failure's notes end with the command that replays it
    (``nodeid``, the profile and the seed). ``examples`` replaces the profile's
    ``max_examples`` (a mapping: for the properties it names).

    >>> from gradverify.engine import registry
    >>> run_property(registry.lookup("Square"), "metadata")
    """
    __tracebackhide__ = True
    import random

    from hypothesis import seed as use_seed
    from hypothesis import settings

    from gradverify.properties.checks import property_test, validate
    from gradverify.properties.profiles import active_profile, generated_settings
    if name == "metadata":
        problems = validate(op)
        if problems:
            raise AssertionError(f"op {op.type} ({op.source}) has incomplete metadata:\n  "
                                 + "\n  ".join(problems))
        return
    profile = profile or active_profile()
    chosen = generated_settings(profile)
    if isinstance(examples, Mapping):
        examples = examples.get(name)
    if examples is not None:
        chosen = settings(chosen, max_examples=examples)
    test = chosen(property_test(op, name))
    if isinstance(seed, str) and seed.isdigit():  # --hypothesis-seed arrives as text
        seed = int(seed)
    if seed is None and not chosen.derandomize:
        seed = random.SystemRandom().randrange(2**32)
    if seed is not None:
        test = use_seed(seed)(test)
    try:
        test()
    except BaseException as e:
        if isinstance(e, Exception):
            where = "pytest " + (nodeid if nodeid and nodeid.startswith("-") else
                                 shlex.quote(nodeid or "<this test>"))
            e.add_note(f"reproduce: HYPOTHESIS_PROFILE={shlex.quote(profile)} {where}"
                       + (f" --hypothesis-seed={seed}" if seed is not None else ""))
        raise


def op_suite(*targets: Any, examples: int | Mapping[str, int] | None = None,
             ) -> Callable[..., None]:
    """A parametrized pytest test putting the ops of ``targets`` (see :func:`ops_of`)
    through every property that applies to them: assign it to a ``test_`` name. Its cases
    are ``<Op>-<property>``; each runs under its own Hypothesis settings (see
    :func:`run_property`), so it needs nothing from the plugin and changes no other test.
    With the plugin loaded they carry the ``gradverify`` mark. ``examples`` sets the
    examples per property (default: the profile's), e.g. a small budget for a quick run;
    a mapping sets it for the properties it names (``{"shapes": 10}``).

    >>> test_relu = op_suite("Relu")
    >>> [p.id for p in test_relu.pytestmark[0].args[1]][:2]
    ['Relu-metadata', 'Relu-shapes']
    """
    cases = _cases(ops_of(*targets))
    if not cases:
        raise TargetError(f"no ops selected by {targets!r}")

    @pytest.mark.parametrize(("op", "prop"), [
        pytest.param(o, p, id=f"{o.type}-{p}") for o, p in cases])
    def test_op_property(op: OpDef, prop: str, request: Any) -> None:
        __tracebackhide__ = True
        config = request.config
        run_property(op, prop, profile=config.stash.get(_PROFILE, None),
                     seed=config.getoption("hypothesis_seed", default=None),
                     nodeid=request.node.nodeid, examples=examples)

    test_op_property._gradverify_suite = True  # marked and reported by the hooks below
    return test_op_property


# -- pytest hooks ----------------------------------------------------------------------------
def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("gradverify")
    group.addoption("--gradverify-ops", action="append", default=[], metavar="MODULES",
                    help="put the ops registered by these modules (dotted names, .py paths "
                         "or package directories; op type names too; comma-separated) "
                         "through gradverify's property suite")


_PROFILE = pytest.StashKey[str]()  # the profile generated tests run under, this session


@pytest.hookimpl(trylast=True)
def pytest_configure(config: Any) -> None:
    # Nothing global is loaded: generated tests carry their own settings (run_property); a
    # project's own @given tests keep the project's Hypothesis profile.
    from gradverify.properties.profiles import active_profile, profile_settings
    config.addinivalue_line("markers", f"{_MARK}: a property of a registered op (gradverify's "
                                       "op suite)")
    name = config.getoption("hypothesis_profile", default=None) or None
    try:
        name = name or active_profile()
        profile_settings(name)
    except ValueError as e:  # HYPOTHESIS_PROFILE names no registered profile
        raise pytest.UsageError(f"gradverify: {e}") from None
    config.stash[_PROFILE] = name
    config.pluginmanager.register(_InconclusiveSummary(), "gradverify-inconclusive-summary")


class GradverifyItem(pytest.Item):
    """One (op, property) from ``--gradverify-ops``."""

    def __init__(self, *, op: OpDef, prop: str, option: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.op, self.prop, self.option = op, prop, option
        self.add_marker(_MARK)

    def runtest(self) -> None:
        run_property(self.op, self.prop, profile=self.config.stash.get(_PROFILE, None),
                     seed=self.config.getoption("hypothesis_seed", default=None),
                     nodeid=f"{self.option} -k {shlex.quote(self.name)}")

    def reportinfo(self) -> tuple[str, int, str]:
        file, _, line = self.op.source.rpartition(":")
        lineno = int(line) - 1 if line.isdigit() else 0
        return file or self.op.source, lineno, self.name

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        readable = _readable_failure(self, excinfo)
        return readable if readable is not None else super().repr_failure(excinfo, style=style)


def _report(text: str, path: str, lineno: int) -> Any:
    """A property failure as the reader wants it, in pytest's own exception representation
    (so pytest-xdist carries it whole): the text as a native traceback, and a one-line
    ``reprcrash`` message for pytest's short summary (``-ra``) instead of the whole report."""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "failed")
    diagnosis = next((ln.strip() for ln in text.splitlines()
                      if ln.strip().startswith("diagnosis:")), None)
    line = first + (f"; {diagnosis}" if diagnosis else "")
    return ReprExceptionInfo(
        reprtraceback=ReprTracebackNative([ln + "\n" for ln in text.splitlines()]),
        reprcrash=ReprFileLocation(path, lineno, line[:200]))


def _readable_failure(item: Any, excinfo: Any) -> Any:
    """A property failure as the reader wants it: the gradient report (verdict, diagnosis,
    the ``where  analytic  numeric`` table) or the property's message with the drawn case,
    then Hypothesis's notes (the failing example and the reproduce command). None for any
    other exception (a bug in the op or the engine: its traceback is the useful part) and
    when ``--tb=long`` or ``--tb=native`` asks for tracebacks."""
    err = excinfo.value
    if not isinstance(err, AssertionError) or item.config.getoption(
            "tbstyle", "auto") not in ("auto", "short"):
        return None
    # The harness's own reproduce line needs the drawn inputs; the note below replays them.
    lines = [ln for ln in str(err).splitlines()
             if not ln.strip().startswith("reproduce: check_gradients(")]
    if isinstance(err.__cause__, AssertionError):
        lines.append(str(err.__cause__))
    lines += [str(n) for n in getattr(err, "__notes__", ())]
    path, lineno, _ = item.reportinfo()
    return _report("\n".join(lines), str(path), int(lineno or 0) + 1)


class _Suite(pytest.Collector):
    """The parent of the ``--gradverify-ops`` items: its name ``gradverify_ops`` is their
    ``-k`` keyword (``-m gradverify`` also selects ``op_suite`` tests)."""

    def collect(self) -> list[Any]:  # pragma: no cover - items are made by the hook below
        return []


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    # tryfirst: the items must exist, and be marked, before -k, -m and --deselect filter.
    for item in items:
        if getattr(getattr(item, "obj", None), "_gradverify_suite", False):
            item.add_marker(_MARK)
    targets = [t.strip() for arg in config.getoption("gradverify_ops") for t in arg.split(",")
               if t.strip()]
    if not targets:
        return
    suite = _Suite.from_parent(session, name="gradverify_ops", nodeid="--gradverify-ops")
    session.ihook.pytest_collectstart(collector=suite)
    try:
        ops = ops_of(*targets)
    except TargetError as e:
        raise pytest.UsageError(f"--gradverify-ops: {e}") from None
    except Exception as e:  # noqa: BLE001 - the user's module failed to import: report it
        longrepr = suite.repr_failure(pytest.ExceptionInfo.from_exception(e))
        session.ihook.pytest_collectreport(
            report=pytest.CollectReport(suite.nodeid, "failed", longrepr, []))
        return
    option = shlex.quote(f"--gradverify-ops={','.join(targets)}")
    new = [GradverifyItem.from_parent(suite, name=f"{_MARK}[{o.type}-{p}]",
                                      nodeid=f"{_MARK}[{o.type}-{p}]", op=o, prop=p,
                                      option=option)
           for o, p in _cases(ops)]
    # Reported like any collected node: counted in "collected N items", seen by other plugins.
    session.ihook.pytest_collectreport(
        report=pytest.CollectReport(suite.nodeid, "passed", None, new))
    items.extend(new)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Generator[None, Any, Any]:
    # An op_suite test fails with the same readable report as a --gradverify-ops item, not
    # with a traceback through the property machinery.
    report = yield
    if (call.when == "call" and call.excinfo is not None and report.failed
            and getattr(getattr(item, "obj", None), "_gradverify_suite", False)):
        readable = _readable_failure(item, call.excinfo)
        if readable is not None:
            report.longrepr = readable
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: Any) -> Generator[None, Any, Any]:
    # Discarded examples counted during this test travel with its report (user_properties
    # reach the pytest-xdist controller and JUnit XML), so the summary sees every worker's.
    checks = sys.modules.get("gradverify.properties.checks")
    before = Counter(checks.INCONCLUSIVE_COUNTS) if checks is not None else Counter()
    try:
        return (yield)
    finally:
        checks = sys.modules.get("gradverify.properties.checks")
        if checks is not None:
            added = checks.INCONCLUSIVE_COUNTS - before
            if added:
                item.user_properties.append((_INCONCLUSIVE_KEY, dict(added)))


class _InconclusiveSummary:
    """Adds up the discarded examples of every test report; a terminal summary section."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when != "call":  # the teardown report carries the same user_properties
            return
        for key, value in report.user_properties:
            if key == _INCONCLUSIVE_KEY and isinstance(value, dict):
                self.counts.update(value)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.counts:
            return
        total = sum(self.counts.values())
        terminalreporter.section("gradverify: discarded INCONCLUSIVE examples")
        terminalreporter.write_line(f"{total} generated examples could not be verified "
                                    "(discarded, not failures); most frequent:")
        for reason, count in self.counts.most_common(10):
            terminalreporter.write_line(f"  {count:5d}  {reason}")
