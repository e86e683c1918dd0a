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


def test_an_instant_between_two_ms_is_the_one_before_as_a_point_and_after_as_a_bound() -> None:
    """Records' times are whole ms: `history --since ...38.7379Z` listed a record of .737."""
    at = parse_instant("2026-12-06T14:32:38.737Z")
    assert parse_instant("2026-12-06T14:32:38.7379Z") == at  # replay as it was then: .737 in
    assert parse_instant("2026-12-06T14:32:38.7379Z", bound=True) == at + 1  # since: .737 out
    assert parse_instant("2026-12-06T14:32:38.7371Z", bound=True) == at + 1  # until: .737 in
    assert parse_instant("2026-12-06T14:32:38.737000Z", bound=True) == at  # exact: unchanged
    assert parse_instant("9999-12-31T23:59:59.9999Z", bound=True) == parse_instant(
        "9999-12-31T23:59:59.999Z"
    )
