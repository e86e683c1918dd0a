"""Operators' metrics: `gateway_letters_pending` counts the letters held whose document holds
pending parts (each update of such a letter costs the snapshotter a save and a load of it:
docs/contracts.md "Saved Yjs states") until they settle or the letter leaves memory; the
lock-restore counters are listed at 0 from the first scrape, with Redis or without."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pycrdt import Text, create_update_message

from eventlog.factory import open_log
from schemas.settings import Settings
from steno_collab.services import gateway_app
from tests.gateway.harness import Running, serving
from tests.gateway.pending_helpers import chained_edits, log_update
from tests.support import eventually

PENDING = "gateway_letters_pending"
LOCK_COUNTERS = ("gateway_locks_auto_restores_total", "gateway_locks_unrestored_found_total")


async def _pending(gw: Running) -> float:
    return (await gw.metrics())[PENDING]


async def _letter_with_a_pending_update(gw: Running) -> tuple[str, bytes, str]:
    """A letter whose log holds "second" before "first", which it builds on: its id, the
    missing update and the whole text."""
    letter = await gw.create_letter()
    first, second = chained_edits("first ", "second")
    await log_update(gw, letter, second)
    return letter, first, "first second"


async def test_a_letter_counts_while_its_document_holds_a_pending_update(gw: Running) -> None:
    assert await _pending(gw) == 0.0  # listed from start
    letter, missing, whole = await _letter_with_a_pending_update(gw)
    bob = await gw.client(letter, user="bob")
    await bob.synced.wait()
    clean = await gw.create_letter("Dear Sir,")  # a letter held with nothing pending
    cy = await gw.client(clean, user="cy")
    await cy.synced.wait()
    assert await _pending(gw) == 1.0
    ann = await gw.client(letter, user="ann")
    await ann.synced.wait()
    await ann.ws.send(create_update_message(missing))  # what it waited for
    await eventually(lambda: str(bob.text) == whole)
    room = gw.app.state.gateway.rooms.get(letter)
    assert str(room.doc.get("text", type=Text)) == whole
    assert await _pending(gw) == 0.0  # settled by an update: no peer synced since
    for client in (ann, bob, cy):
        await client.close()


async def test_a_scrape_looks_within_its_budget_least_recently_looked_first(
    gw: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A look at a letter's pending parts costs up to ms (thousands of Yjs clients): a scrape
    spends at most `PENDING_LOOK_S` of the event loop on them (re-read RR: every held letter
    looked at every scrape), the rest counting as last looked, until a later scrape's turn."""
    from gateway.live import rooms

    letter, missing, whole = await _letter_with_a_pending_update(gw)
    bob = await gw.client(letter, user="bob")
    await bob.synced.wait()
    ann = await gw.client(letter, user="ann")
    await ann.synced.wait()
    await ann.ws.send(create_update_message(missing))  # settles it
    await eventually(lambda: str(bob.text) == whole)
    monkeypatch.setattr(rooms, "PENDING_LOOK_S", 0.0)  # no time for a look this scrape
    assert await _pending(gw) == 1.0  # as last looked
    monkeypatch.setattr(rooms, "PENDING_LOOK_S", 0.01)
    assert await _pending(gw) == 0.0
    for client in (ann, bob):
        await client.close()


async def test_a_letter_unloaded_counts_no_more(stores: Running) -> None:
    letter, _, _ = await _letter_with_a_pending_update(stores)
    bob = await stores.client(letter, user="bob")
    await bob.synced.wait()
    assert await _pending(stores) == 1.0
    await bob.close()  # idle: unloaded after 0.2 s
    await eventually(lambda: stores.app.state.gateway.rooms.get(letter) is None)
    assert await _pending(stores) == 0.0


@asynccontextmanager
async def _shell(settings: Settings, redis_url: str | None) -> AsyncIterator[Running]:
    """A gateway as `steno-collab gateway` composes it (steno_collab/services.py)."""
    log = open_log(settings)
    await log.start()
    redis = aioredis.Redis.from_url(redis_url) if redis_url else None
    try:
        async with serving(gateway_app(settings, log, redis, None), settings, log) as gw:
            yield gw
    finally:
        if redis is not None:
            await redis.aclose()
        await log.close()


@pytest.mark.parametrize(
    ("with_redis", "auto_restore"),
    [(False, True), (True, True), (True, False)],
    ids=["no-redis", "redis-auto-restore", "redis-restore-by-hand"],
)
async def test_the_lock_restore_counters_are_listed_from_the_first_scrape(
    tmp_path: Path, redis_db: str, with_redis: bool, auto_restore: bool
) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1,
                        redis_url=redis_db if with_redis else None,
                        locks_auto_restore=auto_restore)  # fmt: skip
    async with _shell(settings, settings.redis_url) as gw:
        samples = await gw.metrics()
    # The log is empty: nothing to restore, nothing found unrestored.
    assert {name: samples.get(name) for name in LOCK_COUNTERS} == dict.fromkeys(LOCK_COUNTERS, 0.0)
