"""Yjs-style convergence through the gateway (issue 9): five clients make random edits, send
them late, batched, merged or twice, disconnect and edit offline, reconnect and resync; then
every replica, the projector's Redis state, the snapshotter's latest version and a rebuild
from the merged log hold the same document."""

import random
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from pycrdt import Doc, Text, create_update_message, merge_updates

from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.migrate import migrate
from snapshotter.store import Store
from tests.gateway.harness import Running, YClient, running_gateway
from tests.projector.support import caught_up, projector, redis_bytes
from tests.snapshotter.scripts import drain
from tests.support import eventually

FIELD = "default"  # settings.doc_field: the snapshotter reads a Y.Text of that name too
STEPS = 300
ALPHABET = "abcdefghij "


class Replica:
    """One user's tab: a Yjs doc that outlives its sockets, and updates not yet sent."""

    def __init__(self, gw: Running, letter: str, user: str) -> None:
        self.gw, self.letter, self.user = gw, letter, user
        self.doc: Doc[Any] = Doc()
        self.client: YClient | None = None
        self.unsent: list[bytes] = []
        self.sent: list[bytes] = []

    @property
    def text(self) -> Text:
        text: Text = self.doc.get(FIELD, type=Text)
        return text

    async def connect(self) -> None:
        url = self.gw.ws_url(self.letter, self.gw.token(user=self.user))
        self.client = await YClient.connect(url, doc=self.doc)
        await self.client.synced.wait()

    async def disconnect(self) -> None:
        if self.client is not None:
            await self.client.close()
            assert self.client.close_code in (1000, 1005), self.client.close_code
            self.client = None

    def edit(self, rng: random.Random) -> None:
        before = self.doc.get_state()
        length = len(self.text)
        if length and rng.random() < 0.3:
            start = rng.randrange(length)
            del self.text[start : min(length, start + rng.randint(1, 4))]
        else:
            self.text.insert(rng.randint(0, length), "".join(rng.choices(ALPHABET, k=3)))
        self.unsent.append(self.doc.get_update(before))

    async def flush(self, rng: random.Random) -> None:
        """Send what is pending (if connected): one by one, or merged into one update."""
        if self.client is None or not self.unsent:
            return
        batch = [merge_updates(*self.unsent)] if rng.random() < 0.5 else self.unsent
        for update in batch:
            await self.client.ws.send(create_update_message(update))
        self.sent += self.unsent
        self.unsent = []

    async def duplicate(self, rng: random.Random) -> None:
        if self.client is not None and self.sent:
            await self.client.ws.send(create_update_message(rng.choice(self.sent)))


async def _log_text(gw: Running, letter: str) -> str:
    records = await gw.records(Topic.LETTERS, letter)
    updates = [r.value for r in records if dict(r.headers)["type"] == b"doc.update"]
    doc: Doc[Any] = Doc()
    doc.apply_update(merge_updates(*updates))
    return str(doc.get(FIELD, type=Text))


def _text_of(state: bytes) -> str:
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return str(doc.get(FIELD, type=Text))


async def _play(replicas: list[Replica], rng: random.Random) -> None:
    for _ in range(STEPS):
        replica, roll = rng.choice(replicas), rng.random()
        if roll < 0.55:
            replica.edit(rng)  # online or offline: sent late either way
        elif roll < 0.8:
            await replica.flush(rng)
        elif roll < 0.88:
            await replica.duplicate(rng)
        elif replica.client is not None:
            await replica.disconnect()  # what it has not sent goes with the resync
            replica.sent += replica.unsent
            replica.unsent = []
        else:
            await replica.connect()


async def test_five_clients_converge_everywhere(
    tmp_path: Path, redis_db: str, pg_database: str
) -> None:
    settings = Settings(
        data_dir=tmp_path / "steno", partitions=1, redis_url=redis_db, database_url=pg_database
    )
    redis = aioredis.Redis.from_url(redis_db)
    try:
        async with running_gateway(settings, redis=redis) as gw:
            letter = await gw.create_letter()
            replicas = [Replica(gw, letter, f"user{i}") for i in range(5)]
            for replica in replicas:
                await replica.connect()
            await _play(replicas, random.Random(9))
            for replica in replicas:
                if replica.client is None:
                    await replica.connect()
                await replica.flush(random.Random(1))
            await eventually(lambda: len({str(r.text) for r in replicas}) == 1, timeout=20)
            expected = str(replicas[0].text)
            assert len(expected) > 50

            async def log_agrees() -> bool:
                return await _log_text(gw, letter) == expected

            await eventually(log_agrees, timeout=20)
            for replica in replicas:
                await replica.disconnect()
                assert str(replica.text) == expected

            async with projector(settings, gw.log):
                await caught_up(gw.log, settings, redis)
            assert _text_of(redis_bytes(await redis.get(f"ydoc:{letter}"))) == expected

            await migrate(pg_database)
            store = await Store.open(pg_database)
            try:
                await drain(Snapshotter(settings, gw.log, store), gw.log)
                state = await store.pool.fetchval(
                    "SELECT ydoc_state FROM letter_version WHERE letter_id = $1"
                    " ORDER BY version_number DESC LIMIT 1",
                    letter,
                )
            finally:
                await store.close()
            assert _text_of(state) == expected
    finally:
        await redis.aclose()
