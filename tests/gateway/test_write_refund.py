"""A REST update the gateway refuses costs the user nothing: the update-bytes budget is
reserved before the client ids' owners are known (gateway/live/writes.py), and given back when
the update is refused after all, for an id another user owns (403) or whose owner could not be
learnt in time (503 "client id owner unknown")."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Text

from gateway.live import loader
from gateway.live.buckets import KeyedBuckets, TokenBucket
from schemas.settings import Settings
from tests.gateway.crash_owners import both_logged
from tests.gateway.harness import Running, running_gateway

MALLORY = ("firm-a", "mallory")
FORGED_TEXT = "forged " * 20_000  # 140 kB: what a second's refill (1 kB) cannot hide


def refund_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, partitions=1, update_bytes_per_s=1024)


def posing_as(author: Doc[Any]) -> bytes:
    """An update writing new clocks under `author`'s client id (a large insert)."""
    posing: Doc[Any] = Doc(client_id=author.client_id)
    posing.apply_update(author.get_update())
    forged: list[bytes] = []
    sub = posing.observe(lambda event: forged.append(event.update))
    posing.get("text", type=Text).insert(0, FORGED_TEXT)
    posing.unobserve(sub)
    return forged[0]


async def _post_as_mallory(gw: Running, letter: str, update: bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.http, timeout=60) as http:
        return await http.post(
            f"/v1/letters/{letter}/updates",
            content=update,
            headers={
                "Authorization": f"Bearer {gw.token(user='mallory')}",
                "content-type": "application/octet-stream",
            },
        )


def budget_full(gw: Running) -> bool:
    """Whether mallory's budget of update bytes is whole (nothing taken from it)."""
    with gw.app.state.gateway.ctx.update_bytes.held(MALLORY) as budget:
        assert isinstance(budget, TokenBucket)
        return budget.wait_s(budget.burst) == 0


async def test_an_update_under_another_users_id_costs_nothing(tmp_path: Path) -> None:
    async with running_gateway(refund_settings(tmp_path / "steno")) as gw:
        letter, alice, _bob = await both_logged(gw)
        answer = await _post_as_mallory(gw, letter, posing_as(alice.doc))
        assert answer.status_code == 403, answer.text
        assert answer.json() == {"detail": "client id not owned"}
        assert budget_full(gw)


async def _never_ending(*args: Any) -> AsyncIterator[tuple[str, bytes]]:
    """A read of the letter's writers that never yields or ends (a long log)."""
    await asyncio.Event().wait()
    yield ("", b"")  # never reached: makes this an async generator, as loader.writes is


@asynccontextmanager
async def owners_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Running, str, bytes]]:
    """A gateway that cannot learn who owns the client ids of alice's letter (a new process, no
    Redis, its read of the letter's writers never ends): it, the letter, and an update posing as
    alice."""
    settings = refund_settings(tmp_path / "steno")
    async with running_gateway(settings) as gw:
        letter, alice, _bob = await both_logged(gw)
    monkeypatch.setattr(loader, "writes", _never_ending)  # the owners' read does not end
    async with running_gateway(settings) as gw:  # a new process, no Redis: nothing known
        yield gw, letter, posing_as(alice.doc)


async def test_an_update_whose_owner_is_unknown_costs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with owners_unknown(tmp_path, monkeypatch) as (gw, letter, posing):
        answer = await _post_as_mallory(gw, letter, posing)
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"detail": "client id owner unknown"}
        assert budget_full(gw)


def test_a_refund_gives_back_what_was_taken_and_no_more() -> None:
    now = [0.0]
    buckets = KeyedBuckets(rate=10, burst=100, clock=lambda: now[0])
    key = ("firm-a", "u")
    assert buckets.charge(key, 150) is None  # a full bucket takes more than its burst, in debt
    now[0] += 1  # 10 refilled
    buckets.refund(key, 150)
    assert buckets.admit(key, 100) is None  # whole again
    assert buckets.admit(key, 1) is not None  # and not more than whole
    bucket = TokenBucket(rate=10, burst=100, clock=lambda: now[0])
    bucket.reserve(30)
    bucket.refund(50)
    assert bucket.wait_s(100) == 0 and not bucket.take(100.5)
