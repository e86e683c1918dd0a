"""With Redis, a letter's Yjs client-id owners live in `clientid:<letterId>`; when Redis loses
them (FLUSHALL, a restart without persistence, the 24 h TTL), an id the loaded letter already
has structs under is not taken by whoever claims it next: its owner is read from the log and
written back (gateway/live/ownership.py). With the hash intact the log is not read; a brand-new
id is still its first writer's."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from pycrdt import Doc, Text, create_update_message

from gateway.errors import FORBIDDEN
from gateway.live import loader
from gateway.live.ownership import Ownership
from schemas.settings import Settings
from tests.gateway.crash_owners import after_the_crash, both_logged, logged, posing_as
from tests.gateway.harness import running_gateway, type_relayed
from tests.support import eventually


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The letters whose writers the gateways in this test read from the log, one per read."""
    read: list[str] = []
    reads = loader.writes

    def counted(settings: Settings, log_: Any, letter_id: str, *args: Any) -> Any:
        read.append(letter_id)
        return reads(settings, log_, letter_id, *args)

    monkeypatch.setattr(loader, "writes", counted)
    return read


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, partitions=2, jwt_leeway_s=2)


async def _owners(redis: Any, letter: str) -> dict[int, str]:
    found = await redis.hgetall(f"clientid:{letter}")
    return {int(client): user.decode() for client, user in found.items()}


async def test_owners_redis_lost_are_read_from_the_log_after_a_crash(
    tmp_path: Path, redis: Any, scans: list[str]
) -> None:
    """Redis wiped, then a gateway died with alice's edit relayed to bob, never logged: bob's
    resync comes first and gets 1013 (not taken under his name), alice is not refused (4403)."""
    settings = _settings(tmp_path / "steno")
    async with running_gateway(settings, redis=redis) as gw:
        letter, alice, bob = await both_logged(gw)
    assert await _owners(redis, letter) == {alice.doc.client_id: "alice", bob.doc.client_id: "bob"}
    await redis.flushdb()  # as FLUSHALL: the hash is gone
    type_relayed(alice.doc, "unlogged ", bob.doc)
    async with running_gateway(settings, redis=redis) as gw:  # a new process: nothing in memory
        await after_the_crash(gw, letter, alice, bob)
    assert scans == [letter]  # read once, on the first claim that needed it
    # Written back for the other instances: the log's owners, bob's among them.
    assert await _owners(redis, letter) == {alice.doc.client_id: "alice", bob.doc.client_id: "bob"}
    assert 0 < await redis.ttl(f"clientid:{letter}")


async def test_with_the_owners_in_redis_the_log_is_not_read(
    tmp_path: Path, redis: Any, scans: list[str]
) -> None:
    settings = _settings(tmp_path / "steno")
    async with running_gateway(settings, redis=redis) as gw:
        letter, alice, bob = await both_logged(gw)
    type_relayed(alice.doc, "unlogged ", bob.doc)
    async with running_gateway(settings, redis=redis) as gw:
        await after_the_crash(gw, letter, alice, bob)
    assert scans == []


async def test_a_new_id_is_its_first_writers_and_an_expired_hash_no_one_elses(
    tmp_path: Path, redis: Any, scans: list[str]
) -> None:
    settings = _settings(tmp_path / "steno")
    async with running_gateway(settings, redis=redis) as gw:
        letter, alice, _bob = await both_logged(gw)
    key = f"clientid:{letter}"
    await redis.pexpire(key, 1)  # the TTL ran out
    await eventually(lambda: _gone(redis, key))
    async with running_gateway(settings, redis=redis) as gw:
        carol = await gw.client(letter, user="carol")
        await carol.synced.wait()
        await carol.insert("carol ")  # an id the letter has never seen: claimed as it was
        await eventually(lambda: logged(gw, letter, "alice bob carol "))
        assert await _owners(redis, letter) == {carol.doc.client_id: "carol"}
        assert scans == []  # nothing to read from the log for it

        # Dave writes new clocks under alice's id, which Redis has forgotten: still refused.
        dave = await gw.client(letter, user="dave")
        await dave.synced.wait()
        await dave.ws.send(create_update_message(posing_as(alice.doc, dave.doc)))
        async with asyncio.timeout(10):
            await dave.closed.wait()
        assert dave.close_code == FORBIDDEN
        assert (await _owners(redis, letter))[alice.doc.client_id] == "alice"
        assert await gw.logged_text(letter) == "alice bob carol "
        assert carol.close_code is None
        await carol.close()


async def test_two_instances_healing_at_once_agree(redis_db: str, redis: Any) -> None:
    """Each reads the log and HSETNXes its owner: whichever comes first, both hold alice's."""
    alice: Doc[Any] = Doc()
    first: list[bytes] = []
    alice.observe(lambda event: first.append(event.update))
    alice.get("text", type=Text).insert(0, "alice")
    writes = [("alice", first[0])]

    async def logged() -> AsyncIterator[tuple[str, bytes]]:
        for write in writes:
            yield write

    others = aioredis.Redis.from_url(redis_db)  # the other instance's connection
    try:
        one, two = Ownership("L", redis), Ownership("L", others)
        for owners in (one, two):
            owners.rebuild(logged, [alice.client_id])
        await asyncio.gather(
            one.resolve([alice.client_id], "bob"), two.resolve([alice.client_id], "carol")
        )
        for owners, claimant in ((one, "bob"), (two, "carol")):
            assert owners.foreign(claimant, [alice.client_id]) == [alice.client_id]
            assert owners.foreign("alice", [alice.client_id]) == []
        assert await _owners(redis, "L") == {alice.client_id: "alice"}
    finally:
        await others.aclose()


async def _gone(redis: Any, key: str) -> bool:
    return not await redis.exists(key)
