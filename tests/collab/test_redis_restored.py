"""After Redis lost its data (FLUSHALL, a new empty Redis), lock grants and keyed creates wait
for `steno-collab backfill locks` (503 until it set `schemas.keys.RESTORED`), and notifications
answer 503 until the projector's replay has begun, not an empty list. Real Redis, the real log
(gateway/restored.py)."""

import json
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import pytest_asyncio

from gateway import restored
from gateway.collab import lock_scripts, notifications
from gateway.collab.locks import Locks
from schemas.events import Topic
from schemas.keys import RESTORED, projector_position_key
from tests.collab.conftest import Collab, stoppable_on
from tests.collab.lock_rebuild import listed
from tests.collab.redis_wiped import (
    STALE,
    Wakes,
    create,
    notified_then_wiped,
    rebuild,
    unrestored,
)
from tests.support import eventually
from tools import backfill_locks
from tools.sources import Sources


async def test_after_a_wipe_grants_and_keyed_creates_wait_for_the_restore(collab: Collab) -> None:
    lid = await collab.gw.create_letter("Intro\nDamages")
    locks = f"/v1/letters/{lid}/locks"
    assert (await collab.call("POST", f"{locks}/intro", user="alice")).is_success
    await collab.redis.flushdb()  # the test's database: FLUSHALL, for it

    unrestored(await collab.call("POST", f"{locks}/intro", user="bob"))  # alice holds it
    unrestored(await collab.call("POST", f"{locks}/damages", user="bob"))
    unrestored(await create(collab, key="order-7"))  # a retry could make a second letter
    assert (await create(collab)).status_code == 201  # no claim to lose
    unrestored(await collab.call("DELETE", f"{locks}/damages", user="bob"))  # was it held?
    unrestored(await collab.call("GET", locks, user="bob"))  # not [], which showed all free
    assert not await collab.redis.exists(RESTORED)

    assert await rebuild(collab) == "locks: 1 restored, 0 already held, 0 lapsed"
    assert await collab.redis.get(RESTORED) == (await restored.run_id(collab.redis)).encode()
    r = await collab.call("POST", f"{locks}/intro", user="bob")
    assert r.status_code == 409 and r.json()["locked_by"]["id"] == "alice"
    assert (await collab.call("POST", f"{locks}/intro", user="alice")).is_success  # renewed
    assert (await collab.call("POST", f"{locks}/damages", user="bob")).is_success
    assert (await create(collab, key="order-7")).status_code == 201


async def test_a_release_after_a_wipe_waits_for_the_restore(collab: Collab) -> None:
    """Released unlogged, the lock would come back with the restore, held for its TTL."""
    lid = await collab.gw.create_letter("Intro")
    lock = f"/v1/letters/{lid}/locks/intro"
    assert (await collab.call("POST", lock, user="alice")).is_success
    await collab.redis.flushdb()
    unrestored(await collab.call("DELETE", lock, user="alice"))

    assert await rebuild(collab) == "locks: 1 restored, 0 already held, 0 lapsed"
    r = await collab.call("DELETE", lock, user="alice")
    assert r.status_code == 200 and r.json()["released"], r.text
    assert await listed(collab, lid) == []
    assert await rebuild(collab) == "locks: 0 restored, 0 already held, 0 lapsed"  # logged
    assert (await collab.call("POST", lock, user="bob")).is_success


async def test_a_restore_of_chosen_letters_does_not_set_the_marker(collab: Collab) -> None:
    lid = await collab.gw.create_letter("x")
    await collab.redis.flushdb()
    assert await rebuild(collab, [lid]) == "locks: 0 restored, 0 already held, 0 lapsed"
    assert not await collab.redis.exists(RESTORED)  # other letters' locks are still missing
    unrestored(await collab.call("POST", f"/v1/letters/{lid}/locks/a", user="bob"))


async def test_a_fresh_deployment_grants_at_once(collab: Collab) -> None:
    """An empty log: nothing to restore. Its first create (keyed or not) sets the marker."""
    assert not await collab.redis.exists(RESTORED)
    assert (await create(collab, key="k")).status_code == 201
    assert await collab.redis.get(RESTORED) == (await restored.run_id(collab.redis)).encode()
    lid = await collab.gw.create_letter("x")
    assert (await collab.call("POST", f"/v1/letters/{lid}/locks/a", user="al")).is_success


