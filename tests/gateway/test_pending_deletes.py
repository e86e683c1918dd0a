"""Deletions of clocks the letter never gets cost a sync step 2 or a REST write nothing, not the
whole message: a Yjs client writes the delete set its Y.Doc holds pending into every step 2 and
every `encodeStateAsUpdate` (and our own step 2 and `state` hand the letter's pending ones out),
so refusing them as `clock_gap` dropped every step 2 of such a client, its edits included, and
asked again forever. They are left out (gateway/wire/strip.py), as deletions the letter has
made are: only what is new is logged, over REST as over the WebSocket (and charged, for a
connection's first step 2 only: anything else is charged as sent)."""

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from pycrdt import Doc, Text, create_update_message, merge_updates, write_var_uint

from gateway.preparse import DocShape, Limits, check_update
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.faults import faulty_gateway
from tests.gateway.harness import Running
from tests.gateway.pending_helpers import (
    PROBE,
    STEP1,
    STEP2,
    as_step2,
    at,
    at_end,
    greeted,
    letter_with_bob,
    log_update,
    no_step1_before_probe,
    recv_until,
    text_edits,
)
from tests.support import eventually

LIMITS = Limits()
GHOST = 4_242  # a client whose text the letter never gets: only its deletions are logged


def _text(doc: Doc[Any]) -> Text:
    return doc.get("text", type=Text)


def _ghost_deletion() -> bytes:
    """A delete set only: GHOST's clocks 2..5, which nothing ever brings."""
    ghost: Doc[Any] = Doc(client_id=GHOST)
    _text(ghost).insert(0, "ghost text")
    before = ghost.get_state()
    del _text(ghost)[2:5]
    return ghost.get_update(before)


def _edit(doc: Doc[Any], change: Any) -> bytes:
    before = doc.get_state()
    change(_text(doc))
    return doc.get_update(before)


def _applied(*updates: bytes) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


def test_the_stripped_update_is_the_update_without_its_pending_deletions() -> None:
    letter: Doc[Any] = Doc(client_id=1)
    _text(letter).insert(0, "Dear Sir, thank you")
    state = letter.get_update()
    alice: Doc[Any] = Doc(client_id=5)
    alice.apply_update(state)

    def typed(text: Text) -> None:
        text.insert(4, "!")
        del text[0:2]  # a deletion of the letter's clocks: kept

    edits = _edit(alice, typed)
    step2 = merge_updates(edits, _ghost_deletion())
    shape = DocShape.from_update(state)
    info = check_update(step2, LIMITS, shape, strip_pending=True)
    assert (info.pending, info.repeated) == (1, 0)
    assert info.update is not None
    assert all(client != GHOST for client, _, _ in info.deletes)
    stripped, original = _applied(state, info.update), _applied(state, edits)
    assert str(_text(stripped)) == "ar! Sir, thank you"
    assert stripped.get_update() == original.get_update()  # nothing held pending either
    # A range reaching past what the letter has is cut there: its head is deleted.
    ghost: Doc[Any] = Doc(client_id=GHOST)
    _text(ghost).insert(0, "0123456789")
    known = ghost.get_update()
    shape = DocShape.from_update(merge_updates(state, known))
    straddling = b"\x00\x01" + write_var_uint(GHOST) + b"\x01\x03\x08"  # clocks 3..11
    info = check_update(straddling, LIMITS, shape, strip_pending=True)
    assert (info.deletes, info.pending) == (((GHOST, 3, 7),), 1)
    assert info.update is not None
    assert str(_text(_applied(state, known, info.update))).endswith("012")
    # Without `strip_pending` (a WebSocket update), it is still refused, as before.
    try:
        check_update(step2, LIMITS, DocShape.from_update(state))
    except Exception as exc:
        assert getattr(exc, "reason", None) == "clock_gap"
    else:
        raise AssertionError("an update deleting clocks the letter lacks was taken")


async def _updates(gw: Running, letter: str) -> list[bytes]:
    records = await gw.records(Topic.LETTERS, letter)
    return [r.value for r in records if dict(r.headers)["type"] == b"doc.update"]


async def _letter_with_a_pending_deletion(gw: Running, client_id: int) -> tuple[str, Doc[Any]]:
    """A letter whose log holds GHOST's deletion (an old log's: the letter holds it pending and
    hands it to every peer's Y.Doc), and a doc of a client that has the letter."""
    letter = await gw.create_letter()
    writer: Doc[Any] = Doc(client_id=7)
    _text(writer).insert(0, "Dear Sir,")
    await log_update(gw, letter, writer.get_update())
    await log_update(gw, letter, _ghost_deletion())
    doc: Doc[Any] = Doc(client_id=client_id)
    doc.apply_update(writer.get_update())
    return letter, doc


