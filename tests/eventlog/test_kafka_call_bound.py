"""The log built from settings bounds each Kafka call by `append_timeout_s`
(STENO_APPEND_TIMEOUT_S): the factory left KafkaLog at its own 10 s, so a read or an end-offset
lookup on a stalled broker (Tansu SIGSTOPped) took 10 s to fail whatever was configured."""

import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from eventlog.errors import LogUnavailableError
from eventlog.factory import open_log
from eventlog.records import Entry
from schemas.events import Topic
from schemas.settings import Settings
from steno_collab.processes import Supervised
from tests.eventlog.brokers import own_broker
from tests.support import frozen

__all__ = ["own_broker"]  # the fixture of tests/eventlog/brokers.py: a broker the test may stop
TIMEOUT_S = 1.0  # the configured bound; KafkaLog's own default is 10 s
SLACK_S = 1.5  # a loaded machine's lag past the bound


async def test_the_append_timeout_bounds_reads_and_end_offsets_on_a_stalled_broker(
    own_broker: tuple[str, Supervised], tmp_path: Path
) -> None:
    bootstrap, proc = own_broker
    settings = Settings(
        data_dir=tmp_path, partitions=2, topic_prefix=f"b{uuid.uuid4().hex[:8]}.",
        log_url=f"kafka://{bootstrap}", kafka_idempotence=False, append_timeout_s=TIMEOUT_S,
    )  # fmt: skip
    log = open_log(settings)
    await log.start()
    topic = settings.topic(Topic.LETTERS)
    partition = log.partition_for(topic, b"k")
    try:
        await log.append(topic, b"k", [Entry(b"v")])
        assert await log.end_offset(topic, partition) == 1  # connected before the stall
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: log.end_offset(topic, partition),
            lambda: log.end_offsets(topic),
            lambda: log.read(topic, partition, 0),
        ]
        with frozen(proc.pid):
            for call in calls:
                began = time.monotonic()
                with pytest.raises(LogUnavailableError):
                    await call()
                assert time.monotonic() - began < TIMEOUT_S + SLACK_S
    finally:
        await log.close()