async def test_the_marker_is_set_only_while_the_log_is_empty(collab: Collab) -> None:
    log, topic = collab.gw.log, collab.gw.settings.topic(Topic.LETTERS)
    wakes = Wakes()
    await collab.redis.flushdb()
    await restored.keep(collab.redis, log, topic, wakes)  # what a create does before its append
    assert await collab.redis.get(RESTORED) == (await restored.run_id(collab.redis)).encode()
    assert wakes.count == 0  # nothing to restore
    await collab.gw.create_letter("x")
    await collab.redis.flushdb()
    await restored.keep(collab.redis, log, topic, wakes)
    assert wakes.count == 1  # the watcher restores now
    assert not await restored.settle(collab.redis, log, topic)
    assert not await collab.redis.exists(RESTORED)


async def test_a_marker_of_another_redis_process_counts_as_missing_at_once(
    collab: Collab,
) -> None:
    """The gates compare the marker with the running process's run_id in their scripts: a
    stale one answers 503 before any watcher saw it (none runs here), each 503 waking the
    gateway's (`Context.wake_restore`); so do renewals (an older snapshot's lock may be one
    its holder released since), though only compared with the process last looked at."""
    wakes = collab.gw.app.state.gateway.ctx.wake_restore = Wakes()
    lid = await collab.gw.create_letter("Intro\nDamages")
    locks = f"/v1/letters/{lid}/locks"
    assert (await collab.call("POST", f"{locks}/intro", user="alice")).is_success
    await collab.redis.set(RESTORED, STALE)
    assert wakes.count == 0

    unrestored(await collab.call("POST", f"{locks}/damages", user="bob"))  # free: was granted
    unrestored(await create(collab, key="order-8"))  # was accepted
    unrestored(await collab.call("DELETE", f"{locks}/damages", user="bob"))
    assert wakes.count == 3
    unrestored(await collab.call("POST", f"{locks}/intro", user="alice"))  # was renewed
    unrestored(await collab.call("DELETE", f"{locks}/intro", user="alice"))  # was released
    assert wakes.count == 5
    assert (await create(collab)).status_code == 201
    assert wakes.count == 6  # the create without a key too (`keep`), though not refused
    assert await collab.redis.get(RESTORED) == STALE.encode()  # only a restore replaces it

    assert await rebuild(collab) == "locks: 0 restored, 1 already held, 0 lapsed"
    assert (await collab.call("POST", f"{locks}/damages", user="bob")).is_success
    assert (await collab.call("POST", f"{locks}/intro", user="alice")).is_success  # renewed


async def test_a_gateway_restore_finding_a_stale_marker_restores(collab: Collab) -> None:
    """A gateway's restore (no `waiting`) skips one another run finished, by the marker: a stale
    one (the Redis restarted from an older snapshot since its watcher looked) is not that."""
    lid = await collab.gw.create_letter("Intro\nDamages")
    assert (await collab.call("POST", f"/v1/letters/{lid}/locks/intro", user="alice")).is_success
    await collab.redis.flushdb()
    await collab.redis.set(RESTORED, STALE)
    src = Sources(collab.gw.settings, collab.gw.log, collab.redis)
    counts = await backfill_locks.restore_all(src)
    assert counts is not None and counts.locks.restored == 1
    assert await collab.redis.get(RESTORED) == (await restored.run_id(collab.redis)).encode()
    assert await backfill_locks.restore_all(src) is None  # a current one: done already


async def test_a_stale_marker_on_an_empty_log_is_replaced(collab: Collab) -> None:
    """Nothing to restore: the marker is set over the stale one (else 503 for good)."""
    log, topic = collab.gw.log, collab.gw.settings.topic(Topic.LETTERS)
    current = (await restored.run_id(collab.redis)).encode()
    await collab.redis.set(RESTORED, STALE)
    wakes = Wakes()
    await restored.keep(collab.redis, log, topic, wakes)  # what a create without a key does first
    assert await collab.redis.get(RESTORED) == current
    assert wakes.count == 0

    await collab.redis.set(RESTORED, STALE)
    assert (await create(collab, key="k")).status_code == 201
    assert await collab.redis.get(RESTORED) == current
    lid = (await create(collab, key="k")).json()["letter_id"]  # the same letter, replayed
    assert (await collab.call("POST", f"/v1/letters/{lid}/locks/a", user="al")).is_success


