"""The embedded partitioner agrees with aiokafka's (Kafka's Java client's) murmur2."""

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as kafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog.partitioner import murmur2, partition_for


@settings(max_examples=3000, deadline=None)
@given(key=st.binary(max_size=64), partitions=st.integers(min_value=1, max_value=1024))
def test_agrees_with_aiokafka(key: bytes, partitions: int) -> None:
    assert murmur2(key) == kafka_murmur2(key)
    expected = DefaultPartitioner()(key, list(range(partitions)), [])
    assert partition_for(key, partitions) == expected


def test_known_java_values() -> None:
    # Values from Kafka's own UtilsTest.testMurmur2 (signed Java ints).
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536}
    for data, signed in cases.items():
        assert murmur2(data) == signed & 0xFFFFFFFF
