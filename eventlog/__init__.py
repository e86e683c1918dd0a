"""The partitioned record log: the source of truth every service appends to or reads from.

Reads and writes Kafka-style records; owns nothing else. Two implementations behind one
`Log` protocol: an embedded single-node log (default) and Kafka through aiokafka.
"""

from eventlog.errors import (
    CorruptLogError,
    LogClosedError,
    LogError,
    LogUnavailableError,
    RecordTooLargeError,
)
from eventlog.records import Entry, Headers, Log, Record

__all__ = [
    "CorruptLogError",
    "Entry",
    "Headers",
    "Log",
    "LogClosedError",
    "LogError",
    "LogUnavailableError",
    "Record",
    "RecordTooLargeError",
]
