"""The pytest plugin (properties/plugin.py) from a user's side, each run in a fresh pytest
process (ops register process-wide at import): ``--gradverify-ops``, the ``op_suite``
one-liner, the readable failure report, usage errors, the INCONCLUSIVE summary, and the
choice of Hypothesis profile. examples/custom_op is the user's package: ``mysoftplus`` (a
correct op) and ``faulty/mysoftplus_faulty`` (the same op with a wrong gradient)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_op"
GOOD_OPS = EXAMPLE / "mysoftplus" / "ops.py"
FAULTY_PKG = EXAMPLE / "faulty" / "mysoftplus_faulty"
PROPERTIES = ("metadata", "shapes", "forward", "gradient", "gradient_order2",
              "gradient_float32")
FAILING = ("gradient", "gradient_float32")  # sigmoid(-x) for sigmoid(x); second order is
# consistent with that (wrong) first derivative, so gradient_order2 passes

# A relu-like op: at its kink the check cannot confirm a derivative, so examples drawn
# there (the strategies draw kinks on purpose) are discarded (INCONCLUSIVE), not failed.
KINKED_OP = '''
import numpy as np
import gradverify.engine as tf
from gradverify.engine import meta

@tf.op("GvKinked", inputs={"x": meta.reals}, kinks=(0.0,), api=None,
       reference=lambda x: np.where(x > 0, x, 0.0))
def gv_kinked(x):
    return np.maximum(x, 0)

@gv_kinked.gradient
def _(op, grad):
    return grad * tf.cast(tf.greater(op.inputs[0], 0), grad.dtype)
'''


@pytest.fixture
def run(pytester, monkeypatch):
    """``run(*args, ci=None, profile="ci")``: pytest in a subprocess, in the pytester
    directory, with exactly these values of ``CI`` and ``HYPOTHESIS_PROFILE`` (None: unset;
    the ``ci`` profile by default: derandomized, so every run draws the same examples, and
    quick)."""
    def run_(*args: str, ci: str | None = None, profile: str | None = "ci"):
        for var, value in (("CI", ci), ("HYPOTHESIS_PROFILE", profile)):
            if value is None:
                monkeypatch.delenv(var, raising=False)
            else:
                monkeypatch.setenv(var, value)
        if ci is None:  # tox keeps CI's value under this name, and Hypothesis reads it too
            monkeypatch.delenv("__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI", raising=False)
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=300)
    return run_


def _items(result, outcome: str) -> set[str]:
    """The names of the items with ``outcome`` in a ``-v`` run."""
    found = re.findall(rf"^(?:\S+::)?(\S+) {outcome}\b", result.stdout.str(), re.MULTILINE)
    return set(found)


def _assert_readable_report(text: str, op: str = "MySoftplusFaulty") -> None:
    assert f"gradient check of {op}(" in text
    assert re.search(r"where\s+analytic\s+numeric\s+\|error\|\s+tolerance", text), text
    assert re.search(r"^\s+diagnosis: \S", text, re.MULTILINE), text
    assert re.search(r"^case: MySoftplusFaulty\(features=", text, re.MULTILINE), text
    # Hypothesis's reproduction: the failing example, and the blob (the ci profile prints it)
    assert re.search(r"(Falsifying example|Failing test case): prop\(", text), text
    assert re.search(r"@reproduce_failure\('[\d.]+', b'", text), text
    assert "Traceback" not in text and "checks.py:" not in text  # a report, not internals


# -- --gradverify-ops -------------------------------------------------------------------------
# (a dotted module name: the same run, the target found another way; slow)
@pytest.mark.parametrize("how", ["path", pytest.param("dotted", marks=pytest.mark.slow)])
def test_option_puts_the_good_op_through_every_property(run, monkeypatch, how):
    if how == "path":
        target = str(GOOD_OPS)
    else:  # a module name, importable from sys.path
        monkeypatch.setenv("PYTHONPATH", str(EXAMPLE))
        target = "mysoftplus.ops"
    result = run(f"--gradverify-ops={target}", "-v")
    result.assert_outcomes(passed=len(PROPERTIES))
    assert _items(result, "PASSED") == {f"gradverify[MySoftplus-{p}]" for p in PROPERTIES}
    result.stdout.fnmatch_lines([f"*collected {len(PROPERTIES)} items"])
    assert result.ret == pytest.ExitCode.OK


def test_option_on_the_faulty_op_fails_the_gradient_with_the_report(run):
    result = run(f"--gradverify-ops={FAULTY_PKG}", "-v")  # a package directory
    result.assert_outcomes(passed=len(PROPERTIES) - len(FAILING), failed=len(FAILING))
    assert _items(result, "FAILED") == {f"gradverify[MySoftplusFaulty-{p}]" for p in FAILING}
    text = result.stdout.str()
    failures = text.split("= FAILURES =", 1)[1]
    _assert_readable_report(failures)
    assert re.search(r"features\S* -> out0\S*\s+2\.68941\de-01\s+7\.31058\de-01", failures), (
        failures)  # sigmoid(-1) where sigmoid(1) is due, at the shrunk x = 1
    # the replay command names the option, the item and the profile (ci: no seed needed)
    assert (f"reproduce: HYPOTHESIS_PROFILE=ci pytest --gradverify-ops={FAULTY_PKG} -k "
            "'gradverify[MySoftplusFaulty-gradient]'") in failures, failures
    assert result.ret == pytest.ExitCode.TESTS_FAILED


# -- the one-liner ---------------------------------------------------------------------------
def _one_liner_project(pytester, **modules: str) -> None:
    pytester.makeconftest(f"""
        import sys
        sys.path[:0] = [{str(EXAMPLE)!r}, {str(FAULTY_PKG.parent)!r}]
        """)
    pytester.makepyfile(**{
        f"test_{name}": f"import {module}\nfrom gradverify.properties import op_suite\n\n"
                        f"test_{name} = op_suite({module})\n"
        for name, module in modules.items()})


def test_one_liner_passes_for_the_good_op(pytester, run):
    _one_liner_project(pytester, good="mysoftplus.ops")
    # The option imports the same file the test module imports: one module, registered once.
    result = run("-v", f"--gradverify-ops={GOOD_OPS}")
    result.assert_outcomes(passed=2 * len(PROPERTIES))
    assert _items(result, "PASSED") == (
        {f"test_good[MySoftplus-{p}]" for p in PROPERTIES}
        | {f"gradverify[MySoftplus-{p}]" for p in PROPERTIES})


def test_one_liner_fails_for_the_faulty_op_with_the_report(pytester, run):
    _one_liner_project(pytester, faulty="mysoftplus_faulty.ops")
    result = run("-v")
    result.assert_outcomes(passed=len(PROPERTIES) - len(FAILING), failed=len(FAILING))
    assert _items(result, "FAILED") == {f"test_faulty[MySoftplusFaulty-{p}]" for p in FAILING}
    _assert_readable_report(result.stdout.str().split("= FAILURES =", 1)[1])


# -- usage errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(("target", "message"), [
    ("nosuchmodule", "'nosuchmodule' is neither a registered op type nor an importable "
                     "module (no module named 'nosuchmodule')"),
    ("noops.py", "module noops registers no ops (no op kernel is defined in "),
    ("missing/ops.py", "no such Python file: missing/ops.py"),
])
def test_a_target_that_selects_nothing_is_a_one_line_usage_error(pytester, run, target,
                                                                  message):
    pytester.makepyfile(noops="import gradverify.engine\nVALUE = 1\n")
    result = run(f"--gradverify-ops={target}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, result.stderr.str()
    assert errors[0].startswith(f"ERROR: --gradverify-ops: {message}"), errors[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_target_that_fails_to_import_is_a_collection_error_with_its_traceback(pytester,
                                                                                 run):
    pytester.makepyfile(broken="import gradverify.engine\n\nraise RuntimeError('boom in broken')\n")
    result = run("--gradverify-ops=broken.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting --gradverify-ops*", "*broken.py:3*",
                                 "E*RuntimeError: boom in broken",
                                 "*1 error during collection*"])


# -- the INCONCLUSIVE summary ----------------------------------------------------------------
OVERFLOWING_OP = '''
import numpy as np
import gradverify.engine as tf
from gradverify.engine import meta

@tf.op("GvKinked", inputs={"x": meta.reals}, api=None, reference=np.exp)
def gv_exp(x):
    return np.exp(x)

@gv_exp.gradient
def _(op, grad):
    return grad * op.outputs[0]
'''


# (without workers: the same counts, summed in one process; slow)
@pytest.mark.parametrize("workers", [pytest.param(0, marks=pytest.mark.slow), 2])
def test_discarded_examples_are_summed_up(pytester, run, workers):
    if workers:
        pytest.importorskip("xdist")  # the counts travel from the workers with the reports
    # exp overflows at the large values the strategies draw on purpose: the output is not
    # finite there, so those examples are INCONCLUSIVE. (A jump of the gradient at a kink,
    # as in second order at relu's 0, is NOT_APPLICABLE now, not counted here.)
    pytester.makepyfile(kinked=OVERFLOWING_OP)
    result = run("--gradverify-ops=kinked.py", "-k", "gradient and not order2 and not float32",
                 *(["-n", str(workers)] if workers else []))
    result.assert_outcomes(passed=1)
    text = result.stdout.str()
    header = "gradverify: discarded INCONCLUSIVE examples"
    assert header in text
    summary = text.split(header, 1)[1]
    found = re.search(r"(\d+) generated examples could not be verified \(discarded, not "
                      r"failures\)", summary)
    assert found and int(found.group(1)) > 0, summary
    counts = [int(n) for n in re.findall(r"^\s+(\d+)  GvKinked: \S", summary, re.MULTILINE)]
    assert counts and sum(counts) == int(found.group(1)), summary


# -- the plugin changes nothing it does not own ---------------------------------------------
PRINT_PROFILE = """
from hypothesis import given, settings, strategies as st

