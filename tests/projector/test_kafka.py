"""The projector on Kafka (Tansu): end to end, and two instances splitting the partitions."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from eventlog import Log
from eventlog.errors import PositionPastEndError
from projector.consumer import Projector
from projector.entry import run
from projector.store import position_key
from schemas import Topic
from schemas.settings import Settings
from tests.projector.support import (
    OPTIONS,
    Editor,
    append,
    caught_up,
    created,
    doc_text,
    dump,
    projector,
)
from tests.support import eventually, started_log

KAFKA_OPTIONS = OPTIONS.model_copy(update={"group_session_timeout_ms": 6000})


@pytest_asyncio.fixture(loop_scope="session")
async def kafka_settings(tmp_path: Path, redis_db: str, kafka_bootstrap: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "steno",
        redis_url=redis_db,
        log_url=f"kafka://{kafka_bootstrap}",
        kafka_idempotence=False,  # Tansu rejects idempotent producers
        topic_prefix=f"p{uuid.uuid4().hex[:8]}.",
        partitions=4,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def kafka_log(kafka_settings: Settings) -> AsyncIterator[Log]:
    async with started_log(kafka_settings) as log:
        yield log


async def test_end_to_end_on_kafka(
    kafka_log: Log, kafka_settings: Settings, client: aioredis.Redis
) -> None:
    ed = Editor("KF1")
    await append(kafka_log, kafka_settings, [created("KF1"), ed.event(ed.paragraph("on kafka"))])
    options = KAFKA_OPTIONS.model_copy(update={"commit_interval_s": 0.1})
    async with projector(kafka_settings, kafka_log, options):
        await caught_up(kafka_log, kafka_settings, client)
        await append(kafka_log, kafka_settings, [ed.event(ed.type(0, "!"))])
        await caught_up(kafka_log, kafka_settings, client)
        letters = kafka_settings.topic(Topic.LETTERS)
        ends = {p: e for p, e in (await kafka_log.end_offsets(letters)).items() if e}

        async def dashboards_see_it() -> bool:  # group commits, for lag dashboards only
            committed = await kafka_log.committed("projector", letters)
            return all(committed.get(p) == e for p, e in ends.items())

        await eventually(dashboards_see_it, 20)
    assert doc_text(await client.get("ydoc:KF1")) == "<paragraph>on kafka!</paragraph>"


class Instance:
    def __init__(self, settings: Settings, log: Log) -> None:
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[Projector] = loop.create_future()
        self.task = asyncio.create_task(run(settings, KAFKA_OPTIONS, log, self.ready))

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_two_instances_split_partitions_and_converge(
    kafka_log: Log, kafka_settings: Settings, client: aioredis.Redis, other_db: Callable[[], str]
) -> None:
    editors = [Editor(f"S{i}") for i in range(16)]
    await append(kafka_log, kafka_settings, [created(ed.letter_id) for ed in editors])
    letters = kafka_settings.topic(Topic.LETTERS)
    a = Instance(kafka_settings, kafka_log)
    b = Instance(kafka_settings, kafka_log)
    try:
        pa, pb = await a.ready, await b.ready

        def split() -> bool:
            mine, theirs = pa.owned.get(letters, frozenset()), pb.owned.get(letters, frozenset())
            return bool(mine and theirs and not mine & theirs and mine | theirs == set(range(4)))

        await eventually(split, 60)
        await append(kafka_log, kafka_settings, [ed.event(ed.paragraph("both")) for ed in editors])
        await caught_up(kafka_log, kafka_settings, client, timeout=30)
        await a.stop()  # b takes every partition over, from the positions a stored
        await eventually(lambda: pb.owned.get(letters) == frozenset(range(4)), 60)
        await append(kafka_log, kafka_settings, [ed.event(ed.type(0, "+")) for ed in editors])
        await caught_up(kafka_log, kafka_settings, client, timeout=30)
    finally:
        await a.stop()
        await b.stop()
    replay = kafka_settings.model_copy(update={"redis_url": other_db()})
    fresh = aioredis.Redis.from_url(other_db())
    try:
        async with projector(
            replay, kafka_log, KAFKA_OPTIONS.model_copy(update={"group": "replay"})
        ):
            await caught_up(kafka_log, replay, fresh, timeout=30)
        mine = await dump(client)
        assert mine == await dump(fresh)
        assert doc_text(await client.get("ydoc:S3")) == "<paragraph>both+</paragraph>"
    finally:
        await fresh.aclose()


async def test_a_position_past_the_partitions_end_stops_the_projector_on_kafka(
    kafka_log: Log, kafka_settings: Settings, client: aioredis.Redis
) -> None:
    """On Kafka the partitions are taken inside aiokafka's rebalance listener, which logs what
    a listener raises and carries on: the projector must still stop, not leave them unfolded."""
    ed = Editor("KP1")
    await append(kafka_log, kafka_settings, [created("KP1"), ed.event(ed.paragraph("x"))])
    letters = kafka_settings.topic(Topic.LETTERS)
    partition = next(p for p, e in (await kafka_log.end_offsets(letters)).items() if e)
    await client.set(position_key(letters, partition), 1_000)  # Redis folded a longer log
    with pytest.raises(PositionPastEndError) as stopped:
        await asyncio.wait_for(run(kafka_settings, KAFKA_OPTIONS, kafka_log), 60)
    assert (stopped.value.topic, stopped.value.partition) == (letters, partition)
    assert (stopped.value.position, stopped.value.end) == (1_000, 2)
