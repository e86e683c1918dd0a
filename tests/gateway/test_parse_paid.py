"""Parsing an update is paid for: a read-only role's updates are refused without their bodies
being read (never applied, they were checked at no cost to the sender: a viewer's 200,000 delete
ranges a frame held the loop ~0.9 s each), and an editor's first step 2 goes free only for the
letter's own deletions it repeats, not for pending ones (deletions of clocks nobody has)."""

import time
from typing import Any

import pytest
import websockets
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text, write_var_uint
from websockets.asyncio.client import ClientConnection

from gateway import inbound, preparse
from gateway.errors import RATE_LIMITED
from gateway.live.buckets import TokenBucket
from gateway.live.writes import charged
from gateway.preparse import DocShape, Limits, ProtocolError, check_update
from gateway.wire.reader import Reader
from gateway.wire.update import scan_update
from tests.gateway.harness import Running
from tests.gateway.pending_helpers import PROBE, STEP1, STEP2, recv_until

LIMITS = Limits()
UPDATE = b"\x00\x02"
GHOST = 123_456  # a client nobody has: its deletions are pending


def _deletions(n: int, client: int = GHOST) -> bytes:
    """An update of no structs and `n` one-clock deletions of `client` (the attack's payload)."""
    body = bytearray(write_var_uint(0) + write_var_uint(1))
    body += write_var_uint(client) + write_var_uint(n)
    for i in range(n):
        body += write_var_uint(2 * i) + write_var_uint(1)
    return bytes(body)


def _message(kind: bytes, update: bytes) -> bytes:
    return kind + write_var_uint(len(update)) + update


def _text(doc: Doc[Any]) -> Text:
    return doc.get("text", type=Text)


def test_a_read_only_update_is_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only its framing and its first bytes are read: whether it is empty, and whether it has
    structs (the room tells the client those are refused); past its first varints a body
    nobody reads may be anything."""
    checked: list[bytes] = []
    check = preparse.check_update

    def counted(update: bytes, *args: Any, **kw: Any) -> Any:
        checked.append(update)
        return check(update, *args, **kw)

    monkeypatch.setattr(preparse, "check_update", counted)
    deletions = _deletions(20_000)
    for kind in (UPDATE, STEP2):
        msg = inbound.decode(_message(kind, deletions), LIMITS, read_only=True)
        assert msg.info is not None and not msg.info.blocks and not msg.info.is_empty
        empty = inbound.decode(_message(kind, b"\x00\x00"), LIMITS, read_only=True)
        assert empty.info is not None and empty.info.is_empty
        garbage = inbound.decode(_message(kind, deletions[:-1] + b"\xff"), LIMITS, read_only=True)
        assert garbage.body.endswith(b"\xff")
    doc: Doc[Any] = Doc()
    _text(doc).insert(0, "offline edit")
    msg = inbound.decode(_message(STEP2, doc.get_update()), LIMITS, read_only=True)
    assert msg.info is not None and msg.info.blocks and msg.info.blocks[0][0] == doc.client_id
    assert checked == []
    inbound.decode(_message(UPDATE, deletions), LIMITS)  # an editor's is read (no shape here)
    assert checked == [deletions]


async def test_a_viewer_flooding_delete_ranges_is_ignored_unread(gw: Running) -> None:
    """Updates of 200,000 delete ranges, then one whose delete set is cut short: before, each was
    checked (and the last refused 4400); now neither is read, the viewer is answered as ever."""
    letter = await gw.create_letter()
    ws = await websockets.connect(gw.ws_url(letter, gw.token(role="viewer")), max_size=None)
    assert (await ws.recv())[:2] == STEP1
    await ws.send(_message(STEP2, b"\x00\x00"))
    flood = _message(UPDATE, _deletions(200_000))
    assert len(flood) <= gw.settings.max_message_bytes
    for _ in range(3):
        await ws.send(flood)
    await ws.send(_message(UPDATE, _deletions(1_000)[:-1]))  # truncated: unread, not refused
    await ws.send(PROBE)
    await recv_until(ws, STEP2)  # answered: still open
    metrics = await gw.metrics()
    assert not any("frame_error" in k or "truncated" in k for k in metrics if "refusals" in k)
    await ws.close()


def _letter_with_deletions() -> tuple[DocShape, bytes]:
    """A letter's shape that deleted every other character of 2,000, and a step 2 repeating
    all of them (what a reconnect's answer to our step 1 carries)."""
    doc: Doc[Any] = Doc(client_id=7)
    text = _text(doc)
    text.insert(0, "x" * 2_000)
    with doc.transaction():
        for i in range(len(text) - 1, 0, -2):
            del text[i]
    shape = DocShape.from_update(doc.get_update())
    return shape, doc.get_update(doc.get_state())


def test_a_first_step_2_pays_for_pending_deletions() -> None:
    shape, repeats = _letter_with_deletions()
    spans = shape.deleted_spans
    info = check_update(repeats, LIMITS, shape, strip_pending=True)
    # A reconnect's: free but for its headers (no structs, one client, its id and count).
    assert info.repeated == 1_000 and charged(info, len(repeats), spans) <= 10
    ghost = _deletions(20_000)
    info = check_update(ghost, LIMITS, shape, strip_pending=True)
    assert info.pending == 20_000 and charged(info, len(ghost), spans) == len(ghost)
    # The letter's own deletions and pending ones together: only the former go free.
    both = _two_clients(repeats, ghost)
    info = check_update(both, LIMITS, shape, strip_pending=True)
    assert (info.repeated, info.pending) == (1_000, 20_000)
    # Exactly the bytes of what is not a repeat: the pending ranges and the headers.
    ranges = scan_update(repeats, LIMITS).deletes
    repeated_bytes = sum(len(write_var_uint(c)) + len(write_var_uint(n)) for _, c, n in ranges)
    assert charged(info, len(both), spans) == len(both) - repeated_bytes


def _two_clients(repeats: bytes, ghost: bytes) -> bytes:
    """One update of no structs whose delete set has `repeats`' one client and `ghost`'s."""
    assert repeats[:2] == ghost[:2] == b"\x00\x01"  # no structs, one client each
    return b"\x00" + write_var_uint(2) + repeats[2:] + ghost[2:]


async def _greeted(gw: Running, user: str, role: str = "editor") -> ClientConnection:
    """A connection to a new letter, past the greeting's step 1 (its first step 2 not sent)."""
    letter = await gw.create_letter()
    ws = await websockets.connect(gw.ws_url(letter, gw.token(user=user, role=role)), max_size=None)
    assert (await ws.recv())[:2] == STEP1
    return ws


async def _taken(ws: ClientConnection, budget: TokenBucket, frame: bytes) -> float:
    """What handling `frame` took from `budget`, once the gateway answered the step 1 sent
    after it. The bucket's clock stands still meanwhile: nothing refills, so the count is exact
    however long a loaded machine takes (an estimate of the refill failed under load)."""
    clock, now = budget.clock, time.monotonic()
    budget.tokens, budget.at, budget.clock = budget.burst / 2, now, lambda: now  # room both ways
    before = budget.tokens
    try:
        await ws.send(frame)
        await ws.send(PROBE)
        await recv_until(ws, STEP2)
    finally:
        budget.clock = clock
    return before - budget.tokens


async def test_an_editors_first_step_2_of_pending_deletions_is_charged(gw: Running) -> None:
    ws = await _greeted(gw, "alice")
    ghost = _deletions(100_000)
    with gw.app.state.gateway.ctx.update_bytes.held(("firm-a", "alice")) as budget:
        # The answer to our step 1: its first.
        assert await _taken(ws, budget, _message(STEP2, ghost)) >= len(ghost) - 2
    await ws.close()


def _ranges_one_by_one(r: Reader, client: int, n: int, out: list[tuple[int, int, int]]) -> None:
    """What `Reader.deletes` reads, a call per varint (update.py's loop before it)."""
    for _ in range(n):
        clock, length = r.uint(), r.uint()
        if clock + length > LIMITS.max_clock:
            raise ProtocolError("clock_too_large", f"delete of client {client} at {clock}")
        out.append((client, clock, length))


def _read(read: Any, data: bytes, n: int) -> tuple[list[tuple[int, int, int]], str | int]:
    r, out = Reader(data), list[tuple[int, int, int]]()
    try:
        read(r, 9, n, out)
    except ProtocolError as exc:
        return out, exc.reason
    return out, r.pos


_VARINTS = st.one_of(
    st.integers(0, 2**35).map(write_var_uint),
    st.sampled_from([b"\x80\x00", b"\xff\x80\x00", b"\xff" * 11, b"\x80", b"\xff\xff"]),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_VARINTS, max_size=14), st.integers(0, 8))
