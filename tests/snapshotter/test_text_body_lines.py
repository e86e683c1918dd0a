"""A letter whose body is a Y.Text (any Yjs client may write one): the snapshotter names the
lines an update changed, and finds them in one pass over the body, however many places the
update changes (counting from the body's start for each change was quadratic: 10,000 changes in
a 400 KB body cost 5.9 s inside the consumer loop, every letter of the partition waiting)."""

import pytest
from pycrdt import Doc, Text

import snapshotter.document
from schemas import ystate
from snapshotter.document import LetterDocument

FIELD = "default"
LINES, CHANGES = 200, 200


def _scanned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """UTF-16 units of the body the document reads to count lines, tallied."""
    scanned = [0]
    count = ystate.newlines

    def tally(units: bytes, start: int, end: int) -> int:
        scanned[0] += abs(end - start)
        return count(units, start, end)

    monkeypatch.setattr(snapshotter.document, "newlines", tally)
    return scanned


def test_an_update_changing_many_places_reads_the_body_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc: Doc[Text] = Doc()
    body = doc.get(FIELD, type=Text)
    body += ("x" * 79 + "\n") * LINES
    letter = LetterDocument(FIELD, doc.get_update())
    before = doc.get_state()
    step = len(str(body)) // CHANGES
    with doc.transaction():  # one update: a "y" every `step` characters, and some deleted
        for i in range(CHANGES - 1, -1, -1):
            body.insert(i * step + i % 7, "y")
            if i % 3 == 0:
                del body[i * step + 20 : i * step + 22]
    scanned = _scanned(monkeypatch)

    delta = letter.apply(doc.get_update(before))

    text = str(body)
    assert delta.paragraphs == {n for n, line in enumerate(text.split("\n")) if "y" in line}
    assert (delta.inserted, delta.deleted) == (CHANGES, 2 * len(range(0, CHANGES, 3)))
    assert letter.snapshot().content == text
    assert scanned[0] <= len(text)  # once over the body, not once per change (millions)
