"""Section locks: exclusivity, renewal, release by the holder only, expiry, events, roles."""

import json

from gateway.collab import lock_scripts as scripts
from gateway.collab.locks import Locks
from schemas.events import Topic
from schemas.ids import uuid7
from tests.collab.conftest import Collab
from tests.gateway.harness import types_of
from tests.support import eventually


async def test_exclusive_renew_release(collab: Collab) -> None:
    lid = await collab.gw.create_letter("Intro\nDamages")
    path = f"/v1/letters/{lid}/locks/damages"
    r = await collab.call("POST", path, user="alice")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["section"] == "damages" and got["holder"]["id"] == "alice"
    r = await collab.call("POST", path, user="bob")
    assert r.status_code == 409
    assert r.json()["locked_by"] == {"id": "alice", "name": "ALICE"}
    assert r.json()["expires_at"] == got["expires_at"]
    assert 295 <= await collab.redis.ttl(f"lock:{lid}:damages") <= 300
    await collab.redis.expire(f"lock:{lid}:damages", 100)
    r = await collab.call("POST", path, user="alice")  # renewal by the holder
    assert r.status_code == 200 and await collab.redis.ttl(f"lock:{lid}:damages") > 100
    assert (await collab.call("DELETE", path, user="bob")).status_code == 403
    r = await collab.call("GET", f"/v1/letters/{lid}/locks", user="bob")
    assert [lock["section"] for lock in r.json()["locks"]] == ["damages"]
    assert (await collab.call("DELETE", path, user="alice")).status_code == 200
    assert (await collab.call("DELETE", path, user="alice")).status_code == 404
    assert (await collab.call("POST", path, user="bob")).status_code == 200
    records = await collab.gw.records(Topic.LETTERS, lid)
    kinds = [t for t in types_of(records) if t.startswith("lock.")]
    assert kinds == ["lock.acquired", "lock.acquired", "lock.released", "lock.acquired"]
    held = json.loads(records[-1].value)
    assert held["holder"]["id"] == "bob" and held["ttl_s"] == 300


async def test_expiry_is_an_event(collab: Collab) -> None:
    lid = await collab.gw.create_letter("x")
    locks: Locks = collab.gw.app.state.locks
    locks.ttl_s = 1
    try:
        path = f"/v1/letters/{lid}/locks/intro"
        assert (await collab.call("POST", path, user="alice")).status_code == 200
        await collab.redis.delete(f"lock:{lid}:intro")  # what Redis does after the TTL
        r = await collab.call("POST", path, user="bob")  # finds it gone: expired first
        assert r.status_code == 200
    finally:
        locks.ttl_s = 300
    kinds = [t for t in types_of(await collab.gw.records(Topic.LETTERS, lid)) if "lock" in t]
    assert kinds == ["lock.acquired", "lock.expired", "lock.acquired"]


async def test_roles_and_firms(collab: Collab) -> None:
    lid = await collab.gw.create_letter("x")
    path = f"/v1/letters/{lid}/locks/intro"
    assert (await collab.call("POST", path, role="viewer")).status_code == 403
    assert (await collab.call("POST", path, role="commenter")).status_code == 403
    assert (await collab.call("POST", path, firm="firm-b")).status_code == 403
    long = f"/v1/letters/{lid}/locks/{'s' * 201}"
    assert (await collab.call("POST", long)).status_code == 422


async def test_sweep_notices_a_lapsed_ttl(collab: Collab) -> None:
    lid = await collab.gw.create_letter("x")
    locks: Locks = collab.gw.app.state.locks
    locks.ttl_s = 1
    try:
        assert (
            await collab.call("POST", f"/v1/letters/{lid}/locks/a", user="al")
        ).status_code == 200
    finally:
        locks.ttl_s = 300

    async def lapsed() -> bool:
        return not await collab.redis.exists(f"lock:{lid}:a")

    await eventually(lapsed, timeout=5)  # Redis' own TTL
    await locks.sweep()
    records = await collab.gw.records(Topic.LETTERS, lid)
    assert types_of(records)[-1] == "lock.expired"
    assert json.loads(records[-1].value)["holder"]["id"] == "al"


async def test_the_locks_of_a_letter_no_store_knows_are_dropped_not_retried(
    collab: Collab,
) -> None:
    """A lapsed entry whose letter nothing knows cannot be announced (no firm to log it under):
    a sweep drops it from `locks-due` instead of putting it back every round for ever (the put
    back also renewed the index's TTL)."""
    ghost = str(uuid7())
    index = f"locks:{ghost}"
    lapsed = {"id": "u9", "name": "U9", "color": "#000", "expires_at": 1.0, "n": "x"}
    await collab.redis.hset(index, "intro", json.dumps({**lapsed, "attended": False}))
    await collab.redis.pexpire(index, 60_000)
    await collab.redis.zadd(scripts.DUE, {index: 0})
    locks: Locks = collab.gw.app.state.locks
    await locks.sweep()
    assert await collab.redis.zscore(scripts.DUE, index) is None
    assert not await collab.redis.hexists(index, "intro")  # claimed, and not put back
    assert await collab.gw.records(Topic.LETTERS, ghost) == []


