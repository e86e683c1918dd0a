"""Malformed frames close only their connection; size, rate, connection and origin limits."""

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from pycrdt import (
    Decoder,
    Doc,
    Text,
    create_sync_message,
    create_update_message,
    write_var_uint,
)

import gateway.api.rest as rest
from gateway.content import PARAGRAPH_BYTES, initial_update
from gateway.errors import MALFORMED, RATE_LIMITED, TOO_LARGE
from gateway.transport import READ_DIRECT
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.harness import Running, YClient, running_gateway
from tests.support import eventually


def _vb(data: bytes) -> bytes:
    return write_var_uint(len(data)) + data


def _awareness(state_json: bytes) -> bytes:
    return b"\x01" + _vb(b"\x01" + write_var_uint(77) + b"\x01" + _vb(state_json))


MALFORMED_FRAMES = {
    "empty": b"",
    "truncated-varint": b"\x00\x02\xff\xff",
    "length-beyond-frame": b"\x00\x02\x10abc",
    "unknown-type": b"\x07\x00",
    "unknown-sync-type": b"\x00\x09\x00",
    "trailing-bytes": b"\x00\x00\x01\x00zz",
    "garbage-update": b"\x00\x02" + _vb(b"\xff\xff\xff\xff"),
    "garbage-awareness-json": _awareness(b"{not json"),
    "awareness-not-an-object": _awareness(b"[1,2,3]"),
    # Parsed as Infinity, which Python writes back as "Infinity": not JSON for the peers.
    "awareness-number-out-of-range": _awareness(b'{"x":1e400}'),
    "awareness-truncated": b"\x01" + _vb(b"\x05\x01"),
}


async def _bystander_still_works(gw: Running, letter: str, bystander: YClient) -> None:
    await bystander.insert("x")
    await eventually(lambda: len(bystander.updates) >= 2 and str(bystander.text).endswith("x"))
    assert not bystander.closed.is_set()


@pytest.mark.parametrize("frame", MALFORMED_FRAMES.values(), ids=MALFORMED_FRAMES.keys())
async def test_malformed_frame_closes_only_that_connection(gw: Running, frame: bytes) -> None:
    letter = await gw.create_letter()
    victim = await gw.client(letter, user="mallory")
    bystander = await gw.client(letter, user="bob")
    await victim.synced.wait()
    await bystander.synced.wait()
    await victim.ws.send(frame)
    await victim.closed.wait()
    assert victim.close_code == MALFORMED
    await _bystander_still_works(gw, letter, bystander)
    await bystander.close()


async def test_state_requests_beyond_a_connections_budget_wait_for_it(tmp_path: Path) -> None:
    """Each is answered with up to the whole document (a few bytes in, the document's size and
    its encoding out), so a connection gets a handful at once; past those, the latest of each
    kind is answered once the budget allows (a Hocuspocus provider shows unsaved changes until
    its step 1 is answered), with the state then, and those it replaced never."""
    # One request per 10 s: the writer's edit below must reach the gateway before the waiting
    # request is answered, however loaded the machine (at 0.5/s that was 2 s after the client's
    # first request: under a full machine's load the answer came first, without the edit).
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, state_requests_per_s=0.1)
    async with running_gateway(settings) as gw:
        letter = await gw.create_letter(content="Dear Sir,\nPay.")
        client = await gw.client(letter)
        writer = await gw.client(letter, user="u2")
        await client.synced.wait()  # its sync step 1 on connecting: one of the burst of 5
        await writer.synced.wait()
        refused = 'gateway_refusals_total{reason="state_request_rate_limited"}'

        def answers() -> list[bytes]:
            return [m for m in client.received if m.startswith(b"\x00\x01")][1:]

        for _ in range(20):
            await client.ws.send(create_sync_message(Doc()))  # an empty state vector
        # 4 answered at once (5 if the bucket refilled one), 1 waiting, the rest replaced.
        await eventually(lambda: _counted(gw, refused, 14))
        await writer.insert("!")  # before the waiting request is answered (in ~10 s)

        async def handled() -> bool:
            return len(answers()) + (await gw.metrics()).get(refused, 0) == 20

        await eventually(handled, 30)
        assert 5 <= len(answers()) <= 6
        late = answers()[-1]  # the 20th request's answer: the state when it was answered
        state: Doc[Any] = Doc()
        state.apply_update(Decoder(late[2:]).read_message() or b"")
        assert str(state.get("text", type=Text)).endswith("!")
        # Queries for everyone's awareness draw on the same budget: of three over it, the
        # last waits and the two it replaced are counted.
        spent = (await gw.metrics())[refused]
        for _ in range(3):
            await client.ws.send(b"\x03")
        await eventually(lambda: _counted(gw, refused, spent + 2))
        assert not client.closed.is_set()  # still served: edits and peers' updates flow
        await client.insert("?")
        await eventually(lambda: str(client.text).endswith("?"))


