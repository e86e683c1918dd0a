"""Graceful shutdown: stop accepting, flush pending appends, close clients with 1001."""

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Text, merge_updates

from eventlog.factory import open_log
from gateway.auth import verify_token
from gateway.errors import GOING_AWAY, Refused
from schemas.envelope import decode_record
from schemas.events import SHUTDOWN_REASON, SessionLeft, Topic
from schemas.settings import Settings
from tests.gateway.faults import FaultyLog, faulty_gateway
from tests.gateway.harness import YClient, running_gateway, types_of
from tests.support import eventually


async def test_drain_flushes_pending_appends_and_closes_with_1001(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    real = open_log(settings)
    await real.start()
    log = FaultyLog(real)
    try:
        async with running_gateway(settings, log=log) as gw:
            letter = await gw.create_letter()
            client = await gw.client(letter, user="alice")
            await client.synced.wait()
            log.gate.clear()  # the next append is still in flight when shutdown starts
            await client.insert("last words")
            await eventually(lambda: log.waiting == 1)
            gw.server.should_exit = True
            gateway = gw.app.state.gateway
            await eventually(lambda: gateway.draining)
            # A REST write opens no room in a gateway that is closing them (503).
            meta = await gateway.access.lookup(letter)
            with pytest.raises(Refused, match="draining"):
                await gateway.write_update(meta, verify_token(gw.token(), settings), b"\x00\x00")
            log.gate.set()
            await client.closed.wait()
            assert client.close_code == GOING_AWAY
            assert str(client.text) == "last words"
            assert len(client.updates) == 2  # the echo (ack) came before the close
        topic = settings.topic(Topic.LETTERS)
        records = [r for r in await real.read(topic, 0, 0) if r.key == letter.encode()]
        updates = [r.value for r in records if dict(r.headers)["type"] == b"doc.update"]
        doc: Doc[Any] = Doc()
        doc.apply_update(merge_updates(*updates))
        assert str(doc.get("text", type=Text)) == "last words"
        assert types_of(records)[-1] == "session.left"
        # ... saying the drain ended it: the snapshotter waits for the user to rejoin before it
        # cuts a session-end version.
        left = decode_record(records[-1].key, records[-1].value, records[-1].headers).payload
        assert isinstance(left, SessionLeft) and left.reason == SHUTDOWN_REASON
    finally:
        await real.close()


async def test_joins_and_reads_waiting_for_a_load_are_answered_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shutdown while a letter loads: the join waiting for it is closed with 1001 and the read
    answered 503 as the drain begins, not after the drain's timeout (with a 500 for the read)."""
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    async with faulty_gateway(settings) as (gw, log):
        letter = await gw.create_letter("some content")
        log.read_gate.clear()  # the letter's load waits
        client = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")))
        await eventually(lambda: log.reads_waiting >= 1)
        gateway = gw.app.state.gateway
        reading, document = asyncio.Event(), gateway.document

        async def read_document(letter_id: str) -> Any:
            reading.set()  # from here the read waits for the load, with no await before it
            return await document(letter_id)

        monkeypatch.setattr(gateway, "document", read_document)
        async with httpx.AsyncClient(base_url=gw.http, timeout=30) as http:
            headers = {"Authorization": f"Bearer {gw.token(user='bob')}"}
            read = asyncio.create_task(http.get(f"/v1/letters/{letter}", headers=headers))
            await reading.wait()
            gw.server.should_exit = True
            response = await read
        await client.closed.wait()
        log.read_gate.set()
    assert response.status_code == 503, response.text
    assert client.close_code == GOING_AWAY
    assert "did not close in time" not in caplog.text
