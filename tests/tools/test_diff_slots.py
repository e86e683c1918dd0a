"""Diffs at once are bounded per process (tools.diff.Slots): one more waits a bounded time, then
REST answers 503 with Retry-After; a caller that gives up keeps the slot held until its work
ends (its thread runs on), so abandoned requests cannot pile work onto the cores."""

import asyncio
import threading
from typing import Any

import asyncpg
import httpx
import pytest

from eventlog import Log
from gateway.auth import mint_token
from schemas.settings import Settings
from steno_collab.services import gateway_app
from tests.tools.rest import auth
from tests.tools.scripted import LETTER, scripted
from tests.tools.session import FIRM
from tests.tools.snapshots import snapshot_all
from tools import diff as diffs
from tools import rest
from tools.diff import Busy, Slots, YoursUnderWay


async def test_past_the_slots_busy_and_a_given_up_diff_keeps_its_slot() -> None:
    slots, entered, gate, ended = Slots(1, 0.05), asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def held() -> str:
        entered.set()
        await gate.wait()
        ended.set()
        return "first"

    first = asyncio.create_task(slots.run(held, "ann"))
    await entered.wait()
    with pytest.raises(Busy, match="too many diffs"):  # another user waited out the wait
        await slots.run(held, "bob")
    first.cancel()  # the caller gave up: its work runs on, holding the slot
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(Busy, match="too many diffs"):
        await slots.run(held, "carl")
    gate.set()
    await ended.wait()

    async def second() -> str:
        return "second"

    assert await slots.run(second, "bob") == "second"  # freed when the work ended


async def test_one_diff_at_a_time_per_owner_while_others_queue() -> None:
    """One user repeating requests cannot fill the queue ahead of everyone else's."""
    slots, entered, gate = Slots(1, 5), asyncio.Event(), asyncio.Event()

    async def held() -> str:
        entered.set()
        await gate.wait()
        return "held"

    async def quick() -> str:
        return "quick"

    first = asyncio.create_task(slots.run(held, "firm-a/ann"))
    await entered.wait()
    with pytest.raises(YoursUnderWay):
        await slots.run(quick, "firm-a/ann")
    other = asyncio.create_task(slots.run(quick, "firm-b/bob"))  # waits for the slot
    await asyncio.sleep(0)
    with pytest.raises(YoursUnderWay):  # waiting counts as under way
        await slots.run(quick, "firm-b/bob")
    first.cancel()  # ann gave up: her work runs on, and so does her turn
    with pytest.raises(YoursUnderWay):
        await slots.run(quick, "firm-a/ann")
    gate.set()
    assert await other == "quick"
    assert await slots.run(quick, "firm-a/ann") == "quick"  # hers ended


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the bound does not depend on the log


async def test_rest_answers_503_with_retry_after_while_the_slots_are_taken(
    settings: Settings, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    await scripted(log, settings)
    await snapshot_all(settings, log)
    entered, release = threading.Event(), threading.Event()
    attribute = diffs._attribute

    def slow(*args: Any) -> Any:  # the first diff holds its slot until released
        if not entered.is_set():
            entered.set()
            release.wait(30)
        return attribute(*args)

    monkeypatch.setattr(diffs, "_attribute", slow)
    monkeypatch.setattr(rest, "DIFF_WAIT_S", 0.1)
    pg = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        app = gateway_app(settings, log, None, pg)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            url, params = f"http://gw/v1/letters/{LETTER}/diff", {"from": "1", "to": "2"}
            first = asyncio.create_task(http.get(url, params=params, headers=auth(settings)))
            await asyncio.to_thread(entered.wait, 30)
            # The same auditor again: his first is under way, one at a time (429) ...
            again = await http.get(url, params=params, headers=auth(settings))
            # ... another auditor waits for the slot, then 503.
            token = mint_token(settings, "aud-2", FIRM, "auditor")
            busy = await http.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
            release.set()
            done = await first
    finally:
        release.set()
        await pg.close()
    assert again.status_code == 429 and again.headers["Retry-After"] == "5", again.text
    assert "a diff of yours is under way" in again.json()["detail"]
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "5", busy.text
    assert "too many diffs" in busy.json()["detail"]
    assert done.status_code == 200, done.text
