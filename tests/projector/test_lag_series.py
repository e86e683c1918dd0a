"""`projector_lag_records` reports only the partitions this instance owns: after a rebalance the
partitions it gave away were still reported with their last value (two instances then reported
them, and one of the two froze: found in a Kafka fault review). `projector_partitions_owned`
says how many it owns: an instance owning none measures no lag, and its alert on the age of
`projector_lag_measured_at_seconds` is told apart by it."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from eventlog import Log, LogUnavailableError
from projector.consumer import Projector
from projector.entry import run
from projector.settings import ProjectorSettings
from schemas.events import Topic
from schemas.settings import Settings
from tests.projector.support import append, created
from tests.support import eventually

LETTER = "L-lag"


@dataclass(frozen=True)
class Reported:
    """A running projector that folded LETTER and reported its partition's lag."""

    projector: Projector
    topic: str
    partition: int


@pytest_asyncio.fixture(loop_scope="session")
async def reported(settings: Settings, log: Log) -> AsyncIterator[Reported]:
    topic = settings.topic(Topic.LETTERS)
    partition = log.partition_for(topic, LETTER.encode())
    await append(log, settings, [created(LETTER)])
    started: asyncio.Future[Projector] = asyncio.get_running_loop().create_future()
    # Its own reports every hour: only the tests' calls report (a periodic one could pass for them).
    quiet = ProjectorSettings(commit_interval_s=3600)
    task = asyncio.create_task(run(settings, quiet, log, started))
    try:
        projector = await asyncio.wait_for(asyncio.shield(started), 30)

        async def folded() -> bool:  # its positions read and folded, and its lag reported
            await projector.report(None)
            return _lag(projector, topic, partition) == 0

        await eventually(folded, timeout=30)
        yield Reported(projector, topic, partition)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _lag(projector: Projector, topic: str, partition: int) -> float | None:
    labels = {"topic": topic, "partition": str(partition)}
    return projector.metrics.registry.get_sample_value("projector_lag_records", labels)


def _owned(projector: Projector, topics: list[str]) -> list[float | None]:
    sample = projector.metrics.registry.get_sample_value
    return [sample("projector_partitions_owned", {"topic": t}) for t in topics]


async def test_partitions_given_away_are_no_longer_reported(reported: Reported) -> None:
    projector, topic, partition = reported.projector, reported.topic, reported.partition
    await projector.revoked({topic: frozenset({partition})})
    assert _lag(projector, topic, partition) is None


async def test_the_partitions_owned_are_counted_until_revoked(
    reported: Reported, settings: Settings
) -> None:
    """A spare instance (none owned) measures no lag: its `..._measured_at_seconds` stops, and
    the README's alert excludes it by `projector_partitions_owned > 0`."""
    projector = reported.projector
    topics = [settings.topic(kind) for kind in (Topic.LETTERS, Topic.PRESENCE)]
    assert _owned(projector, topics) == [settings.partitions] * 2  # the only member: all
    await projector.revoked({t: frozenset(range(settings.partitions)) for t in topics})
    assert _owned(projector, topics) == [0, 0]


async def test_a_report_in_flight_over_a_rebalance_reports_none_given_away(
    reported: Reported, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report reads the log's end offsets while a rebalance takes its partitions away: the
    labels it then set outlived the revocation (an instance reported partitions another owned,
    for good: seen as a CI failure of tests/projector/test_redis_outage.py under load)."""
    projector, topic, partition = reported.projector, reported.topic, reported.partition
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


class _RefusingMember:
    """A group member whose commits the log refuses (a broker that stalls on them)."""

    async def commit(self, topic: str, positions: object) -> None:
        raise LogUnavailableError("commit refused (injected)")


async def test_a_failed_commit_still_counts_the_lag_as_measured(reported: Reported) -> None:
    """The lag is read before the group commits: their failure said the lag was not measured
    (`projector_lag_measured_at_seconds` stopped, an alert fired on a fresh lag; re-read)."""
    projector = reported.projector  # its positions read and folded: the commits have some
    before = time.time()
    with pytest.raises(LogUnavailableError):
        await projector.report(_RefusingMember())  # type: ignore[arg-type]
    measured = projector.metrics.registry.get_sample_value("projector_lag_measured_at_seconds", {})
    assert measured is not None and measured >= before
