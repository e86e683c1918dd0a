"""Section locks across two gateway instances on Kafka (Tansu): whichever instance grants,
renews, releases or finds a lapsed lock, `lock.expired` is logged once, and only for a lock
that timed out. Real Redis TTLs of 1 s; the sweeps are called directly."""

import asyncio

import httpx

from gateway.collab.locks import Locks
from schemas.events import Topic
from tests.gateway.harness import Running, types_of
from tests.support import eventually

Pair = tuple[Running, Running]


def locks_of(gateway: Running, ttl_s: int = 1) -> Locks:
    locks: Locks = gateway.app.state.locks
    locks.ttl_s = ttl_s
    return locks


async def lock_kinds(gateway: Running, letter_id: str) -> list[str]:
    return [t for t in types_of(await gateway.records(Topic.LETTERS, letter_id)) if "lock" in t]


async def lapse(gateway: Running, letter_id: str, section: str) -> None:
    async def gone() -> bool:
        return not await gateway.app.state.locks.redis.exists(f"lock:{letter_id}:{section}")

    await eventually(gone, timeout=5)  # Redis' own TTL


async def test_a_release_elsewhere_is_not_an_expiry(pair: Pair) -> None:
    a, b = pair
    lid = await a.create_letter("x")
    path, hdr = f"/v1/letters/{lid}/locks/intro", {"Authorization": f"Bearer {a.token('al')}"}
    locks_a = locks_of(a)  # granted for 1 s: a's sweep looks at it at once
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.post(a.http + path, headers=hdr)).is_success
        assert (await http.delete(b.http + path, headers=hdr)).is_success
    await locks_a.sweep()
    await lapse(a, lid, "intro")
    await locks_a.sweep()
    assert await lock_kinds(a, lid) == ["lock.acquired", "lock.released"]


async def test_a_lock_renewed_elsewhere_is_not_expired_at_its_first_time(pair: Pair) -> None:
    a, b = pair
    lid = await a.create_letter("x")
    path, hdr = f"/v1/letters/{lid}/locks/intro", {"Authorization": f"Bearer {a.token('al')}"}
    locks_a, _ = locks_of(a), locks_of(b, ttl_s=300)
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.post(a.http + path, headers=hdr)).is_success
        assert (await http.post(b.http + path, headers=hdr)).is_success  # renewed on b
    await locks_a.sweep()  # a's grant is past its time, but b's renewal still holds
    assert await locks_a.redis.exists(f"lock:{lid}:intro")
    assert await lock_kinds(a, lid) == ["lock.acquired", "lock.acquired"]


async def test_two_gateways_that_granted_a_lock_log_its_expiry_once(pair: Pair) -> None:
    a, b = pair
    lid = await a.create_letter("x")
    path, hdr = f"/v1/letters/{lid}/locks/intro", {"Authorization": f"Bearer {a.token('al')}"}
    locks_a, locks_b = locks_of(a), locks_of(b)
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.post(a.http + path, headers=hdr)).is_success
        assert (await http.post(b.http + path, headers=hdr)).is_success  # renewed on b
    await lapse(a, lid, "intro")
    await asyncio.gather(locks_a.sweep(), locks_b.sweep())  # both remember granting it
    await asyncio.gather(locks_a.sweep(), locks_b.sweep())
    assert await lock_kinds(a, lid) == ["lock.acquired", "lock.acquired", "lock.expired"]


async def test_a_lapsed_lock_is_announced_by_whoever_takes_it_next(pair: Pair) -> None:
    a, b = pair
    lid = await a.create_letter("x")
    path = f"/v1/letters/{lid}/locks/intro"
    locks_a = locks_of(a)
    async with httpx.AsyncClient(timeout=10) as http:
        hdr = {"Authorization": f"Bearer {a.token('al')}"}
        assert (await http.post(a.http + path, headers=hdr)).is_success
        await lapse(a, lid, "intro")
        hdr = {"Authorization": f"Bearer {b.token('bo')}"}
        assert (await http.post(b.http + path, headers=hdr)).is_success  # a has not swept
    await locks_a.sweep()
    assert await lock_kinds(a, lid) == ["lock.acquired", "lock.expired", "lock.acquired"]