async def _logged_after(gw: Running, letter: str, logged: int) -> list[bytes]:
    """The doc.update records past the first `logged`, once there are any."""

    async def new() -> list[bytes]:
        return (await _updates(gw, letter))[logged:]

    return list(await eventually(new))


async def test_a_step_2_with_a_pending_delete_set_lands_without_it(gw: Running) -> None:
    letter, alice = await _letter_with_a_pending_deletion(gw, 11)
    bob = await gw.client(letter, user="bob")
    await bob.synced.wait()
    logged = len(await _updates(gw, letter))
    ws = await greeted(gw, letter, "alice")  # its first step 2 (nothing) is taken
    edits = _edit(alice, lambda text: text.insert(len(text), " hello"))
    await ws.send(as_step2(merge_updates(edits, _ghost_deletion())))  # as Yjs writes its state
    await eventually(lambda: str(bob.text) == "Dear Sir, hello")
    await no_step1_before_probe(ws)  # nothing dropped: no step 1 asks again
    (record,) = await _logged_after(gw, letter, logged)
    assert check_update(record, LIMITS).deletes == ()  # GHOST's deletion is not logged again
    assert await gw.logged_text(letter) == "Dear Sir, hello"
    # A step 2 of nothing but the pending deletion: nothing to log, nothing to ask for.
    await ws.send(as_step2(_ghost_deletion()))
    await no_step1_before_probe(ws)
    metrics = await gw.metrics()
    assert metrics.get('gateway_refusals_total{reason="clock_gap"}', 0) == 0
    assert len(await _updates(gw, letter)) == logged + 1
    await ws.close()
    await bob.close()


async def test_a_rest_write_with_a_pending_delete_set_lands_without_it(gw: Running) -> None:
    letter, backend = await _letter_with_a_pending_deletion(gw, 12)
    logged = len(await _updates(gw, letter))
    edits = _edit(backend, lambda text: text.insert(len(text), " drafted"))
    update = merge_updates(edits, _ghost_deletion())  # Y.encodeStateAsUpdate(doc, before)
    headers = {"Authorization": f"Bearer {gw.token(user='drafter', role='service')}"}
    async with httpx.AsyncClient(base_url=gw.http) as http:
        r = await http.post(f"/v1/letters/{letter}/updates", content=update, headers=headers)
    assert (r.status_code, r.json()) == (200, {"letter_id": letter, "bytes": len(update)})
    (record,) = await _logged_after(gw, letter, logged)
    assert check_update(record, LIMITS).deletes == ()
    assert await gw.logged_text(letter) == "Dear Sir, drafted"


async def test_a_repeated_rest_write_is_answered_without_a_new_record(gw: Running) -> None:
    """A retried POST (its answer lost) or a backend posting what it posted before: the letter
    has it all, logged; answered as the first request was (200, the same body), nothing
    logged again. A repeated deletion likewise."""
    letter = await gw.create_letter()
    backend: Doc[Any] = Doc()
    drafted = _edit(backend, lambda text: text.insert(0, "Dear Madam,"))
    deleted = _edit(backend, lambda text: text.__delitem__(slice(0, 5)))
    headers = {"Authorization": f"Bearer {gw.token(user='drafter', role='service')}"}
    url = f"/v1/letters/{letter}/updates"
    async with httpx.AsyncClient(base_url=gw.http) as http:
        for update in (drafted, drafted, deleted, deleted, merge_updates(drafted, deleted)):
            r = await http.post(url, content=update, headers=headers)
            assert (r.status_code, r.json()) == (200, {"letter_id": letter, "bytes": len(update)})
    assert await _updates(gw, letter) == [drafted, deleted]
    assert await gw.replayed_text(letter) == "Madam,"