def test_the_bulk_delete_reader_reads_as_uint_does(parts: list[bytes], n: int) -> None:
    """The same ranges, refusals and end position, for any bytes (overlong, truncated, long)."""
    data = b"".join(parts)
    bulk = _read(lambda r, c, n, out: r.deletes(c, n, LIMITS.max_clock, out), data, n)
    assert bulk == _read(_ranges_one_by_one, data, n)


async def test_a_viewers_updates_are_charged_as_sent(gw: Running) -> None:
    """Unread, they still cost the loop their bytes (unmasked, copied): the user's update-bytes
    budget bounds them as an editor's, over it 4429."""
    ws = await _greeted(gw, "vic", "viewer")
    flood = _deletions(50_000)
    with gw.app.state.gateway.ctx.update_bytes.held(("firm-a", "vic")) as budget:
        assert await _taken(ws, budget, _message(UPDATE, flood)) >= len(flood)
        budget.tokens = 0.0
        await ws.send(_message(UPDATE, flood))
        with pytest.raises(websockets.ConnectionClosed):
            await recv_until(ws, STEP2)
    assert ws.close_code == RATE_LIMITED


def test_a_first_step_2_repeating_one_range_over_and_over_pays_for_the_copies() -> None:
    """A genuine step 2 repeats each of the letter's ranges once (Yjs and Yrs merge adjacent
    ones): one deleted range listed 10,000 times goes free only as often as the letter has
    ranges."""
    shape, repeats = _letter_with_deletions()
    client, clock, length = scan_update(repeats, LIMITS).deletes[0]
    body = bytearray(write_var_uint(0) + write_var_uint(1))
    body += write_var_uint(client) + write_var_uint(10_000)
    body += (write_var_uint(clock) + write_var_uint(length)) * 10_000
    copies = bytes(body)
    info = check_update(copies, LIMITS, shape, strip_pending=True)
    assert info.repeated == 10_000 and shape.deleted_spans <= 1_000
    assert charged(info, len(copies), shape.deleted_spans) >= 0.85 * len(copies)


async def test_a_viewers_answer_to_the_greeting_is_not_charged(gw: Running) -> None:
    """Each reconnect's step 2 repeats the letter's whole delete set: a viewer of a long-edited
    letter was closed 4429 after a few reconnects. Only the answer to our step 1 goes free."""
    ws = await _greeted(gw, "val", "viewer")
    with gw.app.state.gateway.ctx.update_bytes.held(("firm-a", "val")) as budget:
        # Nothing taken.
        assert await _taken(ws, budget, _message(STEP2, _deletions(20_000))) == 0
        # Any other is charged as sent.
        assert await _taken(ws, budget, _message(UPDATE, _deletions(20_000))) >= 40_000
    await ws.close()
