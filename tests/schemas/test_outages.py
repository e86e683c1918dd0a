"""`Outage`: one WARNING per outage, DEBUG for the failures after it, one INFO line with their
count when the dependency works again, and nothing when it worked all along."""

import logging
from collections import defaultdict

import pytest

from schemas.outages import Outage
from schemas.wording import counted

logger = logging.getLogger("tests.outages")


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == logger.name]


def test_an_outage_is_one_warning_then_debug_then_one_info_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=logger.name)
    outage = Outage()
    assert outage.recovered(logger, "x works again, after %d failure(s)") == 0  # none: silent
    counts = [outage.failed(logger, "x failed: %s", f"boom {i}") for i in range(3)]
    assert counts == [1, 2, 3]
    assert outage.recovered(logger, "%s works again, after %d failure(s)", "x") == 3
    assert outage.recovered(logger, "x works again, after %d failure(s)") == 0  # said once
    outage.failed(logger, "x failed: %s", "again")  # a new outage is warned of anew
    assert _lines(caplog) == [
        (logging.WARNING, "x failed: boom 0"),
        (logging.DEBUG, "x failed: boom 1"),
        (logging.DEBUG, "x failed: boom 2"),
        (logging.INFO, "x works again, after 3 failure(s)"),
        (logging.WARNING, "x failed: again"),
    ]


def test_over_ends_an_outage_silently_and_attempt_counts_the_one_under_way(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=logger.name)
    outage = Outage()
    assert outage.attempt == 1
    outage.failed(logger, "attempt %d failed", outage.attempt)
    outage.failed(logger, "attempt %d failed", outage.attempt)
    assert outage.attempt == 3  # the third: two failed before it
    assert outage.over() == 2
    assert (outage.failures, outage.attempt, outage.over()) == (0, 1, 0)
    outage.failed(logger, "attempt %d failed", outage.attempt)
    assert _lines(caplog) == [
        (logging.WARNING, "attempt 1 failed"),
        (logging.DEBUG, "attempt 2 failed"),
        (logging.WARNING, "attempt 1 failed"),
    ]


def test_keyed_outages_are_told_apart(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=logger.name)
    outages: defaultdict[str, Outage] = defaultdict(Outage)
    outages["a"].failed(logger, "%s failed", "a")
    outages["b"].failed(logger, "%s failed", "b")  # its own first failure: a WARNING too
    outages["a"].failed(logger, "%s failed", "a")
    outages["b"].recovered(logger, "%s again after %d", "b")
    assert _lines(caplog) == [
        (logging.WARNING, "a failed"),
        (logging.WARNING, "b failed"),
        (logging.DEBUG, "a failed"),
        (logging.INFO, "b again after 1"),
    ]
    assert outages["a"].failures == 2


@pytest.mark.parametrize(("failures", "said"), [(1, "after 1 failure"), (3, "after 3 failures")])
def test_a_unit_counts_the_failures_in_words(
    caplog: pytest.LogCaptureFixture, failures: int, said: str
) -> None:
    caplog.set_level(logging.DEBUG, logger=logger.name)
    outage = Outage()
    for _ in range(failures):
        outage.failed(logger, "x failed")
    assert outage.recovered(logger, "%s works again after %s", "x", unit="failure") == failures
    assert outage.recovered(logger, "x works again after %s", unit="failure") == 0  # said once
    assert _lines(caplog)[-1] == (logging.INFO, f"x works again {said}")


def test_counted() -> None:
    assert [counted(n, "restart") for n in (0, 1, 2)] == ["0 restarts", "1 restart", "2 restarts"]
