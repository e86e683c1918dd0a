"""Instants in and out of the tools. Pure."""

import pytest

from tools.timefmt import BadInstant, iso, parse_instant, to_datetime


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+01:00",  # year 0 in UTC
        "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
        "yesterday",
    ],
)
def test_what_the_tools_cannot_represent_is_a_bad_instant(text: str) -> None:
    with pytest.raises(BadInstant):
        parse_instant(text)


def test_the_whole_range_round_trips() -> None:
    first = parse_instant("0001-01-01T00:00:00Z")
    last = parse_instant("9999-12-31T23:59:59.999Z")
    assert iso(first) == "0001-01-01T00:00:00.000+00:00"
    assert iso(last) == "9999-12-31T23:59:59.999+00:00"
    assert to_datetime(last).year == 9999


def test_utc_may_be_written_z_or_lowercase_z() -> None:
    ms = parse_instant("2026-11-27T10:00:00+00:00")
    assert parse_instant("2026-11-27T10:00:00Z") == ms
    assert parse_instant("2026-11-27t10:00:00z") == ms
    assert parse_instant("2026-11-27T10:00:00") == ms  # no zone: UTC
    assert parse_instant("2026-11-27T10:00:00.123z") == ms + 123
