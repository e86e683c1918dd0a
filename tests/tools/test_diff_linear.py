"""A diff's walk (tools/diff.py `_attribute`) costs ~the updates plus the letter, not runs times
paragraphs: an auditor's letter of two co-editors taking turns, each update a paragraph of its
own, made each run wrap every top-level block in a pycrdt object (`LetterDocument._blocks`) and
count every block's start again in Python (`_starts`): 3,006 updates took 29 s. Counted here
(calls, not time) for N and 4N such updates: a linear walk does ~4 times the work, the
quadratic one 16 times."""

from typing import Any

import pycrdt._xml
import pytest
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from projector.document import DocUpdate
from snapshotter.document import LetterDocument
from tools import diff
from tools.diff import _attribute
from tools.replay import Replayed

FIELD = "default"


def _letter(updates: int) -> tuple[bytes, list[tuple[str, list[DocUpdate]]], bytes]:
    """The start state (one paragraph), the runs (one update each, users alternating), the end."""
    doc: Doc[Any] = Doc()
    root = doc.get(FIELD, type=XmlFragment)
    root.children.append(XmlElement("paragraph", {}, [XmlText("start")]))
    start = doc.get_update()
    runs = []
    for i in range(updates):
        before = doc.get_state()
        root.children.append(XmlElement("paragraph", {}, [XmlText(f"line {i} of the letter")]))
        runs.append((f"user-{i % 2}", [DocUpdate(i, "", 0, doc.get_update(before))]))
    return start, runs, doc.get_update()


def _replayed(state: bytes) -> Replayed:
    return Replayed("l", 0, state, 0, None, None, 0, LetterDocument(FIELD, state).snapshot())


def _work(monkeypatch: pytest.MonkeyPatch, updates: int) -> tuple[int, int]:
    """pycrdt wrappers made, and block starts counted, by a walk over `updates` runs."""
    start, runs, end = _letter(updates)
    a, b = _replayed(start), _replayed(end)
    wrappers, starts = [0], [0]
    wrap, count_starts = pycrdt._xml._integrated_to_wrapper, diff._starts

    def counted_wrap(*args: Any) -> Any:
        wrappers[0] += 1
        return wrap(*args)

    def counted_starts(lines: list[str]) -> list[int]:
        starts[0] += len(lines)
        return count_starts(lines)

    with monkeypatch.context() as patch:
        patch.setattr(pycrdt._xml, "_integrated_to_wrapper", counted_wrap)
        patch.setattr(diff, "_starts", counted_starts)
        hunks, formatting = _attribute(a, b, runs, FIELD)
    # Still attributed line by line to who typed it.
    assert [(hunk.added, hunk.authors) for hunk in hunks] == [
        ([f"line {i} of the letter" for i in range(updates)], ["user-0", "user-1"])
    ]
    assert formatting == []
    return wrappers[0], starts[0]


def test_walk_work_grows_linearly_with_runs_and_paragraphs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small, large = _work(monkeypatch, 150), _work(monkeypatch, 600)
    for name, few, many in zip(["wrappers", "block starts"], small, large, strict=True):
        assert many <= 5 * few, f"{name}: {few} for 150 runs, {many} for 600"
