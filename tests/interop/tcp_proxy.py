"""A TCP forwarder for crash tests: a load balancer whose backend can change, and a network that
can swallow what clients send (a broker that stopped answering, but whose sockets stay open)."""

import asyncio
import contextlib
from dataclasses import dataclass, field

CHUNK = 1 << 16


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    cut: bool = False  # bytes of it were dropped: its stream is broken for good
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            writer.transport.abort()


class Proxy:
    """127.0.0.1:`port` forwarded to 127.0.0.1:`target`; no target: connections are closed."""

    def __init__(self, target: int | None = None) -> None:
        self.target = target
        self.port = 0
        self.swallowing = False
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    async def start(self) -> "Proxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def swallow(self) -> None:
        """Drop what clients send from now on; replies to earlier requests still come back. A
        dropped byte is never delivered later: the broker cannot act on a request from a process
        that died meanwhile (a paused socket would hand it over once resumed)."""
        self.swallowing = True

    def restore(self) -> None:
        """Forward again; the connections that lost bytes are closed (their framing is broken)."""
        self.swallowing = False
        for link in [link for link in self._links if link.cut]:
            link.abort()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        links = list(self._links)
        for link in links:
            link.abort()
        async with asyncio.timeout(10):
            for link in links:
                await link.done.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.target is None:
            writer.transport.abort()  # nothing listens: as a refused connection
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, link, outbound=True),
                self._pipe(up_reader, writer, link, outbound=False),
            )
        finally:
            link.abort()
            self._links.discard(link)
            link.done.set()

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        link: _Link,
        outbound: bool,
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(CHUNK):
                if outbound and (self.swallowing or link.cut):
                    link.cut = True
                    continue
                sink.write(data)
                await sink.drain()
        link.abort()  # one side ended: so does the other
