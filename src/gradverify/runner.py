"""Run op x property under Hypothesis settings: targets, seeds, shards and a process pool.

A *target* is a registered op (its properties from ``properties.checks.op_properties``) or a
pseudo-op for the training-step properties: ``train:<optimizer>`` (``properties.models``)
and ``composite`` (``properties.graphs``). Each (target, property) runs as one Hypothesis
test with its own seed, derived from ``--seed`` and the pair, so a run is reproducible op by
op and its results do not depend on the order, the shard or the number of processes.

>>> opts = RunOptions(seed=0, profile="dev", examples=2)
>>> r = run_check(Target("Square", "op", ("shapes",)), "shapes", opts)
>>> r.verdict, r.runs
('PASS', 2)
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gradverify.failures import failure_text, leaves, raised
from gradverify.harness.report import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    GradientError,
    GradientReport,
    combine,
)

__all__ = ["UsageError", "Target", "RunOptions", "CheckResult", "TargetResult", "Exhibit",
           "PROPERTY_FACTS", "derive_seed", "run_check", "sort_results", "group_results",
           "reproduce_line"]

# What each property checks: gradient properties have an order and a dtype that
# ``--order``/``--dtype`` select on; ``cost`` orders the work queue (slow ones first).
PROPERTY_FACTS: dict[str, dict[str, Any]] = {
    "metadata": {"gradient": False, "cost": 0},
    "shapes": {"gradient": False, "cost": 1},
    "forward": {"gradient": False, "cost": 1},
    "no_gradient": {"gradient": False, "cost": 0},
    "gradient": {"gradient": True, "order": 1, "dtype": "float64", "cost": 3},
    "gradient_order2": {"gradient": True, "order": 2, "dtype": "float64", "cost": 4},
    "gradient_float32": {"gradient": True, "order": 1, "dtype": "float32", "cost": 3},
    "train_step": {"gradient": False, "cost": 3},
    "train_no_gradient": {"gradient": False, "cost": 1},
    "composite": {"gradient": True, "order": 1, "dtype": "float64", "cost": 3},
}
_ORDER = list(PROPERTY_FACTS)
KEEP_INCONCLUSIVE = 2  # inconclusive examples kept per check for the HTML page


class UsageError(Exception):
    """A command-line problem (unknown op, bad shard, module that cannot be imported):
    exit status 2 with a one-line message."""


@dataclass(frozen=True)
class Target:
    """Something ``check`` runs properties on: an op, ``train:<optimizer>`` or
    ``composite``. ``note`` says why a target has no properties."""

    name: str
    kind: str
    properties: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True)
class RunOptions:
    """How each property runs. ``examples=None`` keeps the profile's ``max_examples``;
    ``mode`` forces the gradient check's mode; ``exhibits`` keeps failing/inconclusive
    reports with step-size curves for ``--report-dir``."""

    seed: int = 0
    profile: str = "dev"
    examples: int | None = None
    mode: str | None = None
    order: int | None = None
    dtype: str | None = None
    properties: tuple[str, ...] | None = None
    exhibits: bool = False
    reproduce: str = "gradverify check"   # prefix of the reproduce line (modules included)
    debug: bool = False                   # full tracebacks in failure messages


@dataclass
class Exhibit:
    """A failing or inconclusive gradient report kept for the HTML page: the report, the
    drawn case, and the recomputed step-size curve of its worst entry."""

    title: str
    report: GradientReport
    case: str
    curve: Any = None          # gradverify.stepsize.StepCurve, or None
    curve_note: str | None = None


@dataclass
class CheckResult:
    """The outcome of one property on one target."""

    target: str
    check: str
    verdict: str
    seed: int
    runs: int = 0                     # examples executed (not rejected), shrinking included
    reports: int = 0                  # gradient reports seen
    inconclusive: dict[str, int] = field(default_factory=dict)
    worst: dict[str, Any] | None = None
    evaluations: dict[str, int] = field(default_factory=lambda: {"forward": 0, "backward": 0})
    message: str | None = None
    reproduce: str | None = None
    time: float = 0.0
    exhibits: list[Exhibit] = field(default_factory=list)
    # "error" when the FAIL is the check raising, crashing or timing out (JUnit <error>),
    # None when a value was wrong (JUnit <failure>)
    kind: str | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.worst is None else self.worst["ratio"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without timings (the same seed gives the same dict)."""
        worst = None if self.worst is None else {k: _num(v) if isinstance(v, float) else v
                                                 for k, v in self.worst.items()}
        return {"check": self.check, "verdict": self.verdict, "seed": self.seed,
                "runs": self.runs, "gradient_reports": self.reports,
                "inconclusive": dict(sorted(self.inconclusive.items())),
                "worst": worst, "evaluations": dict(self.evaluations),
                "message": self.message, "reproduce": self.reproduce,
                "error": self.kind == "error"}


