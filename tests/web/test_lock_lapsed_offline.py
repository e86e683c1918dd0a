"""A lock the server let go while its holder was offline, taken again quietly once she is back:
her status line says so, not "no longer locked" (web/src/editor/locks.ts).

Against `steno-collab dev` in Debian's Chromium. The stack releases a lock at its next sweep
(every 5 s) once its holder has no connection (STENO_LOCK_RELEASE_AFTER_LEAVE_S=0): the lapse
without waiting out the lock's TTL.
"""

import pytest
from playwright.async_api import Browser, expect

from tests.web.browser import DROP_SOCKET, create_letter, open_letter, pages, sign_in
from tests.web.stacks import opened_fixture, stack_url

base_url = opened_fixture(lambda: stack_url(lock_release_after_leave_s="0"), name="base_url")


@pytest.mark.timeout(120)
async def test_a_lock_taken_again_after_an_offline_lapse_says_so(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Lapsed", "Dear Sir,\nThe terms follow.")
        await open_letter(parker, base_url, "parker", letter)
        await avery.locator(".letter-body p").nth(1).click()
        await avery.click("button.lock-toggle")
        status = avery.locator(".lock-status")
        await expect(status).to_contain_text("You locked “paragraph 2”")
        held = parker.locator(".lock-row")
        await expect(held).to_have_text(["“paragraph 2” Avery Attorney"])

        # Avery's network goes (her socket closed, as y-websocket does after 30 s of silence): the
        # server, with no connection of hers, lets the lock go.
        await avery.context.set_offline(True)
        await avery.evaluate(DROP_SOCKET)
        await expect(parker.locator(".locks li.muted")).to_have_text("No section is locked.")

        # Back: her page takes it again (nobody else has it), and says so.
        await avery.context.set_offline(False)
        await expect(held).to_have_text(["“paragraph 2” Avery Attorney"])
        await expect(avery.locator(".lock-row")).to_have_text(
            ["“paragraph 2” Avery Attorney (you)"]
        )
        await expect(status).to_have_text("Your lock on “paragraph 2” is renewed.")
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]
