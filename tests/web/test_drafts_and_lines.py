"""Text and lines a user lost on a bad network: a reply typed into a thread a colleague deleted,
the comment form's error line wiped by a list reload, "Here now" claiming colleagues active while
the badge says Offline, unsent comment text lost on closing the tab.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import asyncio
import re
from collections.abc import Callable

import httpx
from playwright.async_api import Browser, Dialog, Page, Route, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.support import eventually
from tests.web.browser import (
    EDITABLE,
    STACK_SECRET,
    create_letter,
    new_page,
    pages,
    saved,
    select_paragraph,
    sign_in,
)

COMMENTS = re.compile(r"/v1/letters/[^/]+/comments$")
REPLIES = re.compile(r"/v1/letters/[^/]+/comments/[^/]+/replies$")
# gateway/live/confirmed.py's UNCONFIRMED, as a 504 carries it.
REPLY = "The terms are fine, but @Avery Attorney "
UNCONFIRMED = (
    "the log did not confirm in time: the request may still take effect; check before retrying"
)


async def _comment(page: Page, paragraph: int, body: str) -> None:
    """`body` commented on the paragraph through the page's form, and listed."""
    await select_paragraph(page, paragraph)
    await page.fill(".new-thread textarea", body)
    await page.click("button:has-text('Comment on selection')")
    await expect(page.locator(".thread", has_text=body)).to_have_count(1)