@dataclass
class TargetResult:
    """All checks of one target, in property order."""

    name: str
    kind: str
    checks: list[CheckResult]

    @property
    def verdict(self) -> str:
        return combine(c.verdict for c in self.checks)

    @property
    def time(self) -> float:
        return sum(c.time for c in self.checks)

    @property
    def worst(self) -> dict[str, Any] | None:
        rated = [c.worst for c in self.checks if c.worst is not None]
        return max(rated, key=lambda w: _rank(w["ratio"]), default=None)


def _rank(x: float) -> float:
    return math.inf if math.isnan(x) else x


def _num(x: float) -> Any:
    return x if math.isfinite(x) else str(x)


def derive_seed(seed: int, target: str, prop: str) -> int:
    """The Hypothesis seed of one (target, property): a hash of the run's seed and the pair.

    >>> derive_seed(0, "Relu", "gradient") == derive_seed(0, "Relu", "gradient")
    True
    """
    digest = hashlib.sha256(f"{seed}:{target}:{prop}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


# -- one (target, property) ------------------------------------------------------------------
def _make_test(target: Target, prop: str, opts: RunOptions) -> Callable[[], None]:
    if target.kind == "op":
        from gradverify.engine import registry
        from gradverify.properties.checks import property_test
        opdef = registry.lookup(target.name)
        if opts.mode is not None and PROPERTY_FACTS[prop]["gradient"]:
            return property_test(opdef, prop, mode=opts.mode)
        return property_test(opdef, prop)
    if target.kind == "train":
        from gradverify.properties import models
        optimizer = target.name.split(":", 1)[1]
        if prop == "train_no_gradient":
            return models.no_gradient_test(optimizer)
        return models.model_property_test(optimizer)
    from gradverify.properties.graphs import composite_graph_test
    return composite_graph_test()


def _function_of(kwargs: dict[str, Any]) -> tuple[Any, list[Any], str] | None:
    """(function of tensors, input arrays, case text) from a property's drawn arguments."""
    case = kwargs.get("case")
    if case is not None and hasattr(case, "function"):
        return case.function(), case.checked, repr(case)
    graph = kwargs.get("graph")
    if graph is not None and hasattr(graph, "build"):
        return graph.build, list(graph.inputs), repr(graph)
    return None


class _Recorder:
    """Collects what one property run produced: example counts, every gradient report's
    worst entry and evaluation counts, and the failing/inconclusive cases."""

    def __init__(self, keep: bool):
        self.keep = keep
        self.runs = 0
        self.reports = 0
        self.seen: set[int] = set()
        self.worst: dict[str, Any] | None = None
        self.evaluations = {"forward": 0, "backward": 0}
        self.failing: dict[int, tuple[dict[str, Any], GradientReport]] = {}
        self.inconclusive: list[tuple[Any, GradientReport]] = []
        self._held: list[Any] = []

    def report(self, report: GradientReport, function: Any = None) -> None:
        if id(report) in self.seen:
            return
        self.seen.add(id(report))
        self._held.append(report)   # keep ids unique while the run lasts
        self.reports += 1
        for k, v in report.evaluations.items():
            self.evaluations[k] = self.evaluations.get(k, 0) + int(v)
        for c in report.checks:
            for e in c.worst:
                if e.verdict == INCONCLUSIVE or (e.verdict == PASS and e.kind != "smooth"):
                    continue  # a kink's or an unreliable estimate's error is no yardstick
                if c.verdict != FAIL and (e.verdict != PASS or e.excess > 1):
                    continue  # a probe across kinks, settled by the joint judgement
                ratio = e.excess
                if self.worst is None or _rank(ratio) > _rank(self.worst["ratio"]):
                    self.worst = {"ratio": float(ratio), "error": float(e.error),
                                  "tolerance": float(e.tolerance),
                                  "where": f"{c.name}: {e.where()}"}
        if (self.keep and report.verdict == INCONCLUSIVE and function is not None
                and len(self.inconclusive) < KEEP_INCONCLUSIVE):
            self.inconclusive.append((function, report))

    def hook(self, case: Any, report: GradientReport) -> None:
        self.report(report, case)


def reproduce_line(target: str, prop: str, opts: RunOptions) -> str:
    """The command that re-runs one check with the same examples.

    >>> reproduce_line("Relu", "gradient", RunOptions(seed=3, profile="ci"))
    'gradverify check --ops Relu --properties gradient --seed 3 --profile ci'
    """
    return (f"{opts.reproduce} --ops {target} --properties {prop} "
            f"--seed {opts.seed} --profile {opts.profile}"
            + (f" --examples {opts.examples}" if opts.examples else "")
            + (f" --mode {opts.mode}" if opts.mode else ""))


def _metadata(target: Target, result: CheckResult) -> None:
    from gradverify.engine import registry
    from gradverify.properties.checks import validate
    opdef = registry.lookup(target.name)
    problems = validate(opdef)
    result.runs = 1
    if problems:
        result.verdict = FAIL
        result.message = (f"op {opdef.type} ({opdef.source}) has incomplete metadata:\n  "
                          + "\n  ".join(problems))


def _settings(opts: RunOptions) -> Any:
    from hypothesis import Phase, settings
    parent = settings.get_profile(opts.profile)
    kwargs: dict[str, Any] = {"database": None, "deadline": None,
                              "phases": [p for p in parent.phases if p is not Phase.explain]}
    if opts.examples is not None:
        kwargs["max_examples"] = opts.examples
    return settings(parent, **kwargs)


def run_check(target: Target, prop: str, opts: RunOptions) -> CheckResult:
    """Run property ``prop`` of ``target`` once under the options' Hypothesis settings."""
    from hypothesis import seed as hypothesis_seed
    from hypothesis.errors import (
        FailedHealthCheck,
        HypothesisException,
        Unsatisfiable,
        UnsatisfiedAssumption,
    )
    from hypothesis.reporting import with_reporter

    from gradverify.properties.checks import INCONCLUSIVE_COUNTS, REPORT_HOOKS
    from gradverify.properties.profiles import register_profiles

    register_profiles()
    seed = derive_seed(opts.seed, target.name, prop)
    result = CheckResult(target=target.name, check=prop, verdict=PASS, seed=seed)
    if prop == "metadata":
        start = time.perf_counter()
        _metadata(target, result)
        if result.verdict != PASS:
            result.reproduce = reproduce_line(target.name, prop, opts)
        result.time = time.perf_counter() - start
        return result
    rec = _Recorder(opts.exhibits)
    start = time.perf_counter()
    before = Counter(INCONCLUSIVE_COUNTS)
    REPORT_HOOKS.append(rec.hook)
    try:
        test = _make_test(target, prop, opts)
        inner = test.hypothesis.inner_test

        @functools.wraps(inner)
        def counted(*args: Any, **kwargs: Any) -> None:
            try:
                inner(*args, **kwargs)
            except UnsatisfiedAssumption:
                raise
            except GradientError as e:
                rec.runs += 1
                rec.failing[id(e.report)] = (kwargs, e.report)
                rec.report(e.report)
                raise
            except BaseException:
                rec.runs += 1
                raise
            rec.runs += 1

        test.hypothesis.inner_test = counted
        test = hypothesis_seed(seed)(_settings(opts)(test))
        with warnings.catch_warnings(), with_reporter(lambda *_: None):
            warnings.simplefilter("ignore")
            test()
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - every outcome of the property is reported
        found = leaves(e)
        soft = (Unsatisfiable, FailedHealthCheck)
        failures = [x for x in found if not isinstance(x, soft)]
        result.verdict = FAIL if failures else INCONCLUSIVE
        result.message = "\n\n".join(failure_text(x, opts.debug) for x in (failures or found))
        if failures and all(isinstance(x, HypothesisException) for x in failures):
            result.message = "error in the property itself: " + result.message
        if any(raised(x) for x in failures):
            result.kind = "error"
        if opts.exhibits:
            for x in failures:
                if isinstance(x, GradientError) and id(x.report) in rec.failing:
                    kwargs, report = rec.failing[id(x.report)]
                    result.exhibits.append(_exhibit("failing example", report, kwargs))
    finally:
        REPORT_HOOKS.remove(rec.hook)
    counts = Counter(INCONCLUSIVE_COUNTS)
    counts.subtract(before)
    for key, n in counts.items():
        if n > 0:
            reason = key.split(": ", 1)[1] if ": " in key else key
            result.inconclusive[reason] = result.inconclusive.get(reason, 0) + n
    if result.verdict == PASS and result.inconclusive:
        result.verdict = INCONCLUSIVE
        n = sum(result.inconclusive.values())
        result.message = (f"{n} example{'s' if n > 1 else ''} inconclusive: "
                          + "; ".join(f"{r} ({k})" for r, k in sorted(
                              result.inconclusive.items())))
    if opts.exhibits and result.verdict != PASS:
        for i, (case, report) in enumerate(rec.inconclusive):
            result.exhibits.append(_exhibit(f"inconclusive example {i + 1}", report,
                                            {"case": case}))
    result.runs, result.reports = rec.runs, rec.reports
    result.worst, result.evaluations = rec.worst, rec.evaluations
    if result.verdict != PASS:
        result.reproduce = reproduce_line(target.name, prop, opts)
    result.time = time.perf_counter() - start
    return result


def _exhibit(title: str, report: GradientReport, kwargs: dict[str, Any]) -> Exhibit:
    """Keep a report for the HTML page, with the step-size curve of its worst entry."""
    from gradverify.stepsize import step_curve
    found = _function_of(kwargs)
    if found is None:
        return Exhibit(title, report, "", None, "the drawn case was not captured")
    function, inputs, case_text = found
    try:
        curve, note = step_curve(function, inputs, report)
    except Exception as e:  # noqa: BLE001 - a plot must never break the run
        curve, note = None, f"step-size curve unavailable: {type(e).__name__}: {e}"
    return Exhibit(title, report, case_text, curve, note)


# -- many ----------------------------------------------------------------------------------
def sort_results(results: Sequence[CheckResult]) -> list[CheckResult]:
    """Results by target, then property order: independent of ``--jobs`` and timing."""
    return sorted(results, key=lambda r: (r.target, _ORDER.index(r.check)
                                          if r.check in _ORDER else 99, r.check))


def group_results(targets: Sequence[Target], results: Sequence[CheckResult],
                  ) -> list[TargetResult]:
    """Results per target (targets that ran at least one check), sorted by name."""
    kinds = {t.name: t.kind for t in targets}
    by: dict[str, list[CheckResult]] = {}
    for r in results:
        by.setdefault(r.target, []).append(r)
    return [TargetResult(name, kinds.get(name, "op"), checks)
            for name, checks in sorted(by.items())]
