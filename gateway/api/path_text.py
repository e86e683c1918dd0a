"""Refuses HTTP requests whose path is not UTF-8 once percent-decoded, with 400.

The server decodes a path's bytes with replacement, so `/locks/%FF`, `/locks/%FE` and
`/locks/%EF%BF%BD` all named the section "\ufffd": one user's lock on a garbled name was
another's 409 on a different one, and the name kept in the audit was not what was sent.
"""

from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

DETAIL = "the path is not UTF-8 once percent-decoded"


class Utf8Path:
    def __init__(self, app: ASGIApp, refused: Callable[[], None]) -> None:
        self.app, self.refused = app, refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only a path holding U+FFFD can have been replaced: the usual one costs a scan.
        if scope["type"] == "http" and "\ufffd" in scope.get("path", "") and not _utf8(scope):
            self.refused()
            response = JSONResponse({"detail": DETAIL}, status_code=400)
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def _utf8(scope: Scope) -> bool:
    raw = scope.get("raw_path")
    if raw is None:  # a server that passes none: what it decoded is all there is
        return True
    try:
        unquote_to_bytes(raw.split(b"?", 1)[0]).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