async def _comment_as_parker(base_url: str, letter: str, body: str) -> None:
    """A colleague's comment through the REST API: every open page reloads its list."""
    token = mint_token(
        Settings(jwt_secret=STACK_SECRET), "parker", "demo-firm", "editor", "Parker Paralegal"
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
        answer = await http.post(
            f"/v1/letters/{letter}/comments",
            json={"body": body, "anchor": {"from": 0, "to": 4}, "mentions": []},
        )
        assert answer.status_code == 201, answer.text


async def test_a_reply_to_a_thread_a_colleague_deletes_is_shown_with_who_deleted_it(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Deleted thread", "Dear Sir,\nThe terms follow.")
        await _comment(avery, 1, "Check the terms")
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await expect(parker.locator(".thread")).to_contain_text("Check the terms")
        await parker.fill(".reply textarea", "The terms are fine, but")
        await parker.select_option(".reply select.mention", "Avery Attorney")  # kept too

        # Avery deletes her comment, the thread's only one: the thread goes, Parker's reply stays.
        own = avery.locator(".comment-list li", has_text="Check the terms")
        await own.locator("button:has-text('Delete')").click()
        await own.locator("button:has-text('Yes, delete')").click()
        await expect(parker.locator(".thread")).to_have_count(0)
        lost = parker.locator(".lost-reply")
        await expect(lost).to_contain_text(
            "Avery Attorney deleted the thread you were replying to; your reply was not sent:"
        )
        await expect(lost.locator("textarea")).to_have_value(REPLY)
        await expect(lost.locator("textarea")).to_be_focused()  # he was typing in it

        # Another reload keeps it; Dismiss lets it go.
        await _comment_as_parker(base_url, letter, "Another point")
        await expect(parker.locator(".thread")).to_have_count(1)
        await expect(lost.locator("textarea")).to_have_value(REPLY)
        await lost.locator("button:has-text('Dismiss')").click()
        await expect(lost).to_have_count(0)
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]


async def test_a_comment_error_survives_a_list_reload(base_url: str, browser: Browser) -> None:
    async with pages(browser, 1) as (avery,):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Error line", "Dear Sir,\nThe terms follow.")

        async def refuse(route: Route) -> None:
            if route.request.method != "POST":
                await route.continue_()
                return
            await route.fulfill(status=422, json={"detail": "the anchor is out of range"})

        await avery.route(COMMENTS, refuse)
        await select_paragraph(avery, 1)
        await avery.fill(".new-thread textarea", "Refused")
        await avery.click("button:has-text('Comment on selection')")
        line = avery.locator(".comments > p[role=status]")
        await expect(line).to_contain_text("the anchor is out of range")

        # A colleague comments: the list is loaded again, the error stays until acted on.
        await _comment_as_parker(base_url, letter, "Meanwhile")
        await expect(avery.locator(".thread")).to_have_count(1)
        await expect(line).to_contain_text("the anchor is out of range")
        await avery.unroute(COMMENTS)
        await avery.click("button:has-text('Comment on selection')")  # tried again: it goes
        await expect(avery.locator(".thread")).to_have_count(2)
        await expect(line).to_have_text("")


async def test_a_comment_or_reply_with_no_answer_may_have_been_saved(
    base_url: str, browser: Browser
) -> None:
    """Sent but not answered (the connection cut, a 504): the server may have it, so the line
    says to look for it before sending it again, and keeps saying so (not only until online)."""
    async with pages(browser, 1) as (avery,):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Lost answers", "Dear Sir,\nThe terms follow.")

        async def cut(route: Route) -> None:
            if route.request.method == "POST":
                await route.abort("connectionreset")
            else:
                await route.continue_()

        await avery.route(COMMENTS, cut)
        await select_paragraph(avery, 1)
        await avery.fill(".new-thread textarea", "Lost")
        await avery.click("button:has-text('Comment on selection')")
        line = avery.locator(".comments > p[role=status]")
        await expect(line).to_have_text(
            "The server could not be reached: your comment may have been saved. "
            "Look for it in the list before sending it again."
        )
        await _comment_as_parker(base_url, letter, "Meanwhile")
        await expect(avery.locator(".thread")).to_have_count(1)
        await expect(line).to_contain_text("your comment may have been saved")

        async def unconfirmed(route: Route) -> None:
            if route.request.method == "POST":
                await route.fulfill(status=504, json={"detail": UNCONFIRMED})
            else:
                await route.continue_()

        await avery.route(REPLIES, unconfirmed)
        await avery.fill(".reply textarea", "Noted")
        await avery.click(".reply button[type=submit]")
        await expect(line).to_have_text(
            "The server did not confirm it in time: your reply may have been saved. "
            "Look for it in the list before sending it again."
        )
        await expect(avery.locator(".reply textarea")).to_have_value("Noted")


async def test_here_now_shows_no_colleague_active_while_the_badge_says_offline(
    base_url: str, browser: Browser
) -> None:
    """Chromium's offline emulation keeps the socket open (y-websocket notices after 30 s); the
    badge says Offline at once, and so must "Here now"."""
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Offline presence", "Dear Sir,\nThe terms follow.")
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await parker.wait_for_selector(EDITABLE)
        avery_seen = parker.locator(".users [data-name='Avery Attorney']")
        await expect(avery_seen.locator(".status")).to_have_text("active")

        await parker.context.set_offline(True)
        await expect(parker.locator(".connection")).to_have_attribute("data-link", "offline")
        await expect(avery_seen).to_have_count(0)
        own = parker.locator(".users [data-name='Parker Paralegal'] .status")
        await expect(own).to_have_text("disconnected")
        await expect(parker.locator(".presence-stale")).to_be_visible()

        await parker.context.set_offline(False)
        await expect(avery_seen.locator(".status")).to_have_text("active")
        assert parker.errors == []  # type: ignore[attr-defined]


async def test_unsent_comment_or_reply_text_asks_before_the_page_goes(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        await create_letter(page, "Unsent", "Dear Sir,\nThe terms follow.")
        await _comment(page, 1, "First thought")
        dialogs: list[str] = []

        async def stay(dialog: Dialog) -> None:
            dialogs.append(dialog.type)
            await dialog.dismiss()  # "stay on this page"

        page.on("dialog", stay)

        def seen(count: int) -> Callable[[], bool]:
            return lambda: len(dialogs) == count

        box = page.locator(".new-thread textarea")
        reply = page.locator(".reply textarea")
        for filled in (box, reply):
            await filled.click()  # a gesture of the user's: Chromium asks only after one
            await filled.fill("Half a sentence")
            asked = len(dialogs) + 1
            await page.close(run_before_unload=True)
            await eventually(seen(asked))
            assert dialogs[-1] == "beforeunload" and not page.is_closed()
            # Leaving for the letter list asks too; declined, the letter stays open.
            await page.click("a.back")
            await eventually(seen(asked + 1))
            assert dialogs[-1] == "confirm"
            await expect(filled).to_have_value("Half a sentence")
            await filled.fill("")
        await saved(page)

        # Nothing unsent: the tab closes without a question.
        closed = asyncio.get_running_loop().create_future()
        page.once("close", lambda _: closed.set_result(True))
        await page.close(run_before_unload=True)
        await asyncio.wait_for(closed, timeout=10)
        assert dialogs == ["beforeunload", "confirm"] * 2
    finally:
        await context.close()
