"""Node clients for the interop suite (`npm ci` once per session when node_modules is missing),
a gateway, and the crash tests' rig (crash_rig.py)."""

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway
from tests.interop.crash_rig import Rig, crash_rig

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def node_modules() -> Path:
    node = shutil.which("node")
    assert node is not None, "node is required for the interop suite"
    target = HERE / "node_modules"
    if not all(
        (target / name).exists()
        for name in (
            "y-websocket",
            "@hocuspocus/provider",
            "@hocuspocus/provider-3",
            "@hocuspocus/provider-2",
        )
    ):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    return target


@pytest_asyncio.fixture(loop_scope="session")
async def gw(tmp_path: Path, node_modules: Path) -> AsyncIterator[Running]:
    # A session lasts its token's life plus the JWT leeway: a short one keeps expiry tests short.
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, jwt_leeway_s=2)
    async with running_gateway(settings) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def rig(tmp_path: Path, redis_db: str, node_modules: Path) -> AsyncIterator[Rig]:
    """A gateway process the test can kill -9, on a Kafka whose requests it can swallow."""
    async with crash_rig(tmp_path, redis_db) as running:
        yield running
