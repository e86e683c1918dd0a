"""Fixtures: a gateway with the real embedded log in a temporary directory."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway


@pytest_asyncio.fixture(loop_scope="session")
async def gw(tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(data_dir=tmp_path / "steno", partitions=2)
    async with running_gateway(settings) as running:
        yield running
