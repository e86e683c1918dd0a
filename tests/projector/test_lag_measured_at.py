"""`projector_lag_measured_at_seconds`: while the broker cannot be read, `report` raises and
`projector_lag_records` keeps its last value (0 for a caught-up partition), so an alert on the
lag never fired while nothing was folded (a Kafka fault review, the broker away ~2 minutes).
The time of the last measurement moves with each report and stops while the log fails."""

import asyncio
import contextlib
import uuid
from pathlib import Path

import pytest

from eventlog.errors import LogUnavailableError
from projector.consumer import Projector
from projector.entry import run
from schemas.events import Topic
from schemas.settings import Settings
from steno_collab.processes import Supervised
from tests.eventlog.brokers import own_broker
from tests.projector.support import OPTIONS, append, created
from tests.support import eventually, frozen, started_log

__all__ = ["own_broker"]  # the fixture of tests/eventlog/brokers.py: a broker the test may stop
# Only the test reports (no report of the housekeeping loop lands in the middle of it).
QUIET = OPTIONS.model_copy(update={"commit_interval_s": 3600, "group_session_timeout_ms": 6000})


def _sample(projector: Projector, name: str, **labels: str) -> float | None:
    return projector.metrics.registry.get_sample_value(name, labels)


async def test_the_lag_measured_time_stops_while_the_broker_cannot_be_read(
    own_broker: tuple[str, Supervised], tmp_path: Path, redis_db: str
) -> None:
    bootstrap, broker = own_broker
    settings = Settings(
        data_dir=tmp_path / "steno", redis_url=redis_db, log_url=f"kafka://{bootstrap}",
        kafka_idempotence=False, topic_prefix=f"m{uuid.uuid4().hex[:8]}.", partitions=2,
        append_timeout_s=1.0,  # each call to the stalled broker fails within it
    )  # fmt: skip
    topic, letter = settings.topic(Topic.LETTERS), "L-measured"
    async with started_log(settings) as log:
        partition = log.partition_for(topic, letter.encode())
        await append(log, settings, [created(letter)])
        started: asyncio.Future[Projector] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(run(settings, QUIET, log, started))
        try:
            projector = await asyncio.wait_for(asyncio.shield(started), 30)

            def measured() -> float | None:
                return _sample(projector, "projector_lag_measured_at_seconds")

            def lag() -> float | None:
                return _sample(
                    projector, "projector_lag_records", topic=topic, partition=str(partition)
                )

            async def reported() -> bool:  # folded, and its lag reported
                await projector.report(None)
                return lag() == 0

            await eventually(reported, timeout=30)
            first = measured()
            assert first is not None and first > 0
            await projector.report(None)
            moved = measured()
            assert moved is not None and moved > first  # each successful report sets it

            with frozen(broker.pid):
                for _ in range(2):  # the first also outlasts any call in flight at the stall
                    with pytest.raises(LogUnavailableError):
                        await projector.report(None)
                stalled = measured()
                with pytest.raises(LogUnavailableError):
                    await projector.report(None)
                assert measured() == stalled  # stopped: what the alert sees
                assert lag() == 0  # the lag keeps its last value, as before

            await eventually(lambda: _reports(projector), timeout=30)
            back = measured()
            assert back is not None and stalled is not None and back > stalled
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _reports(projector: Projector) -> bool:
    """A report that reaches the broker again (its connections are re-established first)."""
    try:
        await projector.report(None)
    except LogUnavailableError:
        return False
    return True
