"""Pure modules, no server: presence ownership and stamping, content shape, outgoing frames."""

import asyncio
import json
from typing import Any

import pytest
from pycrdt import Decoder, Doc, XmlFragment

from gateway import outgoing
from gateway.auth import Claims
from gateway.content import initial_update, plain_text
from gateway.live import presence as presence_module
from gateway.live.presence import Presence, Throttle, stamp, user_color
from gateway.preparse import AwarenessEntry, Limits, check_awareness, parse_frame

ALICE = Claims(sub="alice", firm_id="f", name="Alice", role="editor", exp=0)
BOB = Claims(sub="bob", firm_id="f", name="Bob", role="editor", exp=0)


def _states(update: bytes) -> dict[int, Any]:
    return {e.client_id: e.state for e in check_awareness(update, Limits())}


def test_presence_stamps_owns_and_removes() -> None:
    presence = Presence()
    update, kept = presence.accept("c1", ALICE, [AwarenessEntry(7, 1, {"user": "x", "c": 1})])
    assert kept == [7]
    assert _states(update)[7] == {"user": stamp(ALICE), "c": 1}
    # Another connection can neither move nor remove client 7.
    _, kept = presence.accept("c2", BOB, [AwarenessEntry(7, 5, {"c": 9})])
    assert kept == []
    _, kept = presence.accept("c2", BOB, [AwarenessEntry(7, 6, None)])
    assert kept == []
    everyone = presence.encode()
    assert everyone is not None and _states(everyone)[7]["c"] == 1
    removal = presence.remove("c1")
    assert removal is not None and _states(removal) == {7: None}
    assert presence.encode() is None
    # Once removed, the id is free again (a reconnecting tab keeps its client id).
    _, kept = presence.accept("c3", ALICE, [AwarenessEntry(7, 7, {"c": 2})])
    assert kept == [7]


async def test_ids_held_for_another_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presence_module, "REMOTE_TIMEOUT_S", 0.05)
    expired: list[bytes] = []
    gone = asyncio.Event()

    def on_expired(update: bytes) -> None:
        expired.append(update)
        gone.set()

    presence = Presence(on_expired)
    elsewhere = Presence()  # the other instance checks and stamps what it logs
    presence.apply_remote(elsewhere.accept("c9", ALICE, [AwarenessEntry(7, 1, {"c": 1})])[0])
    presence.apply_remote(elsewhere.accept("c8", BOB, [AwarenessEntry(8, 1, {"c": 1})])[0])
    # Another user cannot take Alice's id; her tab reconnecting here can.
    assert presence.accept("c2", BOB, [AwarenessEntry(7, 2, {"c": 9})])[1] == []
    assert presence.accept("c3", ALICE, [AwarenessEntry(7, 2, {"c": 2})])[1] == [7]
    # Bob's is not renewed: it times out, and the update removes it for our peers.
    await gone.wait()
    assert [_states(update) for update in expired] == [{8: None}]
    everyone = presence.encode()
    assert everyone is not None and _states(everyone) == {7: {"c": 2, "user": stamp(ALICE)}}


def test_user_colour_is_stable_per_user() -> None:
    assert user_color("alice") == user_color("alice")
    assert stamp(ALICE) == {"id": "alice", "name": "Alice", "color": user_color("alice")}


async def test_throttle_merges_within_the_interval() -> None:
    flushed: list[tuple[str, list[int]]] = []
    changed = asyncio.Event()

    def flush(owner: str, ids: list[int]) -> None:
        flushed.append((owner, ids))
        changed.set()

    throttle = Throttle(0.05, flush)
    throttle.touch("c1", [1])  # the first: flushed right away (on the next loop turn)
    await changed.wait()
    changed.clear()
    for ids in ([2], [3], [2]):
        throttle.touch("c1", ids)  # within the interval: merged into one later flush
    assert flushed == [("c1", [1])]
    await changed.wait()
    assert flushed == [("c1", [1]), ("c1", [2, 3])]


def test_initial_content_is_tiptap_paragraphs() -> None:
    doc: Doc[Any] = Doc()
    doc.apply_update(initial_update("Dear Sir,\n\nPay.", "default"))
    fragment = doc.get("default", type=XmlFragment)
    assert [child.tag for child in fragment.children] == ["paragraph"] * 3
    assert (
        str(fragment)
        == "<paragraph>Dear Sir,</paragraph><paragraph></paragraph><paragraph>Pay.</paragraph>"
    )
    assert plain_text(doc, "default") == "Dear Sir,\n\nPay."


def test_outgoing_frames_parse_as_what_they_claim() -> None:
    limits = Limits()
    assert parse_frame(outgoing.update(b"\x00\x00"), limits).kind == "sync_update"
    assert parse_frame(outgoing.sync_step1(b"\x00"), limits).kind == "sync_step1"
    assert parse_frame(outgoing.sync_step2(b"\x00\x00"), limits).kind == "sync_step2"
    denied = parse_frame(outgoing.permission_denied("role viewer is read-only"), limits)
    assert (denied.kind, denied.body) == ("auth", b"role viewer is read-only")
    app = outgoing.app_message({"type": "session.joined", "name": "Zoë"})
    decoder = Decoder(app)
    assert decoder.read_var_uint() == outgoing.MSG_APP
    assert json.loads(decoder.read_message() or b"") == {"type": "session.joined", "name": "Zoë"}
