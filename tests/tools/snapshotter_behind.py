"""A letter whose last records the snapshotter has not folded yet, a REST client on the gateway
app with PostgreSQL, and which letters' records past the position history folded: the REST
history tests of a snapshotter that is behind."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from eventlog import Log
from schemas.bounded_pg import bounded_pool
from schemas.events import Topic
from schemas.settings import Settings
from steno_collab.services import gateway_app
from tests.snapshotter.scripts import LetterScript, append
from tests.tools.snapshots import run_to_end
from tools import history as histories

LETTER = "L-behind"


@pytest_asyncio.fixture(loop_scope="session")
async def client(settings: Settings, log: Log) -> AsyncIterator[httpx.AsyncClient]:
    assert settings.database_url is not None
    pg = await bounded_pool(settings.database_url, 10, 2)  # the gateway's, as in production
    try:
        transport = httpx.ASGITransport(app=gateway_app(settings, log, None, pg))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http
    finally:
        await pg.close()


@pytest.fixture
def folds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The letters whose records past the position were folded from their saved state."""
    folded: list[str] = []
    start = histories._Tail.start

    async def counted(tail: Any, src: Any, state: Any, *args: Any) -> Any:
        folded.append(state.letter_id)
        return await start(tail, src, state, *args)

    monkeypatch.setattr(histories._Tail, "start", counted)
    return folded


async def folded_then_more(log: Log, settings: Settings) -> LetterScript:
    """Alice's burst is open when the snapshotter stops; what follows is not folded."""
    s, topic = LetterScript(LETTER), settings.topic(Topic.LETTERS)
    await append(log, topic, [s.created("alice"), s.paragraph("alice", ""),
                              s.joined("alice", "tab-1"), s.type_text("alice", 0, 0, "ab", "tab-1"),
                              s.comment("bob", "t1", "c1", "first")])  # fmt: skip
    await run_to_end(log, settings)
    await append(log, topic, [s.type_text("alice", 0, 2, "cd", "tab-1"), s.comment("bob", "t2",
                              "c2", "not folded yet"), s.lock("bob", "s1"),
                              s.joined("carol", "tab-9"), s.left("alice", "tab-1")])  # fmt: skip
    return s
