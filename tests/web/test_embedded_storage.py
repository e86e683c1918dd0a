"""The page framed by a host app on another site, where the browser blocks third-party storage
(Chromium's "block third-party cookies", Incognito; Playwright's contexts): reading
`sessionStorage` or `localStorage` throws there, and the page must still work.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

from playwright.async_api import Browser, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.web.browser import EDITABLE, STACK_SECRET, create_letter, new_page, sign_in


async def test_a_letter_framed_by_another_site_opens_without_storage(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        letter = await create_letter(page, "Framed", "Dear Sir,\nFramed by the host app.")
        token = mint_token(
            Settings(jwt_secret=STACK_SECRET), "avery", "demo-firm", "editor", "Avery Attorney"
        )
        host_context, host = await new_page(browser)
        try:
            # The host: another site (localhost is not 127.0.0.1), framing the page as the
            # README says a host app does: the token in the query, the letter in the route.
            await host.goto(base_url.replace("127.0.0.1", "localhost") + "/v1/no-such-page")
            src = f"{base_url}/?token={token}#/letters/{letter}"
            await host.set_content(f'<iframe style="width:1200px;height:750px" src="{src}">')
            frame = host.frame_locator("iframe")
            # The browser does refuse storage to the framed page (else this test shows nothing).
            framed = host.frames[1]
            await framed.wait_for_load_state()
            denied = "() => { try { sessionStorage.length; return false } catch { return true } }"
            assert await framed.evaluate(denied)

            await expect(frame.locator(".letter-body")).to_contain_text("Framed by the host app.")
            await expect(frame.locator(".who")).to_contain_text("Avery Attorney")
            await frame.locator(".letter-body p").nth(1).click()
            await host.keyboard.press("End")
            await host.keyboard.type(" Typed in the frame.")
            await expect(frame.locator(".letter-body")).to_contain_text("Typed in the frame.")
            saving = ".connection[data-link=connected][data-pending=false][data-tone=ok]"
            await expect(frame.locator(saving)).to_be_visible()  # the server has the edit

            # The list and back: the session lives on in memory, the letter among the recent.
            await framed.evaluate("location.hash = '#/'")
            await expect(frame.locator(f"a[href='#/letters/{letter}']").first).to_be_visible()
            await frame.locator(f"a[href='#/letters/{letter}']").first.click()
            await expect(frame.locator(EDITABLE)).to_contain_text("Typed in the frame.")
            assert host.errors == []  # type: ignore[attr-defined]
        finally:
            await host_context.close()
    finally:
        await context.close()
