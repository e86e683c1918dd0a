"""A Redis back from an older snapshot (a restart on an old dump.rdb, a backup, a promoted
replica): its lock keys and index entries are older than the log. The restore reconciles the
sections the log knows with it (tools/backfill_locks.py, lock_scripts.RESTORE_LOGGED and
RESTORE_FREED): a lock another user took since is his, a released one is free, an expiry
already logged is not logged again; and only while the marker does not name the running Redis.

The snapshot is the test database's keys, DUMPed with their expiry and RESTOREd over a flushed
database (what loading the RDB does: expired keys skipped), the marker naming another process
(the snapshot's, whose run_id a restart changes)."""

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from gateway.collab import lock_scripts as scripts
from gateway.collab.locks import Locks
from gateway.restored import run_id
from schemas.keys import RESTORED
from tests.collab.conftest import Collab
from tests.collab.lock_rebuild import (
    lapsed_by_the_log,
    listed,
    lock_briefly,
    lock_events,
    now_ms,
    rebuild,
)
from tests.collab.redis_wiped import Wakes, unrestored
from tests.support import eventually
from tools import backfill_locks
from tools.sources import Sources

STALE = "s" * 40  # the run_id of the process that took the snapshot
Snapshot = list[tuple[bytes | str, bytes, int]]  # key, its DUMP, when it expires (ms; 0: never)


async def snapshot(collab: Collab) -> Snapshot:
    taken: Snapshot = []
    now = await now_ms(collab)
    for key in await collab.redis.keys("*"):  # the test's own database
        dumped, left = await collab.redis.dump(key), await collab.redis.pttl(key)
        if dumped is not None:
            taken.append((key, dumped, now + left if left > 0 else 0))
    return taken


async def back_from(collab: Collab, taken: Snapshot) -> None:
    await collab.redis.flushdb()
    now = await now_ms(collab)
    for key, dumped, at in taken:
        if not at:
            await collab.redis.restore(key, 0, dumped, replace=True)
        elif at > now:  # (the projector, replaying, may have written some meanwhile)
            await collab.redis.restore(key, at, dumped, replace=True, absttl=True)
    await collab.redis.set(RESTORED, STALE)


@pytest_asyncio.fixture(loop_scope="session")
async def quiet(collab: Collab) -> AsyncIterator[Collab]:
    """No background sweep: the tests sweep when they mean to (one between the snapshot's return
    and the restore would announce what the restore is there to prevent)."""
    await collab.gw.app.state.locks.close()
    yield collab


async def held_by(collab: Collab, lid: str) -> dict[str, str]:
    return {lock["section"]: lock["locked_by"]["id"] for lock in await listed(collab, lid)}


async def released_since(collab: Collab, lock: str, then: str | None = None) -> Snapshot:
    """The snapshot while alice holds `lock` (a path); she releases it after, and `then` (a
    user) takes it next."""
    assert (await collab.call("POST", lock, user="alice")).is_success
    taken = await snapshot(collab)
    assert (await collab.call("DELETE", lock, user="alice")).is_success
    if then is not None:
        assert (await collab.call("POST", lock, user=then)).is_success
    return taken


async def expired_since(collab: Collab, lid: str, sections: tuple[str, ...]) -> Snapshot:
    """The snapshot while alice holds `sections` of the letter, taken to live 1 s: they lapse
    after it, and the sweep logs their expiry."""
    sweeper: Locks = collab.gw.app.state.locks
    await lock_briefly(collab, lid, "alice", *sections)
    taken = await snapshot(collab)  # keys live, entries in the index

    async def lapsed() -> bool:
        return not await collab.redis.exists(*(f"lock:{lid}:{s}" for s in sections))

    await eventually(lapsed)
    await sweeper.sweep()  # her expiries logged
    return taken


def sources(collab: Collab) -> Sources:
    """What a gateway's restore reads (tools/backfill_locks.py)."""
    return Sources(collab.gw.settings, collab.gw.log, collab.redis)


async def test_a_section_taken_and_released_since_the_snapshot_follows_the_log(
    quiet: Collab,
) -> None:
    collab = quiet
    lid = await collab.gw.create_letter("x")
    locks = f"/v1/letters/{lid}/locks"
    assert (await collab.call("POST", f"{locks}/A", user="alice")).is_success
    assert (await collab.call("POST", f"{locks}/B", user="alice")).is_success
    taken = await snapshot(collab)
    assert (await collab.call("DELETE", f"{locks}/A", user="alice")).is_success
    assert (await collab.call("POST", f"{locks}/A", user="bob")).is_success
    assert (await collab.call("DELETE", f"{locks}/B", user="alice")).is_success

    await back_from(collab, taken)
    unrestored(await collab.call("GET", locks, user="bob"))  # not the snapshot's holders
    line = await rebuild(collab)
    assert await held_by(collab, lid) == {"A": "bob"}
    assert not await collab.redis.hexists(f"locks:{lid}", "B")
    assert (await collab.call("POST", f"{locks}/A", user="bob")).is_success  # renewed
    r = await collab.call("POST", f"{locks}/A", user="alice")
    assert r.status_code == 409 and r.json()["locked_by"]["id"] == "bob"
    assert (await collab.call("POST", f"{locks}/B", user="carol")).is_success  # free by the log
    assert line == "locks: 0 restored, 0 already held, 0 lapsed, 2 corrected (older than the log)"
    assert await collab.redis.get(RESTORED) == (await run_id(collab.redis)).encode()


