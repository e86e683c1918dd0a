"""An embedded log keeps the partition count its topics were created with (a letter's partition
is its key's hash modulo it): a different STENO_PARTITIONS later is ignored, and said so, as the
Kafka adapter says it (it was silent)."""

from pathlib import Path

import pytest

from eventlog.embedded import EmbeddedLog


async def test_a_changed_partition_count_is_kept_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = EmbeddedLog(tmp_path, 2, {"letters": None})
    await first.start()
    await first.close()
    caplog.clear()
    again = EmbeddedLog(tmp_path, 4, {"letters": None})
    await again.start()
    try:
        assert await again.partition_count("letters") == 2
    finally:
        await again.close()
    warned = [
        r.getMessage() for r in caplog.records if "partitions, not the configured" in r.getMessage()
    ]
    assert warned == [
        "the embedded log's topics have [2] partitions, not the configured 4: the topics decide"
        " (a letter's partition is its key's hash modulo their count)"
    ]


async def test_the_configured_count_says_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = EmbeddedLog(tmp_path, 2, {"letters": None})
    await log.start()
    await log.close()
    assert not [r for r in caplog.records if "not the configured" in r.getMessage()]
