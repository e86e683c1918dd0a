"""`projector_pending_folds_total`: the folds that saved a letter's state holding pending parts
(an update logged before the one it builds on), each of which makes the letter's next fold look
through them again; a fold that settles them, and the folds after it, are not counted."""

import asyncio
import contextlib
import logging

import pytest
import redis.asyncio as aioredis

from eventlog import Log
from projector.consumer import Projector
from projector.entry import run
from schemas.settings import Settings
from tests.projector.pending_updates import FULL, out_of_order, stored_text
from tests.projector.support import OPTIONS, Instance, append, caught_up, created
from tests.stoppable_redis import StoppableRedis
from tests.support import eventually


async def test_a_fold_that_saves_pending_parts_is_counted(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    ed, (hello, bang, world) = out_of_order("L-count")
    started: asyncio.Future[Projector] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run(settings, OPTIONS, log, started))
    try:
        projector = await asyncio.wait_for(asyncio.shield(started), 30)

        def pending_folds() -> float | None:
            return projector.metrics.registry.get_sample_value("projector_pending_folds_total")

        assert pending_folds() == 0.0  # listed from start
        await append(log, settings, [created("L-count"), ed.event(hello)])
        await caught_up(log, settings, client)
        assert pending_folds() == 0.0
        await append(log, settings, [ed.event(bang)])  # waits for " world"
        await caught_up(log, settings, client)
        assert pending_folds() == 1.0
        await append(log, settings, [ed.event(world)])  # settles it
        await caught_up(log, settings, client)
        assert await stored_text(client, "L-count") == FULL
        await append(log, settings, [ed.event(ed.paragraph("p2"))])
        await caught_up(log, settings, client)
        assert pending_folds() == 1.0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_batch_folded_again_after_redis_refused_its_write_counts_once(
    log: Log, settings: Settings, outage_redis: StoppableRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis out of memory refuses the batch's write (reads still answer): the projector folds
    the batch again from the stored positions until it lands. The counters counted each fold,
    written or not; they now count what reached Redis."""
    caplog.set_level(logging.DEBUG, logger="projector.consumer")  # failures after the first
    settings = settings.model_copy(update={"redis_url": outage_redis.url})
    ed, (hello, bang, _) = out_of_order("L-refused")
    async with aioredis.Redis.from_url(outage_redis.url) as client:
        instance = Instance(settings, log, OPTIONS)
        try:
            projector = await asyncio.wait_for(asyncio.shield(instance.ready), 30)

            def sample(name: str, **labels: str) -> float | None:
                return projector.metrics.registry.get_sample_value(name, labels)

            await append(log, settings, [created("L-refused"), ed.event(hello)])
            await caught_up(log, settings, client)
            assert sample("projector_events_folded_total", type="doc.update") == 1

            await client.config_set("maxmemory-policy", "noeviction")
            await client.config_set("maxmemory", "1")
            await append(log, settings, [ed.event(bang)])  # waits for " world": pending

            def refused() -> bool:
                return sum("batch not folded" in r.getMessage() for r in caplog.records) >= 2

            await eventually(refused, 30)  # folded twice at least, written never
            await client.config_set("maxmemory", "0")
            await caught_up(log, settings, client)
            assert sample("projector_events_folded_total", type="doc.update") == 2
            assert sample("projector_pending_folds_total") == 1
        finally:
            await instance.stop()
