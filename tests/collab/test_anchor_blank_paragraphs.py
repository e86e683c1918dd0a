"""A comment's range over a run of empty paragraphs: offsets find their characters with work
linear in the letter, not range x paragraphs (a reviewer's 100 KB of newlines cost ~20 min of a
worker thread holding the GIL; docs/performance.md)."""

import random
from typing import Any

import pytest

from gateway.collab import anchors
from gateway.content import Leaf
from tests.collab.conftest import Collab

BLANKS = 3000
TEXT = "Dear Sir,\n" + "\n" * BLANKS + "We demand 5000 EUR"


def _counted_ends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How often a leaf's end is read: a scan of the leaves per position reads it millions of
    times here, a walk and a bisection a few times per paragraph."""
    reads = [0]

    def end(leaf: Leaf) -> int:
        reads[0] += 1
        return leaf.start + len(leaf.text)

    monkeypatch.setattr(Leaf, "end", property(end))
    return reads


async def test_range_over_blank_paragraphs(collab: Collab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused when it holds only line breaks; a range reaching into text is placed on that
    text, whichever of its ends lies among the blanks."""
    lid = await collab.gw.create_letter(TEXT)
    reads = _counted_ends(monkeypatch)
    path = f"/v1/letters/{lid}/comments"
    blank = {"body": "b", "anchor": {"from": 11, "to": 10 + BLANKS}}
    r = await collab.call("POST", path, json=blank)
    assert r.status_code == 422 and "covers no text" in r.json()["detail"], r.text
    assert reads[0] <= 4 * BLANKS, reads  # before: 9 million

    we, sir = TEXT.index("We"), TEXT.index("Sir")
    for anchor in ({"from": 12, "to": we + 2}, {"from": sir, "to": we - 5}):
        r = await collab.call("POST", path, json={"body": "b", "anchor": anchor})
        assert r.status_code == 201, r.text
    assert reads[0] <= 12 * BLANKS, reads
    r = await collab.call("GET", path)
    assert r.status_code == 200, r.text
    spans = sorted((t["anchor"]["from"], t["anchor"]["to"]) for t in r.json()["threads"])
    assert [TEXT[a:b] for a, b in spans] == ["Sir,", "We"]


def _scan(runs: list[Leaf], pos: int, stop: int, step: int) -> tuple[Leaf, int] | None:
    """The former `_char_at`: every leaf at every position, the reference here."""
    while pos != stop:
        for leaf in runs:
            if leaf.start <= pos < leaf.end:
                return leaf, pos - leaf.start
        pos += step
    return None


def test_char_at_finds_what_a_scan_finds() -> None:
    """Layouts as `content.leaves` makes them: in order, empty leaves (blank paragraphs), gaps
    (line breaks) and adjacent leaves (an inline image between two texts)."""
    rng = random.Random(7)
    node: Any = None  # _char_at reads positions and text only
    for _ in range(300):
        runs, at = [], 0
        for _ in range(rng.randrange(6)):
            at += rng.choice([0, 1, 1, 3])
            text = "x" * rng.choice([0, 0, 1, 2, 4])
            runs.append(Leaf(node, at, text))
            at += len(text)
        size = at + 2
        for pos in range(size):
            for stop in range(-1, size + 1):
                step = 1 if stop > pos else -1
                assert anchors._char_at(runs, pos, stop, step) == _scan(runs, pos, stop, step)