@given(st.integers())
def test_profile(x):
    s = settings.default
    print(f"PROFILE={settings.get_current_profile_name()} max_examples={s.max_examples} "
          f"derandomize={s.derandomize} deadline={s.deadline}")
"""


def _profile_line(result) -> str:
    found = re.findall(r"PROFILE=.*", result.stdout.str())
    assert found, result.stdout.str()
    return found[0]


@pytest.mark.parametrize(("ci", "profile_env"), [(None, None), ("true", "dev")],
                         ids=["plain", "CI-and-HYPOTHESIS_PROFILE"])
def test_an_unrelated_given_test_keeps_hypothesis_settings(pytester, run, ci, profile_env):
    """Installed, the plugin loads for every project: their @given tests must run exactly as
    they would without it (neither our ``ci`` profile when CI is set, nor the profile
    HYPOTHESIS_PROFILE names, which only gradverify reads)."""
    if profile_env:  # the project's own profile of that name: it must not be loaded either
        pytester.makeconftest("from hypothesis import settings\n"
                              "settings.register_profile('dev', max_examples=3)\n")
    pytester.makepyfile(test_profile=PRINT_PROFILE)
    with_plugin = run("-s", ci=ci, profile=profile_env)
    without = run("-s", "-p", "no:gradverify", ci=ci, profile=profile_env)
    with_plugin.assert_outcomes(passed=1)
    without.assert_outcomes(passed=1)
    assert _profile_line(with_plugin) == _profile_line(without)
    if ci is None:
        assert _profile_line(with_plugin).startswith("PROFILE=default max_examples=100")
    else:  # Hypothesis' own profile for CI services, untouched
        assert not re.search(r"max_examples=(25|3) ", _profile_line(with_plugin))


def test_op_suite_needs_no_plugin(pytester, run):
    """op_suite tests carry their own settings: no deadline error, no unknown-mark warning."""
    _one_liner_project(pytester, good="mysoftplus.ops")
    pytester.makeini("[pytest]\naddopts = --strict-markers -W error\n")
    # metadata (no plugin machinery at all) and the slowest property (a deadline would hit)
    result = run("-v", "-p", "no:gradverify", "-k", "metadata or gradient_order2",
                 profile=None)
    result.assert_outcomes(passed=2)
    assert "PytestUnknownMarkWarning" not in result.stdout.str()


# (without workers: the same report, made in one process; slow)
@pytest.mark.parametrize("workers", [pytest.param(0, marks=pytest.mark.slow), 2])
def test_failure_names_its_reproduction_and_summary_is_one_line(pytester, run, workers):
    if workers:
        pytest.importorskip("xdist")  # the report travels from the workers whole
    _one_liner_project(pytester, faulty="mysoftplus_faulty.ops")
    # CI: pytest prints summaries untrimmed
    result = run("-ra", "-k", "gradient", *(["-n", str(workers)] if workers else []),
                 profile="dev", ci="true")
    text = result.stdout.str()
    found = re.findall(r"^reproduce: HYPOTHESIS_PROFILE=dev (pytest .*)$", text, re.MULTILINE)
    assert found and all(re.search(r" --hypothesis-seed=\d+$", f) for f in found), text
    assert "reproduce: check_gradients(" not in text  # not runnable as printed
    assert "Explanation:" not in text
    summary = text.split("short test summary info", 1)[1].splitlines()[1:]
    failed = [ln for ln in summary if ln.startswith("FAILED")]
    assert len(failed) == len(FAILING), summary
    assert all("gradient check of MySoftplusFaulty" in ln and "diagnosis:" in ln
               for ln in failed), failed
    assert len([ln for ln in summary if ln.strip() and not ln.startswith(("FAILED", "="))]) == 0
    if workers:
        return
    # The printed command replays the failure: the same node, profile and seed fail again.
    args = shlex.split(found[0])[1:]
    again = run(*args, profile="dev", ci="true")
    again.assert_outcomes(failed=1)


def test_an_unknown_hypothesis_profile_is_a_usage_error(pytester, run):
    pytester.makepyfile(test_profile=PRINT_PROFILE)
    result = run(profile="nosuchprofile")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown Hypothesis profile 'nosuchprofile'" in result.stderr.str()