async def test_a_lock_released_since_the_snapshot_stays_released(quiet: Collab) -> None:
    collab = quiet
    lid = await collab.gw.create_letter("x")
    lock = f"/v1/letters/{lid}/locks/R"
    taken = await released_since(collab, lock)

    await back_from(collab, taken)
    counts = await backfill_locks.restore_all(sources(collab))  # a gateway's
    assert not await collab.redis.exists(f"lock:{lid}:R")
    assert not await collab.redis.hexists(f"locks:{lid}", "R")  # no expiry to log later
    assert counts is not None and counts.locks.corrected == 1
    assert (await collab.call("POST", lock, user="bob")).is_success
    kinds = [(kind, holder) for kind, _, holder in await lock_events(collab, lid)]
    assert kinds == [
        ("lock.acquired", "alice"),
        ("lock.released", "alice"),
        ("lock.acquired", "bob"),
    ]


async def test_an_expiry_logged_since_the_snapshot_is_not_logged_again(quiet: Collab) -> None:
    collab = quiet
    lid = await collab.gw.create_letter("x")
    sweeper: Locks = collab.gw.app.state.locks
    taken = await expired_since(collab, lid, ("R", "Z"))
    expired = [("lock.expired", s, "alice") for s in ("R", "Z")]
    assert sorted((await lock_events(collab, lid))[2:]) == expired

    await back_from(collab, taken)  # the keys lapsed, the entries back
    assert await collab.redis.hlen(f"locks:{lid}") == 2
    line = await rebuild(collab)
    await sweeper.sweep()
    assert await listed(collab, lid) == []  # a listing claims lapsed entries too
    assert sorted((await lock_events(collab, lid))[2:]) == expired  # once each
    assert line == "locks: 0 restored, 0 already held, 0 lapsed, 2 corrected (older than the log)"


async def test_a_lock_taken_after_the_restore_is_untouched_by_another(quiet: Collab) -> None:
    """The reconcile runs while the marker is missing or stale: grants wait meanwhile. Once it
    names the running Redis (grants run), a rerun only adds, and so does a reconcile started
    before: each script reads the marker."""
    collab = quiet
    lid = await collab.gw.create_letter("x")
    lock = f"/v1/letters/{lid}/locks/B"
    taken = await released_since(collab, lock)
    await back_from(collab, taken)
    src = sources(collab)
    assert await backfill_locks.restore_all(src) is not None
    assert (await collab.call("POST", lock, user="carol")).is_success
    value, left = await collab.redis.get(f"lock:{lid}:B"), await collab.redis.pttl(f"lock:{lid}:B")

    assert await rebuild(collab) == "locks: 0 restored, 1 already held, 0 lapsed"  # an operator's
    assert await backfill_locks.restore_all(src) is None  # a gateway's: done already
    ident = await run_id(collab.redis)  # a reconcile that read the marker before it was set
    counts = await backfill_locks._rebuild(src, None, None, ident)
    assert (counts.locks.held, counts.locks.corrected) == (1, 0)
    assert await collab.redis.get(f"lock:{lid}:B") == value
    assert 0 < await collab.redis.pttl(f"lock:{lid}:B") <= left
    assert await held_by(collab, lid) == {"B": "carol"}
    # RESTORE_FREED of a reconcile that read B's release, before carol's grant: hers stays.
    await backfill_locks._free(src, lid, ["B"], ident, counts)
    assert counts.locks.corrected == 0
    assert await collab.redis.get(f"lock:{lid}:B") == value
    assert await collab.redis.hget(f"locks:{lid}", "B") == value


