"""Who last edited each paragraph (`recent:<id>`) does not depend on batch boundaries: a
backfill's large batches attribute as live folds of one update each."""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from pycrdt import Doc, Text, TransactionEvent, XmlElement, XmlFragment, XmlText

from gateway.content import initial_update
from projector.document import DocUpdate, fold_document
from projector.fold import Item, fold_letter
from projector.state import LetterState
from schemas import Topic, new_event
from tests.projector.support import FIRM

FIELD = "default"


class Letter:
    """One shared document; each edit returns its update, logged as (user, ts)."""

    def __init__(self, text: str) -> None:
        self.base = initial_update(text, FIELD)
        self.doc: Doc[XmlFragment] = Doc()
        self.doc.apply_update(self.base)
        self.root = self.doc.get(FIELD, type=XmlFragment)
        self.log: list[DocUpdate] = []

    def edit(self, user: str, ts: int, change: Callable[[XmlFragment], object]) -> None:
        out: list[bytes] = []

        def keep(event: TransactionEvent) -> None:
            out.append(event.update)

        sub = self.doc.observe(keep)
        change(self.root)
        self.doc.unobserve(sub)
        self.log.append(DocUpdate(len(self.log), user, ts, out[0]))

    def type(self, user: str, ts: int, para: int, text: str) -> None:
        self.edit(user, ts, lambda root: _text(root, para).insert(0, text))


def _text(root: XmlFragment, para: int) -> XmlText:
    element = root.children[para]
    assert isinstance(element, XmlElement)
    node = element.children[0]
    assert isinstance(node, XmlText)
    return node


def _folded(letter: Letter, size: int) -> dict[int, tuple[str, int]]:
    """Paragraph -> last editor, folding the log in batches of `size` as the projector does
    (each fold's `touched` overwrites the earlier ones)."""
    state, recent = letter.base, {}
    for i in range(0, len(letter.log), size):
        result = fold_document(state, letter.log[i : i + size], FIELD)
        state = result.state
        recent.update(result.touched)
    return recent


def test_the_last_editor_wins_in_one_batch_as_one_by_one() -> None:
    letter = Letter("one\ntwo")
    letter.type("alice", 1000, 0, "A")
    letter.type("svc", 2000, 0, "S")
    letter.type("alice", 3000, 0, "A")
    assert _folded(letter, 1)[0] == ("alice", 3000)
    assert _folded(letter, 3) == _folded(letter, 1)


def _busy() -> Letter:
    letter = Letter("zero\none\ntwo\nthree")
    users = ["ann", "bob", "svc"]
    for step in range(30):
        letter.type(users[step * 7 % 3], 1000 + step, step * 5 % 4, "x")
        if step == 11:  # a new paragraph shifts the indices of the later ones
            letter.edit(
                "bob",
                1000 + step,
                lambda root: root.children.insert(1, XmlElement("paragraph", {}, [XmlText("n")])),
            )
    return letter


@pytest.mark.parametrize("size", [2, 3, 7, 100])
def test_attribution_is_the_same_whatever_the_batch_size(size: int) -> None:
    letter = _busy()
    assert _folded(letter, size) == _folded(letter, 1)


def test_recent_keys_are_the_same_live_and_backfilled() -> None:
    letter = _busy()

    def fold(size: int) -> dict[str, Any]:
        state = LetterState("L")
        state.doc = letter.base
        records = []
        for u in letter.log:
            event = new_event("L", u.data, firm=FIRM, user=u.user, type="doc.update")
            envelope = replace(event.envelope, ts=u.ts)
            records.append(Item(Topic.LETTERS, u.offset, replace(event, envelope=envelope)))
        for i in range(0, len(records), size):
            fold_letter(state, records[i : i + size], FIELD)
        return state.recent

    assert fold(len(letter.log)) == fold(1)


def test_a_text_body_attributes_lines_past_astral_characters() -> None:
    """A Y.Text body's events count UTF-16 units, and read as a fragment it loses astral
    characters: the edited line is still the one the text says."""
    doc: Doc[Text] = Doc()
    body = doc.get(FIELD, type=Text)
    body += "😀😀 eins\nzwei\ndrei"
    base = doc.get_update()
    log: list[DocUpdate] = []
    for user, before, value in [("a", "😀😀 eins\nzwei\nd", "!"), ("b", "😀😀 e", "😀")]:
        vector = doc.get_state()
        body.insert(len(before.encode()), value)  # pycrdt indexes a Text in UTF-8 bytes
        log.append(DocUpdate(len(log), user, 1000 + len(log), doc.get_update(vector)))
    assert fold_document(base, log[:1], FIELD).touched == {2: ("a", 1000)}
    assert fold_document(base, log, FIELD).touched == {2: ("a", 1000), 0: ("b", 1001)}
    assert str(body) == "😀😀 e😀ins\nzwei\nd!rei"


def test_a_batch_of_enters_walks_the_paragraphs_at_most_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Telling a Y.Text body from XML once per top-level event walked every paragraph (a
    wrapper each): a backfill's batch of N Enters was quadratic (2,000: 6.4 s of CPU)."""
    import pycrdt._xml

    doc: Doc[XmlFragment] = Doc()
    root = doc.get("default", type=XmlFragment)
    updates = []
    for i in range(300):
        vector = doc.get_state()
        root.children.append(XmlElement("paragraph", contents=[XmlText(f"p{i}")]))
        updates.append(DocUpdate(i, "u", i, doc.get_update(vector)))
    walks = []
    walk = pycrdt._xml.XmlChildrenView.__iter__

    def counted(view: Any) -> Any:
        walks.append(1)
        return walk(view)

    monkeypatch.setattr(pycrdt._xml.XmlChildrenView, "__iter__", counted)
    folded = fold_document(Doc().get_update(), updates, "default", attribute=True)
    assert len(walks) <= 1
    assert len(folded.touched) == 300
