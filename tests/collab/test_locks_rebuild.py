"""Section locks restored from the log after Redis lost them (`backfill locks`,
tools/backfill_locks.py): the live ones come back with what is left of their TTL, exclusive and
releasable as before; lapsed ones do not; a lock held now is never overwritten."""

import json
import time
from datetime import datetime
from typing import Any

import pytest

from gateway.collab.locks import Locks
from gateway.restored import run_id
from schemas.keys import RESTORED
from tests.collab.conftest import Collab
from tests.collab.lock_rebuild import (
    acquired,
    listed,
    lock_briefly,
    lock_events,
    now_ms,
    rebuild,
)
from tests.support import eventually
from tests.tools.cli import cli_env, run_cli
from tools import backfill_locks


def ms(instant: str) -> float:
    return datetime.fromisoformat(instant).timestamp() * 1000


async def value_of(collab: Collab, key: str) -> dict[str, Any]:
    raw = await collab.redis.get(key)
    assert raw is not None, key
    value: dict[str, Any] = json.loads(raw)
    return value


async def test_live_locks_come_back_with_their_holder_and_what_was_left_of_the_ttl(
    collab: Collab,
) -> None:
    lid = await collab.gw.create_letter("Intro\nDamages\nClosing")
    locks = f"/v1/letters/{lid}/locks"
    carol = await collab.gw.client(lid, user="carol")  # on the letter: her lock is attended
    await carol.synced.wait()
    await eventually(lambda: collab.redis.hexists(f"presence:{lid}", "carol"))
    r = await collab.call("POST", f"{locks}/intro", user="alice")
    answered_ms = time.time() * 1000  # its `lock.acquired` was logged before this
    assert r.status_code == 200, r.text
    granted = r.json()
    assert (await collab.call("POST", f"{locks}/damages", user="alice")).is_success
    assert (await collab.call("DELETE", f"{locks}/damages", user="alice")).is_success
    assert (await collab.call("POST", f"{locks}/closing", user="carol")).is_success

    granted_value = await value_of(collab, f"lock:{lid}:intro")
    await collab.redis.flushdb()  # the test's database: FLUSHALL, for it
    # Gone, with nothing in the log to say so: the listing waits for the restore (503).
    assert (await collab.call("GET", locks, user="bob")).status_code == 503
    assert await rebuild(collab) == "locks: 2 restored, 0 already held, 0 lapsed"

    got = {lock["section"]: lock for lock in await listed(collab, lid)}
    assert sorted(got) == ["closing", "intro"]  # the released one stays free
    intro = got["intro"]
    assert intro["locked_by"] == {"id": "alice", "name": "ALICE"}
    # What the record left of the TTL: from the record time, never a fresh 300 s.
    record = await acquired(collab, lid, "intro")
    assert ms(intro["expires_at"]) == pytest.approx(record.timestamp + 300_000, abs=1)
    # (Record times are whole ms: the gateway's own stamp may be up to 1 ms later.)
    assert ms(granted["expires_at"]) - 1 <= ms(intro["expires_at"]) <= answered_ms + 300_000
    left = await collab.redis.pttl(f"lock:{lid}:intro")
    assert 0 < left <= answered_ms + 300_000 - time.time() * 1000 + 1
    values = {s: await value_of(collab, f"lock:{lid}:{s}") for s in got}
    assert values["intro"]["attended"] is False  # taken over REST by a user not on the letter
    # The gateway's value, but for the grant's own `n` and the expiry.
    own = {"n": "", "expires_at": 0}
    assert values["intro"] | own == granted_value | own
    assert values["closing"]["attended"] is True

    r = await collab.call("POST", f"{locks}/intro", user="bob")
    assert r.status_code == 409 and r.json()["locked_by"]["id"] == "alice"
    assert (await collab.call("DELETE", f"{locks}/intro", user="alice")).status_code == 200
    assert (await lock_events(collab, lid))[-1] == ("lock.released", "intro", "alice")

    # A holder not on the letter loses an attended lock after the release-after-leave delay.
    await carol.close()
    sweeper: Locks = collab.gw.app.state.locks
    sweeper.release_after_leave_s = 0
    try:

        async def released() -> bool:
            await sweeper.sweep()
            return not await collab.redis.exists(f"lock:{lid}:closing")

        await eventually(released)
    finally:
        sweeper.release_after_leave_s = 30
    assert (await lock_events(collab, lid))[-1] == ("lock.expired", "closing", "carol")
    assert await rebuild(collab) == "locks: 0 restored, 0 already held, 0 lapsed"


