"""A Tansu broker of one test's own, which the test may stop, freeze or kill."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from steno_collab.processes import Supervised
from tests.conftest import start_tansu


@pytest_asyncio.fixture(loop_scope="session")
async def own_broker(tmp_path: Path) -> AsyncIterator[tuple[str, Supervised]]:
    """A broker of this test's own, so the test may kill it."""
    proc, bootstrap = await start_tansu(tmp_path / "tansu.log")
    try:
        yield bootstrap, proc
    finally:
        # Memory storage: nothing to keep. Thawed after `frozen` with a consumer group on it,
        # Tansu took its whole 5 s grace to exit (test_lag_measured_at): killed after 1 s.
        await proc.stop(timeout=1)