async def test_a_lock_is_released_once_its_holder_has_left_the_letter(collab: Collab) -> None:
    lid = await collab.gw.create_letter("Intro\nDamages")
    locks: Locks = collab.gw.app.state.locks
    alice = await collab.gw.client(lid, user="alice")
    bob = await collab.gw.client(lid, user="bob", events=1)
    for client in (alice, bob):
        await client.synced.wait()

    async def present(user: str) -> bool:
        return bool(await collab.redis.hexists(f"presence:{lid}", user))

    await eventually(lambda: present("alice"))  # the projector folded her join
    assert (await collab.call("POST", f"/v1/letters/{lid}/locks/intro", user="alice")).is_success
    # A backend's lock: its holder is never on the letter, so only its TTL ends it.
    backend = await collab.call("POST", f"/v1/letters/{lid}/locks/damages", role="service")
    assert backend.is_success
    await locks.sweep()
    assert await collab.redis.exists(f"lock:{lid}:intro")  # she is here
    await alice.close()

    async def gone() -> bool:
        return not await present("alice")

    await eventually(gone)
    await locks.sweep()  # gone, but not yet for lock_release_after_leave_s (30 s)
    assert await collab.redis.exists(f"lock:{lid}:intro")
    locks.release_after_leave_s = 0
    try:
        await locks.sweep()
    finally:
        locks.release_after_leave_s = 30
    assert not await collab.redis.exists(f"lock:{lid}:intro")
    assert await collab.redis.exists(f"lock:{lid}:damages")
    records = await collab.gw.records(Topic.LETTERS, lid)
    assert types_of(records)[-1] == "lock.expired"
    payload = json.loads(records[-1].value)
    assert payload["section"] == "intro" and payload["holder"]["id"] == "alice"
    expired = {"type": "lock.expired", "section": "intro"}
    await eventually(lambda: any(expired.items() <= m.items() for m in bob.app))
    # Free for others at once.
    assert (await collab.call("POST", f"/v1/letters/{lid}/locks/intro", user="bob")).is_success
    await bob.close()


async def test_listing_follows_acquire_release_and_expiry(collab: Collab) -> None:
    lid, other = await collab.gw.create_letter("x"), await collab.gw.create_letter("y")
    locks: Locks = collab.gw.app.state.locks
    base = f"/v1/letters/{lid}/locks"

    async def listed() -> list[str]:
        r = await collab.call("GET", base, user="bob")
        assert r.status_code == 200, r.text
        return [lock["section"] for lock in r.json()["locks"]]

    for section in ("b", "a", "c"):
        assert (await collab.call("POST", f"{base}/{section}", user="al")).is_success
    assert (await collab.call("POST", f"/v1/letters/{other}/locks/a", user="al")).is_success
    assert await listed() == ["a", "b", "c"]
    assert (await collab.call("DELETE", f"{base}/b", user="al")).is_success
    assert await listed() == ["a", "c"]
    locks.ttl_s = 1
    try:
        assert (await collab.call("POST", f"{base}/c", user="al")).is_success  # renewed: 1 s
    finally:
        locks.ttl_s = 300

    async def lapsed() -> bool:
        return not await collab.redis.exists(f"lock:{lid}:c")

    await eventually(lapsed, timeout=5)  # Redis' own TTL
    assert await listed() == ["a"]
    # The index holds live locks only: a release removes its entry, an expiry is pruned by
    # the listing that found it (which announces it, once), and it expires after its locks.
    assert await collab.redis.hkeys(f"locks:{lid}") == [b"a"]
    assert 300_000 < await collab.redis.pttl(f"locks:{lid}") <= (300 + 120) * 1000
    await locks.sweep()  # the granting instance finds it already announced
    kinds = [t for t in types_of(await collab.gw.records(Topic.LETTERS, lid)) if "lock" in t]
    assert kinds == ["lock.acquired"] * 3 + ["lock.released", "lock.acquired", "lock.expired"]
    assert (await collab.call("DELETE", f"{base}/a", user="al")).is_success
    assert await listed() == [] and not await collab.redis.exists(f"locks:{lid}")


async def test_listing_does_not_scan_the_keyspace(collab: Collab) -> None:
    lid = await collab.gw.create_letter("x")
    assert (await collab.call("POST", f"/v1/letters/{lid}/locks/a", user="al")).is_success
    await collab.redis.mset({f"unrelated:{i}": i for i in range(1000)})

    async def scans() -> int:
        stats = await collab.redis.info("commandstats")
        return int(stats.get("cmdstat_scan", {}).get("calls", 0))

    before = await scans()
    for _ in range(3):
        r = await collab.call("GET", f"/v1/letters/{lid}/locks", user="bob")
        assert [lock["section"] for lock in r.json()["locks"]] == ["a"]
    assert await scans() == before  # the listing reads its letter's index, not the keyspace
