"""The Hocuspocus framing (TipTap's `HocuspocusProvider`, @hocuspocus/provider 2.x-4.x), bounded.

Every message starts with a varString address, the document name (`name`, or `name\\0session`
for a provider with `sessionAwareness`), then a varUint type. Types 0 (sync), 1 (awareness) and
3 (query awareness) carry the y-protocols message that follows the address byte for byte, so
after the address they go through the same pre-parser as on `/v1/{room}`. The others are this
framing's own: 2 auth (client: sub-type 0 + token + optional provider version; server: 1
permission denied + reason, 2 authenticated + scope), 5 stateless (a varString), 7 close (a
varString reason), 8 sync status (varInt 1 when an update was applied). Ping (9) and pong (10)
are a bare byte with no address (4.x only).
"""

from __future__ import annotations

from dataclasses import dataclass

from .limits import ProtocolError
from .messages import bounded_text
from .reader import Reader

SYNC, AWARENESS, AUTH, QUERY_AWARENESS, STATELESS, CLOSE, SYNC_STATUS = 0, 1, 2, 3, 5, 7, 8
PING, PONG = 9, 10
AUTH_TOKEN, AUTH_DENIED, AUTH_OK = 0, 1, 2
# What the inner y-protocols parser takes as is (after the address).
Y_PROTOCOLS = frozenset((SYNC, AWARENESS, QUERY_AWARENESS))
MAX_ADDRESS_BYTES = 512  # "letter-" + an id, plus a provider's session id
MAX_TOKEN_BYTES = 16 << 10
PONG_MESSAGE = bytes([PONG])


@dataclass(frozen=True, slots=True)
class Addressed:
    """One inbound message: its address as sent (a document's key on the socket, decoded only
    when it authenticates: `name_of`), its type, and the message from the type on (a
    y-protocols message for the types in Y_PROTOCOLS)."""

    address: bytes
    type: int
    message: bytes


def parse(data: bytes) -> Addressed | None:
    """None for a pong; ProtocolError for anything that is not an addressed message."""
    if data == PONG_MESSAGE:
        return None
    r = Reader(data)
    n = r.uint()
    if n > MAX_ADDRESS_BYTES:
        raise ProtocolError("address_too_long", f"{n} bytes", 4413)
    address = r.raw(n)
    start = r.pos
    return Addressed(address, r.uint(), data[start:])


def name_of(address: bytes) -> str:
    """The letter's name in an address: `name`, or `name` and `\\0session` after it."""
    try:
        return address.decode("utf-8").split("\0", 1)[0]
    except UnicodeDecodeError as exc:
        raise ProtocolError("invalid_utf8", str(exc)) from None


def token_of(message: bytes) -> tuple[str, bool]:
    """The token of an auth message (`message` from its type on), and whether the provider's
    version follows it: providers from 4.0 on send it, and only they understand a ping."""
    r = Reader(message)
    r.uint()  # AUTH
    if r.uint() != AUTH_TOKEN:
        raise ProtocolError("unknown_auth_type")
    token = bounded_text(r, MAX_TOKEN_BYTES, "token_too_long").decode()
    return token, r.remaining() > 0
