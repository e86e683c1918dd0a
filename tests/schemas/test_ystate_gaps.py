"""What yrs (pycrdt >= 0.14, yrs >= 0.27) does with a client's clock hole, which a saved state
cannot follow (schemas/ystate.py, docs/contracts.md "Saved Yjs states").

These pin upstream behaviour (y-crdt/y-crdt#632), not ours: if one fails after a pycrdt upgrade,
the limitation may be gone, and `with_pending` and that paragraph should be looked at again."""

from typing import Any

from pycrdt import Doc, Text

from schemas.ystate import pending_parts, with_pending


def text(doc: Doc[Any]) -> str:
    return str(doc.get("t", type=Text))


def loaded(*updates: bytes) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


def edit(doc: Doc[Any], at: int, chars: str) -> bytes:
    before = doc.get_state()
    doc.get("t", type=Text).insert(at, chars)
    return doc.get_update(before)


def test_a_saved_state_hides_what_yrs_integrated_past_a_clock_hole() -> None:
    a: Doc[Any] = Doc(client_id=1)
    hello = edit(a, 0, "hello")
    bang = edit(a, 5, "!")  # A:5, never delivered here
    b: Doc[Any] = Doc(client_id=2)
    b.apply_update(a.get_update())
    after_bang = edit(b, 6, "1")  # B:0, anchored on A:5: pending
    before_hello = edit(b, 0, "2")  # B:1, anchored on A:0: yrs integrates it past B:0's hole
    doc = loaded(hello, after_bang, before_hello)
    applied = [hello, after_bang, before_hello]
    assert text(doc) == "2hello"  # Yjs would hold B:1 pending: "hello"
    parts = pending_parts(doc, applied)
    assert text(loaded(doc.get_update(), *parts)) == "2hello"  # the parts kept apart
    # One update (merge_updates, as Y.mergeUpdates gives byte for byte): B:0 now comes before
    # B:1 and holds it back with it.
    assert text(loaded(with_pending(doc.get_update(), parts))) == "hello"
    assert text(loaded(with_pending(doc.get_update(), parts), bang)) == "2hello!1"


def test_yrs_does_not_retry_a_pending_struct_whose_dependency_fills_a_hole() -> None:
    a: Doc[Any] = Doc(client_id=1)
    hello = edit(a, 0, "hello")
    bang = edit(a, 5, "!")  # A:5: the late one
    quote = edit(a, 0, ">")  # A:6, anchored on A:0: integrated past A:5's hole
    b: Doc[Any] = Doc(client_id=2)
    b.apply_update(a.get_update())
    ask = edit(b, 7, "?")  # B:0, anchored on A:5: pending until it arrives
    assert text(loaded(hello, bang, quote, ask)) == ">hello!?"
    doc = loaded(hello, quote, ask, bang)  # everything delivered, A:5 last
    assert text(doc) == ">hello!"  # yrs retries only when A's last clock grows
    for part in pending_parts(doc, [hello, quote, ask, bang]):
        doc.apply_update(part)  # applying what it holds pending again integrates it
    assert text(doc) == ">hello!?"