async def _at_least(count: Awaitable[int], least: int) -> bool:
    return await count >= least


async def _counted(gw: Running, sample: str, at_least: float) -> bool:
    return (await gw.metrics()).get(sample, 0) >= at_least


async def test_text_frames_are_refused(gw: Running) -> None:
    letter = await gw.create_letter()
    client = await gw.client(letter)
    await client.ws.send("hello")
    await client.closed.wait()
    assert client.close_code == MALFORMED


async def test_random_bytes_never_hurt_others(gw: Running) -> None:
    letter = await gw.create_letter()
    bystander = await gw.client(letter, user="bob")
    await bystander.synced.wait()
    rng = random.Random(1234)
    closed = 0
    for _ in range(30):
        fuzzer = await gw.client(letter, user="mallory")
        for _ in range(5):
            if fuzzer.closed.is_set():
                break
            await fuzzer.ws.send(rng.randbytes(rng.randint(1, 64)))
        await fuzzer.ws.send(b"\x00\x02\x10")  # always malformed: the last frame closes it
        await fuzzer.closed.wait()
        closed += fuzzer.close_code == MALFORMED
    assert closed == 30
    await _bystander_still_works(gw, letter, bystander)


async def test_oversized_message_closes_with_4413(gw: Running) -> None:
    letter = await gw.create_letter()
    client = await gw.client(letter)
    await client.synced.wait()
    big = b"\x00\x02" + _vb(b"\x00" * gw.settings.max_message_bytes)
    await client.ws.send(big)
    await client.closed.wait()
    assert client.close_code == TOO_LARGE


