"""`Log.end_offset`: one partition's end, as `end_offsets` lists it, on both implementations."""

import pytest

from eventlog import Entry, Log, LogError
from tests.eventlog.log_contract import PARTITIONS, key_in


async def test_one_partitions_end(log: Log, topic: str) -> None:
    key = key_in(log, topic, 1)
    assert await log.end_offset(topic, 1) == 0
    await log.append(topic, key, [Entry(b"x")] * 3)  # one batch of three: Tansu lists it short
    await log.append(topic, key, [Entry(b"y")])
    assert [await log.end_offset(topic, p) for p in range(PARTITIONS)] == [0, 4, 0, 0]
    assert await log.end_offsets(topic) == {0: 0, 1: 4, 2: 0, 3: 0}
    with pytest.raises(LogError):
        await log.end_offset(topic, PARTITIONS)
