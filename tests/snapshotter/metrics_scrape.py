"""The snapshotter's /metrics, scraped: samples by name and labels."""

import asyncio
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import eventually

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(port: int) -> Samples:
    url = f"http://127.0.0.1:{port}/metrics"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


async def serving(task: "asyncio.Task[None]", caplog: pytest.LogCaptureFixture) -> None:
    await eventually(lambda: "snapshotter metrics on" in caplog.text or task.done(), timeout=30)
    assert not task.done(), f"the service ended: {task.exception()!r}"
