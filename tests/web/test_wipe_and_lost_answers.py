"""What a reviewer in two browsers found.

Right after a Redis wipe the first comment, lock or unlock gets 503 + Retry-After until the
gateway restored Redis's locks and create claims from the log (gateway/restored.py): the page
showed the gateway's operator text ("Redis may have lost its section locks ...") and never tried
again. A keyed create, a lock and an unlock do the same sent twice: now waited out as a GET's 503.

Against `steno-collab dev` in Chromium on a Redis of the test's own (FLUSHALL takes every
database), as tests/web/test_locks_restoring.py; the request is held until Redis is wiped, so it
is the one that meets the 503 (and wakes the gateway's restore).

An edit box opened on a comment deleted in another tab kept its text as "not sent" for good (the
page asked about it on every leave); a comment or reply sent with no answer ("may have been
saved") stayed in its box after the reload listed it. A reply sent just as its thread was
deleted was kept as "A colleague deleted the thread" with no quote, and its Dismiss left the focus
on <body>.
"""

import asyncio
import re
from urllib.parse import quote

import httpx
from playwright.async_api import Browser, Dialog, Page, Route, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.web.browser import Hold, open_letter, pages, select_paragraph
from tests.web.stacks import Stack, avery_on_a_letter, letter_locked_by_parker, stack, unrestored

__all__ = ["stack", "unrestored"]

COMMENTS = re.compile(r"/v1/letters/[^/]+/comments$")
LOCK = re.compile(r"/v1/letters/[^/]+/locks/[^/]+$")
LINE = ".comments > p[role=status]"
REPLIES = re.compile(r"/v1/letters/[^/]+/comments/[^/]+/replies$")
RESTORE_WITHIN_MS = 30_000  # a retry 5 s after the 503; a slow machine may need another


async def _wipe_before(
    page_route: re.Pattern[str], method: str, stack: Stack, page: Page
) -> asyncio.Event:
    """Hold the first `method` request to `page_route` until Redis is wiped; set once sent on."""
    hold = Hold(method, until=stack.redis.flushall)
    await page.route(page_route, hold)
    return hold.passed


async def test_a_comment_sent_right_after_a_wipe_is_saved_once_restored(
    stack: Stack, browser: Browser
) -> None:
    async with avery_on_a_letter(stack, browser, "Wiped", locked=True) as (_, (page,)):
        await expect(page.locator(".letter-body")).to_contain_text("Terms.")
        sent = await _wipe_before(COMMENTS, "POST", stack, page)
        await select_paragraph(page, 1)
        await page.fill(".new-thread textarea", "Important note")
        await page.click("button:has-text('Comment on selection')")
        await asyncio.wait_for(sent.wait(), timeout=10)
        thread = page.locator(".thread", has_text="Important note")
        await expect(thread).to_have_count(1, timeout=RESTORE_WITHIN_MS)
        await expect(page.locator(LINE)).not_to_contain_text("Redis")
        await expect(page.locator(".new-thread textarea")).to_have_value("")


async def test_a_lock_and_an_unlock_right_after_a_wipe_go_through_once_restored(
    stack: Stack, browser: Browser
) -> None:
    async with avery_on_a_letter(stack, browser, "Wiped", locked=True) as (_, (page,)):
        await page.click(".letter-body p >> nth=1")
        await expect(page.locator(".caret-section")).to_contain_text("“paragraph 2”")
        status = page.locator(".lock-status")

        sent = await _wipe_before(LOCK, "POST", stack, page)
        await page.click("button.lock-toggle")
        await asyncio.wait_for(sent.wait(), timeout=10)
        await expect(status).to_contain_text("You locked “paragraph 2”", timeout=RESTORE_WITHIN_MS)

        await page.unroute(LOCK)
        sent = await _wipe_before(LOCK, "DELETE", stack, page)
        await page.click("button.lock-toggle")
        await asyncio.wait_for(sent.wait(), timeout=10)
        await expect(status).to_contain_text(
            "You unlocked “paragraph 2”", timeout=RESTORE_WITHIN_MS
        )


async def _comment(page: Page, paragraph: int, body: str) -> None:
    await select_paragraph(page, paragraph)
    await page.fill(".new-thread textarea", body)
    await page.click("button:has-text('Comment on selection')")
    await expect(page.locator(".thread", has_text=body)).to_have_count(1)


