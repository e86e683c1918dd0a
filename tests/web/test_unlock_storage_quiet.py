"""A tab going away remembers each lock it releases in localStorage (src/editor/lost-unlocks.ts),
and every other tab of the user hears each write. Every one of them read its own letter's locks
and those of every letter remembered, on every write (forgets too): 14 tabs, one leaving with 5
locks, made 146 GETs in 1.5 s, 21 of them answered 429. Only a tab on the released letter
reacts now, once per burst of writes, reading that letter's locks alone.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import asyncio
import re

import pytest
from playwright.async_api import Browser, Page, Request, expect

from tests.web.browser import (
    FIRST_SECTION,
    STACK_SECRET,
    lock_first_paragraph,
    new_page,
    open_letter,
    post_letter,
)

LOCKS = re.compile(r"/v1/letters/[^/?]+/locks$")
OTHER_LETTERS = 4
# Nothing signals that a tab did NOT react: after the last forget, a window longer than the
# page's debounce (300 ms) in which a late reaction would show.
STRAGGLERS_S = 1.0
STORED = "() => localStorage.getItem('steno.unlocks.demo-firm.avery')"


@pytest.mark.timeout(150)
async def test_a_tab_leaving_with_locks_costs_one_list_read_per_tab_on_its_letter(
    base_url: str, browser: Browser
) -> None:
    letter = await post_letter(base_url, STACK_SECRET, "Leaving with locks")
    others = [
        await post_letter(base_url, STACK_SECRET, f"Elsewhere {n}") for n in range(OTHER_LETTERS)
    ]
    context, leaving = await new_page(browser)
    errors: list[str] = []
    try:
        tabs: list[Page] = []
        for shown in [letter, *others]:  # her other tabs, same browser storage
            tab = await context.new_page()
            tab.on("pageerror", lambda error: errors.append(str(error)))
            await open_letter(tab, base_url, "avery", shown)
            tabs.append(tab)
        partner = tabs[0]  # the one other tab on the letter
        await open_letter(leaving, base_url, "avery", letter)
        await lock_first_paragraph(leaving)
        await leaving.locator(".letter-body p").nth(1).click()
        await leaving.click("button.lock-toggle")
        held = [
            f"“{FIRST_SECTION}” Avery Attorney (you)",
            "“paragraph 2” Avery Attorney (you)",
        ]
        await expect(leaving.locator(".lock-row")).to_have_text(held)  # granted: it releases both
        await expect(partner.locator(".lock-row")).to_have_text(held)

        reads: list[str] = []

        def note(request: Request) -> None:
            if request.method == "GET" and LOCKS.search(request.url.split("?")[0]):
                reads.append(request.url)

        context.on("request", note)
        await leaving.goto("about:blank")  # pagehide: two releases remembered, then sent
        # The partner tab read the letter's locks and forgot both releases (sent or not needed).
        await partner.wait_for_function(f"() => ({STORED})() === null")
        await asyncio.sleep(STRAGGLERS_S)
        # At most once per tab showing the letter (none if the releases were seen answered).
        assert reads in ([], [f"{base_url}/v1/letters/{letter}/locks"]), reads
        await expect(partner.locator(".lock-row")).to_have_count(0)
        assert errors == [] and leaving.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()
