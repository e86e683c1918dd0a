"""A user's budget of item splits' cost (`split_cost_*`, gateway/live/buckets.py): updates each
under `max_split_cost` but costly, sent back to back, are refused once it is spent (4429 on the
WebSocket, 429 with Retry-After over REST), nothing applied or logged, and pass again once it
refilled; typing and pasting cost nothing and never touch it (gateway/wire/splits.py)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from pycrdt import Doc, Text, write_var_uint

from gateway.errors import RATE_LIMITED
from gateway.live.buckets import KeyedBuckets
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.harness import Running, YClient, running_gateway
from tests.gateway.long_items import LONG, long_letter
from tests.support import eventually

CUTS = 50  # an update cutting it at 50 places weighs ~5e6, a quarter of max_split_cost
REFUSED = 'gateway_refusals_total{reason="split_cost_rate_limited"}'


class Clock:
    """The budget's time, moved by the test alone."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def budgeted(tmp_path: Path, rate: int, burst: int) -> AsyncIterator[tuple[Running, Clock]]:
    """A gateway whose users' split budgets run on a clock the test moves."""
    settings = Settings(
        data_dir=tmp_path / "steno", split_cost_per_s=rate, split_cost_burst=burst,
        rate_messages_per_s=10_000, rate_burst=10_000,  # the typing below is not paced
    )  # fmt: skip
    async with running_gateway(settings) as gw:
        clock, ctx = Clock(), gw.app.state.gateway.ctx
        ctx.split_cost = KeyedBuckets(
            settings.split_cost_per_s, settings.split_cost_burst, clock=clock
        )
        yield gw, clock


def cut(doc: Doc[Any], offset: int) -> bytes:
    """One update inserting a character at CUTS places inside the long item."""
    before = doc.get_state()
    text = doc.get("text", type=Text)
    with doc.transaction():
        for i in range(CUTS - 1, -1, -1):
            text.insert(i * (LONG // CUTS) + offset, "y")
    return doc.get_update(before)


def sync_update(update: bytes) -> bytes:
    return b"\x00\x02" + write_var_uint(len(update)) + update


async def post(gw: Running, letter: str, update: bytes, user: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.http) as http:
        return await http.post(
            f"/v1/letters/{letter}/updates",
            content=update,
            headers={
                "Authorization": f"Bearer {gw.token(user=user)}",
                "content-type": "application/octet-stream",
            },
        )


async def test_costly_updates_back_to_back_are_refused_until_the_budget_refills(
    tmp_path: Path,
) -> None:
    async with budgeted(tmp_path, rate=1_000_000, burst=7_000_000) as (gw, clock):
        letter, alice = await long_letter(gw)
        drafted: Doc[Any] = Doc()
        drafted.apply_update(alice.doc.get_update())
        first, second = cut(drafted, 1), cut(drafted, 7)  # ~5e6 each: one fits the burst
        mallory = await YClient.connect(gw.ws_url(letter, gw.token(user="mallory")))
        await mallory.synced.wait()
        heard = len(alice.updates)
        await mallory.ws.send(sync_update(first))
        await eventually(lambda: str(alice.text).count("y") == CUTS)  # taken and relayed
        await mallory.ws.send(sync_update(second))  # the same user, at once: over the budget
        await asyncio.wait_for(mallory.closed.wait(), 10)
        assert mallory.close_code == RATE_LIMITED
        refused = await post(gw, letter, second, "mallory")  # REST draws on the same budget
        assert refused.status_code == 429
        assert refused.json() == {"detail": "item splits' cost over budget"}
        retry_after = int(refused.headers["retry-after"])  # ~3e6 clocks short, at 1e6 a second
        assert 3 <= retry_after <= 4
        assert str(alice.text).count("y") == CUTS and len(alice.updates) == heard + 1
        logged = [record.value for record in await gw.records(Topic.LETTERS, letter)]
        assert first in logged and second not in logged
        assert (await gw.metrics())[REFUSED] == 2
        clock.now += retry_after  # refilled enough for the second
        assert (await post(gw, letter, second, "mallory")).status_code == 200
        await eventually(lambda: str(alice.text).count("y") == 2 * CUTS)
        assert second in [record.value for record in await gw.records(Topic.LETTERS, letter)]
        await alice.close()


async def test_typing_and_pasting_never_touch_the_budget(tmp_path: Path) -> None:
    """1,000 edits as a stock client sends them while someone types and pastes (one update per
    keystroke or paste, after another's text), under a budget of one clock that never refills:
    all pass, and the budget is still full after them (a costly update is taken, into debt;
    the next is refused)."""
    async with budgeted(tmp_path, rate=1, burst=1) as (gw, _clock):
        letter, alice = await long_letter(gw)
        bob = await gw.client(letter, user="bob")
        await bob.synced.wait()
        for i in range(1_000):
            if i % 50 == 49:
                await bob.insert("pasted paragraph, " * 20 + "\n")
            else:
                await bob.insert("\n" if i % 100 == 0 else "abcdefghij"[i % 10])
        await eventually(lambda: str(alice.text) == str(bob.text))  # all 1,000 taken
        assert not bob.closed.is_set()
        await bob.ws.send(sync_update(cut(bob.doc, 1)))
        await eventually(lambda: str(alice.text).count("y") == CUTS)  # the full budget took it
        await bob.ws.send(sync_update(cut(bob.doc, 7)))
        await asyncio.wait_for(bob.closed.wait(), 10)
        assert bob.close_code == RATE_LIMITED
        assert (await gw.metrics())[REFUSED] == 1
        await alice.close()


async def test_an_update_the_byte_budget_refuses_costs_no_split_budget(tmp_path: Path) -> None:
    """Both budgets are asked before either is taken from (gateway/live/writes.py): the split
    budget was charged first, so an update refused for its bytes spent split budget for
    nothing, and the next costly update was refused (a final review)."""
    async with budgeted(tmp_path, rate=1_000_000, burst=7_000_000) as (gw, _clock):
        letter, alice = await long_letter(gw)
        ctx = gw.app.state.gateway.ctx
        drafted: Doc[Any] = Doc()
        drafted.apply_update(alice.doc.get_update())
        other: Doc[Any] = Doc()
        other.apply_update(alice.doc.get_update())
        first, second = cut(drafted, 1), cut(other, 7)  # independent, ~5e6 each
        key = ("firm-a", "mallory")
        with ctx.update_bytes.held(key) as budget:
            budget.tokens = -1e9  # Mallory's update bytes spent, for long
        refused = await post(gw, letter, first, "mallory")
        assert refused.json() == {"detail": "update bytes over budget"}
        with ctx.update_bytes.held(key) as budget:
            budget.tokens = budget.burst  # refilled; the split budget's clock never moved
        assert (await post(gw, letter, second, "mallory")).status_code == 200
        await alice.close()
