"""A request the server never answers is given up by the page (api.ts): a read (GET) at
`READ_WITHIN_MS`, 15 s, a write at `WRITE_WITHIN_MS`, 45 s. Every request had the write's 45 s:
a letter list whose GET stalled stayed blank for 45 s before it said anything, where a read
answers in milliseconds; a write waits for the log (504 after the gateway's append timeout).

Both requests of the letters page are stalled (`page.route`: held, never answered) and the
page's timers moved on with Playwright's clock, as tests/web/test_comment_idempotency_keys.py
does. Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py.
"""

import re

import pytest
from playwright.async_api import Browser, Route, expect

from tests.support import eventually
from tests.web.browser import new_page, sign_in

READ_WITHIN_MS, WRITE_WITHIN_MS = 15_000, 45_000  # web/src/api.ts
LETTERS = re.compile(r"/v1/letters$")
UNREACHABLE = "The server could not be reached: try again in a moment."


@pytest.mark.timeout(120)
async def test_a_stalled_read_is_given_up_at_the_read_deadline_a_write_at_its_own(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser)
    try:
        await context.clock.install()  # real time, but the page's timers can be moved on
        stalled: dict[str, Route] = {}

        async def never(route: Route) -> None:
            stalled[route.request.method] = route  # held: no answer, no error

        await page.route(LETTERS, never)
        await sign_in(page, base_url, "avery")  # the letters page: its list's GET
        await eventually(lambda: "GET" in stalled)
        note = page.locator(".letters-page [role=status]")
        await page.fill("#new-title", "Never answered")
        create = page.get_by_role("button", name="Create letter")
        await create.click()
        await eventually(lambda: "POST" in stalled)
        await expect(create).to_be_disabled()
        await expect(note).to_have_text("")

        await page.clock.fast_forward(READ_WITHIN_MS - 2_000)
        await expect(note).to_have_text("")  # not before the deadline
        await page.clock.fast_forward(3_000)
        await expect(note).to_have_text(
            f"Could not load the letter list ({UNREACHABLE}): "
            "showing the letters opened in this browser."
        )
        # The write's deadline timer went off in the same move, had it been the read's.
        assert await create.is_disabled()
        error = page.locator(".side-forms [role=alert]")
        assert await error.text_content() == ""

        await page.clock.fast_forward(WRITE_WITHIN_MS - READ_WITHIN_MS)
        await expect(error).to_have_text(f"Could not create the letter: {UNREACHABLE}")
        await expect(create).to_be_enabled()
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()
