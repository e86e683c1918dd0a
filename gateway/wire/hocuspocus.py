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
from .reader import Reader

SYNC, AWARENESS, AUTH, QUERY_AWARENESS, STATELESS, CLOSE, SYNC_STATUS = 0, 1, 2, 3, 5, 7, 8
PING, PONG = 9, 10
AUTH_TOKEN, AUTH_DENIED, AUTH_OK = 0, 1, 2
# What the inner y-protocols parser takes as is (after the address).
Y_PROTOCOLS = frozenset((SYNC, AWARENESS, QUERY_AWARENESS))
MAX_ADDRESS_BYTES = 512  # "letter-" + an id, plus a provider's session id
MAX_TOKEN_BYTES = 16 << 10

PING_MESSAGE = bytes([PING])


@dataclass(frozen=True, slots=True)
class Addressed:
    """One inbound message: its address, the document name in it, its type, and the message
    from the type on (a y-protocols message for the types in Y_PROTOCOLS)."""

    address: str
    name: str
    type: int
    message: bytes


def parse(data: bytes) -> Addressed | None:
    """None for a pong; ProtocolError for anything that is not an addressed message."""
    if data == bytes([PONG]):
        return None
    r = Reader(data)
    n = r.uint()
    if n > MAX_ADDRESS_BYTES:
        raise ProtocolError("address_too_long", f"{n} bytes")
    raw = r.raw(n)
    try:
        address = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("invalid_utf8", str(exc)) from None
    start = r.pos
    type_ = r.uint()
    return Addressed(address, address.split("\0", 1)[0], type_, data[start:])


def token_of(message: bytes) -> tuple[str, bool]:
    """The token of an auth message (`message` from its type on), and whether the provider's
    version follows it: providers from 4.0 on send it, and only they understand a ping."""
    r = Reader(message)
    r.uint()  # AUTH
    if r.uint() != AUTH_TOKEN:
        raise ProtocolError("unknown_auth_type")
    n = r.uint()
    if n > MAX_TOKEN_BYTES:
        raise ProtocolError("token_too_long", f"{n} bytes", 4413)
    try:
        token = r.raw(n).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("invalid_utf8", str(exc)) from None
    return token, r.remaining() > 0


def _string(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return _uint(len(data)) + data


def _uint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def address(name: str) -> bytes:
    """The prefix of every message to that address."""
    return _string(name)


def authenticated(read_only: bool) -> bytes:
    return bytes([AUTH, AUTH_OK]) + _string("readonly" if read_only else "read-write")


def permission_denied(reason: str) -> bytes:
    return bytes([AUTH, AUTH_DENIED]) + _string(reason)


def sync_status(applied: bool) -> bytes:
    return bytes([SYNC_STATUS, 1 if applied else 0])  # a varInt: 1 and 0 are one byte each


def close(reason: str) -> bytes:
    return bytes([CLOSE]) + _string(reason)
