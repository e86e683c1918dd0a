"""Dev mode: a page whose token came from /dev/token mints the next there after a 4401 and
reconnects, rather than turning read-only ("Here now" after a refusal with no renewal:
tests/web/test_submit_once_and_session_end.py).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (conftest.py's
browser, session_end.py's stack).
"""

import re

from playwright.async_api import Browser, Page, Route, expect

from tests.support import eventually
from tests.web.browser import (
    EDITABLE,
    create_letter,
    new_page,
    saved,
    sign_in,
    stack_token,
    type_at_end,
)
from tests.web.session_end import SHORT_TTLS_S, base_url, before_expiry

# The stack with no JWT leeway (a session ends at its token's expiry), over conftest.py's.
__all__ = ["base_url"]


async def test_a_dev_token_that_expires_is_minted_again_and_the_letter_reconnects(
    base_url: str, browser: Browser
) -> None:
    """Dev mode (`?as=`): the page got its token from /dev/token, so after the 4401 it mints the
    next there and reconnects, the letter editable throughout, the edits typed since saved."""
    context, avery = await new_page(browser)
    opened = [context]
    try:
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Dev renewal", "Alpha one")

        async def attempt(ttl_s: int) -> tuple[Page, list[str]]:
            context, parker = await new_page(browser)
            opened.append(context)
            minted: list[str] = []

            async def short_first(route: Route) -> None:
                # The first token /dev/token hands out expires while the test watches; the next
                # are the gateway's own.
                minted.append(route.request.url)
                if len(minted) == 1:
                    token = stack_token("parker", ttl_s=ttl_s)
                    await route.fulfill(json={"token": token, "firm_id": "demo-firm"})
                else:
                    await route.continue_()

            await parker.route("**/dev/token", short_first)
            await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
            await parker.wait_for_selector(EDITABLE)
            await saved(parker)
            await expect(parker.locator(".connection")).to_have_attribute("data-link", "connected")
            assert len(minted) == 1  # connected on the short token, before it expired
            return parker, minted

        parker, minted = await before_expiry(attempt)
        await eventually(lambda: len(minted) == 2, timeout=SHORT_TTLS_S[-1] + 20)
        await expect(parker.locator(".connection")).to_have_attribute("data-link", "connected")
        await type_at_end(parker, " Still editing.")
        await saved(parker)
        await expect(avery.locator(".letter-body")).to_contain_text("Alpha one Still editing.")
        await expect(parker.locator(".refusal")).to_be_hidden()
        own = parker.locator(".users li >> nth=0")  # your own row comes first
        await expect(own).to_contain_text("(you)")
        await expect(own.locator(".status")).to_have_text(re.compile("active|typing"))
        assert parker.errors == []  # type: ignore[attr-defined]
    finally:
        for each in opened:
            await each.close()
