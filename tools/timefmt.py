"""Instants on the command line and the REST API: ISO-8601 in, ms since the epoch inside.

An instant whose UTC time lies outside the years 1-9999 (e.g. `0001-01-01T00:00:00+01:00`, a
valid ISO-8601 instant in year 0 UTC) is rejected as a bad instant rather than clamped: the
tools compare instants with record times and PostgreSQL timestamps as Python datetimes, which
cannot hold it, and no record of the log is that old or that far ahead anyway.
"""

import datetime as dt
import re

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)
FIRST_MS = (dt.datetime.min.replace(tzinfo=dt.UTC) - EPOCH) // _MS
LAST_MS = (dt.datetime.max.replace(tzinfo=dt.UTC) - EPOCH) // _MS
_UTC_SUFFIX = re.compile(r"[zZ]$")  # RFC 3339 allows a lowercase "z"; fromisoformat does not


class BadInstant(ValueError):
    """Not an ISO-8601 instant, or one the tools cannot represent."""


def parse_instant(text: str) -> int:
    """ms since the epoch of an ISO-8601 instant; a time without zone is UTC."""
    try:
        value = dt.datetime.fromisoformat(_UTC_SUFFIX.sub("+00:00", text.strip()))
    except ValueError:
        raise BadInstant(
            f"{text!r} is not an ISO-8601 instant (e.g. 2026-11-27T10:00:00Z)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    ms = (value - EPOCH) // _MS  # exact: aware subtraction never builds an out-of-range datetime
    if not FIRST_MS <= ms <= LAST_MS:
        raise BadInstant(f"{text!r} is outside the years 1-9999 UTC")
    return ms


def iso(ms: int) -> str:
    """ms since the epoch as an ISO-8601 UTC instant with milliseconds."""
    return to_datetime(ms).isoformat(timespec="milliseconds")


def to_datetime(ms: int) -> dt.datetime:
    return EPOCH + ms * _MS
