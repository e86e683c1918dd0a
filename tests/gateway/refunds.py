"""An update the gateway refuses for its client ids' owners (another user's, or unknown), and
whether the poser's budget of update bytes is whole."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from gateway.live import loader
from gateway.live.buckets import TokenBucket
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


def budget_full(gw: Running) -> bool:
    """Whether mallory's budget of update bytes is whole (nothing taken from it)."""
    with gw.app.state.gateway.ctx.update_bytes.held(MALLORY) as budget:
        assert isinstance(budget, TokenBucket)
        return budget.wait_s(budget.burst) == 0


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
