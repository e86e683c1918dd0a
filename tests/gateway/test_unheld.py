"""Reads of letters the gateway does not hold: concurrent requests share a rebuild that has not
begun, a request never gets a state older than itself, and rebuilds wait their turn."""

import asyncio

import httpx
import pytest

from eventlog.errors import LogClosedError
from gateway.live.unheld import UnheldReads
from tests.gateway.harness import Running
from tests.support import eventually


class Log:
    """Stands in for `loader.load`: each rebuild reads the version current when it begins,
    then waits for the test to let it finish."""

    def __init__(self) -> None:
        self.version = 0
        self.begun: list[str] = []
        self.running = 0
        self.most_running = 0
        self.release = asyncio.Event()
        self.fail_next = False

    async def load(self, letter_id: str) -> bytes:
        self.begun.append(letter_id)
        seen = self.version
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.release.wait()
            if self.fail_next:
                self.fail_next = False
                raise OSError("log unreachable")
            return f"{letter_id}@{seen}".encode()
        finally:
            self.running -= 1


async def settle() -> None:
    """Let every task that can run, run (nothing here waits on time)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_requests_share_a_rebuild_not_begun_and_wait_for_the_next_once_it_has() -> None:
    log = Log()
    reads = UnheldReads(log.load, at_once=2)
    first = asyncio.create_task(reads.state("A"))
    await eventually(lambda: log.begun == ["A"])
    log.version = 1  # a write acknowledged after the first rebuild read the log
    later = [asyncio.create_task(reads.state("A")) for _ in range(5)]
    await settle()
    assert log.begun == ["A"], "a second rebuild of A began while the first ran"
    log.release.set()
    assert await first == b"A@0"
    assert await asyncio.gather(*later) == [b"A@1"] * 5  # one more rebuild, with the write
    assert log.begun == ["A", "A"]
    await reads.close()


async def test_at_most_at_once_letters_are_rebuilt_together() -> None:
    log = Log()
    reads = UnheldReads(log.load, at_once=2)
    tasks = [asyncio.create_task(reads.state(f"L{i}")) for i in range(6)]
    await eventually(lambda: len(log.begun) == 2)
    await settle()
    assert (len(log.begun), reads.in_flight) == (2, 6)
    log.release.set()
    assert await asyncio.gather(*tasks) == [f"L{i}@0".encode() for i in range(6)]
    assert log.most_running == 2
    assert reads.in_flight == 0
    await reads.close()


async def test_a_failed_rebuild_fails_its_requests_and_one_going_away_costs_others_nothing() -> (
    None
):
    log = Log()
    reads = UnheldReads(log.load, at_once=1)
    leaving = asyncio.create_task(reads.state("A"))
    staying = asyncio.create_task(reads.state("A"))
    await eventually(lambda: log.begun == ["A"])
    leaving.cancel()
    log.fail_next = True
    log.release.set()
    with pytest.raises(OSError, match="log unreachable"):
        await staying
    assert await reads.state("A") == b"A@0"  # the next request rebuilds again
    assert leaving.cancelled()
    await reads.close()


async def test_close_ends_waiting_rebuilds() -> None:
    log = Log()
    reads = UnheldReads(log.load, at_once=1)
    running, waiting = (asyncio.create_task(reads.state(x)) for x in "AB")
    await eventually(lambda: log.begun == ["A"])
    await reads.close()
    for task in (running, waiting):
        with pytest.raises(LogClosedError):  # a 503, as when the log closes
            await task
    assert reads.in_flight == 0


async def test_concurrent_gets_of_a_letter_not_held_share_its_rebuild(
    gw: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    letter = await gw.create_letter("one\ntwo")
    headers = {"Authorization": f"Bearer {gw.token(role='service')}"}
    before = (await gw.metrics()).get("gateway_unheld_read_seconds_count", 0.0)
    # The first request's rebuild begins and is held there; the nine others arrive after it
    # began, so they must share the next one: two rebuilds for ten requests, whatever the
    # timing of the requests (without the hold, the nine may also join the first, not begun).
    unheld = gw.app.state.gateway.unheld
    arrived, begun, gate = 0, asyncio.Event(), asyncio.Event()
    state, load = unheld.state, unheld._load

    async def counted(letter_id: str) -> bytes:
        nonlocal arrived
        arrived += 1
        return await state(letter_id)

    async def gated(letter_id: str) -> bytes:
        begun.set()
        await gate.wait()
        return await load(letter_id)

    monkeypatch.setattr(unheld, "state", counted)
    monkeypatch.setattr(unheld, "_load", gated)
    async with httpx.AsyncClient(base_url=gw.http, headers=headers) as http:
        gets = [asyncio.ensure_future(http.get(f"/v1/letters/{letter}"))]
        await begun.wait()
        gets += [asyncio.ensure_future(http.get(f"/v1/letters/{letter}")) for _ in range(9)]
        await eventually(lambda: arrived == 10)
        gate.set()
        answers = await asyncio.gather(*gets)
    assert {r.status_code for r in answers} == {200}
    assert {r.json()["content"] for r in answers} == {"one\ntwo"}
    rebuilds = (await gw.metrics())["gateway_unheld_read_seconds_count"] - before
    assert rebuilds == 2, rebuilds  # one begun, one shared by those who came later
