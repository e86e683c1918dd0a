"""Shutting down with several letters whose rescue waits on an append the log never confirms
ends in a time that does not grow with the number of letters: each rescue waited its own
append timeout (and then tried once more), one after another, so a handful of letters on a
stalled log outlasted a 30 s grace period and the process was killed."""

import asyncio
from pathlib import Path

from schemas.settings import Settings
from tests.gateway.faults import faulty_gateway

TIMEOUT_S = 1.0
LETTERS = 6


async def test_rescues_wait_for_their_appends_together_at_shutdown(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, append_timeout_s=TIMEOUT_S)
    async with faulty_gateway(settings) as (gw, log):
        letters = [await gw.create_letter() for _ in range(LETTERS)]
        clients = [await gw.client(letter, user="alice") for letter in letters]
        for client in clients:
            await client.synced.wait()
        log.gate.clear()  # the log stalls, and stays so through the shutdown
        for client in clients:
            await client.insert("x")
        for client in clients:
            await client.closed.wait()  # 4503: each letter's append went unconfirmed
        # Together: one wait for the outcomes and one last attempt (2 s), whatever the count;
        # one after another it took twice the bound here.
        async with asyncio.timeout(LETTERS * TIMEOUT_S):
            await gw.app.state.gateway.rooms.close()
        log.gate.set()
