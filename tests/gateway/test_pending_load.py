"""A loaded letter keeps what its document holds pending (schemas/ystate.py): an update logged
before the one it builds on, or pending parts a saved state carries, stay pending in the room
and with its peers, and integrate once the missing update arrives."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from pycrdt import Doc, Text, create_update_message

from schemas.events import Topic
from schemas.settings import Settings
from schemas.ystate import pending_parts, with_pending
from tests.gateway.harness import Running, running_with_stores
from tests.gateway.pending_helpers import chained_edits, log_update
from tests.support import eventually


@pytest_asyncio.fixture(loop_scope="session")
async def stores(tmp_path: Path, redis_db: str, pg_database: str) -> AsyncIterator[Running]:
    settings = Settings(data_dir=tmp_path / "steno", partitions=2,
                        redis_url=redis_db, database_url=pg_database)  # fmt: skip
    async with running_with_stores(settings) as running:
        yield running


async def _end(gw: Running, letter: str) -> int:
    topic = gw.settings.topic(Topic.LETTERS)
    return (await gw.log.end_offsets(topic))[gw.log.partition_for(topic, letter.encode())]


async def _missing_update_arrives(gw: Running, letter: str, missing: bytes, whole: str) -> None:
    """Bob loads the letter; Ann then sends the update its pending part waits for: Bob, the
    room and whoever joins later end up with the whole text."""
    bob = await gw.client(letter, user="bob")
    await bob.synced.wait()
    ann = await gw.client(letter, user="ann")
    await ann.synced.wait()
    await ann.ws.send(create_update_message(missing))
    await eventually(lambda: str(bob.text) == whole)
    room = gw.app.state.gateway.rooms.get(letter)
    assert str(room.doc.get("text", type=Text)) == whole
    late = await gw.client(letter, user="cy")
    await late.synced.wait()
    assert str(late.text) == whole
    for client in (ann, bob, late):
        await client.close()


async def test_an_update_logged_before_the_one_it_builds_on_integrates_when_it_arrives(
    gw: Running,
) -> None:
    letter = await gw.create_letter()
    first, second = chained_edits("first ", "second")
    await log_update(gw, letter, second)  # logged by another writer before what it builds on
    await _missing_update_arrives(gw, letter, first, "first second")


async def test_pending_parts_a_saved_state_carries_integrate_when_their_update_arrives(
    stores: Running,
) -> None:
    letter = await stores.create_letter()
    hello, first, second = chained_edits("hello ", "first ", "second")
    doc: Doc[Any] = Doc()
    doc.apply_update(hello)
    doc.apply_update(second)  # pending: `first` is missing
    state = with_pending(doc.get_update(), pending_parts(doc, [hello, second]))
    redis = stores.app.state.gateway.ctx.redis
    end = await _end(stores, letter)
    await redis.mset({f"ydoc:{letter}": state, f"ydoc:{letter}:offset": end})
    await _missing_update_arrives(stores, letter, first, "hello first second")
