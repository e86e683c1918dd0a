"""STENO_PROJECTOR_METRICS_PORT: a port serves /metrics; 0 turns them off (the environment
cannot say None)."""

import asyncio
import contextlib
import logging
import urllib.request

import pytest

from eventlog import Log
from projector.consumer import Projector
from projector.entry import run
from projector.settings import ProjectorSettings
from schemas.settings import Settings
from tests.support import free_port


@pytest.mark.parametrize("off", [True, False])
async def test_metrics_port_0_is_off(
    settings: Settings,
    log: Log,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    off: bool,
) -> None:
    port = 0 if off else free_port()
    monkeypatch.setenv("STENO_PROJECTOR_METRICS_PORT", str(port))
    options = ProjectorSettings(check_interval_s=0.1)
    caplog.set_level(logging.INFO, logger="projector.entry")
    started: asyncio.Future[Projector] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run(settings, options, log, started))
    try:
        await asyncio.wait_for(asyncio.shield(started), 30)
        served = [
            r.getMessage() for r in caplog.records if "projector metrics on" in r.getMessage()
        ]
        if off:
            assert served == []
        else:
            assert served == [f"projector metrics on http://127.0.0.1:{port}/metrics"]
            url = f"http://127.0.0.1:{port}/metrics"
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
            assert b"projector_events_folded" in body
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
