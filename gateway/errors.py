"""Close codes (DESIGN.md "Wire protocol") and the gateway's exception tree."""

# After accept. 4xxx mirror the HTTP statuses they correspond to.
MALFORMED = 4400  # a frame we could not parse, or that pycrdt refused
TOKEN_EXPIRED = 4401
FORBIDDEN = 4403  # permission revoked
TOO_LARGE = 4413  # message above settings.max_message_bytes, or the document above its cap
RATE_LIMITED = 4429
LOG_UNAVAILABLE = 4503  # the append failed: reconnect and resync
GOING_AWAY = 1001  # server shutting down (drain)
TRY_AGAIN_LATER = 1013
SLOW_CONSUMER = TRY_AGAIN_LATER  # we could not deliver fast enough
# Hocuspocus' own "reset connection": every provider reconnects. A 2.x provider never does after
# 4401, so its token expiry is this (gateway/live/addressed.py).
RESET_CONNECTION = 4205


class GatewayError(Exception):
    """Base of the gateway's errors."""


class AuthError(GatewayError):
    """The token is missing or invalid (HTTP 401)."""


class AccessDenied(GatewayError):
    """The letter is not reachable for this user (HTTP 403; unknown letters look the same)."""


class Refused(GatewayError):
    """A connection must be closed with `code`; `reason` goes into metrics and the close frame."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code, self.reason = code, reason