async def test_a_lock_whose_ttl_ran_out_by_the_record_is_not_restored(collab: Collab) -> None:
    """Its expiry, which no gateway could log (Redis lost the index entry), is logged once: the
    restore gives the sweep (or a listing) the entry to announce."""
    lid = await collab.gw.create_letter("x")
    sweeper: Locks = collab.gw.app.state.locks
    await lock_briefly(collab, lid, "al", "a")
    await collab.redis.flushdb()  # before it expired: no `lock.expired` was logged
    record = await acquired(collab, lid, "a")

    async def lapsed() -> bool:  # by the record's deadline, on Redis' clock (the restore's)
        return await now_ms(collab) > record.timestamp + 1000

    await eventually(lapsed)
    assert await rebuild(collab) == "locks: 0 restored, 0 already held, 1 lapsed"
    assert await listed(collab, lid) == []
    ended = [("lock.acquired", "a", "al"), ("lock.expired", "a", "al")]
    assert await lock_events(collab, lid) == ended
    assert await rebuild(collab) == "locks: 0 restored, 0 already held, 0 lapsed"
    await sweeper.sweep()
    assert await listed(collab, lid) == []
    assert await lock_events(collab, lid) == ended  # once


async def test_a_lock_granted_after_the_wipe_is_not_overwritten(collab: Collab) -> None:
    lid = await collab.gw.create_letter("x")
    locks = f"/v1/letters/{lid}/locks"
    assert (await collab.call("POST", f"{locks}/a", user="alice")).is_success
    assert (await collab.call("POST", f"{locks}/b", user="alice")).is_success
    await collab.redis.flushdb()
    await collab.redis.set(RESTORED, await run_id(collab.redis))  # open, as after an earlier run
    bob = await collab.call("POST", f"{locks}/a", user="bob")  # free, as far as Redis knows
    assert bob.status_code == 200
    before = await collab.redis.get(f"lock:{lid}:a")
    assert await rebuild(collab) == "locks: 1 restored, 1 already held, 0 lapsed"
    assert await collab.redis.get(f"lock:{lid}:a") == before
    got = {lock["section"]: lock["locked_by"]["id"] for lock in await listed(collab, lid)}
    assert got == {"a": "bob", "b": "alice"}
    # Again, as an operator runs it: nothing new.
    status, out, err = await run_cli(cli_env(collab.gw.settings), "backfill", "locks")
    assert status == 0, err
    assert "  locks: 0 restored, 2 already held, 0 lapsed in " in out


async def test_a_section_taken_and_released_during_the_rebuild_is_not_given_back(
    collab: Collab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bob takes and releases the section between the rebuild's read of the log and its
    restore: Alice's lock, the read's last word, must not come back after his release."""
    lid = await collab.gw.create_letter("x")
    path = f"/v1/letters/{lid}/locks/a"
    assert (await collab.call("POST", path, user="alice")).is_success
    await collab.redis.flushdb()
    await collab.redis.set(RESTORED, await run_id(collab.redis))  # a rerun while they grant
    restore = backfill_locks._restore

    async def bob_first(*args: Any) -> str | None:
        assert (await collab.call("POST", path, user="bob")).is_success
        assert (await collab.call("DELETE", path, user="bob")).is_success
        return await restore(*args)

    monkeypatch.setattr(backfill_locks, "_restore", bob_first)
    line = await rebuild(collab)
    taken_back = " (1 taken back: the log moved on meanwhile)"
    assert line == "locks: 0 restored, 0 already held, 0 lapsed" + taken_back
    assert await listed(collab, lid) == []
    assert not await collab.redis.exists(f"lock:{lid}:a")
    assert not await collab.redis.hexists(f"locks:{lid}", "a")
    assert (await collab.call("POST", path, user="carol")).status_code == 200
