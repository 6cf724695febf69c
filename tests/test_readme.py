"""The README and docs/ tell the truth about the repository: every link points to a file in
it, the counts they quote are the counts the code has, and they describe what is, not how it
came to be."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from gradverify.engine import registry
from tests import seeded_faults, tricky_correct
from tests.test_seeded_faults import TRICKY

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXTS = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in PAGES}
# internal notes the published pages must never point to
PRIVATE = ("../shared", "/work/shared", "gradient-bugs.md", "tf1-semantics.md", "DESIGN.md")
# a changelog's words: the pages state current facts, the history is in git
HISTORY = ("this round", "round before", "previous round", "earlier rounds", "not adopted",
           "before this rule", "was 4 350")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_point_into_the_repository(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
        assert path.exists(), f"{page.name}: {target} does not exist"
    for word in PRIVATE:
        assert word not in text, f"{page.name} mentions {word}"


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    heads = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_anchors_name_headings(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]*#[^)\s]+)\)", text):
        path, anchor = target.split("#", 1)
        if re.match(r"[a-z]+:", path) or not (path.endswith(".md") or not path):
            continue
        linked = (page.parent / path).read_text(encoding="utf-8") if path else text
        assert anchor in _anchors(linked), f"{page.name}: no heading for {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_state_current_facts(page):
    text = " ".join(page.read_text(encoding="utf-8").lower().split())
    for word in HISTORY:
        assert word not in text, f"{page.name} reads like a changelog: {word!r}"


def _count(pattern: str, where: str | None = None) -> list[int]:
    """Every number the pattern captures on the pages (or on one page, ``where``)."""
    texts = [TEXTS[where]] if where else TEXTS.values()
    found = [int(n.replace("\u202f", "").replace(" ", ""))
             for text in texts for n in re.findall(pattern, text.replace("\n", " "))]
    assert found, f"{where or 'no page'} says {pattern!r} any more: update this test with it"
    return found


def test_op_counts():
    # built-in ops only: other tests register their own while the suite runs
    ops = [name for name, o in registry.ops().items()
           if o.kernel.__module__.startswith("gradverify.engine")]
    assert set(_count(r"(\d+) (?:built-in|registered) ops", "README.md")) == {len(ops)}
    assert set(_count(r"(\d+) (?:built-in|registered) ops")) == {len(ops)}
    fused = [name for name in ops if name.startswith("Apply")]
    assert set(_count(r"optimizers' (\d+) fused `Apply\*` kernels", "README.md")) == {len(fused)}
    assert set(_count(r"optimizers' (\d+) fused `Apply\*` kernels")) == {len(fused)}


def test_seeded_fault_counts():
    catalogue = seeded_faults.register()
    seeded_faults.unregister()
    machinery = [f for _, f in inspect.getmembers(seeded_faults, inspect.isfunction)
                 if list(inspect.signature(f).parameters) == ["monkeypatch"]]
    assert set(_count(r"(\d+) (?:seeded )?faulty ops", "README.md")) == {
        len({f.op for f in catalogue})}
    assert set(_count(r"(\d+) (?:seeded )?faulty ops")) == {len({f.op for f in catalogue})}
    assert set(_count(r"plus (\d+) faults in the gradient machinery", "README.md")) == {
        len(seeded_faults.COMPOSITES) + len(machinery)}
    assert set(_count(r"(\d+) tricky-but-correct cases", "README.md")) == {len(TRICKY)}


def test_tricky_corpus_count():
    assert set(_count(r"`tests/tricky_correct\.py`, (\d+) cases")) == {
        len(tricky_correct.CASES)}