Site = tuple[Collab, AsyncExitStack]


@pytest_asyncio.fixture(loop_scope="session")
async def site(tmp_path: Path, redis_db: str) -> AsyncIterator[Site]:
    """A gateway and a projector the test can stop."""
    async with stoppable_on(tmp_path, redis_db) as running:
        yield running.collab, running.folding


async def test_notifications_after_a_wipe_with_the_projector_down_are_503(site: Site) -> None:
    collab, folding = site
    await notified_then_wiped(collab, folding)
    r = await collab.call("GET", "/v1/notifications", user="bob")
    assert r.status_code == 503, r.text  # not 200 with none
    assert r.headers["Retry-After"] == "30"
    r = await collab.call("POST", "/v1/notifications/read", user="bob", json={"all": True})
    assert r.status_code == 503, r.text


async def test_notification_reads_ask_the_log_its_ends_once_an_interval(
    collab: Collab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition that never had a record never gets a projector position: reads must not
    ask the log (a broker round trip with Kafka) each time for it."""
    log, topic = collab.gw.log, collab.gw.settings.topic(Topic.LETTERS)
    real, asked = log.end_offsets, []

    async def counted(t: str) -> dict[int, int]:
        if sys._getframe(1).f_globals["__name__"] == notifications.__name__:
            asked.append(t)  # the notifications' only: the projector asks too
        return await real(t)

    monkeypatch.setattr(log, "end_offsets", counted)
    monkeypatch.setattr(notifications, "ENDS_TTL_S", 3600.0)
    await collab.gw.create_letter("x")

    async def read() -> bool:
        return (await collab.call("GET", "/v1/notifications", user="bob")).status_code == 200

    await eventually(read)  # once the projector folded the letter's partition
    positions = [projector_position_key(topic, p) for p in range(2)]
    assert None in await collab.redis.mget(positions)  # the other partition never had a record
    for _ in range(5):
        assert await read()
    assert len(asked) == 1, asked
    monkeypatch.setattr(notifications, "ENDS_TTL_S", 0.0)  # the interval passed
    assert await read()
    assert len(asked) == 2, asked


async def test_a_sweep_held_back_by_the_marker_asks_the_log_once_a_round(
    collab: Collab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty log (nothing to restore): the round's first letter held back sets the marker
    and every letter is swept. A log with records: the round asks once, however many letters
    wait for the restore."""
    sweeper: Locks = collab.gw.app.state.locks
    await sweeper.close()  # no background sweep: the test's rounds only
    asked: list[bool] = []
    ask = Locks._settle

    async def counted(self: Locks) -> bool:
        asked.append(await ask(self))
        return asked[-1]

    monkeypatch.setattr(Locks, "_settle", counted)
    lapsed = {"id": "u9", "name": "U9", "expires_at": 1.0, "n": "x", "attended": False}

    async def entries(*letters: str) -> None:  # lapsed, of letters no store knows: dropped
        for lid in letters:
            await collab.redis.hset(f"locks:{lid}", "A", json.dumps(lapsed))
            await collab.redis.zadd(lock_scripts.DUE, {f"locks:{lid}": 0})

    await entries("l1", "l2")
    await sweeper.sweep()
    assert asked == [True]
    assert await collab.redis.get(RESTORED) == (await restored.run_id(collab.redis)).encode()
    assert not await collab.redis.exists("locks:l1", "locks:l2")  # both swept

    await collab.gw.create_letter("x")
    await collab.redis.delete(RESTORED)
    await entries("l3", "l4")
    await sweeper.sweep()
    assert asked == [True, False]
    assert await collab.redis.exists("locks:l3", "locks:l4") == 2  # left to the restore
