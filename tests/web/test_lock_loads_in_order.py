"""The locks panel asks for the list at start and again once connected, and the two answers may
come back in either order: the older one, arriving last, put back a lock released meanwhile
(a colleague's section shown locked for up to its 300 s TTL). Only the newest ask's answer is
taken now (locks.ts `refresh`), as for the comment list.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import asyncio
import re
from typing import Any
from urllib.parse import quote

import httpx
from playwright.async_api import Browser, expect

from tests.web.browser import Hold, auth, new_page, note_tagged_reads, open_letter, tagged_read

LOCKS = re.compile(r"/v1/letters/[^/]+/locks$")
SECTION = "paragraph 1"


def _coloured(listed: Any) -> None:
    """Each lock's colour given: drawn at once after it is read (no digest to wait for)."""
    for held in listed["locks"]:
        held["locked_by"]["color"] = "#336699"


async def test_an_older_lock_list_answering_last_does_not_bring_a_released_lock_back(
    base_url: str, browser: Browser
) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        body = {"firm_id": "demo-firm", "title": "Locks out of order", "content": "Dear Sir,\nX."}
        created = await http.post("/v1/letters", json=body, headers=auth("avery"))
        assert created.status_code == 201, created.text
        letter = str(created.json()["letter_id"])
        lock = f"/v1/letters/{letter}/locks/{quote(SECTION)}"
        assert (await http.post(lock, headers=auth("parker"))).is_success

    # The first listing is answered as the server had it then (Parker's lock), but only after
    # the second one, asked once Parker released the section, was answered and read.
    newer = Hold("GET", count=None, tag="newer")  # asked once connected: after the release
    older = Hold("GET", answered=True, tag="older", rewrite=_coloured)

    context, page = await new_page(browser)
    try:
        await note_tagged_reads(page)
        await page.route(LOCKS, newer)
        await page.route(LOCKS, older)  # the last route is tried first: the first listing
        await open_letter(page, base_url, "avery", letter)
        await asyncio.wait_for(older.held.wait(), timeout=10)
        async with httpx.AsyncClient(base_url=base_url) as http:
            assert (await http.delete(lock, headers=auth("parker"))).is_success
        newer.release()
        await tagged_read(page, "newer")
        older.release()
        await tagged_read(page, "older")
        await expect(page.locator(".lock-row")).to_have_count(0)
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()
