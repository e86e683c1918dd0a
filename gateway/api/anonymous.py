"""Writes without a valid token are refused before their body is read.

FastAPI reads and parses a request's JSON body before any dependency runs, the token check
included: an anonymous POST of 11 MB got its 401 after 40 ms (upload over loopback included;
now 5 ms), so uploads alone could keep an instance busy. The connection is not closed: uvicorn
reads past the refused body without parsing it, and the client gets its 401 rather than the
reset that closing a socket with unread data causes. The routes still check the budget as
before, with the claims verified here (`request.state`); this only answers sooner.
"""

from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.responses import ErrorResponse
from gateway.auth import Claims, bearer_token
from gateway.errors import AuthError

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
VERIFIED = "verified_claims"  # request.state key: the token is verified once per request


class RefuseAnonymousWrites:
    def __init__(
        self,
        app: ASGIApp,
        verify: Callable[[str], Awaitable[Claims]],
        refused: Callable[[], None],
        prefix: str = "/v1/",
    ) -> None:
        self.app, self.verify, self.refused, self.prefix = app, verify, refused, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in WRITES
            and scope["path"].startswith(self.prefix)
        ):
            try:
                claims = await self.verify(bearer_token(Headers(scope=scope).get("authorization")))
            except AuthError as exc:
                self.refused()
                # Why, for operators only (the app's gateway, as routes find it: api/rest.py).
                ctx = scope["app"].state.gateway.ctx
                client = scope.get("client")
                ctx.verifier.refusals.note(ctx.metrics, exc, "REST", client[0] if client else None)
                headers = {"WWW-Authenticate": "Bearer"}
                response = ErrorResponse({"detail": "unauthorized"}, 401, headers=headers)
                return await response(scope, receive, send)
            scope.setdefault("state", {})[VERIFIED] = claims  # the route's check takes them
        await self.app(scope, receive, send)
