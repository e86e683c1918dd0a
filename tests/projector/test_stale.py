"""A dead gateway's connections: the sweep logs their session.left, then drops them."""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from eventlog import Log
from eventlog.factory import open_log
from projector import consumer
from projector.consumer import Projector
from projector.entry import run
from projector.settings import ProjectorSettings
from projector.stale import ALIVE_TTL_MS, left_events
from projector.state import LetterState
from schemas import Event, SessionLeft, Topic, decode_record
from schemas.settings import Settings
from tests.projector.support import (
    FIRM,
    OPTIONS,
    append,
    awareness,
    caught_up,
    created,
    joined,
)
from tests.support import eventually

FAST = OPTIONS.model_copy(update={"stale_after_s": 0.3})


@contextlib.asynccontextmanager
async def running(
    settings: Settings, log: Log, options: ProjectorSettings = FAST
) -> AsyncIterator[Projector]:
    """A projector instance, handed over once it runs (the tests call its sweep too)."""
    started: asyncio.Future[Projector] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run(settings, options, log, started))
    try:
        yield await asyncio.wait_for(asyncio.shield(started), 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def lefts(log: Log, settings: Settings, letter_id: str) -> list[Event]:
    topic = settings.topic(Topic.LETTERS)
    records = await log.read(topic, log.partition_for(topic, letter_id.encode()), 0, 1000)
    events = [decode_record(r.key, r.value, r.headers) for r in records]
    return [e for e in events if e.type == "session.left" and e.letter_id == letter_id]


async def test_a_dead_gateways_connections_get_session_left_in_the_log(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    await client.set("gateway:gw-live:alive", "1", ex=30)
    events = [created("D1"), joined("D1", "live", "u1", gw="gw-live")]
    events += [joined("D1", "dead", "u2", gw="gw-dead")]
    await append(log, settings, events)
    await append(
        log, settings, [awareness("D1", 7, 1, {"user": {"id": "u2"}}, conn="dead", user="u2")]
    )
    async with running(settings, log) as projector:
        found = await eventually(lambda: lefts(log, settings, "D1"), 10)

        async def dropped() -> bool:
            return await client.smembers("letter:D1:connections") == {b"live"}

        await eventually(dropped, 10)
        await caught_up(log, settings, client)  # its own session.left folded: nothing changes
        await projector.sweep()  # a later sweep finds nothing more to log
        assert len(await lefts(log, settings, "D1")) == 1
    [left] = found
    env, payload = left.envelope, left.payload
    assert isinstance(payload, SessionLeft)
    assert (payload.conn_id, payload.role, payload.reason) == (
        "dead",
        "editor",
        "gateway gone: gw-dead",
    )
    assert (payload.user.id, payload.user.name, payload.user.color) == ("u2", "U2", "#123456")
    assert payload.duration_ms >= 0
    assert (env.user, env.firm, env.conn) == ("u2", FIRM, "dead")
    assert env.gw == projector.identity and env.gw.startswith("projector:")
    assert await client.smembers("letter:D1:connections") == {b"live"}
    assert not await client.exists("connection:dead")
    assert await client.hget("connection:live", "role") == b"editor"
    presence = await client.hgetall("presence:D1")
    assert set(presence) == {b"u1"} and json.loads(presence[b"u1"])["name"] == "U1"


async def test_connections_stay_until_their_session_left_is_logged(
    log: Log,
    settings: Settings,
    client: aioredis.Redis,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = [created("D2"), joined("D2", "gone", "u2", gw="gw-dead")]
    await append(log, settings, events)
    # A log that refuses appends: the same log opened read-only (its writer is `log`).
    refusing = open_log(settings, readonly=True)
    await refusing.start()
    try:
        with caplog.at_level(logging.WARNING, logger="projector"):
            async with running(settings, refusing):
                await caught_up(log, settings, client)

                def refused() -> bool:
                    return any("not logged, retrying" in r.getMessage() for r in caplog.records)

                await eventually(refused, 10)
                assert await client.smembers("letter:D2:connections") == {b"gone"}
    finally:
        await refusing.close()
    assert await lefts(log, settings, "D2") == []
    async with running(settings, log):  # the next sweep, with a log that takes it
        [left] = await eventually(lambda: lefts(log, settings, "D2"), 10)

        async def dropped() -> bool:
            return not await client.exists("letter:D2:connections")

        await eventually(dropped, 10)
    assert left.envelope.conn == "gone"


async def test_a_log_that_refuses_for_good_does_not_keep_dead_users_present(
    log: Log,
    settings: Settings,
    client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A projector the log lets read only (a Kafka ACL, say): past `LEFT_RETRY_S` of refused
    appends the connections are dropped without their session.left, as before it was logged."""
    monkeypatch.setattr(consumer, "LEFT_RETRY_S", 0)
    await append(log, settings, [created("D4"), joined("D4", "lost", "u4", gw="gw-dead")])
    refusing = open_log(settings, readonly=True)
    await refusing.start()
    try:
        with caplog.at_level(logging.WARNING, logger="projector"):
            async with running(settings, refusing):
                await caught_up(log, settings, client)

                async def dropped() -> bool:
                    return not await client.exists("letter:D4:connections")

                await eventually(dropped, 10)
        assert any("dropped without it" in r.getMessage() for r in caplog.records)
    finally:
        await refusing.close()
    assert await lefts(log, settings, "D4") == []


def test_a_connection_stored_without_its_role_leaves_with_an_empty_one() -> None:
    stored = {
        "letter_id": "D3",
        "meta": {"firm_id": FIRM},
        "users": {"u1": {"name": "U1", "color": "#abcdef"}},
        # A connection record as stored before the role was kept.
        "connections": {
            "c1": {
                "userId": "u1",
                "letterId": "D3",
                "firmId": FIRM,
                "connectedAt": "1000",
                "gateway": "gw-old",
            }
        },
    }
    state = LetterState.from_stored(b"\x00\x00", json.dumps(stored))
    [left] = left_events(state, {"c1"}, gw="projector:test", last_seen_ms={"gw-old": 61_000})
    assert isinstance(left.payload, SessionLeft)
    assert (left.payload.role, left.payload.duration_ms) == ("", 60_000)
    assert left.envelope.ts == 61_000  # when its gateway was last seen, not when it is logged
    assert left.payload.reason == "gateway gone: gw-old"
    assert (left.envelope.gw, left.envelope.firm, left.envelope.user) == (
        "projector:test",
        FIRM,
        "u1",
    )
    # A heartbeat older than the connection (its gateway died as it joined): it ends as it began.
    [left] = left_events(state, {"c1"}, gw="projector:test", last_seen_ms={"gw-old": 500})
    assert isinstance(left.payload, SessionLeft)
    assert (left.payload.duration_ms, left.envelope.ts) == (0, 1000)


async def test_a_dead_gateways_sessions_end_at_its_last_heartbeat(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    """Not when the sweep logs their end, a minute or more later (the history showed the user
    connected well after the crash, overlapping her reconnection through another gateway)."""
    now = time.time_ns() // 1_000_000
    join = joined("D5", "c5", "u5", gw="gw-crashed")
    join = replace(join, envelope=replace(join.envelope, ts=now - 300_000))  # 5 min ago
    await append(log, settings, [created("D5"), join])
    before = time.time_ns() // 1_000_000  # its alive key is missing from the first sweep on
    async with running(settings, log):
        [left] = await eventually(lambda: lefts(log, settings, "D5"), 10)
    after = time.time_ns() // 1_000_000
    assert isinstance(left.payload, SessionLeft)
    # The key lapses ALIVE_TTL_MS after the last heartbeat: seen missing less that.
    assert before - ALIVE_TTL_MS <= left.envelope.ts <= after - ALIVE_TTL_MS
    assert left.payload.duration_ms == left.envelope.ts - (now - 300_000)
