"""A connection's session: the token it runs on, its expiry, and its renewal in place.

The session ends when its token expires (the connection is closed with 4401), unless a later
token of the same user, firm and role arrives first: a Hocuspocus provider answers our token
request with one (gateway/live/addressed.py), a `/v1` client sends `auth.renew` on the app
channel (gateway/collab/channel.py). Such a token is verified as a handshake's and charged to
the user's handshake budget; one of another identity, a changed role included, extends nothing
(a new role takes a new session), and the session still ends at its current token's expiry.
"""

import asyncio
import time
from collections.abc import Callable

from gateway.auth import Claims
from gateway.context import Context
from gateway.errors import TOKEN_EXPIRED, AuthError


class Session:
    def __init__(
        self,
        ctx: Context,
        claims: Claims,
        close: Callable[[int, str], None],
        host: str | None = None,
    ) -> None:
        """`close(code, reason)` ends the connection (at expiry: 4401); `host`: the client's
        address, which a refused renewal is logged with, as a refused handshake is."""
        self.ctx, self.claims, self._close, self.host = ctx, claims, close, host
        self._ask: tuple[Callable[[], None], float] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._renewing: asyncio.Task[None] | None = None
        self._ended = False

    def ask_ahead(self, ask: Callable[[], None], lead_s: float) -> None:
        """Call `ask` this long before each token expires (or at half its remaining life, if
        that is sooner): Hocuspocus' token request."""
        self._ask = (ask, lead_s)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        # The leeway that let the token in (clock skew with its issuer) lets the session run on.
        left = max(0.0, self.claims.exp + self.ctx.settings.jwt_leeway_s - time.time())
        self._timers = [loop.call_later(left, self._expire)]
        if self._ask is not None:
            ask, lead = self._ask
            self._timers.append(loop.call_later(left - min(lead, left / 2), ask))

    def end(self) -> None:
        """The connection is closing: no expiry, no request, no renewal from now on."""
        self._ended = True
        self._cancel_timers()
        if self._renewing is not None:  # a token's check that waits on the key provider
            self._renewing.cancel()

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def _expire(self) -> None:
        self.ctx.metrics.refuse("token_expired")
        self._close(TOKEN_EXPIRED, "token expired")

    def renew_later(self, token: str) -> None:
        """`renew_with` in a task, one check at a time (a token that arrives during one is
        ignored); a refusal is counted, and the client told nothing."""
        if self._renewing is None and not self._ended:
            self._renewing = asyncio.create_task(self._renew_once(token))

    async def _renew_once(self, token: str) -> None:
        try:
            await self.renew_with(token)
        finally:
            self._renewing = None

    async def renew_with(self, token: str) -> str | None:
        """Verify `token` as a handshake's (and charged like one to the user's budget), then
        extend the session with it: None, or why not (counted as a refusal)."""
        if self.ctx.budget(self.ctx.handshakes, self.claims) is not None:
            reason: str | None = "renewal_rate_limited"
        else:
            try:
                claims = await self.ctx.verifier.verify(token)
            except AuthError as exc:  # why: logged rate-limited and counted, as at a handshake
                self.ctx.verifier.refusals.note(self.ctx.metrics, exc, "renewal", self.host)
                reason = "renewal_unauthorized"
            else:
                reason = None if self.renew(claims) else "renewal_other_identity"
        if reason is not None:
            self.ctx.metrics.refuse(reason)
        return reason

    def renew(self, claims: Claims) -> bool:
        """A later token of this session's user, firm and role: the session lasts until it
        expires. False for another identity."""
        held = self.claims
        if (claims.sub, claims.firm_id, claims.role) != (held.sub, held.firm_id, held.role):
            return False
        if claims.exp > held.exp and not self._ended:
            self.claims = claims
            self.ctx.metrics.token_renewals.inc()
            self._cancel_timers()
            self.start()
        return True
