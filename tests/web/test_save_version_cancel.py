"""Cancel (or Escape, or the "Save version…" toggle closing the form) while a version's save
waits for this tab's own edits (offline: it can wait for hours) drops it: nothing is sent once
the edits are in, the status line says "Not saved.", and the label is enabled again, its text
kept; a later save works. Cancelling (or the toggle) did close the form but the save went on,
posted a few seconds after the browser was back online. Once the request is out it cannot be
called back, so Cancel and the toggle are disabled until the answer
(src/editor/save-version.ts).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_save_version.py (the helpers
of tests/web/versions.py and tests/web/conftest.py's stack and browser fixtures).
"""

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Browser, Page, expect

from tests.web.browser import STACK_SECRET, Hold, post_letter, saved, type_at_end
from tests.web.versions import FORM, STATUS, TOGGLE, editor_page, labels, listed, save_as, versions


async def cancel_by_click(page: Page) -> None:
    await page.get_by_role("button", name="Cancel").click()


async def cancel_by_escape(page: Page) -> None:
    await page.keyboard.press("Escape")


async def cancel_by_toggle(page: Page) -> None:
    """The "Save version…" toggle closing the form: the same gesture (it closed it; the save
    went on)."""
    await page.click(TOGGLE)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "cancel",
    [cancel_by_click, cancel_by_escape, cancel_by_toggle],
    ids=["click", "escape", "toggle"],
)
async def test_cancel_drops_a_save_waiting_for_this_tabs_edits(
    base_url: str, browser: Browser, cancel: Callable[[Page], Awaitable[None]]
) -> None:
    letter = await post_letter(base_url, STACK_SECRET, "Cancelled offline")
    async with editor_page(base_url, browser, letter) as page:
        await page.context.set_offline(True)
        badge = page.locator(".connection")
        await expect(badge).to_have_attribute("data-link", "offline")
        await type_at_end(page, " typed offline.")
        await expect(badge).to_have_attribute("data-pending", "true")
        await save_as(page, "cancelled?")
        status, label = page.locator(STATUS), page.get_by_label("Version label")
        await expect(status).to_have_text("Saving after your last changes reach the server…")
        await expect(label).to_be_disabled()

        await cancel(page)
        await expect(page.locator(FORM)).to_be_hidden()
        await expect(status).to_have_text("Not saved.")
        await expect(page.locator(TOGGLE)).to_be_focused()
        await page.click(TOGGLE)
        await expect(label).to_be_enabled()
        await expect(label).to_have_value("cancelled?")  # kept, for another try
        await expect(label).to_be_focused()

        # Online again, the edit confirmed: what the save waited for. It stays dropped.
        await page.context.set_offline(False)
        await saved(page)
        assert page.saves == []  # type: ignore[attr-defined]
        assert labels(await versions(base_url, letter)) == []

        await label.fill("after")
        await page.keyboard.press("Enter")
        await expect(status).to_have_text("Saved version “after”.")
        # Requests go out in order: a dropped save sent late would be listed before this one.
        saves = [r.post_data_json for r in page.saves]  # type: ignore[attr-defined]
        assert saves == [{"label": "after"}]
    assert await listed(base_url, letter, "after") == ["after"]


@pytest.mark.timeout(120)
async def test_cancel_is_disabled_while_the_save_request_is_out(
    base_url: str, browser: Browser
) -> None:
    """A request sent cannot be called back: Cancel, Escape and the "Save version…" toggle
    cannot pretend to (the toggle is disabled too). Saved with a click, the form keeps the focus
    the disabled Save button had."""
    letter = await post_letter(base_url, STACK_SECRET, "Sent")
    async with editor_page(base_url, browser, letter) as page:
        hold = Hold("POST")
        await page.route(f"**/v1/letters/{letter}/versions", hold)
        await page.click(TOGGLE)
        await page.get_by_label("Version label").fill("On its way")
        await page.get_by_role("button", name="Save", exact=True).click()
        await hold.held.wait()
        status, cancel = page.locator(STATUS), page.get_by_role("button", name="Cancel")
        await expect(status).to_have_text("Saving…")
        await expect(cancel).to_be_disabled()
        await expect(page.locator(TOGGLE)).to_be_disabled()
        await expect(page.locator(FORM)).to_be_focused()  # kept there, the label disabled
        await page.keyboard.press("Escape")
        await expect(page.locator(FORM)).to_be_visible()

        hold.release()
        await expect(status).to_have_text("Saved version “On its way”.")
        await page.click(TOGGLE)
        await expect(cancel).to_be_enabled()
        await expect(page.get_by_label("Version label")).to_be_enabled()
        assert len(page.saves) == 1  # type: ignore[attr-defined]
    assert await listed(base_url, letter, "On its way") == ["On its way"]