async def _closes_without_asking(page: Page) -> None:
    """The tab closes with no leave question (one would be dismissed: "stay")."""
    dialogs: list[str] = []

    async def stay(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", stay)
    closed = asyncio.get_running_loop().create_future()
    page.once("close", lambda _: closed.set_result(True))
    await page.close(run_before_unload=True)
    await asyncio.wait_for(closed, timeout=10)
    assert dialogs == []


async def test_an_edit_box_of_a_comment_deleted_in_another_tab_is_not_unsent_text(
    stack: Stack, browser: Browser
) -> None:
    async with avery_on_a_letter(stack, browser, "Wiped", 2, locked=True) as (letter, (tab1, tab2)):
        await _comment(tab1, 1, "Check the terms")
        await open_letter(tab2, stack.url, "avery", letter)
        own = tab1.locator(".comment-list li", has_text="Check the terms")
        await own.locator("button:has-text('Edit')").click()
        await expect(tab1.locator("textarea[aria-label='Edit your comment']")).to_be_focused()

        other = tab2.locator(".comment-list li", has_text="Check the terms")
        await other.locator("button:has-text('Delete')").click()
        await other.locator("button:has-text('Yes, delete')").click()
        await expect(tab1.locator(".thread")).to_have_count(0)
        await _closes_without_asking(tab1)


async def test_a_comment_and_a_reply_saved_without_an_answer_leave_their_box_once_listed(
    stack: Stack, browser: Browser
) -> None:
    async with avery_on_a_letter(stack, browser, "Wiped", locked=True) as (_, (page,)):

        async def lose_the_answer(route: Route) -> None:
            if route.request.method != "POST":
                await route.continue_()
                return
            await route.fetch()  # the server has it; the page hears nothing
            await route.abort("connectionreset")

        await page.route(COMMENTS, lose_the_answer)
        await page.route(REPLIES, lose_the_answer)
        line = page.locator(LINE)
        await select_paragraph(page, 1)
        await page.fill(".new-thread textarea", "Landed")
        await page.click("button:has-text('Comment on selection')")
        await expect(page.locator(".thread", has_text="Landed")).to_have_count(1)
        await expect(line).to_have_text("It was saved.")
        await expect(page.locator(".new-thread textarea")).to_have_value("")

        await page.fill(".reply textarea", "Noted")
        await page.click(".reply button[type=submit]")
        await expect(page.locator(".thread .comment-list li", has_text="Noted")).to_have_count(1)
        await expect(line).to_have_text("It was saved.")
        await expect(page.locator(".reply textarea")).to_have_value("")
        await _closes_without_asking(page)


async def test_a_reply_sent_as_its_thread_goes_says_who_and_where_and_dismisses_to_the_composer(
    stack: Stack, browser: Browser
) -> None:
    letter = await letter_locked_by_parker(stack)
    token = mint_token(Settings(jwt_secret=stack.secret), "avery", "demo-firm", name="Avery")
    comments = f"/v1/letters/{letter}/comments"
    async with httpx.AsyncClient(
        base_url=stack.url, headers={"Authorization": f"Bearer {token}"}
    ) as avery:
        made = await avery.post(
            comments, json={"body": "Check", "anchor": {"from": 0, "to": 9}, "mentions": []}
        )
        assert made.is_success, made.text
        thread, comment = made.json()["thread_id"], made.json()["comment_id"]
        async with pages(browser, 1) as (page,):
            await open_letter(page, stack.url, "parker", letter)
            await expect(page.locator(".thread")).to_contain_text("Check")

            # The reply is held until Avery has deleted the thread, and Parker's list shows it gone.
            async def late(route: Route) -> None:
                deleted = await avery.delete(f"{comments}/{quote(thread)}/{quote(comment)}")
                assert deleted.is_success, deleted.text
                await expect(page.locator(".thread")).to_have_count(0)
                await route.continue_()

            await page.route(REPLIES, late)
            await page.fill(".reply textarea", "Agreed")
            await page.click(".reply button[type=submit]")
            lost = page.locator(".lost-reply")
            await expect(lost).to_contain_text(
                "Avery deleted the thread you were replying to; your reply was not sent:"
            )
            await expect(lost).to_contain_text("The thread was on “Dear Sir,”.")
            await expect(lost.locator("textarea")).to_have_value("Agreed")
            await lost.locator("button:has-text('Dismiss')").click()
            await expect(lost).to_have_count(0)
            await expect(page.locator(".new-thread textarea")).to_be_focused()


async def test_a_503_that_lasts_reads_in_the_users_words(
    unrestored: Stack, browser: Browser
) -> None:
    async with avery_on_a_letter(unrestored, browser, "Wiped", locked=True) as (_, (page,)):
        await unrestored.redis.flushall()
        await select_paragraph(page, 1)
        await page.fill(".new-thread textarea", "Important note")
        await page.click("button:has-text('Comment on selection')")
        # Sent again after each Retry-After (3 times, 5 s each) before the user hears of it.
        await expect(page.locator(LINE)).to_have_text(
            "The server is restoring its data; try again in 5 s.", timeout=RESTORE_WITHIN_MS
        )
        await expect(page.locator(".new-thread textarea")).to_have_value("Important note")