async def test_a_repeated_delete_set_costs_no_update_bytes_in_the_answer_to_our_step_1(
    gw: Running,
) -> None:
    """Every reconnect's step 2 repeats the letter's whole delete set: charged to the user's
    bytes budget each time (though not logged), a letter with many deletions made reconnects
    spend it. Only that answer goes free: unasked step 2s repeating it cost the loop as much
    as new ranges, and are charged as sent (a final review sent 40 of 1 MB free: 10 s)."""
    letter = await gw.create_letter()
    source: Doc[Any] = Doc(client_id=1)
    for client in range(2, 102):  # short items of many clients: deleting in them is cheap
        part: Doc[Any] = Doc(client_id=client)
        _text(part).insert(0, "x" * 400)
        source.apply_update(part.get_update())
    text = _text(source)
    with source.transaction():
        for i in range(len(text) - 1, 0, -2):
            del text[i]
    await log_update(gw, letter, source.get_update())
    deletions = source.get_update(source.get_state())  # a step 2 with nothing new
    assert len(deletions) > 50_000
    logged = len(await _updates(gw, letter))
    ws = await websockets.connect(gw.ws_url(letter, gw.token(user="alice")), max_size=None)
    assert (await ws.recv())[:2] == STEP1  # our greeting
    ctx = gw.app.state.gateway.ctx
    with ctx.update_bytes.held(("firm-a", "alice")) as budget:  # her connection's: (firm, sub)
        budget.tokens = before = budget.burst / 2  # below the burst: nothing is capped
        await ws.send(as_step2(deletions))  # its answer
        await ws.send(PROBE)
        await recv_until(ws, STEP2)  # our answer: the step 2 before it was handled
        assert budget.tokens >= before  # refilled meanwhile, never charged
        budget.tokens = before
        started = time.monotonic()
        for _ in range(4):  # unasked
            await ws.send(as_step2(deletions))
        await ws.send(PROBE)
        await recv_until(ws, STEP2)
        refilled = (time.monotonic() - started) * gw.settings.update_bytes_per_s
        # (The bucket refills lazily, from its last use before `started`: one frame of slack.)
        assert budget.tokens <= before - 3 * len(deletions) + refilled
    assert len(await _updates(gw, letter)) == logged
    await ws.close()


async def test_a_repeated_rest_write_is_answered_once_the_first_is_in_the_log(
    tmp_path: Path,
) -> None:
    """A retry sent while the first request still waits for its append (a client's timeout
    shorter than the gateway's): the letter has it all already, but not yet in the log. It was
    answered 200 at once: "in the log" before it was (lost with a crash meanwhile)."""
    async with faulty_gateway(Settings(data_dir=tmp_path / "steno", partitions=2)) as (gw, log):
        letter = await gw.create_letter()
        backend: Doc[Any] = Doc()
        drafted = _edit(backend, lambda text: text.insert(0, "Dear Madam,"))
        headers = {"Authorization": f"Bearer {gw.token(user='drafter', role='service')}"}
        url = f"/v1/letters/{letter}/updates"
        async with httpx.AsyncClient(base_url=gw.http, timeout=30) as http:
            log.gate.clear()
            first = asyncio.create_task(http.post(url, content=drafted, headers=headers))
            await eventually(lambda: log.waiting == 1)  # the room took it: its append is held
            retry = asyncio.create_task(http.post(url, content=drafted, headers=headers))
            # The retry is parked: it waits for the room's appender to flush (no timer needed).
            appender = gw.app.state.gateway.rooms.get(letter).letters
            (_, parked), *others = await eventually(lambda: list(appender._marks))
            assert others == [] and not parked.done() and not retry.done()
            log.gate.set()
            for request in (first, retry):
                assert (await request).status_code == 200
        assert await _updates(gw, letter) == [drafted]


def _pending(n: int) -> bytes:
    """No structs; GHOST's clocks 0, 2, 4, ... deleted: `n` ranges of clocks no letter has."""
    out = bytearray(b"\x00\x01") + write_var_uint(GHOST) + write_var_uint(n)
    for i in range(n):
        out += write_var_uint(2 * i) + b"\x01"
    return bytes(out)


PENDING = _pending(25_000)  # ~100 KB, checked in ~25 ms: far more than the refill meanwhile


def _fill(budget: Any, tokens: float) -> float:
    """Set `budget` to `tokens` as of now (it refills from its last use): the time it was."""
    budget.tokens, budget.at = tokens, time.monotonic()
    return float(budget.at)


def _spent(gw: Running, budget: Any, before: float, started: float) -> float:
    """What `budget` was charged since it held `before` at `started`, the refill added back."""
    refilled = (time.monotonic() - started) * gw.settings.update_bytes_per_s
    return before - budget.tokens + refilled


