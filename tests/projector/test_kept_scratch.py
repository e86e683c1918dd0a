"""The fold keeps its attribution scratch doc for the letter's next fold (`projector.document
._Kept`): only when it ended as the document saved, within a bound, and a fold that finds one
gives what a fold that decodes the state again gives."""

from collections.abc import Iterator

import pytest
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from gateway.content import initial_update
from projector import document
from projector.document import DocUpdate, _Kept, fold_document
from tests.projector import document_oracle

FIELD = "default"


@pytest.fixture(autouse=True)
def no_kept_docs() -> Iterator[None]:
    document._KEPT.clear()
    yield
    document._KEPT.clear()


def _typing(users: int, count: int) -> tuple[bytes, list[DocUpdate]]:
    """A three-paragraph letter and `count` keystrokes, users taking turns, a new paragraph
    every tenth."""
    base = initial_update("one\ntwo\nthree", FIELD)
    doc: Doc[XmlFragment] = Doc()
    doc.apply_update(base)
    root = doc.get(FIELD, type=XmlFragment)
    log = []
    for i in range(count):
        vector = doc.get_state()
        if i % 10 == 9:
            root.children.insert(i % 3, XmlElement("paragraph", {}, [XmlText("new")]))
        else:
            element = root.children[i % len(root.children)]
            assert isinstance(element, XmlElement)
            text = element.children[0]
            assert isinstance(text, XmlText)
            text.insert(0, "x")
        log.append(DocUpdate(i, f"u{i % users}", 1000 + i, doc.get_update(vector)))
    return base, log


@pytest.mark.parametrize("size", [1, 2, 5, 7])
def test_a_letters_next_fold_takes_the_kept_scratch_and_folds_alike(size: int) -> None:
    base, log = _typing(3, 40)
    state, clean, found = base, True, 0
    for i in range(0, len(log), size):
        batch = log[i : i + size]
        scratch = document._KEPT.take(state)
        if scratch is not None:  # counted, and put back for the fold
            found += 1
            document._KEPT.keep(state, scratch)
        got = fold_document(state, batch, FIELD, clean)
        want = document_oracle.fold_document(state, batch, FIELD, clean)
        assert (got.touched, got.state, got.clean) == (want.touched, want.state, want.clean)
        state, clean = got.state, got.clean
    # Batches of one need no scratch; else every fold after the first finds one.
    assert found == (0 if size == 1 else len(range(0, len(log), size)) - 1)


def test_a_state_left_waiting_keeps_no_scratch() -> None:
    base, log = _typing(1, 6)
    waiting = fold_document(base, [log[0], log[2], log[3]], FIELD, True)  # log[1] never came
    assert not waiting.clean
    assert document._KEPT.take(waiting.state) is None


def test_the_kept_docs_stay_within_their_bound() -> None:
    kept = _Kept(limit=100)
    docs: list[Doc[XmlFragment]] = [Doc() for _ in range(4)]
    kept.keep(b"a" * 40, docs[0])
    kept.keep(b"b" * 40, docs[1])
    kept.keep(b"c" * 40, docs[2])  # 120 bytes: the least recent goes
    kept.keep(b"d" * 101, docs[3])  # over the bound alone: not kept
    assert kept.take(b"a" * 40) is None
    assert kept.take(b"d" * 101) is None
    assert kept.take(b"b" * 40) is docs[1]
    assert kept.take(b"c" * 40) is docs[2]
    assert kept.take(b"c" * 40) is None  # taken: a doc serves one fold
