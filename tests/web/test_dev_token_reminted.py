"""After the gateway closed the letter's socket for good (4401: the token expired, no host page
renews it), "Here now" claims no presence: this tab's own row says it is disconnected, and the
colleagues, whose presence no longer reaches it, are not listed as if live.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (its stack and
browser fixtures).
"""

import re

from playwright.async_api import Browser, Route, expect

from tests.support import eventually
from tests.web.browser import EDITABLE, create_letter, pages, saved, sign_in, type_at_end
from tests.web.test_browser import base_url, browser
from tests.web.test_submit_once_and_session_end import SHORT_TTL_S, _token

__all__ = ["base_url", "browser"]  # the stack and browser fixtures of test_browser.py


async def test_here_now_says_this_tab_is_disconnected_after_an_expired_token(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Who is here", "Alpha one")
        token = _token("parker", ttl_s=SHORT_TTL_S)
        await parker.goto(f"{base_url}/?token={token}#/letters/{letter}")
        await parker.wait_for_selector(EDITABLE)
        await saved(parker)
        own = parker.locator(".users [data-name='Parker'] .status")
        colleague = parker.locator(".users [data-name='Avery Attorney']")
        stale = parker.locator(".presence-stale")
        await expect(own).to_have_text("active")
        await expect(colleague).to_be_visible()
        await expect(stale).to_be_hidden()

        refusal = parker.locator(".refusal[data-code='4401']")
        await expect(refusal).to_be_visible(timeout=(SHORT_TTL_S + 20) * 1000)
        await expect(own).to_have_text("disconnected")
        await expect(parker.locator(".users [data-name='Parker']")).to_have_class(
            "user status-disconnected"
        )
        await expect(colleague).to_have_count(0)  # not shown as if still here
        await expect(stale).to_be_visible()
        await expect(stale).to_have_text("Not connected: who else is here is not known.")
        # Moving the mouse (activity) does not make the row claim "active" again.
        await parker.mouse.move(10, 10)
        await parker.mouse.move(200, 200)
        await expect(own).to_have_text("disconnected")
        assert parker.errors == []  # type: ignore[attr-defined]


async def test_a_dev_token_that_expires_is_minted_again_and_the_letter_reconnects(
    base_url: str, browser: Browser
) -> None:
    """Dev mode (`?as=`): the page got its token from /dev/token, so after the 4401 it mints the
    next there and reconnects, the letter editable throughout, the edits typed since saved."""
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Dev renewal", "Alpha one")
        minted: list[str] = []

        async def short_first(route: Route) -> None:
            # The first token /dev/token hands out expires while the test watches; the next are
            # the gateway's own.
            minted.append(route.request.url)
            if len(minted) == 1:
                token = _token("parker", ttl_s=SHORT_TTL_S)
                await route.fulfill(json={"token": token, "firm_id": "demo-firm"})
            else:
                await route.continue_()

        await parker.route("**/dev/token", short_first)
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await parker.wait_for_selector(EDITABLE)
        await saved(parker)
        await expect(parker.locator(".connection")).to_have_attribute("data-link", "connected")
        await eventually(lambda: len(minted) == 2, timeout=SHORT_TTL_S + 20)
        await expect(parker.locator(".connection")).to_have_attribute("data-link", "connected")
        await type_at_end(parker, " Still editing.")
        await saved(parker)
        await expect(avery.locator(".letter-body")).to_contain_text("Alpha one Still editing.")
        await expect(parker.locator(".refusal")).to_be_hidden()
        own = parker.locator(".users li >> nth=0")  # your own row comes first
        await expect(own).to_contain_text("(you)")
        await expect(own.locator(".status")).to_have_text(re.compile("active|typing"))
        assert parker.errors == []  # type: ignore[attr-defined]
