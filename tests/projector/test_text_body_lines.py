"""A letter whose body is a Y.Text (any Yjs client may write one): the projector names the lines
an update changed, and finds them in one pass over the body, however many places the update
changes (counting from the body's start for each change was quadratic: 10,000 changes in a
400 KB body cost 4.4 s inside the consumer loop, every letter of the partition waiting)."""

import pytest
from pycrdt import Doc, Text

import projector.document
from projector.document import DocUpdate, fold_document
from schemas import ystate

FIELD = "default"
LINES, CHANGES = 200, 200


def _scanned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """UTF-16 units of the body the fold reads to count lines, tallied."""
    scanned = [0]
    count = ystate.newlines

    def tally(units: bytes, start: int, end: int) -> int:
        scanned[0] += max(0, end - start)
        return count(units, start, end)

    monkeypatch.setattr(projector.document, "newlines", tally)
    return scanned


def test_an_update_changing_many_places_reads_the_body_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc: Doc[Text] = Doc()
    body = doc.get(FIELD, type=Text)
    body += ("x" * 79 + "\n") * LINES
    base = doc.get_update()
    before = doc.get_state()
    step = len(str(body)) // CHANGES
    with doc.transaction():  # one update, a "y" every `step` characters
        for i in range(CHANGES - 1, -1, -1):
            body.insert(i * step + i % 7, "y")
    update = doc.get_update(before)
    state = fold_document(Doc().get_update(), [DocUpdate(0, "a", 1, base)], FIELD).state
    scanned = _scanned(monkeypatch)

    result = fold_document(state, [DocUpdate(1, "b", 2, update)], FIELD)

    text = str(body)
    assert set(result.touched) == {n for n, line in enumerate(text.split("\n")) if "y" in line}
    assert set(result.touched.values()) == {("b", 2)}
    assert scanned[0] <= len(text)  # once over the body, not once per change (millions)