async def test_the_sweep_and_listings_wait_for_the_restore(quiet: Collab) -> None:
    """Alice's locks on A and B expired after the snapshot (logged), then bob took A and alice B
    again. Back from the snapshot, her old entries are there without their keys: a sweep or a
    listing before the restore claims none of them (an expiry logged again would read, to the
    restore, as the end of the later lock), and the restore gives each its logged holder."""
    collab = quiet
    lid = await collab.gw.create_letter("x")
    locks = f"/v1/letters/{lid}/locks"
    sweeper: Locks = collab.gw.app.state.locks
    taken = await expired_since(collab, lid, ("A", "B"))
    assert (await collab.call("POST", f"{locks}/A", user="bob")).is_success
    assert (await collab.call("POST", f"{locks}/B", user="alice")).is_success
    logged = await lock_events(collab, lid)
    assert logged[-2:] == [("lock.acquired", "A", "bob"), ("lock.acquired", "B", "alice")]

    await back_from(collab, taken)
    await sweeper.sweep()  # the background sweep (every 5 s) before the watcher's check
    unrestored(await collab.call("GET", locks, user="bob"))  # claims no entry either
    assert await collab.redis.hlen(f"locks:{lid}") == 2  # left to the restore
    assert await lock_events(collab, lid) == logged

    await rebuild(collab)
    assert await held_by(collab, lid) == {"A": "bob", "B": "alice"}
    await sweeper.sweep()
    assert await lock_events(collab, lid) == logged


async def test_a_late_release_of_an_earlier_holder_does_not_free_the_section(
    quiet: Collab,
) -> None:
    """A release or expiry naming another user than the section's last acquirer (repeated by
    a gateway whose sweep predates its marker check, or landed after the next grant's record)
    ends nothing: the restore gives the section to that last acquirer."""
    collab = quiet
    lid = await collab.gw.create_letter("x")
    lock = f"/v1/letters/{lid}/locks/A"
    assert (await collab.call("POST", lock, user="alice")).is_success
    alices = await collab.redis.get(f"lock:{lid}:A")
    assert alices is not None
    taken = await snapshot(collab)
    assert (await collab.call("DELETE", lock, user="alice")).is_success
    assert (await collab.call("POST", lock, user="bob")).is_success
    sweeper: Locks = collab.gw.app.state.locks
    await sweeper._append_expired(lid, None, "A", alices)  # her lock's expiry, once more

    await back_from(collab, taken)
    assert await rebuild(collab) == (
        "locks: 0 restored, 0 already held, 0 lapsed, 1 corrected (older than the log)"
    )
    assert await held_by(collab, lid) == {"A": "bob"}


async def test_another_holder_in_the_window_answers_503_and_wakes_the_restore(
    quiet: Collab,
) -> None:
    """Alice released A after the snapshot and bob took it. Back from the snapshot, alice holds
    A in Redis: bob's renewal (and release) must not answer 409 (his page would give the lock
    up) or 403, but 503 as the gates do, waking the restore; with the marker current, a 409."""
    collab = quiet
    wakes = collab.gw.app.state.gateway.ctx.wake_restore = Wakes()
    lid = await collab.gw.create_letter("x")
    lock = f"/v1/letters/{lid}/locks/A"
    taken = await released_since(collab, lock, then="bob")

    await back_from(collab, taken)
    unrestored(await collab.call("POST", lock, user="bob"))  # his renewal
    unrestored(await collab.call("DELETE", lock, user="bob"))
    assert wakes.count == 2

    await rebuild(collab)
    assert (await collab.call("POST", lock, user="bob")).is_success
    r = await collab.call("POST", lock, user="carol")
    assert r.status_code == 409 and r.json()["locked_by"]["id"] == "bob"
    r = await collab.call("DELETE", lock, user="carol")
    assert r.status_code == 403
    assert wakes.count == 2


async def test_a_holder_who_released_since_the_snapshot_does_not_renew_it_back(
    quiet: Collab,
) -> None:
    """Alice released A after the snapshot and bob took it. Back from the snapshot, Redis says
    she holds A: her re-POST (a renewal, to Redis) and her DELETE answer 503 and wake the
    restore, as grants do; a renewal would log her acquisition, making her A's holder again."""
    collab = quiet
    wakes = collab.gw.app.state.gateway.ctx.wake_restore = Wakes()
    lid = await collab.gw.create_letter("x")
    lock = f"/v1/letters/{lid}/locks/A"
    assert (await collab.call("POST", lock, user="alice")).is_success
    assert (await collab.call("POST", lock, user="alice")).is_success  # renewed: seen current
    taken = await snapshot(collab)
    assert (await collab.call("DELETE", lock, user="alice")).is_success
    assert (await collab.call("POST", lock, user="bob")).is_success
    logged = await lock_events(collab, lid)

    await back_from(collab, taken)
    unrestored(await collab.call("POST", lock, user="alice"))
    unrestored(await collab.call("DELETE", lock, user="alice"))
    assert wakes.count == 2
    assert await lock_events(collab, lid) == logged

    await rebuild(collab)
    assert await held_by(collab, lid) == {"A": "bob"}
    r = await collab.call("POST", lock, user="alice")
    assert r.status_code == 409 and r.json()["locked_by"]["id"] == "bob"
    assert (await collab.call("POST", lock, user="bob")).is_success  # his renewal, looked again
    assert (await collab.call("DELETE", lock, user="bob")).is_success
    assert wakes.count == 2


