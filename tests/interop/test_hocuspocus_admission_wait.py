"""Stock HocuspocusProviders over the user's handshake budget: the document waits for the budget
and is admitted then (gateway/api/hocuspocus.py). A denied document is never asked for again by
a 4.x provider whose socket other documents keep open, and a 2.x provider left with no document
would be closed with 4401 by the auth deadline, after which it never reconnects."""

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway
from tests.interop.driver import HERE, NodeClient
from tests.support import eventually

pytestmark = pytest.mark.slow


@pytest_asyncio.fixture(loop_scope="session")
async def budgeted(tmp_path: Path, node_modules: Path) -> AsyncIterator[Running]:
    """One handshake per user, then one a second: a second document waits about 1 s."""
    settings = Settings(
        data_dir=tmp_path / "steno", partitions=2, handshakes_burst=1, handshakes_per_s=1.0
    )
    async with running_gateway(settings) as running:
        yield running


def _answer(client: NodeClient, doc: str | None = None) -> dict[str, Any] | None:
    """The first answer to a document's auth (authenticated or denied), if any yet."""
    for event in client.events:
        if event.get("event") in ("authenticated", "denied") and event.get("doc") == doc:
            return event
    return None


@pytest.mark.parametrize("major", [4, 3])
async def test_a_second_document_on_a_shared_socket_syncs_once_the_budget_refills(
    budgeted: Running, major: int
) -> None:
    gw = budgeted
    first, second = await gw.create_letter("one"), await gw.create_letter("two")
    names = [f"letter-{first}", f"letter-{second}"]
    proc = await asyncio.create_subprocess_exec(
        "node", str(HERE / "multiplexed.mjs"), cwd=HERE,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    client = NodeClient(proc)
    try:
        url = f"ws://127.0.0.1:{gw.port}/v1/hocuspocus"
        await client.call("open", url=url, names=names, token=gw.token(user="alice"), major=major)
        for name in names:
            answer = await eventually(partial(_answer, client, name))
            assert answer["event"] == "authenticated", answer
        await client.event("sync", doc=names[1], synced=True)
        await client.call("insert", name=names[1], value="after the wait")
        await eventually(lambda: _logged(gw, second, "after the wait"))
        assert not [e for e in client.events if e["event"] == "close"]
    finally:
        await client.quit()


async def _logged(gw: Running, letter: str, text: str) -> bool:
    return await gw.logged_text(letter) == text


async def test_a_2x_provider_over_the_budget_is_admitted_once_it_refills(
    budgeted: Running,
) -> None:
    gw = budgeted
    first, second = await gw.create_letter(), await gw.create_letter()
    holder = await NodeClient.hocuspocus(gw, first, major=4, user="alice")  # the whole burst
    try:
        await holder.event("sync", synced=True)
        late = await NodeClient.hocuspocus(gw, second, major=2, user="alice")
        try:
            answer = await eventually(lambda: _answer(late))
            assert answer["event"] == "authenticated", answer
            await late.event("sync", synced=True)
            await late.call("insert", index=0, value="from 2.x")
            await eventually(lambda: _logged(gw, second, "from 2.x"))
            assert not [e for e in late.events if e["event"] == "close"]
        finally:
            await late.quit()
    finally:
        await holder.quit()
