"""Connections that have not sent a whole request: a deadline for each, and a cap on them all.

Uvicorn waits for a request's headers and body as long as the client likes. One client that
opened ~20,000 TCP connections and sent nothing held every file descriptor of the gateway:
/healthz, REST and every new WebSocket handshake failed for everyone (curl: empty reply) until
it let go, and a request trickled a byte at a time did the same with fewer connections
(slowloris). Node's and Go's HTTP servers bound this with header and request timeouts.

* A request must arrive whole, headers and body, within `request_timeout_s` of the connection
  (its first request) or of its first byte (later requests on a kept-alive connection): else
  408 and the connection closes. Between requests uvicorn's keep-alive timeout (5 s) applies.
* A request's line and headers may take at most `MAX_HEAD_BYTES`, else 431: uvicorn (with
  httptools) collects a header of any length, by repeated concatenation. One connection sending
  a 300 MB header took the gateway from 87 to 260 MB of RSS until the timeout cut it.
* At most `max_open_connections` sockets. At the cap a new connection takes the place of the
  one from its own address that has waited longest without a whole request (receiving or
  idle), or, when its address has none, of the longest-waiting one of all; when every socket
  is a WebSocket or a request being answered, the newcomer gets 503 and is closed. A flood of
  connections that send nothing thus displaces its own connections, not the users': from one
  address not even a user's request that is still arriving. (Behind a proxy every socket has
  the proxy's address, and the longest-waiting one of all goes.) A Hocuspocus socket that has
  not authenticated a document yet waits here too (gateway/api/hocuspocus.py): its token comes
  after the upgrade.
"""

import asyncio
import contextlib
import logging
import resource
from collections.abc import Callable
from typing import Any, Protocol

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)
Refuse = Callable[[str], None]
RESERVED_DESCRIPTORS = 512  # the log, Redis, PostgreSQL, Kafka and files of the process
FEW_SOCKETS = 4096


