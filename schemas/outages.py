"""Log a failing dependency once per outage: a WARNING when it starts failing, DEBUG while it goes
on (a line per retry was hundreds of WARNINGs), one INFO line with the count when it works again.

One `Outage` per thing retried; per key (a housekeeping step, a letter) a
`defaultdict(Outage)` does. A dependency whose clients retry on their own, many of them, each
logging (aiokafka's, asyncpg's pools), is told by `told_outage` instead: a probe of its own.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from schemas.wording import counted


class Outage:
    """The failures in a row of one dependency, since it last worked."""

    def __init__(self) -> None:
        self.failures = 0

    @property
    def attempt(self) -> int:
        """The number of the attempt under way: the failures before it, plus one (for messages
        that count attempts, the failed one or the one that worked)."""
        return self.failures + 1

    def failed(self, logger: logging.Logger, msg: str, *args: object) -> int:
        """Count a failure and log `msg % args`: WARNING if it starts the outage, else DEBUG.
        Returns the failures so far."""
        self.failures += 1
        logger.log(logging.WARNING if self.failures == 1 else logging.DEBUG, msg, *args)
        return self.failures

    def over(self) -> int:
        """End the outage without a word; returns its failures (0: there was none)."""
        failures, self.failures = self.failures, 0
        return failures

    def recovered(
        self, logger: logging.Logger, msg: str, *args: object, unit: str | None = None
    ) -> int:
        """End the outage, if any, with one INFO line: `msg % (*args, failures)` (so `msg` ends
        with the count's `%d`), or, given `unit` ("failure"), `msg % (*args, counted(failures,
        unit))` ("1 failure", "3 failures": `msg` ends with `%s`). Returns the failures (0:
        none, and nothing is logged)."""
        failures = self.over()
        if failures:
            logger.info(msg, *args, failures if unit is None else counted(failures, unit))
        return failures


async def told_outage(
    logger: logging.Logger,
    what: str,
    since: float,
    cause: str,
    answers: Callable[[], Awaitable[bool]],
    every_s: float,
    *,
    meanwhile: str = "",
    after: Callable[[], str] = lambda: "",
    watched: Callable[[], bool] = lambda: True,
) -> bool:
    """An outage of `what` ("Kafka log host:port"), noticed at `since` (unix time) failing with
    `cause`, in two WARNING lines: "`what` unreachable since <time> (`cause`)`meanwhile`" once
    `answers()` says no, then, asking every `every_s` until it says yes, "`what` reachable
    again after <n>s`after()`". False, and nothing said, if it answers at once: not an outage.
    Ends without the second line once `watched()` is False (nobody left to tell)."""
    if await answers():
        return False
    at = datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
    logger.warning("%s unreachable since %s (%s)%s", what, at, cause, meanwhile)
    while True:  # polled: the clients that retry tell no one when it is back
        await asyncio.sleep(every_s)
        if not watched():
            return True
        if await answers():
            break
    logger.warning("%s reachable again after %.0fs%s", what, time.time() - since, after())
    return True
