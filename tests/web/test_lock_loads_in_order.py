"""The locks panel asks for the list at start and again once connected, and the two answers may
come back in either order: the older one, arriving last, put back a lock released meanwhile
(a colleague's section shown locked for up to its 300 s TTL). Only the newest ask's answer is
taken now (locks.ts `refresh`), as for the comment list.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (its stack and
browser fixtures).
"""

import asyncio
import json
import re
from urllib.parse import quote

import httpx
from playwright.async_api import Browser, Route, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.web.browser import TAG_HEADER, new_page, note_tagged_reads, open_letter, tagged_read
from tests.web.test_browser import STACK_SECRET, base_url, browser

__all__ = ["base_url", "browser"]  # the stack and browser fixtures of test_browser.py

LOCKS = re.compile(r"/v1/letters/[^/]+/locks$")
SECTION = "paragraph 1"


def _auth(user: str) -> dict[str, str]:
    token = mint_token(Settings(jwt_secret=STACK_SECRET), user, "demo-firm", name=user.title())
    return {"Authorization": f"Bearer {token}"}


async def test_an_older_lock_list_answering_last_does_not_bring_a_released_lock_back(
    base_url: str, browser: Browser
) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        body = {"firm_id": "demo-firm", "title": "Locks out of order", "content": "Dear Sir,\nX."}
        created = await http.post("/v1/letters", json=body, headers=_auth("avery"))
        assert created.status_code == 201, created.text
        letter = str(created.json()["letter_id"])
        lock = f"/v1/letters/{letter}/locks/{quote(SECTION)}"
        assert (await http.post(lock, headers=_auth("parker"))).is_success

    # The first listing is answered as the server had it then (Parker's lock), but only after
    # the second one, asked once Parker released the section, was answered and read.
    first, released, newer_read = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def hold(route: Route) -> None:
        if route.request.method != "GET":
            await route.continue_()
            return
        if not first.is_set():
            first.set()
            answer = await route.fetch()
            # Its colour given: drawn at once after it is read (no digest to wait for).
            listed = json.loads(await answer.text())
            for held in listed["locks"]:
                held["locked_by"]["color"] = "#336699"
            await newer_read.wait()
            tagged = {**answer.headers, TAG_HEADER: "older"}
            await route.fulfill(response=answer, headers=tagged, body=json.dumps(listed))
            return
        await released.wait()
        answer = await route.fetch()
        await route.fulfill(response=answer, headers={**answer.headers, TAG_HEADER: "newer"})

    context, page = await new_page(browser)
    try:
        await note_tagged_reads(page)
        await page.route(LOCKS, hold)
        await open_letter(page, base_url, "avery", letter)
        await asyncio.wait_for(first.wait(), timeout=10)
        async with httpx.AsyncClient(base_url=base_url) as http:
            assert (await http.delete(lock, headers=_auth("parker"))).is_success
        released.set()
        await tagged_read(page, "newer")
        newer_read.set()
        await tagged_read(page, "older")
        await expect(page.locator(".lock-row")).to_have_count(0)
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()
