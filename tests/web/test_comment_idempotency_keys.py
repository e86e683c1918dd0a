"""A new comment thread and a reply carry an `Idempotency-Key`: one per form fill, the same when
that fill is sent again after no answer came, a new one for the next fill (as the letter-create
form's). The request is captured in Chromium; the server's handling of the key is its own test.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import re

from playwright.async_api import Browser, Page, Request, Route, expect

from tests.support import eventually
from tests.web.browser import create_letter, new_page, select_paragraph, sign_in

COMMENTS = re.compile(r"/v1/letters/[^/]+/comments$")
REPLIES = re.compile(r"/v1/letters/[^/]+/comments/[^/]+/replies$")
KEY = re.compile(r"[0-9a-f]{32}")


class FirstLost:
    """POSTs to one path, recorded; the first is lost on the way (no answer: fetch rejects), the
    rest go through."""

    def __init__(self) -> None:
        self.sent: list[Request] = []

    async def handle(self, route: Route) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        self.sent.append(route.request)
        if len(self.sent) == 1:
            await route.abort("connectionreset")
        else:
            await route.continue_()

    async def keys(self) -> list[str]:
        return [await r.header_value("idempotency-key") or "" for r in self.sent]


async def _submit(page: Page, form: str, sent: FirstLost, count: int) -> None:
    await page.click(f"{form} button[type=submit]")
    await eventually(lambda: len(sent.sent) == count)
    await expect(page.locator(f"{form} button[type=submit]")).to_be_enabled()  # settled


async def test_a_comment_and_a_reply_send_one_key_per_fill(base_url: str, browser: Browser) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        await create_letter(page, "Keyed comments", "Alpha one\nBravo two")
        threads = FirstLost()
        await page.route(COMMENTS, threads.handle)
        await select_paragraph(page, 1)
        await page.fill(".new-thread textarea", "First")
        await _submit(page, ".new-thread", threads, 1)  # lost: the page says so
        await expect(page.locator(".thread")).to_have_count(0)
        await _submit(page, ".new-thread", threads, 2)  # the same fill, tried again
        await expect(page.locator(".thread")).to_have_count(1)
        await select_paragraph(page, 0)
        await page.fill(".new-thread textarea", "Second")
        await _submit(page, ".new-thread", threads, 3)  # a new fill
        await expect(page.locator(".thread")).to_have_count(2)
        first, retried, second = await threads.keys()
        assert KEY.fullmatch(first), first
        assert retried == first
        assert KEY.fullmatch(second) and second != first, second

        replies = FirstLost()
        await page.route(REPLIES, replies.handle)
        first_thread = page.locator(".thread:has-text('First')")
        reply = ".thread:has-text('First') .reply"
        await page.fill(f"{reply} textarea", "Re: once")
        await _submit(page, reply, replies, 1)  # lost
        await expect(page.locator(f"{reply} textarea")).to_have_value("Re: once")
        await _submit(page, reply, replies, 2)  # the same fill, tried again
        await expect(first_thread.locator(".comment-list li")).to_have_count(2)
        await page.fill(f"{reply} textarea", "Re: twice")
        await _submit(page, reply, replies, 3)  # a new fill
        await expect(first_thread.locator(".comment-list li")).to_have_count(3)
        first, retried, second = await replies.keys()
        assert KEY.fullmatch(first), first
        assert retried == first
        assert KEY.fullmatch(second) and second != first, second
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()


async def test_no_answer_in_time_or_a_try_still_in_flight_says_so(
    base_url: str, browser: Browser
) -> None:
    """A comment POST that is never answered (a stalled proxy) is given up after the page's
    deadline, the form usable again (re-read RK: its button stayed disabled for good); a 409
    "still in progress" (an earlier try of the fill after a 504) reads as what it means."""
    context, page = await new_page(browser)
    try:
        await context.clock.install()  # real time, but the page's timers can be moved on
        await sign_in(page, base_url, "avery")
        await create_letter(page, "Stalled comments", "Alpha one\nBravo two")
        stalled: list[Route] = []

        async def never(route: Route) -> None:
            if route.request.method == "POST":
                stalled.append(route)  # held: no answer, no error
            else:
                await route.continue_()

        await page.route(COMMENTS, never)
        await select_paragraph(page, 1)
        await page.fill(".new-thread textarea", "Stalled")
        button = page.locator(".new-thread button[type=submit]")
        await button.click()
        await eventually(lambda: len(stalled) == 1)
        await expect(button).to_be_disabled()
        await page.clock.fast_forward(46_000)
        await expect(page.get_by_text("The server could not be reached")).to_be_visible()
        await expect(button).to_be_enabled()
        await expect(page.locator(".new-thread textarea")).to_have_value("Stalled")

        async def in_progress(route: Route) -> None:
            if route.request.method != "POST":
                await route.continue_()
                return
            detail = {"detail": "a request with this Idempotency-Key is still in progress"}
            await route.fulfill(status=409, json=detail, headers={"Retry-After": "40"})

        await page.unroute(COMMENTS)
        await page.route(COMMENTS, in_progress)
        await button.click()
        saving = "Your earlier try is still being saved: look for it, or try again in 40 s."
        await expect(page.get_by_text(saving)).to_be_visible()
        await expect(button).to_be_enabled()
    finally:
        await context.close()
