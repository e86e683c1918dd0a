"""The page knows the gateway's "locks are being restored" 503 by its `Steno-Unavailable:
restoring` header (gateway/restored.py `refusal_headers`), not by matching the detail's English
operator text (src/api.ts `restoring`): the text may change, a 503 without the header is another.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py); the locks listing's 503 is the test's own answer (a real wipe's is
tests/web/test_locks_restoring.py's).
"""

import json
import re
from collections.abc import Awaitable, Callable

from playwright.async_api import Browser, Route, expect

from gateway import restored
from tests.web.browser import create_letter, new_page, open_letter, sign_in

LOCKS = re.compile(r"/v1/letters/[^/]+/locks$")


def refusing(detail: str, headers: dict[str, str]) -> Callable[[Route], Awaitable[None]]:
    async def answer(route: Route) -> None:
        body = json.dumps({"detail": detail})
        await route.fulfill(status=503, headers=headers, content_type="application/json", body=body)

    return answer


async def test_the_page_goes_by_the_header_not_the_text(base_url: str, browser: Browser) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        letter = await create_letter(page, "Marker", "Dear Sir,\nTerms.")
        status = page.locator(".lock-status")

        # Marked, in words that say nothing of restoring: being restored.
        marked = restored.refusal_headers()
        await page.route(LOCKS, refusing("Redis is not itself just now", marked))
        await open_letter(page, base_url, "avery", letter)
        await expect(status).to_have_text("Locks are being restored; checking again in 5 s.")
        await expect(page.locator(".lock-list li")).to_have_text(
            ["Not known until the locks are restored."]
        )

        # The old operator text without the header: another 503, busy.
        await page.unroute(LOCKS)
        await page.route(LOCKS, refusing(restored.UNRESTORED, {"Retry-After": "5"}))
        await open_letter(page, base_url, "avery", letter)
        await expect(status).to_have_text("The server is busy; checking again in 5 s.")
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()
