"""Instants on the command line and the REST API: ISO-8601 in, ms since the epoch inside.

An instant whose UTC time lies outside the years 1-9999 (e.g. `0001-01-01T00:00:00+01:00`, a
valid ISO-8601 instant in year 0 UTC) is rejected as a bad instant rather than clamped: the
tools compare instants with record times and PostgreSQL timestamps as Python datetimes, which
cannot hold it, and no record of the log is that old or that far ahead anyway.
"""

import datetime as dt
import re

# The tools import these from here too (schemas holds them for the services as well).
from schemas.instants import EPOCH as EPOCH
from schemas.instants import FIRST_MS as FIRST_MS
from schemas.instants import LAST_MS as LAST_MS
from schemas.instants import MS

_UTC_SUFFIX = re.compile(r"[zZ]$")  # RFC 3339 allows a lowercase "z"; fromisoformat does not
# A "+HH:MM" offset whose "+" a URL query decoded as a space ("...:00.084 01:00"). Not taken as
# "+": a hint says what to send, so clients learn to encode rather than rely on a guess.
_PLUS_DECODED = re.compile(r"T\d{2}(:\d{2}){0,2}(\.\d+)? \d{2}(:?\d{2})?$")


class BadInstant(ValueError):
    """Not an ISO-8601 instant, or one the tools cannot represent."""


def parse_instant(text: str, bound: bool = False) -> int:
    """ms since the epoch of an ISO-8601 instant; a time without zone is UTC. Records' times
    are whole ms: an instant between two is the ms before it as a point in time ("as it was
    at"), the ms after it as a `bound` of a window (`since <= t < until`), so a record at
    .737 is neither after .7379 nor before .7371."""
    try:
        value = dt.datetime.fromisoformat(_UTC_SUFFIX.sub("+00:00", text.strip()))
    except ValueError:
        hint = "e.g. 2026-11-27T10:00:00Z"
        if _PLUS_DECODED.search(text.strip()):
            hint = "a space where a +HH:MM offset would be: in a URL, encode + as %2B"
        raise BadInstant(f"{text!r} is not an ISO-8601 instant ({hint})") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    ms = (value - EPOCH) // MS  # exact: aware subtraction never builds an out-of-range datetime
    if not FIRST_MS <= ms <= LAST_MS:
        raise BadInstant(f"{text!r} is outside the years 1-9999 UTC")
    if bound and value.microsecond % 1000:
        return min(ms + 1, LAST_MS)
    return ms


def iso(ms: int) -> str:
    """ms since the epoch as an ISO-8601 UTC instant with milliseconds."""
    return to_datetime(ms).isoformat(timespec="milliseconds")


def to_datetime(ms: int) -> dt.datetime:
    return EPOCH + ms * MS


def ms_of(at: dt.datetime) -> int:
    """ms since the epoch of an aware datetime, exactly (a float `timestamp()` can lose one)."""
    return (at - EPOCH) // MS


def iso_of(at: dt.datetime) -> str:
    """An aware datetime (a PostgreSQL timestamptz) as `iso` writes instants: UTC, milliseconds."""
    return iso(ms_of(at))
