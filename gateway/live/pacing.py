"""Messages over a budget wait for it: over the frame rate, every one in turn (`FrameRate`);
over a budget for their kind, the latest of each kind only (`Paced`).

Over the frame rate a message waits for its turn and its caller reads nothing more meanwhile, so
a client is read at its rate and a burst (a paste, a resync, a provider authenticating its
documents again) arrives whole and in order; stock y-websocket providers never come back after a
4429, which is kept for a client still over the rate `rate_wait_max_s` after it first had to
wait. `Connection` (a `/v1` socket's frames, a Hocuspocus document's) and the Hocuspocus socket
(messages for documents it has not authenticated) pace the same way.

Awareness over its rate (a caret must not stay stale) and requests for state over theirs (a
Hocuspocus provider counts its step 1 as unsaved until it is answered) are not dropped: the
latest message of each kind waits until the bucket allows and is handed on then; one it
replaces is counted as a refusal and never handed on. So a connection holds at most one waiting
message per kind, and a client over its budget costs a timer, not a queue.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.errors import RATE_LIMITED, Refused
from gateway.inbound import Inbound
from gateway.live.buckets import TokenBucket

log = logging.getLogger(__name__)


def waiting_task(
    run: Coroutine[Any, Any, None], wait: Coroutine[Any, Any, None]
) -> asyncio.Task[None]:
    """A task for `run`, which awaits `wait` (a message's wait) first. Cancelled before its
    first step (the socket went at once), it never awaits `wait`: closed with the task, not left
    to the collector's "never awaited" warning."""
    task = asyncio.create_task(run)
    task.add_done_callback(lambda _: wait.close())
    return task


class FrameRate:
    """A socket's budget of messages; over it each message waits its turn (above)."""

    def __init__(
        self, rate: float, burst: float, wait_max_s: float, paced: Callable[[], None]
    ) -> None:
        """`paced()` counts a message that has to wait."""
        self.bucket, self.wait_max_s, self._paced = TokenBucket(rate, burst), wait_max_s, paced
        self._over_since: float | None = None  # first wait of a run over the rate

    def take(self) -> bool:
        """Within the rate now (one taken); else the message must wait `wait_s()`."""
        if self.bucket.take():
            self._over_since = None
            return True
        return False

    def wait_s(self) -> float:
        """Over the rate: the seconds this message waits for its turn (its token taken ahead,
        into debt: `TokenBucket.reserve`). Refused (4429) for a client still over the rate
        `wait_max_s` after its run over it began."""
        now = time.monotonic()
        if self._over_since is None:
            self._over_since = now
        elif now - self._over_since > self.wait_max_s:
            raise Refused(RATE_LIMITED, "rate_limited")
        self._paced()
        return self.bucket.reserve()


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
