"""A new comment tried again on another selection, with the same text, after the first try made
its thread but its answer was lost: another comment, with a new `Idempotency-Key` (the first
try's key with another anchor was 422 "reused with a different request"); on the same
selection, the same key and request again, answered with the thread the first try made.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import re

from playwright.async_api import Browser, Route, expect

from tests.support import eventually
from tests.web.browser import Hold, create_letter, new_page, select_paragraph, sign_in

COMMENTS = re.compile(r"/v1/letters/[^/]+/comments$")


class AnswerLost:
    """POSTs to one path, each sent to the server; the answer of every `lose`-th one is lost on
    the way back (fetch rejects), the others' reach the page. Other requests fall back to the
    routes before this one."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.statuses: list[int] = []
        self.lose: set[int] = set()

    async def handle(self, route: Route) -> None:
        if route.request.method != "POST":
            await route.fallback()
            return
        self.keys.append(await route.request.header_value("idempotency-key") or "")
        response = await route.fetch()
        self.statuses.append(response.status)
        if len(self.keys) in self.lose:
            await route.abort("connectionreset")
        else:
            await route.fulfill(response=response)


async def test_a_comment_tried_again_elsewhere_is_another_and_here_the_same(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        await create_letter(page, "Moved comments", "Alpha one\nBravo two")
        sent = AnswerLost()
        sent.lose = {1, 3}
        # While held, the page's reads of the list wait: after a lost answer the page looks for
        # its comment in the list and, found, empties the box ("It was saved."); held, it
        # cannot tell, and a retry is what the user has.
        reads = Hold("GET", count=None)
        reads.release()
        await page.route(COMMENTS, reads)
        await page.route(COMMENTS, sent.handle)
        submit = page.locator(".new-thread button[type=submit]")

        async def comment(paragraph: int, count: int) -> None:
            await select_paragraph(page, paragraph)
            await submit.click()
            await eventually(lambda: len(sent.statuses) == count)
            await expect(submit).to_be_enabled()  # settled

        reads.hold()
        await page.fill(".new-thread textarea", "Same words")
        await comment(1, 1)  # made, its answer lost: the box keeps the text
        await comment(0, 2)  # the same text on another selection: another comment
        assert sent.statuses == [201, 201], sent.statuses
        reads.release()
        await expect(page.locator(".thread")).to_have_count(2)
        assert sent.keys[1] != sent.keys[0]

        reads.hold()
        await page.fill(".new-thread textarea", "Once")
        await comment(0, 3)  # made, its answer lost
        await comment(0, 4)  # the same selection again: the same request, answered
        assert sent.statuses == [201, 201, 201, 201], sent.statuses
        reads.release()
        await expect(page.locator(".thread")).to_have_count(3)
        assert sent.keys[3] == sent.keys[2]
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()
