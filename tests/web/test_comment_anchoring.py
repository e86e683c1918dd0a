"""A comment lands on the text its author selected, and every page marks that text, while someone
types above it: the browser anchors and marks by Yjs relative positions in its own document, not by
plain-text offsets the server reads in another state of it. And a comment or lock tried offline
says so, until the browser is back online.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import re

from playwright.async_api import Browser, Page, Route, WebSocketRoute, expect

from tests.support import eventually
from tests.web.browser import create_letter, marked, open_letter, pages, saved, sign_in, type_in

LETTER = "Dear Sir,\nWe claim damages of 5000 dollars.\nRegards."
COMMENTS = re.compile(r"/v1/letters/[^/]+/comments$")
OFFLINE = "You are offline: try again when connected."


async def _select_damages(page: Page) -> None:
    """ "damages" in the second paragraph, with the keyboard, and a comment on it written."""
    await page.locator(".letter-body p").nth(1).click()
    await page.keyboard.press("Home")
    for _ in range(9):
        await page.keyboard.press("ArrowRight")
    for _ in range(7):
        await page.keyboard.press("Shift+ArrowRight")
    await expect(page.locator(".comment-target")).to_have_text("On: “damages”")
    await page.fill(".new-thread textarea", "Is this the right figure?")


async def test_a_comment_lands_on_the_selection_while_a_colleague_types_above_it(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Comment race", LETTER)
        await open_letter(parker, base_url, "parker", letter)
        await _select_damages(avery)

        # Parker's words reach the server after Avery selected, before her comment does.
        async def colleague_first(route: Route) -> None:
            if route.request.method == "POST":
                await type_in(parker, 0, "abc ", "Home")
                await saved(parker)
            await route.continue_()

        await avery.route(COMMENTS, colleague_first)
        await avery.click("button:has-text('Comment on selection')")
        await expect(avery.locator(".thread .quote")).to_have_text("“damages”")
        for page in (avery, parker):
            await expect(page.locator(".letter-body .comment-anchor")).to_have_text("damages")


async def test_pages_mark_the_same_text_while_one_types_before_it(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Marks on typist", LETTER)
        await open_letter(parker, base_url, "parker", letter)
        await _select_damages(parker)
        await type_in(avery, 0, "", "Home")

        # The threads Avery's page loads were read on the server before her keystrokes got
        # there: her page has more text above the comment than the server had.
        typed: list[str] = []

        async def typed_meanwhile(route: Route) -> None:
            response = await route.fetch()
            if not typed and (await response.json()).get("threads"):
                typed.append("xyz ")
                await avery.keyboard.type("xyz ")
            await route.fulfill(response=response)

        await avery.route(COMMENTS, typed_meanwhile)
        await parker.click("button:has-text('Comment on selection')")
        for page in (parker, avery):
            await expect(page.locator(".letter-body .comment-anchor")).to_have_text("damages")
        assert typed, "Avery's page never loaded the thread"
        await expect(avery.locator(".letter-body p").nth(0)).to_have_text("xyz Dear Sir,")


class Gate:
    """A routed WebSocket that passes the server's messages to the page until `hold()`, then
    keeps its document updates back until `release()` and drops its app messages (live notices,
    y-protocol type 100: as if they had come before the edits they follow)."""

    def __init__(self) -> None:
        self._page: WebSocketRoute | None = None
        self._held: list[str | bytes] | None = None

    def route(self, page: WebSocketRoute) -> None:
        server = page.connect_to_server()
        page.on_message(server.send)
        server.on_message(self._to_page)
        self._page = page

    def hold(self) -> None:
        self._held = []

    def _to_page(self, message: str | bytes) -> None:
        if self._held is None:
            assert self._page is not None
            self._page.send(message)
        elif not (isinstance(message, bytes) and message[:1] == b"\x64"):
            self._held.append(message)

    def release(self) -> None:
        held, self._held = self._held or [], None
        for message in held:
            self._to_page(message)


async def test_a_thread_on_text_not_received_yet_is_marked_once_it_arrives(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Text on its way", LETTER)
        gate = Gate()
        await parker.route_web_socket(re.compile(r"/v1/letter-"), gate.route)
        await open_letter(parker, base_url, "parker", letter)
        gate.hold()
        # Avery comments on words she has just typed; Parker's page has not got them yet when
        # it loads the threads (for his own comment).
        await avery.locator(".letter-body p").nth(1).click()
        await avery.keyboard.press("Home")
        await avery.keyboard.type("New words ")
        await saved(avery)
        for key in ["ArrowLeft"] + ["Shift+ArrowLeft"] * 5:
            await avery.keyboard.press(key)
        await expect(avery.locator(".comment-target")).to_have_text("On: “words”")
        await avery.fill(".new-thread textarea", "Which words?")
        await avery.click("button:has-text('Comment on selection')")
        await expect(avery.locator(".thread .quote")).to_have_text("“words”")
        await parker.locator(".letter-body p").nth(2).click()
        await parker.keyboard.press("End")
        await parker.keyboard.press("Shift+Home")
        # ProseMirror reads the selection on "selectionchange", a task of its own: filling the
        # box first moves the focus, the letter's selection is then ignored, and the comment is
        # refused for want of one ("Select the text the comment is about first.").
        await expect(parker.locator(".comment-target")).to_have_text("On: “Regards.”")
        await parker.fill(".new-thread textarea", "Too short?")
        await parker.click("button:has-text('Comment on selection')")
        await expect(parker.locator(".thread .quote")).to_have_count(2)

        gate.release()
        await expect(parker.locator(".letter-body p").nth(1)).to_contain_text("New words We")
        await eventually(lambda: marked(parker, "words", "Regards."))


async def test_a_comment_or_lock_tried_offline_says_so_until_back_online(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 1) as (avery,):
        await sign_in(avery, base_url, "avery")
        await create_letter(avery, "Offline comment", LETTER)
        await _select_damages(avery)
        await avery.context.set_offline(True)
        await avery.click("button:has-text('Comment on selection')")
        comment_status = avery.locator(".comments > p[role=status]")
        await expect(comment_status).to_have_text(OFFLINE)
        await expect(avery.locator(".new-thread textarea")).to_have_value(
            "Is this the right figure?"
        )

        await avery.locator(".letter-body p").nth(1).click()
        await avery.keyboard.press("Alt+Shift+L")
        lock_status = avery.locator(".lock-status")
        await expect(lock_status).to_have_text(re.compile(rf"^Could not lock “.+”: {OFFLINE}$"))

        await avery.context.set_offline(False)
        await expect(comment_status).to_have_text("")
        await expect(lock_status).to_have_text("")


async def test_a_selection_over_paragraph_breaks_anchors_its_characters(
    base_url: str, browser: Browser
) -> None:
    """The anchor's positions are on the first and last characters selected: from the letter's
    very first one (y-tiptap takes a position there for a misresolved one), and past a line
    break at the selection's start."""
    async with pages(browser, 1) as (avery,):
        await sign_in(avery, base_url, "avery")
        await create_letter(avery, "Breaks", LETTER)
        await avery.locator(".letter-body p").nth(0).click()
        await avery.keyboard.press("Home")
        await avery.keyboard.press("Shift+End")
        await expect(avery.locator(".comment-target")).to_have_text("On: “Dear Sir,”")
        await avery.fill(".new-thread textarea", "Opening")
        await avery.click("button:has-text('Comment on selection')")
        quotes = avery.locator(".thread .quote")
        await expect(quotes).to_have_text(["“Dear Sir,”"])

        await avery.locator(".letter-body p").nth(1).click()
        await avery.keyboard.press("End")
        for key in ["Shift+ArrowRight"] * 4:  # the line break, then "Reg"
            await avery.keyboard.press(key)
        await expect(avery.locator(".comment-target")).to_have_text("On: “ Reg”")
        await avery.fill(".new-thread textarea", "Too formal?")
        await avery.click("button:has-text('Comment on selection')")
        await expect(quotes.filter(has_text="Reg")).to_have_text("“Reg”")
        marks = await avery.locator(".letter-body .comment-anchor").evaluate_all(
            "spans => spans.map(s => s.textContent)"
        )
        assert "".join(marks) == "Dear Sir,Reg"
        assert avery.errors == []  # type: ignore[attr-defined]


