"""A stock client closed with 4503 (log unavailable) reconnects by itself and resyncs: every
update it typed ends up in the log once appends work again."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.errors import LOG_UNAVAILABLE
from schemas.settings import Settings
from tests.gateway.faults import FaultyLog, faulty_gateway
from tests.gateway.harness import Running
from tests.interop.driver import NodeClient
from tests.support import eventually

pytestmark = pytest.mark.slow


@pytest_asyncio.fixture(loop_scope="session")
async def faulty(tmp_path: Path, node_modules: Path) -> AsyncIterator[tuple[Running, FaultyLog]]:
    async with faulty_gateway(Settings(data_dir=tmp_path / "steno", partitions=1)) as pair:
        yield pair


async def test_stock_client_recovers_from_4503(faulty: tuple[Running, FaultyLog]) -> None:
    gw, log = faulty
    letter = await gw.create_letter()
    alice = await NodeClient.open(gw, letter, user="alice")
    bob = await NodeClient.open(gw, letter, user="bob")
    try:
        await alice.event("sync", synced=True)
        await bob.event("sync", synced=True)
        await alice.call("insert", index=0, value="one;")
        await bob.call("waitText", equals="one;")
        log.broken = True
        await alice.call("insert", index=4, value="two;")
        await alice.event("close", code=LOG_UNAVAILABLE)
        await bob.call("insert", index=0, value="zero;")  # typed while the log is down
        log.broken = False

        async def everything_logged() -> bool:
            return await gw.logged_text(letter) == "zero;one;two;"

        await eventually(everything_logged, timeout=30)
        await alice.call("waitText", equals="zero;one;two;")
        await bob.call("waitText", equals="zero;one;two;")
    finally:
        await alice.quit()
        await bob.quit()
