"""The locks panel while Redis's locks are being restored after a wipe: the listing answers 503
with Retry-After (gateway/collab/locks.py `held`) until the gateway restored them from the log.
The page said "Could not load locks: <the operator's detail>" and never asked again (or, with the
request's own retries, showed nothing of it); now it says they are being restored, asks again
after Retry-After, and shows the lock once restored.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py, but on a Redis of
the test's own (FLUSHALL takes every database), and with the gateway's own restore (woken by the
first 503, as tests/collab/test_locks_after_wipe.py).
"""

import asyncio
import re
import secrets
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest_asyncio
import redis.asyncio as aioredis
from playwright.async_api import Browser, Route, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from steno_collab.processes import free_port
from tests.support import own_services
from tests.web.browser import new_page, open_letter
from tests.web.test_browser import browser, start_stack

__all__ = ["browser"]  # the browser fixture of test_browser.py

LOCKS = re.compile(r"/v1/letters/[^/]+/locks$")
SECTION = "paragraph 1"
LISTINGS_AT_OPEN = 2  # locks.ts: `refresh` at start, and on the socket's "connected"
RESTORE_WITHIN_MS = 30_000  # a retry 5 s after the 503; a slow machine may need another


@dataclass
class Stack:
    url: str
    secret: str
    redis: aioredis.Redis


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack() -> AsyncIterator[Stack]:
    secret = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="steno-web-") as data:
        services = await own_services(Path(data) / "redis", persistent=False, postgres=False)
        redis = aioredis.Redis.from_url(services.redis_url)
        (Path(data) / "stack").mkdir()
        port = free_port()
        proc = await start_stack(Path(data) / "stack", port, secret, redis_url=services.redis_url)
        try:
            yield Stack(f"http://127.0.0.1:{port}", secret, redis)
        finally:
            await proc.stop(timeout=30)
            await redis.aclose()
            await services.stop()


async def _letter_locked_by_parker(stack: Stack) -> str:
    def auth(user: str) -> dict[str, str]:
        token = mint_token(Settings(jwt_secret=stack.secret), user, "demo-firm", name=user.title())
        return {"Authorization": f"Bearer {token}"}

    async with httpx.AsyncClient(base_url=stack.url) as http:
        body = {"firm_id": "demo-firm", "title": "Wiped", "content": "Dear Sir,\nTerms."}
        created = await http.post("/v1/letters", json=body, headers=auth("avery"))
        assert created.status_code == 201, created.text
        letter = str(created.json()["letter_id"])
        path = f"/v1/letters/{letter}/locks/{quote(SECTION)}"
        locked = await http.post(path, headers=auth("parker"))
        assert locked.is_success, locked.text
    return letter


async def test_the_locks_panel_waits_for_the_restore_and_then_shows_the_lock(
    stack: Stack, browser: Browser
) -> None:
    letter = await _letter_locked_by_parker(stack)
    context, page = await new_page(browser)
    try:
        await open_letter(page, stack.url, "avery", letter)
        rows = page.locator(".lock-row")
        await expect(rows).to_have_text([f"“{SECTION}” Parker"])

        # The page opened again, its two listings (at start, and once connected) held until
        # Redis is wiped: they reach the gateway before the restore, which the first 503 wakes
        # (its periodic check could otherwise run first).
        held: list[Route] = []
        both, wiped = asyncio.Event(), asyncio.Event()

        async def hold(route: Route) -> None:
            if not wiped.is_set():
                held.append(route)
                if len(held) == LISTINGS_AT_OPEN:
                    both.set()
                await wiped.wait()
            await route.continue_()

        await page.route(LOCKS, hold)
        await open_letter(page, stack.url, "avery", letter)
        await asyncio.wait_for(both.wait(), timeout=10)
        await stack.redis.flushall()
        wiped.set()

        status = page.locator(".lock-status")
        await expect(status).to_have_text("Locks are being restored; checking again in 5 s.")
        await expect(page.locator(".lock-list li")).to_have_text(
            ["Not known until the locks are restored."]
        )
        await expect(rows).to_have_text([f"“{SECTION}” Parker"], timeout=RESTORE_WITHIN_MS)
        await expect(status).to_be_empty()
    finally:
        await context.close()
