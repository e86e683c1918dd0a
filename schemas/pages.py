"""Paged REST lists (the letter list, a letter's history): the cursor's wire form and the
headers that name the next page.

A cursor is a list's sort key as text, base64url without padding: opaque to clients, URL-safe
as it stands. Each list parses its own text (`decode` gives it back, or None when the token is
no base64url of UTF-8), so its form is that list's contract: cursors already handed out keep
decoding.
"""

import base64
import binascii
from typing import Protocol, Self


class _Url(Protocol):
    """What is used of a request's URL (starlette's `URL`)."""

    @property
    def path(self) -> str: ...

    @property
    def query(self) -> str: ...

    def include_query_params(self, **params: object) -> Self: ...


# The OpenAPI description of the two headers `next_page` sets, for a paged route's 200.
NEXT_PAGE_HEADERS = {
    "Link": {"description": '`<next page>; rel="next"` when more follow'},
    "X-Next-Cursor": {"description": "`after` of the next page, if any"},
}


def encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(token: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def next_page(url: _Url, token: str, limit: int) -> dict[str, str]:
    """`Link: <next>; rel="next"` (RFC 8288) and `X-Next-Cursor` for the page after `url`'s,
    which starts after `token`."""
    nxt = url.include_query_params(after=token, limit=limit)
    # Relative to the request: right behind a proxy that rewrites the host.
    return {"Link": f'<{nxt.path}?{nxt.query}>; rel="next"', "X-Next-Cursor": token}
