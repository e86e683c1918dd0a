"""The projector while Redis is down (found in a review against real services): its lag metric
froze at 0, as the housekeeping tick failed on the Redis check before reporting it, and a group
rebalance that completed during the outage ended the process (the positions read failed)."""

import asyncio
import logging
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from eventlog import Log
from eventlog.factory import open_log
from projector.consumer import Projector
from schemas import Topic
from schemas.settings import Settings
from tests.projector.support import (
    OPTIONS,
    Editor,
    Instance,
    append,
    caught_up,
    created,
    doc_text,
    dump,
    projector,
)
from tests.stoppable_redis import StoppableRedis
from tests.support import eventually

UNREADABLE = "positions unreadable"


def _lag(projector: Projector, topic: str) -> dict[int, float]:
    """Partition -> `projector_lag_records` of `topic`, as /metrics shows it."""
    found: dict[int, float] = {}
    for metric in projector.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "projector_lag_records" and sample.labels["topic"] == topic:
                found[int(sample.labels["partition"])] = sample.value
    return found


def _unreadable(caplog: pytest.LogCaptureFixture) -> int:
    return sum(UNREADABLE in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


async def test_the_lag_keeps_rising_while_redis_is_down(
    settings: Settings, log: Log, outage_redis: StoppableRedis
) -> None:
    settings = settings.model_copy(update={"redis_url": outage_redis.url})
    letters = settings.topic(Topic.LETTERS)
    ed = Editor("OUT1")
    await append(log, settings, [created("OUT1"), ed.event(ed.paragraph("up"))])
    instance = Instance(settings, log, OPTIONS.model_copy(update={"commit_interval_s": 0.1}))
    try:
        proj = await asyncio.wait_for(asyncio.shield(instance.ready), 30)
        async with aioredis.Redis.from_url(outage_redis.url) as client:
            await caught_up(log, settings, client)
        await eventually(lambda: _lag(proj, letters) == dict.fromkeys(range(4), 0.0), 10)

        await outage_redis.stop()
        await append(log, settings, [ed.event(ed.type(0, str(i))) for i in range(10)])
        partition = log.partition_for(letters, b"OUT1")
        await eventually(lambda: _lag(proj, letters).get(partition) == 10, 10)
        assert not instance.task.done()

        await outage_redis.start()
        async with aioredis.Redis.from_url(outage_redis.url) as client:
            await caught_up(log, settings, client)
            await eventually(lambda: _lag(proj, letters).get(partition) == 0, 10)
            text = doc_text(await client.get("ydoc:OUT1"))
        assert text == "<paragraph>up0123456789</paragraph>"
    finally:
        await instance.stop()


async def test_a_rebalance_while_redis_is_down_is_ridden_out(
    tmp_path: Path,
    kafka_bootstrap: str,
    outage_redis: StoppableRedis,
    other_db: Callable[[], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A second instance joins the group (a rolling restart) and the rebalance completes while
    Redis is down: both keep running, report their lag from the group's last commits, and
    once Redis is back fold exactly what a fold from scratch writes."""
    caplog.set_level(logging.INFO, logger="projector.consumer")
    settings = Settings(
        data_dir=tmp_path / "steno",
        redis_url=outage_redis.url,
        log_url=f"kafka://{kafka_bootstrap}",
        kafka_idempotence=False,  # Tansu rejects idempotent producers
        topic_prefix=f"o{uuid.uuid4().hex[:8]}.",
        partitions=4,
    )
    letters = settings.topic(Topic.LETTERS)
    options = OPTIONS.model_copy(
        update={"group_session_timeout_ms": 6000, "commit_interval_s": 0.1}
    )
    log = open_log(settings)
    await log.start()
    editors = [Editor(f"RB{i}") for i in range(16)]
    a = b = None
    try:
        await append(log, settings, [created(ed.letter_id) for ed in editors])
        await append(log, settings, [ed.event(ed.paragraph("up")) for ed in editors])
        a = Instance(settings, log, options)
        pa = await asyncio.wait_for(asyncio.shield(a.ready), 60)
        async with aioredis.Redis.from_url(outage_redis.url) as client:
            await caught_up(log, settings, client, timeout=30)
        ends = await log.end_offsets(letters)

        async def committed() -> bool:  # the group's commits, the lag's base for new owners
            return await log.committed(options.group, letters) == ends

        await eventually(committed, 30)

        b = Instance(settings, log, options)
        pb = await asyncio.wait_for(asyncio.shield(b.ready), 60)  # past its Redis check
        await outage_redis.stop()

        def split() -> bool:
            mine, theirs = pa.owned.get(letters, frozenset()), pb.owned.get(letters, frozenset())
            return bool(mine and theirs and not mine & theirs and mine | theirs == set(range(4)))

        await eventually(split, 60)
        await append(log, settings, [ed.event(ed.type(0, "!")) for ed in editors])

        def lag_reported() -> bool:  # each reports its own partitions, from the last commits
            # The group may rebalance again meanwhile (a heartbeat late under load): owned
            # is then empty for a moment.
            mine, theirs = _lag(pa, letters), _lag(pb, letters)
            owned = set(mine) | set(theirs) == set(range(4)) and not set(mine) & set(theirs)
            owned = owned and frozenset(mine) == pa.owned.get(letters) and split()
            return owned and sum(mine.values()) + sum(theirs.values()) == len(editors)

        await eventually(lag_reported, 30)
        assert not a.task.done() and not b.task.done()
        assert _unreadable(caplog) == 2  # one warning per instance for the whole outage

        await outage_redis.start()
        async with aioredis.Redis.from_url(outage_redis.url) as client:
            await caught_up(log, settings, client, timeout=30)
            await a.stop()
            await b.stop()
            folded = await dump(client)
        assert folded["ydoc:RB3"] == "<paragraph>up!</paragraph>"
        replay = settings.model_copy(update={"redis_url": other_db()})
        async with aioredis.Redis.from_url(other_db()) as fresh:
            async with projector(replay, log, options.model_copy(update={"group": "replay"})):
                await caught_up(log, replay, fresh, timeout=30)
            assert folded == await dump(fresh)
    finally:
        for instance in (a, b):
            if instance is not None:
                await instance.stop()
        await log.close()
