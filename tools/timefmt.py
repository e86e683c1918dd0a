"""Instants on the command line and the REST API: ISO-8601 in, ms since the epoch inside."""

import datetime as dt


class BadInstant(ValueError):
    """Not an ISO-8601 instant."""


def parse_instant(text: str) -> int:
    """ms since the epoch of an ISO-8601 instant; a time without zone is UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInstant(
            f"{text!r} is not an ISO-8601 instant (e.g. 2026-11-27T10:00:00Z)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


def iso(ms: int) -> str:
    """ms since the epoch as an ISO-8601 UTC instant with milliseconds."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")


def to_datetime(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
