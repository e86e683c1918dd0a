"""`snapshotter_lag_measured_at_seconds`: while the broker cannot be read the snapshotter logs
once and `snapshotter_lag_records` keeps its last value, so an alert on the lag never fired
while nothing was folded (a Kafka fault review, the broker away ~2 minutes). The time of the
last measurement moves with each measurement and stops while the log fails, which an alert on
`time() - snapshotter_lag_measured_at_seconds` sees. An instance owning no partition measures
nothing either: `snapshotter_partitions_owned` lets the alert leave it out."""

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

import pytest

from eventlog.embedded import EmbeddedLog
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.service import LAG_INTERVAL_S, Owner, serve
from snapshotter.store import Store
from steno_collab.processes import Supervised
from tests.eventlog.brokers import own_broker
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.metrics_scrape import Samples, scrape, serving
from tests.snapshotter.scripts import LetterScript, append
from tests.support import eventually, free_port, frozen, started_log

__all__ = ["own_broker"]  # the fixture of tests/eventlog/brokers.py: a broker the test may stop
MEASURED = ("snapshotter_lag_measured_at_seconds", ())
STALE_S = 3 * LAG_INTERVAL_S  # measurements missed: what the alert waits for


async def test_the_lag_measured_time_stops_while_the_broker_cannot_be_read(
    own_broker: tuple[str, Supervised],
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="snapshotter")
    bootstrap, broker = own_broker
    settings = make_settings(
        log_url=f"kafka://{bootstrap}", kafka_idempotence=False,
        topic_prefix=f"m{uuid.uuid4().hex[:8]}.",
        append_timeout_s=1.0,  # each call to the stalled broker fails within it
    )  # fmt: skip
    topic = settings.topic(Topic.LETTERS)
    port = free_port()
    async with started_log(settings) as log:
        letter = "L-measured"
        partition = str(log.partition_for(topic, letter.encode()))
        lag_key = ("snapshotter_lag_records", (("partition", partition), ("topic", topic)))
        await append(log, topic, [LetterScript(letter).created()])
        task = asyncio.create_task(serve(settings, log, metrics_port=port))
        try:
            await serving(task, caplog)

            async def caught_up() -> Samples | None:
                samples = await scrape(port)
                return samples if samples.get(lag_key) == 0 and samples[MEASURED] > 0 else None

            first = (await eventually(caught_up, timeout=30))[MEASURED]

            async def measured_after(t: float) -> bool:
                return (await scrape(port))[MEASURED] > t

            await eventually(lambda: measured_after(first), timeout=10)  # moves each measurement

            with frozen(broker.pid):
                await eventually(lambda: "snapshotter lag not measured" in caplog.text, timeout=10)
                stalled = (await scrape(port))[MEASURED]

                async def alerting() -> bool:  # the alert's condition, and nothing measured
                    samples = await scrape(port)
                    assert samples[MEASURED] == stalled
                    return time.time() - samples[MEASURED] > STALE_S

                await eventually(alerting, timeout=STALE_S + 10, interval=0.2)
                assert (await scrape(port)).get(lag_key) == 0  # the last value, as before

            await eventually(lambda: measured_after(stalled), timeout=30)  # measured again
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_the_partitions_owned_are_counted_from_assignment_to_revocation(
    elog: EmbeddedLog, make_settings: Callable[..., Settings], store: Store
) -> None:
    owner = Owner(Snapshotter(make_settings(), elog, store))

    def owned() -> float | None:
        registry = owner.snapshotter.metrics.registry
        return registry.get_sample_value("snapshotter_partitions_owned", {"topic": LETTERS})

    assert owned() == 0  # a spare until assigned: its lag is never measured
    await owner.assigned({LETTERS: frozenset({0, 1})})
    assert owned() == 2
    await owner.revoked({LETTERS: frozenset({0, 1})})
    assert owned() == 0
