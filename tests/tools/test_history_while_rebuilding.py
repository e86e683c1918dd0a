"""While `backfill snapshotter` rebuilds PostgreSQL (`--from-beginning --reset`, or chosen
`--letters`), the auditor routes do not pass part of a letter's versions or history off as all
of it (503 with Retry-After until the rebuild ends), and a cold letter still loads whole from
the partial tables plus the log."""

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from pycrdt import Doc, XmlFragment

from eventlog import Log
from gateway.live.loader import header, load
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.store import Store
from steno_collab.services import gateway_app
from tests.tools.rest import auth
from tests.tools.scripted import LETTER
from tests.tools.snapshots import snapshotted
from tools.backfill import backfill
from tools.backfill_snapshotter import _start_letters, letters_group, reset
from tools.progress import Meter
from tools.sources import open_sources

BASE = f"/v1/letters/{LETTER}"
# What a partial rebuild must not answer as if whole (version 2 is not rebuilt yet: no
# "no version 2" 404 either).
PARTIAL: list[tuple[str, dict[str, str | int]]] = [
    ("versions", {}),
    ("history", {}),
    ("history", {"order": "desc", "limit": 2}),
    ("versions/2", {}),
    ("diff", {"from": "1", "to": "2"}),
]


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # PostgreSQL is under test here, not the log


@pytest_asyncio.fixture(loop_scope="session")
async def pg(settings: Settings, log: Log) -> AsyncIterator[asyncpg.Pool]:
    async with snapshotted(settings, log) as pool:
        yield pool


@pytest_asyncio.fixture(loop_scope="session")
async def client(
    settings: Settings, log: Log, pg: asyncpg.Pool
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway_app(settings, log, None, pg))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield http


async def _rebuild_to_first_version(settings: Settings, log: Log, pg: asyncpg.Pool) -> None:
    """Where a reset rebuild stands (or was interrupted) when it has folded the log up to the
    letter's first version: version 1 and the audit rows before it are back, not the rest."""
    assert await reset(pg)
    topic = settings.topic(Topic.LETTERS)
    records = await log.read(topic, 0, 0, (await log.end_offsets(topic))[0])
    first = next(r.offset for r in records if header(r, "type") == b"version.saved")
    snapshotter = Snapshotter(settings, log, Store(pg))
    await snapshotter.resume()
    await snapshotter.handle(records[: first + 1])
    await snapshotter.flush()  # an interrupted run: no checkpoint
    assert await pg.fetchval("SELECT count(*) FROM letter_version") == 1


async def _refused(client: httpx.AsyncClient, settings: Settings) -> None:
    for path, params in PARTIAL:
        answer = await client.get(f"{BASE}/{path}", params=params, headers=auth(settings))
        assert answer.status_code == 503, (path, answer.text)
        assert "history is being rebuilt" in answer.json()["detail"]
        assert int(answer.headers["Retry-After"]) > 0


async def _whole(client: httpx.AsyncClient, settings: Settings, history: Any) -> None:
    versions = await client.get(f"{BASE}/versions", headers=auth(settings))
    assert [v["change_data"]["label"] for v in versions.json()] == ["draft", "final"]
    assert (await client.get(f"{BASE}/history", headers=auth(settings))).json() == history


async def test_a_reset_rebuild_is_refused_until_it_ends(
    client: httpx.AsyncClient, settings: Settings, log: Log, pg: asyncpg.Pool
) -> None:
    history = (await client.get(f"{BASE}/history", headers=auth(settings))).json()
    await _rebuild_to_first_version(settings, log, pg)
    await _refused(client, settings)
    # What is rebuilt is the same fold's output, hence right: served.
    one = await client.get(f"{BASE}/versions/1", headers=auth(settings))
    assert one.status_code == 200 and one.json()["content"].endswith("the claim")
    text = await client.get(f"{BASE}/replay", params={"format": "text"}, headers=auth(settings))
    assert text.text == "Sir,\nWe write about the claim\nRegards\n"

    async with open_sources(settings, pg=True) as src:  # the operator runs it again
        await backfill(src, "snapshotter", reset=True, meter=Meter(every_s=3600))
    await _whole(client, settings, history)


async def test_a_rebuild_of_chosen_letters_is_refused_until_it_ends(
    client: httpx.AsyncClient, settings: Settings, log: Log
) -> None:
    history = (await client.get(f"{BASE}/history", headers=auth(settings))).json()
    async with open_sources(settings, pg=True) as src:
        # Interrupted right after its start: the letter's rows deleted, nothing folded yet.
        await _start_letters(src, Store(src.pg), letters_group([LETTER]), [LETTER], [0])
        await _refused(client, settings)
        await backfill(src, "snapshotter", letters=[LETTER], meter=Meter(every_s=3600))
    await _whole(client, settings, history)


async def test_a_cold_letter_loads_whole_mid_rebuild(
    settings: Settings, log: Log, pg: asyncpg.Pool
) -> None:
    await _rebuild_to_first_version(settings, log, pg)
    # No Redis: the latest letter_version (version 1, all the rebuild has) and the log after it.
    partial = await load(settings, log, LETTER, None, pg)
    alone = await load(settings, log, LETTER, None, None)
    assert partial.end == alone.end
    assert _text(settings, partial.state) == _text(settings, alone.state)
    assert "the claim</paragraph><paragraph>Regards" in _text(settings, alone.state)


def _text(settings: Settings, state: bytes) -> str:
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return str(doc.get(settings.doc_field, type=XmlFragment))
