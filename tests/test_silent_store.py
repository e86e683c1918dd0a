"""A store that takes the connection and never answers: start-up says which within
`CONNECT_TIMEOUT_S` (asyncpg's own default kept `dev` and `gateway` silent for 61 s)."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from schemas import stores
from schemas.settings import Settings
from steno_collab import services


@pytest_asyncio.fixture(loop_scope="session")
async def silent_port() -> AsyncIterator[int]:
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepted, never answered

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


@pytest.mark.parametrize("store", ["PostgreSQL", "Redis"])
async def test_a_silent_store_is_named_within_the_timeout(
    tmp_path: Path, silent_port: int, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stores, "CONNECT_TIMEOUT_S", 1.0)
    url = {
        "PostgreSQL": f"postgresql://postgres:secret@127.0.0.1:{silent_port}/postgres",
        "Redis": f"redis://:secret@127.0.0.1:{silent_port}/0",
    }[store]
    field = "database_url" if store == "PostgreSQL" else "redis_url"
    store_url: dict[str, Any] = {field: url}
    settings = Settings(data_dir=tmp_path, log_url=None, **store_url)
    began = time.monotonic()
    async with AsyncExitStack() as started:
        with pytest.raises(stores.UnreachableError) as caught:
            await services.connect_checked(settings, started)
    assert time.monotonic() - began < 10  # asyncpg's own default was 60 s
    assert str(caught.value).startswith(f"{store} at 127.0.0.1:{silent_port}: ")
    assert "secret" not in str(caught.value)
