"""Log a failing dependency once per outage: a WARNING when it starts failing, DEBUG while it goes
on (a line per retry was hundreds of WARNINGs), one INFO line with the count when it works again.

One `Outage` per thing retried; per key (a housekeeping step, a letter) a
`defaultdict(Outage)` does.
"""

import logging


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

    def recovered(self, logger: logging.Logger, msg: str, *args: object) -> int:
        """End the outage, if any, with one INFO line: `msg % (*args, failures)` (so `msg` ends
        with the count's `%d`). Returns the failures (0: none, and nothing is logged)."""
        failures = self.over()
        if failures:
            logger.info(msg, *args, failures)
        return failures
