"""Drives one Node client process (client.mjs) over JSON lines."""

import asyncio
import contextlib
import itertools
import json
from pathlib import Path
from typing import Any

from tests.gateway.harness import Running

HERE = Path(__file__).parent
TIMEOUT_S = 20.0


class NodeClient:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._changed = asyncio.Event()
        self._closed = False  # its stdout ended
        self._reader = asyncio.create_task(self._read())
        self.client_id = 0

    @classmethod
    async def open(cls, gw: Running, letter_id: str, **claims: Any) -> "NodeClient":
        proc = await asyncio.create_subprocess_exec(
            "node", str(HERE / "client.mjs"), cwd=HERE,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        client = cls(proc)
        params = {"token": gw.token(**claims), "letterId": letter_id}
        url = f"ws://127.0.0.1:{gw.port}/v1"
        reply = await client.call("connect", url=url, room=f"letter-{letter_id}", params=params)
        client.client_id = reply["clientID"]
        return client

    @classmethod
    async def hocuspocus(cls, gw: Running, letter_id: str, **kw: Any) -> "NodeClient":
        """TipTap's HocuspocusProvider on `/v1/hocuspocus` (`attach_hocuspocus`)."""
        client = await cls.spawn()
        await client.attach_hocuspocus(gw, letter_id, **kw)
        return client

    @classmethod
    async def spawn(cls) -> "NodeClient":
        """A client with a Y.Doc and no provider yet (it can edit offline first)."""
        proc = await asyncio.create_subprocess_exec(
            "node", str(HERE / "client.mjs"), cwd=HERE,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(proc)

    async def attach_hocuspocus(
        self,
        gw: Running,
        letter_id: str,
        major: int = 4,
        tokens: list[str] | None = None,
        **claims: Any,
    ) -> None:
        """@hocuspocus/provider `major` (4, 3 or 2); with `tokens`, a token function that hands
        them out in turn, else a token of `claims`."""
        url = f"ws://127.0.0.1:{gw.port}/v1/hocuspocus"
        name, token = f"letter-{letter_id}", gw.token(**claims)
        reply = await self.call(
            "hocuspocus", url=url, name=name, token=token, tokens=tokens, major=major
        )
        self.client_id = reply["clientID"]

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            while line := await self.proc.stdout.readline():
                message = json.loads(line)
                if "id" in message and message["id"] in self._replies:
                    self._replies.pop(message["id"]).set_result(message)
                else:
                    self.events.append(message)
                    self._changed.set()
        finally:
            # Its output ended (or was not ours to read): nothing will answer. A call to a client
            # that quit waited out TIMEOUT_S, 20 s, when its process had exited unreaped.
            self._closed = True
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(ConnectionError("the node client exited"))
            self._replies.clear()

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        if self._closed:
            raise ConnectionError("the node client exited")
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[ident] = future
        self.proc.stdin.write(json.dumps({"id": ident, "cmd": cmd, **args}).encode() + b"\n")
        await self.proc.stdin.drain()
        async with asyncio.timeout(TIMEOUT_S):
            reply = await future
        assert "error" not in reply, f"{cmd}: {reply['error']}"
        return reply

    async def event(self, name: str, **match: Any) -> dict[str, Any]:
        """The first event `name` whose fields include `match` (waits for it)."""
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                for event in self.events:
                    if event.get("event") == name and match.items() <= event.items():
                        return event
                self._changed.clear()
                await self._changed.wait()

    async def quit(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.call("quit")
            except (AssertionError, TimeoutError, ConnectionError):
                with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                    self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
