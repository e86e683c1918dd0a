"""While a version's save is in flight, and while it waits out a 503 `log behind`'s Retry-After,
the status line said nothing new (the last "Saved version …" stayed) and the label stayed
editable: a label typed and entered meanwhile was dropped, and the input then cleared. Now the
line says "Saving…", then "The server is busy; trying again in N s.", and the label cannot be
changed until the answer (src/editor/save-version.ts).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_save_version.py (the helpers
of tests/web/versions.py and tests/web/conftest.py's stack and browser fixtures).
"""

import asyncio

import pytest
from playwright.async_api import Browser, Route, expect

from tests.web.browser import STACK_SECRET, post_letter
from tests.web.versions import STATUS, TOGGLE, editor_page, listed


@pytest.mark.timeout(120)
async def test_a_save_waiting_out_a_log_behind_answer_says_so_and_locks_its_label(
    base_url: str, browser: Browser
) -> None:
    letter = await post_letter(base_url, STACK_SECRET, "Waiting save")
    async with editor_page(base_url, browser, letter) as page:
        arrived, answer = asyncio.Event(), asyncio.Event()
        refused: list[str] = []

        async def behind_once(route: Route) -> None:
            if route.request.method != "POST" or refused:
                await route.fallback()
                return
            refused.append(route.request.post_data or "")
            arrived.set()
            await answer.wait()  # the test looks at the page while the request is out
            # The gateway's answer while the log has not taken its edits yet: nothing appended.
            await route.fulfill(
                status=503, headers={"Retry-After": "2"}, json={"detail": "log behind"}
            )

        await page.route(f"**/v1/letters/{letter}/versions", behind_once)
        await page.click(TOGGLE)
        label = page.get_by_label("Version label")
        await label.fill("First label")
        await page.keyboard.press("Enter")
        await asyncio.wait_for(arrived.wait(), timeout=10)
        status = page.locator(STATUS)
        await expect(status).to_have_text("Saving…")
        await expect(label).to_be_disabled()
        answer.set()
        await expect(status).to_have_text("The server is busy; trying again in 2 s.")
        await expect(label).to_be_disabled()
        await expect(label).to_have_value("First label")

        await expect(status).to_have_text("Saved version “First label”.")
        await expect(label).to_be_enabled()
        await expect(label).to_have_value("")
        saves = [r.post_data_json for r in page.saves]  # type: ignore[attr-defined]
        assert saves == [{"label": "First label"}] * 2  # the 503 wrote nothing: sent again
    assert await listed(base_url, letter, "First label") == ["First label"]
