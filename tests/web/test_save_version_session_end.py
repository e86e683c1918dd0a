"""The session ends (access revoked: the socket's 4403) while a version's save request is out:
the form closes and "Save version…" is disabled, and it stays disabled until both the request
has its answer (a request sent cannot be called back: the toggle closing the form would pretend
to) and the session is back ("Try again" reconnects), whichever comes last (save-version.ts
`sending` and `setClosed`).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_save_version.py (the helpers
of tests/web/versions.py and tests/web/conftest.py's stack and browser fixtures).
"""

import pytest
from playwright.async_api import Browser, expect

from tests.web.browser import STACK_SECRET, HeldEchoes, Hold, post_letter
from tests.web.versions import FORM, STATUS, TOGGLE, editor_page, listed, save_as


@pytest.mark.timeout(120)
@pytest.mark.parametrize("answer_first", [True, False], ids=["answer-first", "session-first"])
async def test_the_toggle_stays_disabled_while_the_session_is_over_or_the_request_out(
    base_url: str, browser: Browser, answer_first: bool
) -> None:
    letter = await post_letter(base_url, STACK_SECRET, "Revoked mid-save")
    socket = HeldEchoes()
    async with editor_page(base_url, browser, letter, socket) as page:
        hold = Hold("POST")
        await page.route(f"**/v1/letters/{letter}/versions", hold)
        await save_as(page, "Out when revoked")
        await hold.held.wait()
        status, toggle = page.locator(STATUS), page.locator(TOGGLE)
        await expect(status).to_have_text("Saving…")
        await expect(toggle).to_be_disabled()

        assert socket.page is not None
        await socket.page.close(code=4403, reason="access revoked")
        refusal = page.locator(".refusal[data-code='4403']")
        await expect(refusal).to_be_visible()
        await expect(page.locator(FORM)).to_be_hidden()
        await expect(toggle).to_be_disabled()

        saved = "Saved version “Out when revoked”."
        if answer_first:
            hold.release()
            await expect(status).to_have_text(saved)
            assert await toggle.is_disabled()  # the answer is in, but the session is over
        await refusal.get_by_role("button", name="Try again").click()
        await expect(refusal).to_be_hidden()  # synced: the session is back (setClosed(null))
        if not answer_first:
            assert await toggle.is_disabled()  # the session is back, but the request is out
            hold.release()
            await expect(status).to_have_text(saved)
        await expect(toggle).to_be_enabled()
        assert len(page.saves) == 1  # type: ignore[attr-defined]
    assert await listed(base_url, letter, "Out when revoked") == ["Out when revoked"]
