"""Full mode stops the step ladder once a FAIL is certain (harness/full_ladder.py): the
verdict is the one every column's ladder gives, the located entries are a subset of the
ones it locates, and the report counts the rest as not confirmed, per input."""

from __future__ import annotations

import numpy as np
import pytest

from gradverify.harness import check_vjp, full_ladder
from gradverify.harness.full_ladder import LadderPlan


def _mm(a, b):
    return a @ b


def _vjp(scale_a=1.0, scale_b=1.0):
    def vjp(xs, gs):
        return gs[0] @ xs[1].T * scale_a, xs[0].T @ gs[0] * scale_b
    return vjp


@pytest.fixture
def ab():
    rng = np.random.default_rng(5)
    return [rng.standard_normal((12, 10)), rng.standard_normal((10, 11))]


def _fails(check):
    return {(e.input, e.index, e.output) for e in check.worst if e.verdict == "FAIL"}


@pytest.mark.parametrize("scales", [(1 + 1e-6, 1.0), (1.0, 1 - 1e-5), (1 + 1e-6, 1 + 1e-6)])
def test_a_certain_fail_stops_the_ladder_with_the_same_verdict(ab, scales, monkeypatch):
    short = check_vjp(_mm, _vjp(*scales), ab, mode="full").check("gradient")
    monkeypatch.setattr(full_ladder, "LADDER_ALL", 10 ** 9)
    every = check_vjp(_mm, _vjp(*scales), ab, mode="full").check("gradient")
    assert short.verdict == every.verdict == "FAIL"
    assert every.details["ladder_columns"] > 64 and "not_confirmed" not in every.details
    assert short.details["ladder_columns"] < every.details["ladder_columns"] / 2
    gone = short.details["not_confirmed"]
    wrong = {k for k, s in enumerate(scales) if s != 1.0}
    assert set(gone["per_input"]) <= {f"x{k}" for k in wrong}
    assert sum(gone["per_input"].values()) == gone["entries"] > 0
    # every entry counted once: compared (located or passed) + not confirmed
    assert short.details["compared"] + gone["entries"] == every.details["compared"]
    # a located FAIL is one the full ladder FAILs too; each wrong input has one
    assert _fails(short) and set(gone["located_per_input"]) == {f"x{k}" for k in wrong}
    fail_every = {(e.input, e.index, e.output) for e in every.worst if e.verdict == "FAIL"}
    assert int(every.reason.split(" of ")[0]) >= int(short.reason.split(" of ")[0])
    assert fail_every and _fails(short)
    assert "not confirmed" in short.reason and "located entries are fewer" in short.reason
    if len(wrong) == 1:  # the one wrong input is named only when the others were resolved
        assert any(s.startswith("wrong for input") for s in short.details["signature"])


def test_the_located_entries_agree_with_the_full_ladder(ab, monkeypatch):
    bad = _vjp(1 + 1e-6)
    short = check_vjp(_mm, bad, ab, mode="full")
    monkeypatch.setattr(full_ladder, "LADDER_ALL", 10 ** 9)
    every = check_vjp(_mm, bad, ab, mode="full")
    a, b = short.check("gradient").arrays, every.check("gradient").arrays
    num_short, num_every = a["numeric"], b["numeric"]
    located = num_short != 0
    # entries the short run laddered carry the same numeric estimate as the full run's
    laddered = np.isclose(num_short, num_every, rtol=0, atol=0) & located
    assert laddered.sum() >= 10 * 11
    assert short.diagnosis == every.diagnosis


def test_a_correct_gradient_ladders_every_undecided_column():
    # cos at large arguments: truncation leaves many first-pass entries undecided; the
    # ladder passes them all and never stops early
    x = np.linspace(30.0, 4000.0, 150)
    r = check_vjp(lambda v: np.cos(v) * v, lambda xs, gs: (
        gs[0] * (np.cos(xs[0]) - xs[0] * np.sin(xs[0])),), [x], mode="full")
    g = r.check("gradient")
    assert r.verdict != "FAIL" and "not_confirmed" not in g.details


def _plan(rows, cols, excess=None, blocks=None, inputs=1):
    rows, cols = np.array(rows), np.array(cols)
    excess = np.ones(rows.size) if excess is None else np.array(excess, float)
    blocks = np.zeros(rows.size, int) if blocks is None else np.array(blocks)
    return LadderPlan(rows, cols, excess, blocks, inputs)


def _run(plan, fail=(), kink=(), flat=()):
    seen = []
    for c, where in plan:
        rows = plan.row[where]
        seen.append(c)
        plan.record(c, rows, np.array([(int(r), c) in fail for r in rows]),
                    np.array([(int(r), c) in kink for r in rows]),
                    np.array([(int(r), c) in flat for r in rows]))
    return seen


def _grid(n_rows, n_cols):
    r, c = np.divmod(np.arange(n_rows * n_cols), n_cols)
    return r, c


def test_plan_stops_after_the_worst_row_when_its_fail_is_certain():
    r, c = _grid(4, 100)
    excess = np.where((r == 2), 10.0, 1.0)
    plan = _plan(r, c, excess)
    seen = _run(plan, fail={(2, 7)})
    assert seen == list(range(100))  # row 2's columns: here every column
    r, c = _grid(100, 100)
    r, c = r[r == c // 2], c[r == c // 2]  # each row depends on two columns
    plan = _plan(r, c, np.where(r == 30, 5.0, 1.0))
    seen = _run(plan, fail={(30, 60)})
    assert seen == [60, 61] and plan.stopped and plan.skipped.size == r.size - 2


@pytest.mark.parametrize("spoiler", ["kink in the row", "kink in the column", "flat"])
def test_plan_never_trusts_a_fail_a_joint_judgement_may_revisit(spoiler):
    r, c = _grid(100, 100)
    keep = (r == c // 2) | ((r == 30) & (c == 5)) | ((r == 7) & (c == 60))
    r, c = r[keep], c[keep]
    kink = {(30, 5)} if spoiler == "kink in the row" else set()
    flat = {(30, 60)} if spoiler == "flat" else set()
    if spoiler == "kink in the column":
        kink = {(7, 60)}  # the failing column kinks in another row
    plan = _plan(r, c, np.where(r == 30, 5.0, 1.0))
    seen = _run(plan, fail={(30, 60)}, kink=kink, flat=flat)
    # row 30 alone is not certain: more rows are tried (ATTEMPTS), then every column
    assert len(seen) == 100 and not plan.stopped and plan.skipped.size == 0