@pytest_asyncio.fixture(loop_scope="session")
async def strict(tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(
        data_dir=tmp_path / "steno", partitions=1, rate_messages_per_s=5, rate_burst=10,
        rate_wait_max_s=0.5, max_connections_per_letter=3, max_connections_per_user=2,
        max_document_bytes=4096,
        allowed_origins=["https://app.example"], max_request_bytes=64 << 10,
    )  # fmt: skip
    async with running_gateway(settings) as running:
        yield running


APP = "https://app.example"
ORIGIN = {"origin": APP}


def _new_letter(content: str) -> dict[str, str]:
    """The body of a POST /v1/letters."""
    return {"firm_id": "firm-a", "title": "T", "content": content}


# The answer to a letter's content over `strict`'s letter size (4096 bytes).
OVER_LETTER_SIZE = (413, {"detail": "content exceeds the letter size limit"})


async def test_rate_limit_closes_with_4429(strict: Running) -> None:
    """A client still over its frame rate `rate_wait_max_s` after it first had to wait."""
    letter = await strict.create_letter()
    client = await YClient.connect(strict.ws_url(letter, strict.token()), origin=APP)
    for _ in range(30):
        if client.closed.is_set():
            break
        await client.ws.send(b"\x03")  # query awareness: cheap, but still a message
    await client.closed.wait()
    assert client.close_code == RATE_LIMITED


def _typed_unsent(client: YClient, words: list[str]) -> list[bytes]:
    """One update message a word, typed into `client`'s document but not sent yet."""
    produced: list[bytes] = []
    text = client.doc.get("text", type=Text)
    sub = client.doc.observe(lambda event: produced.append(event.update))
    for word in words:
        text.insert(len(text), word)
    client.doc.unobserve(sub)
    return [create_update_message(update) for update in produced]


async def test_bursts_over_the_frame_rate_are_paced_not_refused(
    tmp_path: Path, read_path: str
) -> None:
    """Over its frame rate a client is read at the rate, its messages waiting in its socket: a
    burst (a paste, a resync, a busy letter's awareness echoes) arrives whole and in order, and
    the connection stays open (stock y-websocket providers never come back after a 4429). The
    refusal is for a run over the rate longer than `rate_wait_max_s`: each burst here is paced
    for about 1 s, and both together for longer than 2 s, so a quiet moment that refills the
    bucket must start a new run. Each burst is typed before it is sent, so that it reaches the
    socket at once however loaded the machine (typed and sent a word at a time, it could come
    slower than the rate, and fewer messages had to wait); the pacing is checked by how long a
    burst takes at the least, which load can only lengthen."""
    rate, burst, words = 20, 10, 30  # 10 within the burst allowance, 20 paced at 20/s
    settings = Settings(
        data_dir=tmp_path / "steno", partitions=1, rate_messages_per_s=rate, rate_burst=burst,
        rate_wait_max_s=2.0,
    )  # fmt: skip
    async with running_gateway(settings) as gw:
        letter, ann, bob = await gw.two_editors()
        assert all(
            (READ_DIRECT in c._extensions) == (read_path == "direct")
            for c in gw.app.state.gateway.conns
        )
        typed, paced, began = "", 0.0, time.monotonic()
        for round_ in range(2):
            if round_:
                await asyncio.sleep(0.6)  # quiet: the bucket refills (10 tokens at 20/s)
            burst_words = [f"{round_}.{i:02d} " for i in range(words)]
            messages = _typed_unsent(ann, burst_words)
            assert len(messages) == words
            typed += "".join(burst_words)
            sent = time.monotonic()
            for message in messages:
                await ann.ws.send(message)
            await eventually(lambda: str(bob.text) == typed)  # noqa: B023
            # Read at the rate: `burst` at once, then `rate` a second (less a timer's slack).
            assert time.monotonic() - sent >= (words - burst) / rate - 0.05
            now_paced = (await gw.metrics())["gateway_messages_paced_total"]
            assert now_paced > paced  # this burst's messages waited their turn
            paced = now_paced
        # Over the rate for longer than rate_wait_max_s in all: only the quiet moment's new run
        # kept the connection open.
        assert time.monotonic() - began > settings.rate_wait_max_s
        assert not ann.closed.is_set()
        metrics = await gw.metrics()
        assert 'gateway_refusals_total{reason="rate_limited"}' not in metrics

        async def logged_whole() -> bool:
            return await gw.logged_text(letter) == typed

        # Appended in batches: bob may have the last words before the log confirms them.
        await eventually(logged_whole)
        await ann.close()
        await bob.close()


async def test_document_size_cap_closes_with_4413(strict: Running) -> None:
    letter = await strict.create_letter()
    client = await YClient.connect(strict.ws_url(letter, strict.token()), origin=APP)
    await client.synced.wait()
    await client.insert("y" * 5000)
    await client.closed.wait()
    assert client.close_code == TOO_LARGE


async def test_a_letter_created_with_more_than_it_may_hold_is_refused(strict: Running) -> None:
    """Its first update over `max_document_bytes`: 413, and nothing logged (a letter.created
    logged before a refused update would be a letter every instance lists, empty)."""
    headers = {"Authorization": f"Bearer {strict.token()}", **ORIGIN}
    topic = strict.settings.topic(Topic.LETTERS)
    before = (await strict.log.end_offsets(topic)).get(0, 0)
    async with httpx.AsyncClient(base_url=strict.http) as http:
        body = _new_letter("z" * 5000)
        r = await http.post("/v1/letters", headers=headers, json=body)
    assert r.status_code == 413, r.text
    assert (await strict.log.end_offsets(topic)).get(0, 0) == before


async def test_a_users_update_bytes_are_budgeted_across_their_connections(
    tmp_path: Path,
) -> None:
    """The letters topic is kept forever: one editor's updates, even ones that cancel out, may
    not fill the disk. The budget is the user's, so neither a second connection nor a new one
    starts afresh, and another user is not affected."""
    settings = Settings(
        data_dir=tmp_path / "steno", update_bytes_burst=1 << 20, update_bytes_per_s=1024
    )
    async with running_gateway(settings) as gw:
        letter = await gw.create_letter()
        ann, ann_too, bob = (
            await gw.client(letter, user="ann"),
            await gw.client(letter, user="ann"),
            await gw.client(letter, user="bob"),
        )
        for client in (ann, ann_too, bob):
            await client.synced.wait()
        await ann.insert("a" * 700_000)  # within the 1 MiB burst
        await eventually(lambda: len(ann.updates) >= 2)  # acknowledged: logged
        await ann_too.insert("b" * 400_000)  # the same user: over the budget
        await ann_too.closed.wait()
        assert ann_too.close_code == RATE_LIMITED
        again = await gw.client(letter, user="ann")  # reconnecting does not refill it
        await again.synced.wait()
        await again.insert("c" * 400_000)
        await again.closed.wait()
        assert again.close_code == RATE_LIMITED
        await bob.insert("d" * 400_000)  # another user's budget

        async def logged() -> str | None:
            text = await gw.logged_text(letter)
            return text if len(text) == 1_100_000 else None

        assert sorted(set(await eventually(logged))) == ["a", "d"]  # nothing refused was logged
        assert not ann.closed.is_set() and not bob.closed.is_set()
        refused = 'gateway_refusals_total{reason="update_bytes_rate_limited"}'
        assert (await gw.metrics())[refused] == 2


async def test_a_users_rest_requests_are_budgeted(tmp_path: Path) -> None:
    """Every authenticated route draws on the caller's budget; over it, 429 with Retry-After,
    before the route does any work. Other users, service tokens and anonymous callers are not
    affected."""
    settings = Settings(
        data_dir=tmp_path / "steno", rest_requests_burst=4, rest_requests_per_s=0.01
    )
    async with running_gateway(settings) as gw:
        letter = await gw.create_letter()
        ann, bob = ({"Authorization": f"Bearer {gw.token(user=u)}"} for u in ("ann", "bob"))
        async with httpx.AsyncClient(base_url=gw.http) as http:
            for _ in range(4):
                assert (await http.get(f"/v1/letters/{letter}", headers=ann)).status_code == 200
            refused = await http.get(f"/v1/letters/{letter}", headers=ann)
            assert (refused.status_code, refused.json()) == (429, {"detail": "too many requests"})
            assert 1 <= int(refused.headers["retry-after"]) <= 100
            assert (await http.get("/v1/letters", headers=ann)).status_code == 429
            body = {"firm_id": "firm-a", "title": "T"}
            assert (await http.post("/v1/letters", json=body, headers=ann)).status_code == 429
            assert (await http.get(f"/v1/letters/{letter}", headers=bob)).status_code == 200
            service = {"Authorization": f"Bearer {gw.token(user='backend', role='service')}"}
            for _ in range(10):  # the product's own backend has no budget
                assert (await http.get(f"/v1/letters/{letter}", headers=service)).status_code == 200
            assert (await http.get(f"/v1/letters/{letter}")).status_code == 401
        # The refused create appended nothing: the log holds the letter created above alone.
        assert sum((await gw.log.end_offsets(gw.settings.topic(Topic.LETTERS))).values()) == 1
        metrics = await gw.metrics()
        assert metrics['gateway_refusals_total{reason="rest_rate_limited"}'] == 3


async def test_a_users_handshakes_are_budgeted(tmp_path: Path) -> None:
    """A client looping connect and close made 584 handshakes a second, each logging two
    session events for good: over the budget the handshake is 429 with Retry-After and logs
    nothing. Other users and service tokens are not affected."""
    settings = Settings(data_dir=tmp_path / "steno", handshakes_burst=3, handshakes_per_s=0.01)
    async with running_gateway(settings) as gw:
        letter = await gw.create_letter()
        url = gw.ws_url(letter, gw.token(user="mallory"))
        for _ in range(3):
            async with websockets.connect(url) as ws:
                await ws.recv()  # the gateway's sync step 1: in the room
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url)
        assert refused.value.response.status_code == 429
        assert 1 <= int(refused.value.response.headers["Retry-After"]) <= 100
        ann = await gw.client(letter, user="ann")
        await ann.synced.wait()
        for _ in range(5):  # the product's own backend has no budget
            async with websockets.connect(gw.ws_url(letter, gw.token(role="service"))) as ws:
                await ws.recv()
        await ann.close()

        async def mallory_joined() -> int:
            records = await gw.records(Topic.LETTERS, letter)
            return sum(
                dict(r.headers)["type"] == b"session.joined" and b'"mallory"' in r.value
                for r in records
            )

        # Joins are appended without anyone waiting for them: under load, not yet all there.
        await eventually(lambda: _at_least(mallory_joined(), 3))
        assert await mallory_joined() == 3  # the refused handshake logged nothing
        metrics = await gw.metrics()
        assert metrics['gateway_refusals_total{reason="handshake_rate_limited"}'] == 1


