"""The locks panel while Redis's locks are being restored after a wipe: the listing answers 503
with Retry-After (gateway/collab/locks.py `held`) until they are restored from the log. The
page said "Could not load locks: <the operator's detail>" and never asked again (or, with the
request's own retries, showed nothing of it); now it says they are being restored, asks again
after Retry-After, and shows the lock once restored.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py, but on a Redis of
the test's own (FLUSHALL takes every database), with STENO_LOCKS_AUTO_RESTORE=false and the
restore run by hand (`steno-collab backfill locks`): the gateway's own restore (woken by the
first 503, or its check every 10 s) could come before the page's listing (a CI run's failure).
"""

import asyncio
import os
import re
import secrets
import tempfile
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest_asyncio
import redis.asyncio as aioredis
from playwright.async_api import Browser, expect

from steno_collab.processes import free_port
from tests.support import own_services
from tests.web.browser import auth, open_letter, pages
from tests.web.test_browser import STENO, browser, start_stack

__all__ = ["browser"]  # the browser fixture of test_browser.py

LOCKS = re.compile(r"/v1/letters/[^/]+/locks$")
SECTION = "paragraph 1"
RESTORE_WITHIN_MS = 30_000  # a retry 5 s after the 503; a slow machine may need another


@dataclass
class Stack:
    url: str
    secret: str
    redis: aioredis.Redis
    data_dir: Path
    redis_url: str


@asynccontextmanager
async def own_stack(**settings: str) -> AsyncIterator[Stack]:
    """`steno-collab dev` on a Redis of its own (`settings`: more STENO_* variables)."""
    secret = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="steno-web-") as data:
        services = await own_services(Path(data) / "redis", persistent=False, postgres=False)
        redis = aioredis.Redis.from_url(services.redis_url)
        stack_dir = Path(data) / "stack"
        stack_dir.mkdir()
        port = free_port()
        url = services.redis_url
        proc = await start_stack(stack_dir, port, secret, True, redis_url=url, **settings)
        try:
            yield Stack(f"http://127.0.0.1:{port}", secret, redis, stack_dir, url)
        finally:
            await proc.stop(timeout=30)
            await redis.aclose()
            await services.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack() -> AsyncIterator[Stack]:
    async with own_stack() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def unrestored() -> AsyncIterator[Stack]:
    """A stack whose gateway does not restore Redis by itself: a wipe's 503 lasts."""
    async with own_stack(locks_auto_restore="false") as running:
        yield running


async def restore_by_hand(stack: Stack) -> str:
    """`steno-collab backfill locks` on the stack's log and Redis: its output."""
    env = {**os.environ, "STENO_DATA_DIR": str(stack.data_dir), "STENO_REDIS_URL": stack.redis_url}
    proc = await asyncio.create_subprocess_exec(
        STENO, "backfill", "locks", env=env, stdout=PIPE, stderr=STDOUT
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def _letter_locked_by_parker(stack: Stack) -> str:
    async with httpx.AsyncClient(base_url=stack.url) as http:
        body = {"firm_id": "demo-firm", "title": "Wiped", "content": "Dear Sir,\nTerms."}
        created = await http.post(
            "/v1/letters", json=body, headers=auth("avery", secret=stack.secret)
        )
        assert created.status_code == 201, created.text
        letter = str(created.json()["letter_id"])
        path = f"/v1/letters/{letter}/locks/{quote(SECTION)}"
        locked = await http.post(path, headers=auth("parker", secret=stack.secret))
        assert locked.is_success, locked.text
    return letter


async def test_the_locks_panel_waits_for_the_restore_and_then_shows_the_lock(
    unrestored: Stack, browser: Browser
) -> None:
    letter = await _letter_locked_by_parker(unrestored)
    async with pages(browser, 1) as (page,):
        await open_letter(page, unrestored.url, "avery", letter)
        rows = page.locator(".lock-row")
        await expect(rows).to_have_text([f"“{SECTION}” Parker"])

        await unrestored.redis.flushall()
        await open_letter(page, unrestored.url, "avery", letter)  # the page opened again
        status = page.locator(".lock-status")
        await expect(status).to_have_text("Locks are being restored; checking again in 5 s.")
        await expect(page.locator(".lock-list li")).to_have_text(
            ["Not known until the locks are restored."]
        )
        assert "locks: 1 restored" in await restore_by_hand(unrestored)
        await expect(rows).to_have_text([f"“{SECTION}” Parker"], timeout=RESTORE_WITHIN_MS)
        await expect(status).to_be_empty()