def raise_descriptor_limit() -> None:
    """Lift the soft limit of open files to the hard one, as Go does at start."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):  # a kernel cap below the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def default_max_open() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    found = max(64, soft - RESERVED_DESCRIPTORS)
    if found < FEW_SOCKETS:  # a container's or a shell's default of 1,024, say
        log.warning(
            "the open-files limit (%d) leaves %d sockets for clients; raise it (ulimit -n) or "
            "set STENO_MAX_OPEN_CONNECTIONS",
            soft,
            found,
        )
    return found


def _response(status: bytes, text: str) -> bytes:
    body = text.encode()
    head = b"HTTP/1.1 %s\r\ncontent-type: text/plain; charset=utf-8\r\n" % status
    return head + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body


LINGER_S = 2.0
MAX_HEAD_BYTES = 64 << 10  # nginx allows 32 KiB by default, Node 16 KiB; JWTs ride in the URL
REQUEST_TIMEOUT = _response(b"408 Request Timeout", "request not received in time")
HEAD_TOO_LARGE = _response(b"431 Request Header Fields Too Large", "request head too large")
SHED = _response(b"503 Service Unavailable", "too many connections, try again")


class Displaceable(Protocol):
    """A socket that may give its place to a newcomer: a connection without a whole request,
    or a WebSocket that has not authenticated yet (gateway/api/hocuspocus.py)."""

    address: str | None

    def end(self, response: bytes, linger: bool = False) -> None: ...


class Waiting:
    """The connections of one server that wait for a whole request, oldest first."""

    def __init__(self, max_open: int, timeout_s: float, refuse: Refuse) -> None:
        self.max_open, self.timeout_s, self.refuse = max_open, timeout_s, refuse
        # Insertion order is who waited longest: of all, and of each client address.
        self._order: dict[Displaceable, None] = {}
        self._by_address: dict[str | None, dict[Displaceable, None]] = {}

    def admit(self, conn: "GuardedHttp", open_now: int) -> bool:
        """`conn` was just accepted (`open_now` sockets, it included); False: it was refused."""
        if open_now > self.max_open:
            own = self._by_address.get(conn.address)
            oldest = next(iter(own or self._order), None)
            if oldest is None:
                self.refuse("too_many_connections")
                conn.end(SHED)
                return False
            self.refuse("connection_displaced")
            oldest.end(SHED)
        self.wait(conn)
        return True

    def wait(self, conn: Displaceable) -> None:
        self.forget(conn)
        self._order[conn] = None
        self._by_address.setdefault(conn.address, {})[conn] = None

    def forget(self, conn: Displaceable) -> None:
        if conn not in self._order:
            return
        del self._order[conn]
        mine = self._by_address[conn.address]
        del mine[conn]
        if not mine:
            del self._by_address[conn.address]


class GuardedHttp(HttpToolsProtocol):
    """Uvicorn's HTTP protocol with a request deadline and the server's `Waiting` set."""

    waiting: Waiting  # set on the subclass made for each server (guarded_http)
    address: str | None = None  # the client's
    _deadline: asyncio.TimerHandle | None = None
    _serving = False  # a whole request is being answered
    _ended = False  # answered (408, 431) and half-closed: what still arrives is dropped
    _in_head = True  # receiving a request line and headers
    _head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.address = self.client[0] if self.client else None
        if self.waiting.admit(self, len(self.connections)):
            self._arm()

    def data_received(self, data: bytes) -> None:
        if self._ended:
            return
        if self._deadline is None and not self._serving:
            self.waiting.wait(self)  # the first byte of another request on a kept-alive socket
            self._arm()
        if self._in_head:  # the whole read: it may hold the head's end and a body (not refused)
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self.waiting.refuse("request_head_too_large")
            self.end(HEAD_TOO_LARGE, linger=True)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
        if self.parser.should_upgrade() and self._should_upgrade():
            self._served()  # a WebSocket from here on: the handshake and its limits apply

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._served()
        self._in_head, self._head_bytes = True, 0  # what follows is the next request's head

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.cycle is not None and not self.cycle.response_complete:
            return  # uvicorn started a pipelined request: serving it
        self._serving = False
        if not self.transport.is_closing():
            self.waiting.wait(self)  # idle until its next request: uvicorn's keep-alive timer

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.waiting.forget(self)
        super().connection_lost(exc)

    def end(self, response: bytes, linger: bool = False) -> None:
        """Close; answer `response` first if the request's response has not begun. `linger`:
        half-close and read what the client still sends for `LINGER_S` before closing, as
        nginx's lingering close: a socket closed with unread data in it is reset, and the reset
        can reach the client before the answer. It stays displaceable meanwhile."""
        self._disarm()
        self.waiting.forget(self)
        if self.transport.is_closing():
            return
        if self._ended:  # displaced while lingering
            self.transport.close()
            return
        cycle: Any = self.cycle  # an answered one belongs to an earlier request
        current = cycle is not None and not cycle.response_complete
        if not current or not cycle.response_started:
            self.transport.write(response)
        if current:
            cycle.disconnected = True  # as uvicorn on a lost connection: the app's answer is
            cycle.message_event.set()  # dropped, and its receive() says http.disconnect
        if not linger or not self.transport.can_write_eof():
            self.transport.close()
            return
        self._ended = True
        self.transport.write_eof()
        self.waiting.wait(self)
        self._deadline = self.loop.call_later(LINGER_S, self.transport.close)

    def _timed_out(self) -> None:
        self._deadline = None
        self.waiting.refuse("request_timeout")
        self.end(REQUEST_TIMEOUT, linger=True)

    def _served(self) -> None:
        self._serving = True
        self._disarm()
        self.waiting.forget(self)

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.waiting.timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


def guarded_http(waiting: Waiting) -> type[GuardedHttp]:
    """The HTTP protocol class for one server (uvicorn instantiates it per connection)."""
    return type("GuardedHttp", (GuardedHttp,), {"waiting": waiting})
