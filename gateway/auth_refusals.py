"""Why tokens were refused, for operators: a log line and a count per reason.

A caller with a bad token gets a bare `unauthorized` (401, or the handshake's refusal), which
tells someone forging tokens nothing about which check failed. The reason (`REASONS`, named by
gateway/auth.py) goes to the log at INFO with the client's host, never anything of the token,
and to `gateway_auth_refusals_total{reason}` (every reason at 0 from start, gateway/metrics.py,
so that rate() and absent() see them before the first refusal); the refusal is still counted
as `unauthorized` in `gateway_refusals_total`, as before. A flood of bad tokens must not flood
the log: as eventlog/kafka_quiet.py does for aiokafka, the first refusal of each reason is
logged at once, then at most one per `REPEAT_S`, saying how many of that reason were not.
"""

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.errors import AuthError

if TYPE_CHECKING:  # gateway/metrics.py reads REASONS from here
    from gateway.metrics import Metrics

log = logging.getLogger(__name__)
REPEAT_S = 30.0  # a reason's refusals are logged at most this often
# Why a token was refused: a fixed set, so that a log line or a metric label never carries
# anything of the token itself.
REASONS = (
    "missing", "malformed", "algorithm", "unknown_key", "bad_signature", "expired",
    "not_yet_valid", "audience", "issuer", "claims",
)  # fmt: skip


class Refusals:
    """One gateway's refused tokens (a Verifier's): rate-limited log lines, counts by reason."""

    def __init__(self, repeat_s: float = REPEAT_S, clock: Callable[[], float] = time.monotonic):
        self._repeat_s, self._clock = repeat_s, clock
        self._shown: dict[str, tuple[float, int]] = {}  # reason -> when logged, refused since

    def note(self, metrics: "Metrics", exc: AuthError, where: str, host: str | None) -> None:
        """Count and (unless one of its reason was logged lately) log the refusal `exc` of a
        token `where` ("REST", "handshake", "renewal") from `host`."""
        reason = getattr(exc, "reason", "malformed")  # every refusal in auth.py names one
        metrics.auth_refusals.labels(reason).inc()
        now = self._clock()
        shown = self._shown.get(reason)
        if shown is not None and now - shown[0] < self._repeat_s:
            self._shown[reason] = (shown[0], shown[1] + 1)
            return
        self._shown[reason] = (now, 0)
        more = f" ({shown[1]} more refused as {reason} not logged)" if shown and shown[1] else ""
        log.info("%s token refused: %s, from %s%s", where, reason, host or "unknown host", more)
