"""What the page says when the server cannot take or give what it asks for: a link closed for good
with edits not yet saved, and the history panel while the server rebuilds history (503 with
Retry-After).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import re

import httpx
from playwright.async_api import Browser, Route, expect

from tests.support import eventually
from tests.web.browser import (
    LETTER_SOCKET,
    HeldEchoes,
    auth,
    create_letter,
    new_page,
    sign_in,
    type_at_end,
)

VERSIONS = re.compile(r"/v1/letters/[^/]+/versions$")


async def test_a_link_closed_with_edits_pending_still_says_they_are_not_saved(
    base_url: str, browser: Browser
) -> None:
    """Signed in on the page itself, no host renews the token: after the 4401 close the badge
    said only "session expired", though the edits typed before it were never saved."""
    context, page = await new_page(browser)
    try:
        socket = HeldEchoes()
        await page.route_web_socket(LETTER_SOCKET, socket.route)
        await sign_in(page, base_url, "avery")
        await create_letter(page, "Expiring", "Dear Sir,")
        socket.held = True
        await type_at_end(page, " Not echoed.")
        badge = page.locator(".connection")
        await expect(badge).to_have_attribute("data-pending", "true")
        assert socket.page is not None
        await socket.page.close(code=4401, reason="token expired")
        await expect(badge).to_have_attribute("data-link", "closed")
        await expect(badge).to_contain_text("Your session expired")
        await expect(badge).to_contain_text("edits pending, not saved")
    finally:
        await context.close()


async def _letter_with_a_version(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, headers=auth("avery", "editor")) as http:
        body = {"firm_id": "demo-firm", "title": "Audited", "content": "Dear Sir,"}
        created = await http.post("/v1/letters", json=body)
        assert created.status_code == 201, created.text
        letter = str(created.json()["letter_id"])
        saved_version = await http.post(f"/v1/letters/{letter}/versions", json={"label": "draft"})
        assert saved_version.status_code == 202, saved_version.text
    async with httpx.AsyncClient(base_url=base_url, headers=auth("audrey", "auditor")) as http:

        async def listed() -> bool:
            return "draft" in (await http.get(f"/v1/letters/{letter}/versions")).text

        await eventually(listed, timeout=30, interval=0.2)
    return letter


async def test_the_history_panel_while_history_is_rebuilt(base_url: str, browser: Browser) -> None:
    """A refresh that failed left the earlier version rows beside the error, as if current; and
    a 503 with a short Retry-After was an error at once instead of asked again then."""
    letter = await _letter_with_a_version(base_url)
    context, page = await new_page(browser)
    try:
        wait = ["0"]  # the next answer's Retry-After; "0": the server's own answer
        asked: list[str] = []

        async def rebuilding(route: Route) -> None:
            asked.append(wait[0])
            if wait[0] == "0":
                await route.continue_()
                return
            body = '{"detail": "history is being rebuilt from the log"}'
            headers = {"Retry-After": wait[0], "Content-Type": "application/json"}
            if wait[0] == "1":
                wait[0] = "0"  # a short wait: once
            await route.fulfill(status=503, body=body, headers=headers)

        await page.route(VERSIONS, rebuilding)
        await page.goto(f"{base_url}/?as=audrey#/letters/{letter}")
        await page.click("role=tab[name='History']")
        rows = page.locator(".history .versions li")
        status = page.locator(".history [role=status]").first
        await expect(rows).to_have_count(1)
        await expect(rows).to_contain_text("Version 1")

        # A short wait: asked again after it, and the panel shows the answer.
        asked.clear()
        wait[0] = "1"
        await page.click(".history button:has-text('Refresh')")
        await eventually(lambda: asked == ["1", "0"])
        await expect(rows).to_have_count(1)
        await expect(status).to_have_text("")

        # A long one: the error and when it is asked again, with no rows from before beside it.
        wait[0] = "30"
        await page.click(".history button:has-text('Refresh')")
        await expect(status).to_contain_text("being rebuilt")
        await expect(status).to_contain_text("Trying again in 30 s.")
        await expect(rows).to_have_count(0)
    finally:
        await context.close()


async def test_edits_pending_through_a_reconnect_that_never_syncs_still_say_so(
    base_url: str, browser: Browser
) -> None:
    """While the log is down, each reconnect is accepted, never synced, and closed with 4503
    after the append timeout: the badge said "Loading letter…" for most of an outage and
    dropped the warning that the edits typed were only in this tab."""
    context, page = await new_page(browser)
    try:
        socket = HeldEchoes()
        await page.route_web_socket(LETTER_SOCKET, socket.route)
        await sign_in(page, base_url, "avery")
        await create_letter(page, "Outage", "Dear Sir,")
        socket.held = True  # from now on the server's messages (this link's and the next's) stop
        await type_at_end(page, " Typed in the outage.")
        badge = page.locator(".connection")
        await expect(badge).to_have_attribute("data-pending", "true")
        assert socket.page is not None
        await socket.page.close(code=4503, reason="log unavailable")
        await expect(badge).to_have_attribute("data-link", "connected")  # the reconnect
        await expect(badge).to_contain_text("Loading letter")
        await expect(badge).to_contain_text("edits pending, not saved: keep this tab open")
    finally:
        await context.close()