async def test_sync_updates_dropped_unapplied_are_charged_as_sent(gw: Running) -> None:
    """A sync update refused as a hole (`clock_gap`) or before the step 2 (`update_before_sync`)
    is dropped, the connection kept; checking it cost the loop all the same (240,000 pending
    ranges: ~0.23 s), so it is charged as sent, and over the budget refused as any update."""
    letter = await gw.create_letter()
    ws = await greeted(gw, letter, "alice")
    ctx = gw.app.state.gateway.ctx
    with ctx.update_bytes.held(("firm-a", "alice")) as budget:
        before = budget.burst / 2
        started = _fill(budget, before)
        await ws.send(create_update_message(PENDING))  # clock_gap: dropped
        await ws.send(PROBE)
        await recv_until(ws, STEP2)
        assert _spent(gw, budget, before, started) >= len(PENDING)
        # Before its step 2: an update building on what the letter lacks is dropped, charged.
        other: Doc[Any] = Doc(client_id=31)
        _text(other).insert(0, "theirs")
        mine: Doc[Any] = Doc(client_id=32)
        mine.apply_update(other.get_update())
        built_on = _edit(mine, lambda text: text.insert(6, "x" * 50_000))
        early = await websockets.connect(gw.ws_url(letter, gw.token(user="alice")), max_size=None)
        assert (await early.recv())[:2] == STEP1  # not answered yet
        started = _fill(budget, before)
        await early.send(create_update_message(built_on))
        await early.send(PROBE)
        await recv_until(early, STEP2)
        assert _spent(gw, budget, before, started) >= len(built_on)
        budget.tokens = 0.0  # over budget: refused as any update over it
        await ws.send(create_update_message(PENDING))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv_until(ws, STEP2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
    metrics = await gw.metrics()
    assert metrics['gateway_refusals_total{reason="update_before_sync"}'] == 1
    await early.close()


async def test_a_rest_write_of_pending_deletions_only_is_charged_as_sent(gw: Running) -> None:
    """Nothing is logged of it (200), but checking it cost the loop: charged as sent, over the
    budget 429. Only `00 00` is free."""
    letter = await gw.create_letter()
    logged = await _updates(gw, letter)
    ctx = gw.app.state.gateway.ctx
    headers = {"Authorization": f"Bearer {gw.token(user='alice')}"}
    url = f"/v1/letters/{letter}/updates"
    async with httpx.AsyncClient(base_url=gw.http, timeout=30) as http:
        with ctx.update_bytes.held(("firm-a", "alice")) as budget:
            before = budget.burst / 2
            started = _fill(budget, before)
            r = await http.post(url, content=b"\x00\x00", headers=headers)
            assert r.status_code == 200
            assert budget.tokens >= before
            r = await http.post(url, content=PENDING, headers=headers)
            assert (r.status_code, r.json()) == (200, {"letter_id": letter, "bytes": len(PENDING)})
            assert _spent(gw, budget, before, started) >= len(PENDING)
            budget.tokens = 0.0
            r = await http.post(url, content=PENDING, headers=headers)
            assert r.status_code == 429 and "Retry-After" in r.headers
    assert await _updates(gw, letter) == logged


async def test_a_step_2_answering_a_holes_step_1_is_charged_as_sent(gw: Running) -> None:
    """Only the first step 2 (the greeting's answer) is charged for what is new alone: a hole's
    step 1 can be provoked once a second, and its answer could be pending deletions only."""
    letter, bob, alice_doc = await letter_with_bob(gw)
    _hole, past = text_edits(alice_doc, at(0, "A"), at_end("B"))
    ws = await greeted(gw, letter, "alice")
    await ws.send(create_update_message(past))  # a hole: our step 1 is sent
    await recv_until(ws, STEP1)
    ctx = gw.app.state.gateway.ctx
    with ctx.update_bytes.held(("firm-a", "alice")) as budget:
        before = budget.burst / 2
        started = _fill(budget, before)
        await ws.send(as_step2(PENDING))  # "the answer to our step 1"
        await ws.send(PROBE)
        await recv_until(ws, STEP2)
        assert _spent(gw, budget, before, started) >= len(PENDING)
    await ws.close()
    await bob.close()


def test_the_split_cost_does_not_look_up_again_what_sort_deletes_found_new(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    letter: Doc[Any] = Doc(client_id=1)
    for client in range(2, 52):  # short items of many clients: deleting in them is cheap
        part: Doc[Any] = Doc(client_id=client)
        _text(part).insert(0, "x" * 40)
        letter.apply_update(part.get_update())
    state = letter.get_update()
    with letter.transaction():
        for i in range(1_999, 0, -2):
            del _text(letter)[i]
    deletions = letter.get_update(letter.get_state())  # 1,000 ranges the letter lacks
    shape = DocShape.from_update(state)
    calls = 0
    looked_up = DocShape.has_deleted

    def counted(self: DocShape, client: int, clock: int, length: int) -> bool:
        nonlocal calls
        calls += 1
        return looked_up(self, client, clock, length)

    monkeypatch.setattr(DocShape, "has_deleted", counted)
    info = check_update(deletions, LIMITS, shape, strip_pending=True)
    assert len(info.deletes) == 1_000
    assert calls == 1_000  # once each, by sort_deletes
