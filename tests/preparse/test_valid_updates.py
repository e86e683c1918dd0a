"""Updates and frames produced by pycrdt (Yrs encodes v1 exactly as Yjs) are accepted."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import (
    Awareness,
    Doc,
    Text,
    XmlElement,
    XmlFragment,
    XmlText,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    handle_sync_message,
    merge_updates,
)

from gateway.preparse import (
    DocShape,
    Limits,
    check_awareness,
    check_state_vector,
    check_update,
    parse_frame,
)

from .seeds import EDITS, record

LIMITS = Limits()


@pytest.mark.parametrize("name", sorted(EDITS))
def test_incremental_updates_are_accepted_with_exact_blocks(name: str) -> None:
    doc, updates = record(EDITS[name])
    assert len(updates) >= 1
    shape = DocShape()
    for update, sv_before in updates:
        info = check_update(update, LIMITS)
        for client, first, end in info.blocks:
            assert first == sv_before.get(client, 0)
            assert end > first
        assert shape.accept(update, LIMITS).blocks == info.blocks
    assert shape.state_vector() == check_state_vector(doc.get_state(), LIMITS)


@pytest.mark.parametrize("name", sorted(EDITS))
def test_full_state_blocks_match_the_state_vector(name: str) -> None:
    doc, _ = record(EDITS[name])
    state = doc.get_update()
    sv = check_state_vector(doc.get_state(), LIMITS)
    info = check_update(state, LIMITS)
    assert {client: end for client, _first, end in info.blocks} == sv
    assert all(first == 0 for _client, first, _end in info.blocks)
    assert DocShape.from_update(state).state_vector() == sv


def test_concurrent_clients_and_merged_updates() -> None:
    a: Doc[Any] = Doc()
    b: Doc[Any] = Doc()
    ta, tb = a.get("default", type=XmlFragment), b.get("default", type=XmlFragment)
    ta.children.append(XmlElement("paragraph")).children.append(XmlText("from a"))
    b.apply_update(a.get_update())
    tb.children.append(XmlElement("paragraph")).children.append(XmlText("from b"))
    ta.children.append(XmlElement("paragraph")).children.append(XmlText("also a"))
    a.apply_update(b.get_update(a.get_state()))
    merged = merge_updates(a.get_update(), b.get_update())
    sv = check_state_vector(a.get_state(), LIMITS)
    assert len(sv) == 2
    assert {c: e for c, _f, e in check_update(merged, LIMITS).blocks} == sv
    shape = DocShape.from_update(b.get_update())
    info = shape.accept(a.get_update(b.get_state()), LIMITS)
    assert [client for client, _f, _e in info.blocks] == [a.client_id]
    assert shape.state_vector() == sv


def test_deletions_only_and_empty_updates() -> None:
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    text += "abcdef"
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    del text[1:3]
    info = check_update(updates[-1], LIMITS)
    assert info.blocks == ()
    assert info.deletes == ((doc.client_id, 1, 2),)
    assert not info.is_empty
    assert check_update(b"\x00\x00", LIMITS).is_empty


def test_sync_and_awareness_frames_from_pycrdt() -> None:
    doc: Doc[Any] = Doc()
    doc.get("t", type=Text).insert(0, "hi")
    step1 = parse_frame(create_sync_message(doc), LIMITS)
    assert step1.kind == "sync_step1"
    assert check_state_vector(step1.body, LIMITS) == {doc.client_id: 2}
    reply = handle_sync_message(create_sync_message(Doc())[1:], doc)
    assert reply is not None  # a step 1 is always answered
    step2 = parse_frame(reply, LIMITS)
    assert step2.kind == "sync_step2"
    assert check_update(step2.body, LIMITS).blocks == ((doc.client_id, 0, 2),)
    update = parse_frame(create_update_message(doc.get_update()), LIMITS)
    assert (update.kind, update.body) == ("sync_update", doc.get_update())
    awareness = Awareness(doc)
    awareness.set_local_state({"user": {"name": "Ann", "color": "#f00"}, "cursor": None})
    payload = awareness.encode_awareness_update([doc.client_id])
    frame = parse_frame(create_awareness_message(payload), LIMITS)
    assert frame.kind == "awareness"
    [entry] = check_awareness(frame.body, LIMITS)
    assert (entry.client_id, entry.state) == (doc.client_id, awareness.get_local_state())
    assert parse_frame(b"\x03", LIMITS).kind == "query_awareness"


def test_app_and_auth_frames() -> None:
    text = '{"type": "comment.created", "body": "é"}'
    frame = parse_frame(b"\x64" + len(text.encode()).to_bytes(1, "big") + text.encode(), LIMITS)
    assert (frame.kind, frame.body) == ("app", text.encode())
    assert parse_frame(b"\x02\x00\x06denied", LIMITS).body == b"denied"
