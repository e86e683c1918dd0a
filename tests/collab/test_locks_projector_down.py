"""Section locks while the projector is down: its presence and connections stand still, so who
is on the letter comes from the gateways themselves (each vouches in Redis for its own
connections, for as long as its heartbeat: gateway/live/attendance.py). A holder whose gateway
died and who reconnected through another one keeps his lock; one who left, or whose gateway
died for good, loses it `lock_release_after_leave_s` later. Two gateway instances on one
embedded log and Redis; the dead one's kill -9 as `die` leaves it (test_locks_handover.py)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest_asyncio

from tests.collab.channel_helpers import app, seen
from tests.collab.handover_site import (
    AFTER_S,
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
from tests.support import eventually

Down = tuple[Site, AsyncExitStack]  # the site, and what stops its projector


@pytest_asyncio.fixture(loop_scope="session")
async def down(tmp_path: Path, redis_db: str) -> AsyncIterator[Down]:
    """A site whose projector (reaping no dead gateway within a test) the test stops."""
    folding = AsyncExitStack()
    async with open_site(tmp_path, redis_db, UNREAPED, folding) as site:
        yield site, folding


async def test_a_holder_who_reconnected_while_the_projector_is_down_keeps_his_lock(
    down: Down,
) -> None:
    """Carol locks on A; the projector stops; A dies and she reconnects through B. Presence
    still shows her only on dead A, but B vouches for her: the lock stays. Once she leaves B,
    it goes AFTER_S later."""
    site, folding = down
    a, _ = await site.gateway()
    b, _ = await site.gateway()
    lid = await a.create_letter("Intro\nDamages")
    await carol_locks_on(site, a, lid)  # attended: the projector folded her join
    await folding.aclose()
    again, away = await back_through(site, a, b, lid)

    async def here_again() -> bool:
        await locks_of(b).sweep()
        return await site.held(lid, "intro") and not await site.redis.hexists(away, "intro")

    await eventually(here_again, timeout=5)  # B's own word, the projector being down
    assert await connections_on(site, b, lid) == 0  # the projector never saw her on B
    await asyncio.sleep(AFTER_S)  # what would have released her, had she stayed away
    await locks_of(b).sweep()
    assert await site.held(lid, "intro")
    assert await site.present(lid, "carol")  # presence stands still: her dead connection
    assert await lock_events(b, lid) == [("lock.acquired", "intro", "carol")]

    await again.close()  # she leaves B: nobody vouches for her any more

    await swept_away(site, b, lid, "carol")


async def test_a_lock_taken_while_the_projector_is_down_goes_when_its_holder_does(
    down: Down,
) -> None:
    """The projector is down before Carol ever connects: A vouches for her, so her lock is
    attended; A dies and she does not come back: B's sweep releases it, not the 300 s TTL."""
    site, folding = down
    await folding.aclose()
    a, _ = await site.gateway()
    b, _ = await site.gateway()
    lid = await a.create_letter("Intro\nDamages")
    carol = await a.client(lid, user="carol", events=1)
    await carol.synced.wait()
    await eventually(lambda: site.redis.exists(f"attending:{lid}"))  # A vouches for her
    await carol.ws.send(app({"type": "lock.acquire", "id": "l1", "section": "intro"}))
    assert (await seen(carol, "result", id="l1"))["result"]["holder"]["id"] == "carol"
    assert not await site.present(lid, "carol")
    await die(a)

    await swept_away(site, b, lid, "carol")
