"""A version's save waits until the server has confirmed this tab's edits (save-version.ts). With
the log down the gateway holds the appends and the socket stays open: no echo ever came, and
"Saving after your last changes reach the server…" stayed for good, the label disabled. The wait
now has the deadline of the save's own request (api.ts `WRITE_WITHIN_MS`, 45 s): then the save
gives up, says nothing was saved and why, and the form can be used again.

The page's timers are moved on with Playwright's clock (as tests/web/test_comment_idempotency_
keys.py does for a request's deadline); the echoes dropped by tests/web/browser.py's
`HeldEchoes`. Against `steno-collab dev` in Debian's Chromium, as tests/web/test_save_version.py.
"""

import pytest
from playwright.async_api import Browser, expect

from tests.web.browser import DROP_SOCKET, STACK_SECRET, HeldEchoes, post_letter, saved, type_at_end
from tests.web.versions import STATUS, editor_page, named_content, save_as

WRITE_WITHIN_MS = 45_000  # web/src/api.ts
NOT_CONFIRMED = (
    "The version was not saved: your last changes did not reach the server within 45 s "
    "(the server has not confirmed them). Try again once the letter shows “all changes saved”."
)


@pytest.mark.timeout(120)
async def test_a_save_whose_edits_are_never_confirmed_gives_up_at_the_deadline(
    base_url: str, browser: Browser
) -> None:
    letter = await post_letter(base_url, STACK_SECRET, "Log down")
    socket = HeldEchoes()
    async with editor_page(base_url, browser, letter, socket) as page:
        await page.clock.install()  # real time, but the page's timers can be moved on
        socket.held = True  # the socket stays open; no echo comes back
        await type_at_end(page, " Never confirmed.")
        await expect(page.locator(".connection")).to_have_attribute("data-pending", "true")
        await save_as(page, "While the log is down")
        status, label = page.locator(STATUS), page.get_by_label("Version label")
        waiting = "Saving after your last changes reach the server…"
        await expect(status).to_have_text(waiting)
        await expect(label).to_be_disabled()

        await page.clock.fast_forward(WRITE_WITHIN_MS - 2_000)
        await expect(status).to_have_text(waiting)  # not given up before the deadline
        await page.clock.fast_forward(3_000)
        await expect(status).to_have_text(NOT_CONFIRMED)
        await expect(label).to_be_enabled()
        await expect(label).to_have_value("While the log is down")  # kept, for another try
        await expect(label).to_be_focused()
        assert page.saves == []  # type: ignore[attr-defined]

        # The log back (the echoes pass; the page resends what is unconfirmed once synced):
        # the same form saves, with the edit.
        socket.held = False
        await page.evaluate(DROP_SOCKET)
        await saved(page)
        await page.keyboard.press("Enter")
        await expect(status).to_have_text("Saved version “While the log is down”.")
        assert len(page.saves) == 1  # type: ignore[attr-defined]
    content = await named_content(base_url, letter, "While the log is down")
    assert content.endswith(" Never confirmed."), content