async def test_a_lock_granted_whose_answer_was_lost_is_held_on_the_page(
    base_url: str, browser: Browser
) -> None:
    """The lock request reached the server, its answer did not reach the page: the page reads
    the list and holds the lock it got (re-read RK: "Could not lock", while the colleague saw it
    locked and nobody renewed or released it)."""
    lost: list[str] = []

    async def answer_lost(route: Route) -> None:
        if route.request.method != "POST" or lost:
            await route.continue_()
            return
        lost.append(route.request.url)
        await route.fetch()  # the server takes it
        await route.abort("connectionreset")  # the answer never comes

    async with pages(browser, 1) as (avery,):
        await sign_in(avery, base_url, "avery")
        await create_letter(avery, "Lost lock answer", LETTER)
        await avery.route(re.compile(r"/v1/letters/[^/]+/locks/[^/]+$"), answer_lost)
        await avery.locator(".letter-body p").nth(1).click()
        await avery.keyboard.press("Alt+Shift+L")
        await eventually(lambda: len(lost) == 1)
        lock_status = avery.locator(".lock-status")
        await expect(lock_status).to_have_text(re.compile(r"^You locked “.+” \(renewed"))
        await avery.keyboard.press("Alt+Shift+L")  # it is the page's to release
        await expect(lock_status).to_have_text(re.compile(r"^You unlocked “.+”\.$"))
