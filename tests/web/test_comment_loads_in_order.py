"""Loads of the comment list overlap (the page's first load, a colleague's reply noticed live) and
their answers may come back in another order: the older answer, arriving last, redrew the list as
it was (the reply gone from it). Only the newest load's answer is drawn now (comments.ts `load`).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import asyncio

import httpx
from playwright.async_api import Browser, expect

from tests.web.browser import Hold, auth, new_page, note_tagged_reads, open_letter, tagged_read
from tests.web.threads import COMMENTS

LETTER = "Dear Sir,\nWe claim damages."


async def test_an_older_list_answering_last_does_not_replace_a_newer_one(
    base_url: str, browser: Browser
) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        body = {"firm_id": "demo-firm", "title": "Out of order", "content": LETTER}
        created = await http.post("/v1/letters", json=body, headers=auth("avery"))
        assert created.status_code == 201, created.text
        letter = str(created.json()["letter_id"])
        comment = {"body": "First", "anchor": {"from": 0, "to": 4}, "mentions": []}
        posted = await http.post(
            f"/v1/letters/{letter}/comments", json=comment, headers=auth("avery")
        )
        assert posted.status_code == 201, posted.text
        thread = str(posted.json()["thread_id"])

    # The page's first load is answered as the server had it then, but only once the reply's
    # load has been answered and drawn.
    first = Hold("GET", answered=True, tag="older")
    context, page = await new_page(browser)
    try:
        await note_tagged_reads(page)
        await page.route(COMMENTS, first)
        await open_letter(page, base_url, "avery", letter)
        await asyncio.wait_for(first.held.wait(), timeout=10)

        async with httpx.AsyncClient(base_url=base_url) as http:
            reply = {"body": "Second", "mentions": []}
            path = f"/v1/letters/{letter}/comments/{thread}/replies"
            replied = await http.post(path, json=reply, headers=auth("parker"))
            assert replied.status_code == 201, replied.text
        comments = page.locator("article.thread li[data-comment]")
        await expect(comments).to_have_count(2)  # the live notice's load, the newer one

        first.release()
        await tagged_read(page, "older")
        await expect(comments).to_have_count(2)
        await expect(comments.nth(1)).to_contain_text("Second")
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()