@pytest.mark.parametrize("authorization", [b"", b"authorization: Bearer not.a.token\r\n"])
async def test_an_anonymous_write_is_refused_before_its_body_is_read(
    strict: Running, authorization: bytes
) -> None:
    """FastAPI parses a JSON body before the token check: an anonymous 11 MB POST cost ~30 ms
    of parsing. The 401 now comes while the body is still on its way."""
    before = (await strict.metrics()).get('gateway_refusals_total{reason="unauthorized"}', 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", strict.port)
    try:
        writer.write(
            b"POST /v1/letters HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + authorization
            + b"content-length: 60000\r\n\r\n"  # under the limit of 64 KiB
            + b'{"firm_id": "firm-a", "content": "'
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 401")
    assert b"www-authenticate: Bearer" in head
    after = (await strict.metrics())['gateway_refusals_total{reason="unauthorized"}']
    assert after == before + 1


async def test_an_anonymous_upload_gets_its_401_whole(tmp_path: Path) -> None:
    """Closing the connection with the body still arriving reset it: httpx saw a ReadError
    instead of the 401 of an 11 MB anonymous POST."""
    async with running_gateway(Settings(data_dir=tmp_path / "steno", partitions=1)) as gw:
        body = b'{"firm_id": "firm-a", "title": "T", "content": "' + b"a" * (11 << 20) + b'"}'
        headers = {"content-type": "application/json"}
        async with httpx.AsyncClient(base_url=gw.http, timeout=30) as http:
            for _ in range(3):  # and the kept connection serves the next one
                refused = await http.post("/v1/letters", content=body, headers=headers)
                assert (refused.status_code, refused.json()) == (401, {"detail": "unauthorized"})


async def test_a_write_is_verified_once(strict: Running) -> None:
    """RefuseAnonymousWrites verifies a write's token (it holds the verifier it was given at
    start); the route takes its claims instead of verifying again. A read verifies in the route."""
    verifier = strict.app.state.gateway.ctx.verifier
    calls: list[str | None] = []
    verify = verifier.verify

    async def counted(token: str | None) -> Any:
        calls.append(token)
        return await verify(token)

    verifier.verify = counted  # what the routes call from here on
    try:
        auth = {"Authorization": f"Bearer {strict.token()}"}
        async with httpx.AsyncClient(base_url=strict.http) as http:
            body = {"firm_id": "firm-a", "title": "T"}
            created = await http.post("/v1/letters", json=body, headers=auth)
            assert created.status_code == 201
            assert calls == []
            letter = created.json()["letter_id"]
            assert (await http.get(f"/v1/letters/{letter}", headers=auth)).status_code == 200
            assert len(calls) == 1
    finally:
        del verifier.verify


async def test_a_request_body_over_the_limit_is_refused_before_it_is_read(strict: Running) -> None:
    token = {"Authorization": f"Bearer {strict.token()}"}
    async with httpx.AsyncClient(base_url=strict.http) as http:
        fits = _new_letter("a" * 60_000)
        r = await http.post("/v1/letters", json=fits, headers=token)
        # Read whole: the route ran (this gateway's letters hold 4096 bytes, hence its 413).
        assert (r.status_code, r.json()) == OVER_LETTER_SIZE
        big = {**fits, "content": "a" * 70_000}  # under the content limit, over the body limit
        r = await http.post("/v1/letters", json=big, headers=token)
        assert (r.status_code, r.json()) == (413, {"detail": "request body exceeds 65536 bytes"})
        # Refused before the token is looked at: nothing of it is held for an anonymous caller.
        assert (await http.post("/v1/letters", json=big)).status_code == 413
        assert (await http.post("/v1/letters/x/comments", json=big)).status_code == 413

    # Without a length (chunked), it is counted as it arrives: a body that never ends is cut
    # off at the limit (the server would otherwise read for as long as the client sends).
    reader, writer = await asyncio.open_connection("127.0.0.1", strict.port)
    writer.write(
        b"POST /v1/letters HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer " + strict.token().encode() + b"\r\n"  # else 401 unread
        b"transfer-encoding: chunked\r\n\r\n"
    )
    chunk, sent = b"%x\r\n%s\r\n" % (4096, b"a" * 4096), 0
    response = asyncio.ensure_future(reader.readline())
    with contextlib.suppress(ConnectionError):  # the server may close as soon as it answered
        while not response.done() and sent < 64 << 20:
            writer.write(chunk)
            sent += 4096
            await writer.drain()
    assert (await response).startswith(b"HTTP/1.1 413"), "read the whole body"
    assert sent < 16 << 20
    writer.close()
    metrics = await strict.metrics()
    assert metrics['gateway_refusals_total{reason="request_too_large"}'] == 4


async def _status(url: str, **kw: str) -> int:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, additional_headers=kw):
            pass
    return refused.value.response.status_code


async def test_origin_allowlist(strict: Running) -> None:
    letter = await strict.create_letter()
    url = strict.ws_url(letter, strict.token())
    assert await _status(url, origin="https://evil.example") == 403
    assert await _status(url) == 403  # no Origin at all
    async with websockets.connect(url, additional_headers=ORIGIN):
        pass


async def test_connection_limits(strict: Running) -> None:
    letter = await strict.create_letter()
    token = strict.token(user="ann")
    first = await YClient.connect(strict.ws_url(letter, token), origin=APP)
    second = await YClient.connect(strict.ws_url(letter, token), origin=APP)
    assert await _status(strict.ws_url(letter, token), **ORIGIN) == 429  # per user
    third = await YClient.connect(strict.ws_url(letter, strict.token(user="bo")), origin=APP)
    assert await _status(strict.ws_url(letter, strict.token(user="cy")), **ORIGIN) == 429
    for client in (first, second, third):
        await client.close()
    # Slots are released on close.
    await eventually(lambda: not strict.app.state.gateway.conns)
    again = await YClient.connect(strict.ws_url(letter, token), origin=APP)
    await again.synced.wait()
    await again.close()


async def test_a_client_that_stops_reading_is_dropped_and_costs_others_nothing(
    small_outbox: Running,
) -> None:
    gw = small_outbox
    letter = await gw.create_letter()
    writer, bystander = await gw.client(letter), await gw.client(letter, user="u2")
    await writer.synced.wait()
    await bystander.synced.wait()
    # Reads nothing once one message is queued: the socket's buffers fill, then the outbox.
    stalled = await websockets.connect(gw.ws_url(letter, gw.token(user="u3")), max_queue=1)
    chunk, sent = "z" * 60_000, 0
    while (
        sent < 1000 and 'gateway_refusals_total{reason="slow_consumer"}' not in await gw.metrics()
    ):
        await writer.insert(chunk)  # one 60 KB update: far beyond what any socket buffers
        sent += 1
    assert sent < 1000, "never dropped: the gateway kept buffering for a client that reads nothing"
    # Dropped for good: once it reads again it finds the connection gone...
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(30):
            while True:
                await stalled.recv()
    # ...while the others got every update and stay connected.
    await eventually(lambda: len(str(bystander.text)) == sent * len(chunk), timeout=30)
    assert not writer.closed.is_set() and not bystander.closed.is_set()


async def test_content_whose_lines_could_not_fit_is_refused_before_it_is_built(
    strict: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10 MiB of newlines would be millions of paragraphs to build before the size check: lines
    whose paragraphs alone exceed the letter's size are refused unbuilt (this gateway's letters
    hold 4096 bytes: 200 lines x 24 bytes > 4096)."""
    built: list[int] = []
    real = initial_update

    def counted(content: str, field: str) -> bytes:
        built.append(content.count("\n") + 1)
        return real(content, field)

    monkeypatch.setattr(rest, "initial_update", counted)
    token = {"Authorization": f"Bearer {strict.token()}"}
    async with httpx.AsyncClient(base_url=strict.http) as http:
        body = _new_letter("\n" * 199)
        r = await http.post("/v1/letters", json=body, headers=token)
        assert (r.status_code, r.json()) == OVER_LETTER_SIZE
        assert built == []
        body["content"] = "\n" * 99  # 100 empty paragraphs: ~3.5 KB, it fits
        r = await http.post("/v1/letters", json=body, headers=token)
        assert r.status_code == 201 and built == [100]
        got = await http.get(f"/v1/letters/{r.json()['letter_id']}", headers=token)
        assert got.json()["content"] == "\n" * 99


async def test_a_build_refused_for_its_size_is_paid(
    strict: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A content that passes the unbuilt check but builds past the letter's size costs the
    build: its least bytes are charged though it is refused (else an editor could have the
    gateway build such content for free, again and again)."""
    built: list[int] = []

    def oversized(content: str, field: str) -> bytes:
        # Built past the 4096 bytes whatever pycrdt's random client id (a paragraph takes 24-37
        # bytes by its size): the build's outcome is not what is tested, its charge is.
        built.append(content.count("\n") + 1)
        return initial_update(content, field) + bytes(4096)

    monkeypatch.setattr(rest, "initial_update", oversized)
    ctx = strict.app.state.gateway.ctx
    user = ("firm-a", "ann")
    headers = {"Authorization": f"Bearer {strict.token(user='ann')}"}
    async with httpx.AsyncClient(base_url=strict.http) as http:
        with ctx.update_bytes.held(user) as budget:
            before = budget.tokens
        body = _new_letter("\n" * 124)  # 125 x 24 + 124 fits
        r = await http.post("/v1/letters", json=body, headers=headers)
        assert r.status_code == 413 and built == [125]
        with ctx.update_bytes.held(user) as budget:
            assert before - budget.tokens >= 125 * PARAGRAPH_BYTES - 1  # refills meanwhile
