"""A session's end says how the client left: "client closed" when it sent a close frame,
"connection lost" when its socket went without one (its process killed, its network gone): the
audit told them apart by nothing (an auditor read a dropped connection as an orderly quit)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from eventlog.factory import open_log
from schemas.envelope import decode_record
from schemas.events import (
    CLIENT_CLOSED_REASON,
    CONNECTION_LOST_REASON,
    SessionLeft,
    Topic,
)
from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway
from tests.gateway.hocuspocus_client import HpClient
from tests.support import eventually


@asynccontextmanager
async def _gateway(tmp_path: Path, **given: Any) -> AsyncIterator[Running]:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, **given)
    log = open_log(settings)
    await log.start()
    try:
        async with running_gateway(settings, log=log) as gw:
            yield gw
    finally:
        await log.close()


async def _reasons(gw: Running, letter: str) -> list[str]:
    records = await gw.records(Topic.LETTERS, letter)
    found = [decode_record(r.key, r.value, r.headers).payload for r in records]
    return [p.reason for p in found if isinstance(p, SessionLeft)]


async def test_a_closed_and_a_lost_connection_end_with_their_own_reasons(tmp_path: Path) -> None:
    async with _gateway(tmp_path) as gw:
        letter = await gw.create_letter()
        closing = await gw.client(letter, user="alice")
        await closing.synced.wait()
        await closing.close()  # a close frame, as a tab closed
        assert await eventually(lambda: _reasons(gw, letter)) == [CLIENT_CLOSED_REASON]

        dropped = await gw.client(letter, user="bob")
        await dropped.synced.wait()
        dropped.ws.transport.abort()  # the socket gone, no close frame
        await dropped.closed.wait()

        async def two() -> list[str] | None:
            found = await _reasons(gw, letter)
            return found if len(found) == 2 else None

        assert await eventually(two) == [CLIENT_CLOSED_REASON, CONNECTION_LOST_REASON]


async def test_a_frame_the_websocket_layer_refused_is_not_a_lost_connection(
    tmp_path: Path,
) -> None:
    """A frame over `ws_max_size` is closed 1009 by uvicorn itself: our refusal, not the client
    gone (re-read rrE: it read "connection lost")."""
    async with _gateway(tmp_path, max_message_bytes=65536) as gw:
        letter = await gw.create_letter()
        client = await gw.client(letter, user="alice")
        await client.synced.wait()
        await client.ws.send(b"\x00\x02" + b"x" * (1 << 20))
        await client.closed.wait()
        assert client.close_code == 1009
        assert await eventually(lambda: _reasons(gw, letter)) == [CLIENT_CLOSED_REASON]


async def test_a_hocuspocus_provider_gone_without_a_close_frame_is_a_lost_connection(
    tmp_path: Path,
) -> None:
    """Each document of the socket ends as its socket did (re-read rrE: "client closed")."""
    async with _gateway(tmp_path) as gw:
        letter = await gw.create_letter()
        client = await HpClient.connect(gw)
        await client.synced(f"letter-{letter}", gw.token(user="alice"))
        client.ws.transport.abort()  # killed: no close frame
        await client.closed.wait()
        assert await eventually(lambda: _reasons(gw, letter)) == [CONNECTION_LOST_REASON]
