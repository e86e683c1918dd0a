"""Without Redis, a gateway that loads a letter rebuilds its Yjs client-id owners from the log
(gateway/live/ownership.py): after a crash, a peer's resync that repeats another user's unlogged
edits is not taken under the peer's name, and their author is not locked out (4403). The read
runs beside the first sync, never before it; owners from before a snapshot position are known
too; and owners of ids first written on another instance come from the tail."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pycrdt import Doc, Text, create_update_message

from gateway.errors import FORBIDDEN, LOG_UNAVAILABLE
from gateway.live import loader
from gateway.live.ownership import REDIS_TIMEOUT_S
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.migrate import migrate
from tests.gateway.crash_owners import after_the_crash, both_logged, logged
from tests.gateway.harness import YClient, running_gateway, type_relayed
from tests.support import eventually


def _settings(data_dir: Path, **kw: Any) -> Settings:
    return Settings(data_dir=data_dir, partitions=2, jwt_leeway_s=2, **kw)


async def test_a_restarted_gateway_knows_who_wrote_under_each_client_id(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "steno")
    async with running_gateway(settings) as gw:
        letter, alice, bob = await both_logged(gw)
    # The gateway relayed alice's next edit to bob and died before logging it.
    type_relayed(alice.doc, "unlogged ", bob.doc)
    async with running_gateway(settings) as gw:  # a new process: no owner in memory
        await after_the_crash(gw, letter, alice, bob)


@pytest.fixture
async def pg_pool(pg_database: str) -> AsyncIterator[Any]:
    await migrate(pg_database)
    pool = await asyncpg.create_pool(pg_database, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def test_owners_from_before_the_snapshot_position_are_known(
    tmp_path: Path, pg_pool: Any
) -> None:
    """The snapshotter's letter_version covers every logged edit: the load reads no record,
    but the owners are read from the letter's creation (its `letters` row) on."""
    settings = _settings(tmp_path / "steno")
    async with running_gateway(settings, pg=pg_pool) as gw:
        letter, alice, bob = await both_logged(gw)
        topic = settings.topic(Topic.LETTERS)
        partition = gw.log.partition_for(topic, letter.encode())
        records = await gw.records(Topic.LETTERS, letter)
        end = (await gw.log.end_offsets(topic))[partition]
    await pg_pool.execute(
        "INSERT INTO letters (letter_id, firm_id, title, created_at, created_by, log_topic,"
        " log_partition, log_offset) VALUES ($1, 'firm-a', 'T', now(), 'u', $2, $3, $4)",
        letter, topic, partition, records[0].offset,
    )  # fmt: skip
    await pg_pool.execute(
        "INSERT INTO letter_version (letter_id, version_number, content, document, ydoc_state,"
        " log_topic, log_partition, log_offset, change_data, created_at)"
        " VALUES ($1, 1, '', '{}', $2, $3, $4, $5, '{}', now())",
        letter, alice.doc.get_update(), topic, partition, end,
    )  # fmt: skip
    type_relayed(alice.doc, "unlogged ", bob.doc)
    async with running_gateway(settings, pg=pg_pool) as gw:
        await after_the_crash(gw, letter, alice, bob)


async def test_the_first_sync_does_not_wait_for_the_owners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nor does an edit under a client id the letter has never seen; one under an id it has
    waits for them, but boundedly (as for Redis), and is refused with 4503 past that (claimed in
    memory, the id would be whoever's asked first): its client reconnects and sends it again."""
    settings = _settings(tmp_path / "steno")
    async with running_gateway(settings) as gw:
        letter, alice, _bob = await both_logged(gw)

    never = asyncio.Event()  # the read of the owners is stuck (a long log) for this whole test
    reads = loader.writes

    async def stuck(*args: Any) -> AsyncIterator[tuple[str, bytes]]:
        await never.wait()
        async for write in reads(*args):
            yield write

    monkeypatch.setattr(loader, "writes", stuck)
    async with running_gateway(settings) as gw:
        carol = await gw.client(letter, user="carol")
        async with asyncio.timeout(5):
            await carol.synced.wait()
        assert str(carol.text) == "alice bob "
        await carol.insert("carol ")  # a fresh client id: no owner in the log to wait for
        async with asyncio.timeout(1.5):  # less than the bound below
            await eventually(lambda: logged(gw, letter, "alice bob carol "))
        # Alice's id is in the letter: her edit waits for its owner, boundedly, then is refused.
        url = gw.ws_url(letter, gw.token(user="alice"))
        alice2 = await YClient.connect(url, doc=alice.doc)
        await alice2.synced.wait()
        await alice2.insert("alice again")
        async with asyncio.timeout(REDIS_TIMEOUT_S + 5):
            await alice2.closed.wait()
        assert alice2.close_code == LOG_UNAVAILABLE
        assert await gw.logged_text(letter) == "alice bob carol "
        never.set()  # the read ends: her reconnect's step 2 brings the edit, under her name
        alice3 = await YClient.connect(url, doc=alice.doc)
        await alice3.synced.wait()
        await eventually(lambda: logged(gw, letter, "alice bob carol alice again"))
        assert alice3.close_code is None and carol.close_code is None
        await alice3.close()
        await carol.close()


async def test_owners_of_ids_first_written_on_another_instance_come_from_the_tail(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."

    def settings(name: str) -> Settings:
        return Settings(data_dir=tmp_path / name, partitions=2, topic_prefix=prefix,
                        log_url=f"kafka://{kafka_bootstrap}", kafka_idempotence=False)  # fmt: skip

    async with running_gateway(settings("a")) as a, running_gateway(settings("b")) as b:
        letter = await a.create_letter()
        on_b = await b.client(letter, user="bob")  # loaded on b before alice writes on a
        on_a = await a.client(letter, user="alice")
        await on_a.synced.wait()
        await on_b.synced.wait()
        await on_a.insert("alice ")
        await eventually(lambda: str(on_b.text) == "alice ")
        # Bob writes new clocks under alice's client id, on the instance she never used.
        posing: Doc[Any] = Doc(client_id=on_a.doc.client_id)
        posing.apply_update(on_b.doc.get_update())
        forged: list[bytes] = []
        sub = posing.observe(lambda event: forged.append(event.update))
        posing.get("text", type=Text).insert(6, "forged")
        posing.unobserve(sub)
        await on_b.ws.send(create_update_message(forged[0]))
        async with asyncio.timeout(10):
            await on_b.closed.wait()
        assert on_b.close_code == FORBIDDEN
        await on_a.close()