async def test_a_renewal_during_the_restore_keeps_its_later_deadline(
    quiet: Collab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renewal the gate let through (a restart within the second of the last save: `same`)
    lands after the restore's read of the log: the restore keeps it, not the read's deadline."""
    collab = quiet
    lid = await collab.gw.create_letter("x")
    await lock_briefly(collab, lid, "alice", "A", ttl_s=60)  # the read's deadline: 60 s on
    await back_from(collab, await snapshot(collab))
    key, index = f"lock:{lid}:A", f"locks:{lid}"
    read_ends = backfill_locks._restore_keys  # after the read, before the locks' restore
    renewed: list[bytes] = []

    async def renewing(*args: Any) -> None:
        current = await collab.redis.get(key)
        assert current is not None
        value = json.dumps({**json.loads(current), "expires_at": time.time() + 300, "n": "r"})
        saved = await collab.redis.lastsave()
        keys = (key, index, scripts.DUE, RESTORED)
        args_ = (current, value, 300, "A", 420_000, STALE, int(saved.timestamp()))
        assert await collab.redis.eval(scripts.RENEW, len(keys), *keys, *args_) > 0
        renewed.append(value.encode())
        await read_ends(*args)

    monkeypatch.setattr(backfill_locks, "_restore_keys", renewing)
    assert await rebuild(collab) == "locks: 0 restored, 1 already held, 0 lapsed"
    assert await collab.redis.get(key) == renewed[0]
    assert await collab.redis.hget(index, "A") == renewed[0]
    assert await collab.redis.pttl(key) > 250_000  # not the read's ~60 s
    assert await collab.redis.pttl(index) > 300_000


async def test_an_expiry_whose_index_lapsed_before_the_restore_is_logged_once(
    quiet: Collab,
) -> None:
    """Redis restarted, nobody restores (STENO_LOCKS_AUTO_RESTORE=false): alice's lock lapses,
    the sweep waits for `backfill locks`, and her letter's index lapses meanwhile (its newest
    lock's TTL + 120 s). The restore's fold knows she held it and nothing ended it: the sweep
    logs her expiry once after the restore."""
    collab = quiet
    lid = await collab.gw.create_letter("x")
    sweeper: Locks = collab.gw.app.state.locks
    await lock_briefly(collab, lid, "alice", "A")
    await collab.redis.set(RESTORED, STALE)  # any restart: another run_id
    await lapsed_by_the_log(collab, lid, "A")
    await sweeper.sweep()  # held back by the marker
    assert await lock_events(collab, lid) == [("lock.acquired", "A", "alice")]
    await collab.redis.delete(f"locks:{lid}")  # its TTL ran out while the sweep waited

    assert await rebuild(collab) == "locks: 0 restored, 0 already held, 1 lapsed"
    await sweeper.sweep()
    ended = [("lock.acquired", "A", "alice"), ("lock.expired", "A", "alice")]
    assert await lock_events(collab, lid) == ended
    assert await rebuild(collab) == "locks: 0 restored, 0 already held, 0 lapsed"
    await sweeper.sweep()
    assert await listed(collab, lid) == []
    assert await lock_events(collab, lid) == ended


@pytest.mark.parametrize("own_entry_gone", [False, True])
async def test_an_expiry_landing_after_the_restores_read_is_logged_once(
    own_entry_gone: bool, quiet: Collab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alice's lock lapsed while the sweep waited for the restore; her expiry lands after the
    restore read the log (the sweep's 504'd append, landing late). The reconcile wrote her entry
    (hers kept, or its own if the index lost it), and the take-back finds that entry and removes
    it: the sweep does not log her expiry a second time."""
    collab = quiet
    lid = await collab.gw.create_letter("x")
    sweeper: Locks = collab.gw.app.state.locks
    await lock_briefly(collab, lid, "alice", "A")
    await collab.redis.set(RESTORED, STALE)  # Redis restarted: the marker stale
    await lapsed_by_the_log(collab, lid, "A")
    entry = await collab.redis.hget(f"locks:{lid}", "A")
    assert entry is not None  # the sweep waits for the restore
    read_ends = backfill_locks._restore_keys  # after the read, before the locks' restore

    async def late_expiry(*args: Any) -> None:
        await sweeper._append_expired(lid, None, "A", entry)
        await read_ends(*args)

    monkeypatch.setattr(backfill_locks, "_restore_keys", late_expiry)
    if own_entry_gone:
        await collab.redis.delete(f"locks:{lid}")
    await rebuild(collab)
    await sweeper.sweep()
    ended = [("lock.acquired", "A", "alice"), ("lock.expired", "A", "alice")]
    assert await lock_events(collab, lid) == ended
