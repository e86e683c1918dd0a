"""A log outage is one WARNING per letter from its rescue, not one per client reconnect: each
reconnect asks the rescue to append (`ensure`, refused with 4503 while the log is down), and each
failure was a WARNING (118 lines in 110 s for one letter with two clients). The repeats go to
DEBUG, counted, and the rescue landing is one INFO line saying after how many attempts."""

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import websockets

from gateway.errors import LOG_UNAVAILABLE
from schemas.settings import Settings
from tests.gateway.faults import FaultyLog, faulty_gateway
from tests.gateway.harness import Running
from tests.support import eventually

RECONNECTS = 4
LANDED = re.compile(r"rescue of \S+: (\d+) entr(?:y|ies) appended after (\d+) attempts?")


@pytest_asyncio.fixture(loop_scope="session")
async def faulty(tmp_path: Path) -> AsyncIterator[tuple[Running, FaultyLog]]:
    async with faulty_gateway(Settings(data_dir=tmp_path / "steno", partitions=2)) as pair:
        yield pair


async def test_an_outage_is_one_warning_per_letter_however_often_clients_reconnect(
    faulty: tuple[Running, FaultyLog], caplog: pytest.LogCaptureFixture
) -> None:
    gw, log = faulty
    letter, alice, bob = await gw.two_editors()
    with caplog.at_level(logging.DEBUG, logger="gateway.live.rescue"):
        log.broken = True
        await alice.insert("held by the rescue")
        await alice.closed.wait()
        await bob.closed.wait()
        for user in ["alice", "bob"] * (RECONNECTS // 2):  # each reconnect asks the rescue
            async with websockets.connect(gw.ws_url(letter, gw.token(user=user))) as again:
                with pytest.raises(websockets.ConnectionClosed):
                    await again.recv()
            assert again.close_code == LOG_UNAVAILABLE
        log.broken = False
        landed = await eventually(lambda: _landed(caplog), 30)  # backoff up to 10 s

    rescue = [r for r in caplog.records if r.name == "gateway.live.rescue"]
    failed = [r for r in rescue if "still unlogged" in r.getMessage()]
    assert len(failed) >= RECONNECTS, failed  # every failed attempt is still told, at DEBUG
    warnings = [r for r in rescue if r.levelno >= logging.WARNING]
    assert warnings == failed[:1], [r.getMessage() for r in warnings]
    assert int(landed.group(1)) >= 1  # alice's update (and the sessions' ends)
    assert int(landed.group(2)) == len(failed) + 1, landed.group(0)


def _landed(caplog: pytest.LogCaptureFixture) -> re.Match[str] | None:
    found = [
        LANDED.search(r.getMessage())
        for r in caplog.records
        if r.name == "gateway.live.rescue" and r.levelno == logging.INFO
    ]
    return next((m for m in found if m), None)
