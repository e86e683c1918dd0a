"""Messages over a connection's budget for their kind wait for it, the latest of each kind only.

Awareness over its rate (a caret must not stay stale) and requests for state over theirs (a
Hocuspocus provider counts its step 1 as unsaved until it is answered) are not dropped: the
latest message of each kind waits until the bucket allows and is handed on then; one it
replaces is counted as a refusal and never handed on. So a connection holds at most one waiting
message per kind, and a client over its budget costs a timer, not a queue.
"""

import asyncio
import logging
from collections.abc import Callable

from gateway.inbound import Inbound
from gateway.live.buckets import TokenBucket

log = logging.getLogger(__name__)


class Paced:
    def __init__(
        self,
        bucket: TokenBucket,
        reason: str,
        deliver: Callable[[Inbound], None],
        refuse: Callable[[str], None],
    ) -> None:
        """`deliver(msg)` hands a message on (from a timer: it must not raise); `refuse(reason)`
        counts one that was replaced."""
        self.bucket, self.reason = bucket, reason
        self._deliver, self._refuse = deliver, refuse
        self._waiting: dict[str, Inbound] = {}  # by kind
        self._timer: asyncio.TimerHandle | None = None

    def take(self) -> bool:
        """Within the budget now (one taken): the caller hands the message on itself."""
        return self.bucket.take()

    def wait(self, msg: Inbound) -> None:
        """Over the budget: `msg` waits for it, in place of any waiting message of its kind."""
        if msg.kind in self._waiting:
            self._refuse(self.reason)
        self._waiting[msg.kind] = msg
        if self._timer is None:
            self._arm()

    def stop(self) -> None:
        """The connection ended: nothing more is handed on."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting.clear()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.bucket.wait_s(), self._release)

    def _release(self) -> None:
        self._timer = None
        while self._waiting:
            if not self.bucket.take():
                self._arm()
                return
            kind = next(iter(self._waiting))
            msg = self._waiting.pop(kind)
            try:
                self._deliver(msg)
            except Exception as exc:  # validated when it arrived; nothing here should fail
                log.warning("a waiting %s was refused: %r", kind, exc)
