"""Kafka's default partitioner (murmur2), so both log adapters place a key in the same partition.

A letter's events must land in the partition a Kafka producer would choose, so that logs copied
between the embedded and Kafka backends (or produced by other Kafka clients) keep each letter
in one partition, in order.
"""

from functools import lru_cache

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as in Kafka's Java client (`Utils.murmur2`), as an unsigned 32-bit int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    full = length - length % 4
    for i in range(0, full, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    h = _tail(h, data[full:])
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def _tail(h: int, rest: bytes) -> int:
    # Java's switch fall-through: bytes 3, 2, 1 of the tail, then one multiply.
    if not rest:
        return h
    for index in range(len(rest) - 1, -1, -1):
        h ^= rest[index] << (8 * index)
    return (h * _M) & _MASK


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a non-null key."""
    if type(key) is bytes:
        return _positive_hash(key) % partitions
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@lru_cache(maxsize=1 << 16)
def _positive_hash(key: bytes) -> int:
    # Keys are letter ids, appended to again and again: murmur2 in Python was ~2 % of the
    # gateway's busy time at 2,500 appends/s, a cache hit is a dict lookup.
    return murmur2(key) & 0x7FFFFFFF
