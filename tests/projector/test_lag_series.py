"""`projector_lag_records` reports only the partitions this instance owns: after a rebalance the
partitions it gave away were still reported with their last value (two instances then reported
them, and one of the two froze: found in a Kafka fault review)."""

import asyncio
import contextlib
import time

import pytest

from eventlog import Log, LogUnavailableError
from projector.consumer import Projector
from projector.entry import run
from projector.settings import ProjectorSettings
from schemas.events import Topic
from schemas.settings import Settings
from tests.projector.support import append, created
from tests.support import eventually


def _lag(projector: Projector, topic: str, partition: int) -> float | None:
    labels = {"topic": topic, "partition": str(partition)}
    return projector.metrics.registry.get_sample_value("projector_lag_records", labels)


async def test_partitions_given_away_are_no_longer_reported(settings: Settings, log: Log) -> None:
    topic = settings.topic(Topic.LETTERS)
    letter = "L-lag"
    partition = log.partition_for(topic, letter.encode())
    await append(log, settings, [created(letter)])
    started: asyncio.Future[Projector] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run(settings, ProjectorSettings(), log, started))
    try:
        projector = await asyncio.wait_for(asyncio.shield(started), 30)

        async def reported() -> bool:  # folded, and its lag reported
            await projector.report(None)
            return _lag(projector, topic, partition) == 0

        await eventually(reported, timeout=30)
        await projector.revoked({topic: frozenset({partition})})
        assert _lag(projector, topic, partition) is None
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_report_in_flight_over_a_rebalance_reports_none_given_away(
    settings: Settings, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report reads the log's end offsets while a rebalance takes its partitions away: the
    labels it then set outlived the revocation (an instance reported partitions another owned,
    for good: seen as a CI failure of tests/projector/test_redis_outage.py under load)."""
    topic = settings.topic(Topic.LETTERS)
    letter = "L-lag2"
    partition = log.partition_for(topic, letter.encode())
    await append(log, settings, [created(letter)])
    started: asyncio.Future[Projector] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run(settings, ProjectorSettings(), log, started))
    try:
        projector = await asyncio.wait_for(asyncio.shield(started), 30)

        async def reported() -> bool:
            await projector.report(None)
            return _lag(projector, topic, partition) == 0

        await eventually(reported, timeout=30)
        ends = await log.end_offsets(topic)  # the group's commits: the base of unread positions
        await log.commit(ProjectorSettings().group, topic, {partition: ends[partition]})
        reading, release = asyncio.Event(), asyncio.Event()
        end_offsets = log.end_offsets

        async def slow_end_offsets(name: str) -> dict[int, int]:  # a slow broker, injected
            reading.set()
            await release.wait()
            return await end_offsets(name)

        monkeypatch.setattr(log, "end_offsets", slow_end_offsets)
        report = asyncio.create_task(projector.report(None))
        await reading.wait()
        await projector.revoked({topic: frozenset({partition})})
        release.set()
        await report
        assert _lag(projector, topic, partition) is None
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _RefusingMember:
    """A group member whose commits the log refuses (a broker that stalls on them)."""

    async def commit(self, topic: str, positions: object) -> None:
        raise LogUnavailableError("commit refused (injected)")


async def test_a_failed_commit_still_counts_the_lag_as_measured(
    settings: Settings, log: Log
) -> None:
    """The lag is read before the group commits: their failure said the lag was not measured
    (`projector_lag_measured_at_seconds` stopped, an alert fired on a fresh lag; re-read)."""
    letter = "L-lag3"
    await append(log, settings, [created(letter)])
    started: asyncio.Future[Projector] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run(settings, ProjectorSettings(), log, started))
    try:
        projector = await asyncio.wait_for(asyncio.shield(started), 30)
        topic = settings.topic(Topic.LETTERS)
        partition = log.partition_for(topic, letter.encode())

        async def reported() -> bool:  # its positions read and folded: the commits have some
            await projector.report(None)
            return _lag(projector, topic, partition) == 0

        await eventually(reported, timeout=30)
        before = time.time()
        with pytest.raises(LogUnavailableError):
            await projector.report(_RefusingMember())  # type: ignore[arg-type]
        measured = projector.metrics.registry.get_sample_value(
            "projector_lag_measured_at_seconds", {}
        )
        assert measured is not None and measured >= before
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
