"""Helpers of the `Log` contract tests (conftest.py's fixtures open the logs)."""

from eventlog import Log

PARTITIONS = 4


def key_in(log: Log, topic: str, partition: int) -> bytes:
    """A letter id that lands in `partition`."""
    for n in range(10_000):
        key = f"letter-{n}".encode()
        if log.partition_for(topic, key) == partition:
            return key
    raise AssertionError("no key found")
