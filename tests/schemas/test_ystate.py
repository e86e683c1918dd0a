"""A saved Yjs state carries what its document holds pending, and nothing else."""

from typing import Any

from pycrdt import Doc, Text

from schemas.ystate import pending_parts, with_pending


def edits() -> tuple[bytes, bytes, bytes, bytes]:
    """hello; " world"; "!!!" (depends on " world"); the deletion of " world"."""
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text += "hello"
    text += " world"
    text += "!!!"
    del text[5:11]
    return updates[0], updates[1], updates[2], updates[3]


def saved(*applied: bytes) -> tuple[Doc[Any], bytes]:
    doc: Doc[Any] = Doc()
    for update in applied:
        doc.apply_update(update)
    return doc, with_pending(doc.get_update(), pending_parts(doc, applied))


def loaded(*updates: bytes) -> str:
    doc: Doc[Any] = Doc()
    for update in updates:
        doc.apply_update(update)
    return str(doc.get("t", type=Text))


def test_a_state_with_nothing_pending_is_the_documents_own_update() -> None:
    hello, world, bang, unworld = edits()
    doc, state = saved(hello, world, bang, unworld)
    assert pending_parts(doc, [hello, world, bang, unworld]) == []
    assert state == doc.get_update()


def test_pending_structs_are_carried_until_their_dependency_arrives() -> None:
    hello, world, bang, _ = edits()
    doc, state = saved(hello, bang)
    assert loaded(doc.get_update(), world) == "hello world"  # what yrs alone would save
    assert loaded(state) == "hello"
    assert loaded(state, world) == "hello world!!!"
    again, settled = saved(state, world)
    assert settled == again.get_update()  # integrated: nothing carried any more


def test_pending_structs_of_an_unknown_client_are_carried() -> None:
    hello, world, bang, _ = edits()
    _, state = saved(bang)
    assert loaded(state, world, hello) == "hello world!!!"


def test_a_pending_deletion_is_carried() -> None:
    hello, world, _, unworld = edits()
    doc, state = saved(hello, unworld)
    assert loaded(doc.get_update(), world) == "hello world"  # what yrs alone would save
    assert loaded(state, world) == "hello"


def test_a_state_carrying_pending_parts_carries_them_again() -> None:
    hello, world, bang, _ = edits()
    _, first = saved(hello, bang)
    _, second = saved(first)
    assert loaded(second, world) == "hello world!!!"
