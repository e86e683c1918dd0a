"""Section locks outlive the instance that granted them: whichever gateway instance is up (on the
same embedded log and Redis, with the projector folding presence) releases a departed holder's
lock `lock_release_after_leave_s` after the holder left, once, though the granting instance
restarted or died (README "Section locks")."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from schemas.events import Topic
from tests.collab.handover_site import (
    AFTER_S,
    REAPED,
    UNREAPED,
    Site,
    back_through,
    carol_locks_on,
    connections_on,
    die,
    lock_events,
    locks_of,
    open_site,
    swept_away,
)
from tests.gateway.harness import types_of
from tests.support import eventually


@pytest_asyncio.fixture(loop_scope="session")
async def site(tmp_path: Path, redis_db: str) -> AsyncIterator[Site]:
    async with open_site(tmp_path, redis_db, REAPED) as opened:
        yield opened


@pytest_asyncio.fixture(loop_scope="session")
async def unreaped(tmp_path: Path, redis_db: str) -> AsyncIterator[Site]:
    """A projector that reaps no dead gateway's sessions within a test (as the default 40 s)."""
    async with open_site(tmp_path, redis_db, UNREAPED) as opened:
        yield opened


async def test_a_restarted_granting_gateway_leaves_the_release_to_any_instance(site: Site) -> None:
    """Bob edits on B and takes the section through A; A restarts (a rolling restart); bob
    leaves. The instances up then (B and the new A) release it, once, after AFTER_S."""
    a, a_stack = await site.gateway()
    b, _ = await site.gateway()
    lid = await b.create_letter("Intro\nDamages")
    bob = await b.client(lid, user="bob")
    await bob.synced.wait()
    await eventually(lambda: site.present(lid, "bob"))  # the projector folded his join
    token = {"Authorization": f"Bearer {a.token(user='bob')}"}
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(f"{a.http}/v1/letters/{lid}/locks/intro", headers=token)
    assert r.status_code == 200, r.text
    await a_stack.aclose()  # A stops (SIGTERM): all it knew of the lock is gone with it
    a2, _ = await site.gateway()
    await bob.close()

    async def gone() -> bool:
        return not await site.present(lid, "bob")

    await eventually(gone)
    sweeps = (locks_of(a2).sweep(), locks_of(b).sweep())
    await asyncio.gather(*sweeps)  # the count starts: not yet AFTER_S
    assert await site.held(lid, "intro")

    async def released() -> bool:
        await asyncio.gather(locks_of(a2).sweep(), locks_of(b).sweep())  # both, at once
        return not await site.held(lid, "intro")

    await eventually(released, timeout=10)
    await asyncio.gather(locks_of(a2).sweep(), locks_of(b).sweep())
    assert await lock_events(b, lid) == [
        ("lock.acquired", "intro", "bob"),
        ("lock.expired", "intro", "bob"),
    ]


async def test_the_lock_of_a_holder_whose_gateway_died_goes_from_another_instances_sweep(
    site: Site,
) -> None:
    """Carol edits on A and takes the section there; A dies (no session.left, its heartbeat
    key lapses, no more sweeps). The projector reaps her session; B, which never had the
    letter open, releases her lock from its own background sweep."""
    a, _ = await site.gateway()
    b, _ = await site.gateway()
    lid = await a.create_letter("Intro\nDamages")
    await carol_locks_on(site, a, lid)
    await die(a)

    async def gone() -> bool:
        return not await site.present(lid, "carol")

    await eventually(gone)  # the projector's stale sweep: A's heartbeat is gone
    assert await site.held(lid, "intro")
    assert lid not in {room.letter_id for room in b.app.state.gateway.rooms}

    async def released() -> bool:
        return not await site.held(lid, "intro")

    await eventually(released, timeout=20)  # B's sweep every 5 s, AFTER_S after she went
    want = [("lock.acquired", "intro", "carol"), ("lock.expired", "intro", "carol")]

    async def logged() -> bool:  # that sweep appends its lock.expired after the release
        return await lock_events(b, lid) == want

    await eventually(logged)
    await locks_of(b).sweep()
    assert await lock_events(b, lid) == want  # once


async def test_a_dead_gateways_holder_counts_as_gone_from_its_heartbeats_loss(
    unreaped: Site,
) -> None:
    """Carol's gateway A dies; the projector has not reaped her (she is still in presence, for
    its stale_after_s), but every connection she has to the letter is on a gateway without its
    heartbeat: B's sweeps release her lock AFTER_S after the heartbeat went, not after the reap."""
    site = unreaped
    a, _ = await site.gateway()
    b, _ = await site.gateway()
    lid = await a.create_letter("Intro\nDamages")
    await carol_locks_on(site, a, lid)
    await die(a)  # its heartbeat key gone, as ALIVE_TTL_S after a kill -9
    lost = time.monotonic()
    await locks_of(b).sweep()  # the count starts
    assert await site.held(lid, "intro")

    await swept_away(site, b, lid, "carol")
    assert AFTER_S * 0.9 <= time.monotonic() - lost < AFTER_S + 3
    assert await site.present(lid, "carol")  # not reaped: the projector's semantics unchanged
    assert "session.left" not in types_of(await b.records(Topic.LETTERS, lid))


async def test_a_holder_who_reconnected_through_a_live_gateway_keeps_his_lock(
    unreaped: Site,
) -> None:
    """Carol's gateway A dies and her client reconnects through B: her connection on dead A is
    still in presence and so is her new one on B, so she is here; the lock stays."""
    site = unreaped
    a, _ = await site.gateway()
    b, _ = await site.gateway()
    lid = await a.create_letter("Intro\nDamages")
    await carol_locks_on(site, a, lid)
    _again, away = await back_through(site, a, b, lid)  # she stays connected on B
    await eventually(lambda: connections_on(site, b, lid))  # the projector folded it
    await locks_of(b).sweep()
    assert not await site.redis.hexists(away, "intro")  # here again: the count is off
    await asyncio.sleep(AFTER_S)  # what would have released her, had she stayed away
    await locks_of(b).sweep()
    assert await site.held(lid, "intro")
    assert await lock_events(b, lid) == [("lock.acquired", "intro", "carol")]
