"""The README and docs/ tell the truth about the repository: every link points to a file in
it, and the counts they quote are the counts the code has."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from gradverify.engine import registry
from tests import seeded_faults
from tests.test_seeded_faults import TRICKY

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_point_into_the_repository(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
        assert path.exists(), f"{page.name}: {target} does not exist"
    assert "../shared" not in text and "gradient-bugs.md" not in text


def _count(pattern: str) -> list[int]:
    found = [int(n.replace("\u202f", "").replace(" ", ""))
             for n in re.findall(pattern, README.replace("\n", " "))]
    assert found, f"README no longer says {pattern!r}: update this test with it"
    return found


def test_op_counts():
    # built-in ops only: other tests register their own while the suite runs
    ops = [name for name, o in registry.ops().items()
           if o.kernel.__module__.startswith("gradverify.engine")]
    assert set(_count(r"(\d+) (?:built-in|registered) ops")) == {len(ops)}
    fused = [name for name in ops if name.startswith("Apply")]
    assert _count(r"optimizers' (\d+) fused `Apply\*` kernels") == [len(fused)]


def test_seeded_fault_counts():
    catalogue = seeded_faults.register()
    seeded_faults.unregister()
    machinery = [f for _, f in inspect.getmembers(seeded_faults, inspect.isfunction)
                 if list(inspect.signature(f).parameters) == ["monkeypatch"]]
    assert set(_count(r"(\d+) (?:seeded )?faulty ops")) == {len({f.op for f in catalogue})}
    assert _count(r"plus (\d+) faults in the gradient machinery") == [
        len(seeded_faults.COMPOSITES) + len(machinery)]
    assert _count(r"(\d+) tricky-but-correct cases") == [len(TRICKY)]
