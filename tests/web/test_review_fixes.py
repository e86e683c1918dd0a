"""What a reviewer found driving the page in a real browser: unsaved edits, locks per tab and per
heading, comment anchors that follow edits, lock status, undo grouping, small UX.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import asyncio
import functools
import re

import httpx
from playwright.async_api import Browser, Dialog, Page, Request, Route, expect

from tests.support import eventually
from tests.web.browser import (
    EDITABLE,
    auth,
    block_text,
    create_letter,
    marked,
    new_page,
    pages,
    saved,
    sign_in,
    type_at_end,
)

ARABIC = "\u0645\u0631\u062d\u0628\u0627 \u0628\u0643\u0645"  # "welcome", in Arabic
LOCK = re.compile(r"/v1/letters/[^/]+/locks/[^/?]+$")


async def _server_locks(base_url: str, letter: str) -> dict[str, str]:
    """Section -> holder id, as the server has them."""
    async with httpx.AsyncClient(base_url=base_url, headers=auth("audrey", "auditor")) as http:
        locks = (await http.get(f"/v1/letters/{letter}/locks")).json()["locks"]
    return {lock["section"]: lock["locked_by"]["id"] for lock in locks}


async def _select_word(page: Page, paragraph: int, word: str) -> None:
    """Select `word` in the paragraph with the keyboard (it must occur once there)."""
    block = page.locator(".letter-body p").nth(paragraph)
    text = await block.inner_text()
    after = len(text) - text.index(word) - len(word)
    await block.click()
    await page.keyboard.press("End")
    for key in ["ArrowLeft"] * after + ["Shift+ArrowLeft"] * len(word):
        await page.keyboard.press(key)
    await expect(page.locator(".comment-target")).to_have_text(f"On: “{word}”")


async def _comment_on(page: Page, paragraph: int, word: str, body: str) -> None:
    await _select_word(page, paragraph, word)
    await page.fill(".new-thread textarea", body)
    await page.click("button:has-text('Comment on selection')")
    await expect(page.locator(".thread .quote")).to_have_text(f"“{word}”")


async def test_closing_a_tab_with_unsaved_edits_asks_first(base_url: str, browser: Browser) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "parker")
        await create_letter(page, "Train", "Opening paragraph.")
        dialogs: list[str] = []

        async def dismiss(dialog: Dialog) -> None:
            dialogs.append(dialog.type)
            await dialog.dismiss()  # "stay on this page"

        page.on("dialog", dismiss)
        await context.set_offline(True)
        await type_at_end(page, " Written offline.")
        badge = page.locator(".connection")
        await expect(badge).to_have_attribute("data-pending", "true")
        await page.close(run_before_unload=True)
        await eventually(lambda: dialogs == ["beforeunload"])
        assert not page.is_closed()
        # The badge promises nothing the page cannot keep: the edits are in this tab only.
        await expect(badge).to_contain_text("not saved: keep this tab open")

        # Once the server has them, the tab closes without a question.
        await context.set_offline(False)
        await saved(page)
        closed = asyncio.get_running_loop().create_future()
        page.once("close", lambda _: closed.set_result(True))
        await page.close(run_before_unload=True)
        await asyncio.wait_for(closed, timeout=10)
        assert dialogs == ["beforeunload"]
    finally:
        await context.close()


async def test_closing_a_second_tab_keeps_the_lock_the_first_tab_took(
    base_url: str, browser: Browser
) -> None:
    context, first = await new_page(browser)
    try:
        await sign_in(first, base_url, "avery")
        letter = await create_letter(first, "Two tabs", "Dear Sir,\nThe terms follow.")
        await first.click(".letter-body p >> nth=1")
        await first.click("button.lock-toggle")
        await expect(first.locator(".lock-status")).to_contain_text("You locked “paragraph 2”")

        # The same person in a second tab: sees the lock as theirs, takes paragraph 1 there.
        second = await context.new_page()
        await second.goto(f"{base_url}/?as=avery#/letters/{letter}")
        await expect(second.locator(".lock-row")).to_contain_text("Avery Attorney (you)")
        await second.click(".letter-body p >> nth=0")
        await second.click("button.lock-toggle")
        await expect(second.locator(".lock-status")).to_contain_text("You locked “paragraph 1”")
        await expect(first.locator(".lock-row")).to_have_count(2)

        # Closing the second tab releases what it took, and only that.
        await second.close()
        await expect(first.locator(".lock-row")).to_have_count(1)
        await expect(first.locator(".lock-row")).to_contain_text("“paragraph 2”")
        assert await _server_locks(base_url, letter) == {"paragraph 2": "avery"}
    finally:
        await context.close()


async def test_headings_with_the_same_text_are_sections_of_their_own(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        letter = await create_letter(page, "Twice", "Damages\nFirst claim.\nDamages\nSecond claim.")
        for _ in range(2):  # the first paragraph "Damages" left is the next one to become a heading
            await page.click(".letter-body p:has-text('Damages') >> nth=0")
            await page.click("button[aria-label=Heading]")
        await expect(page.locator(".letter-body h2")).to_have_count(2)

        await page.click(".letter-body p:has-text('Second claim.')")
        await expect(page.locator(".caret-section")).to_contain_text("“Damages (2)”")
        await page.click("button.lock-toggle")
        await expect(page.locator(".lock-status")).to_contain_text("You locked “Damages (2)”")
        await expect(page.locator(".letter-body")).to_be_focused()  # back to the letter

        await page.click(".letter-body p:has-text('First claim.')")
        await expect(page.locator(".caret-section")).to_contain_text("“Damages”")
        await expect(page.locator(".lock-toggle")).to_have_text("Lock this section")
        await page.click("button.lock-toggle")
        await expect(page.locator(".lock-status")).to_contain_text("You locked “Damages”")
        badges = page.locator(".letter-body .lock-badge")
        await expect(badges).to_have_count(2)
        assert await _server_locks(base_url, letter) == {"Damages": "avery", "Damages (2)": "avery"}
    finally:
        await context.close()


async def test_a_comment_quote_selects_its_text_where_it_is_now(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        await create_letter(page, "Quote", "Dear Sir,\nThe claim is valid.")
        await _comment_on(page, 1, "claim", "Which claim?")
        await page.click(".letter-body p >> nth=1")
        await page.keyboard.press("Home")
        await page.keyboard.type("Indeed, ")
        await page.click(".thread .quote")
        await expect(page.locator(".comment-target")).to_have_text("On: “claim”")
    finally:
        await context.close()


async def test_another_persons_lock_status_follows_the_lock_list(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Status", "Dear Sir,\nThe terms follow.")
        await avery.click(".letter-body p >> nth=1")
        await avery.click("button.lock-toggle")
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await parker.wait_for_selector(EDITABLE)
        await parker.click(".letter-body p >> nth=1")
        await parker.click("button.lock-toggle")
        status = parker.locator(".lock-status")
        await expect(status).to_contain_text("locked by Avery Attorney")

        await avery.click("button.lock-toggle")
        await expect(parker.locator(".lock-list")).to_have_text("No section is locked.")
        await expect(status).to_have_text("“paragraph 2” is no longer locked.")


async def test_a_renewal_lost_in_a_network_blip_is_retried(base_url: str, browser: Browser) -> None:
    """The page renews a lock once less than 200 s of its 300 s are left: the test moves the
    page's clock instead of waiting, and fails the renewal's request as a dropped network would."""
    context, page = await new_page(browser)
    try:
        await page.clock.install()
        await sign_in(page, base_url, "avery")
        letter = await create_letter(page, "Blip", "Dear Sir,\nThe terms follow.")
        await page.click(".letter-body p >> nth=1")
        await page.click("button.lock-toggle")
        await expect(page.locator(".lock-status")).to_contain_text("You locked “paragraph 2”")

        failed: list[str] = []

        async def drop(route: Route) -> None:
            if route.request.method != "POST":
                await route.continue_()
                return
            failed.append(route.request.url)
            await route.abort("internetdisconnected")

        await page.route(LOCK, drop)
        await page.clock.fast_forward(101_000)  # the tick after this renews
        await eventually(lambda: failed)
        status = page.locator(".lock-status")
        await expect(status).to_contain_text("Could not renew your lock on “paragraph 2”")
        await expect(page.locator(".lock-row")).to_contain_text("Avery Attorney (you)")

        await page.unroute(LOCK)

        def renewed(request: Request) -> bool:
            return request.method == "POST" and LOCK.search(request.url) is not None

        async with page.expect_response(lambda r: renewed(r.request) and r.ok) as response:
            await page.clock.fast_forward(5_000)
        assert (await response.value).ok
        await expect(status).to_have_text("Your lock on “paragraph 2” is renewed.")
        await expect(page.locator(".lock-row")).to_contain_text("Avery Attorney (you)")
        assert await _server_locks(base_url, letter) == {"paragraph 2": "avery"}
    finally:
        await context.close()


async def test_deleting_commented_text_shows_the_thread_detached_to_others(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Detach", "Dear Sir,\nThe claim is valid.")
        await _comment_on(avery, 1, "claim", "Which claim?")
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        badge = parker.locator(".thread .badge")
        await expect(badge).to_have_text("open")
        await expect(parker.locator(".comment-anchor")).to_have_text("claim")

        await _select_word(avery, 1, "claim")
        await avery.keyboard.press("Backspace")
        await expect(parker.locator(".letter-body p >> nth=1")).not_to_contain_text("claim")
        await expect(badge).to_have_text("detached (its text was deleted)")
        await expect(avery.locator(".thread .badge")).to_have_text(
            "detached (its text was deleted)"
        )


async def test_a_title_of_spaces_is_refused(base_url: str, browser: Browser) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        await page.fill("#new-title", "   ")
        await page.click("button:has-text('Create letter')")
        await expect(page.locator("form:has(#new-title) .error")).to_have_text(
            "Give the letter a title."
        )
        await expect(page.locator("#new-title")).to_be_focused()
        assert "#/letters/" not in page.url
    finally:
        await context.close()


async def test_a_new_letter_opens_with_the_caret_in_it(base_url: str, browser: Browser) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        await create_letter(page, "Focus", "Dear Sir,")
        await expect(page.locator(".letter-body")).to_be_focused()
        await page.keyboard.type(" hello")
        await expect(page.locator(".letter-body")).to_have_text("Dear Sir, hello")
    finally:
        await context.close()


async def test_paragraphs_take_their_direction_from_their_text(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        await create_letter(page, "Bidi", f"Dear Sir,\n{ARABIC}")
        blocks = page.locator(".letter-body p")
        await expect(blocks).to_have_count(2)
        for n in (0, 1):
            await expect(blocks.nth(n)).to_have_attribute("dir", "auto")
        direction = "(el) => getComputedStyle(el).direction"
        assert await blocks.nth(0).evaluate(direction) == "ltr"
        assert await blocks.nth(1).evaluate(direction) == "rtl"
        # Blocks typed later are marked where they appear (the marks are kept up to date
        # where the document changed, not rebuilt per keystroke).
        await blocks.nth(0).click()
        await page.keyboard.press("End")
        await page.keyboard.press("Enter")
        await page.keyboard.type(ARABIC)
        await page.keyboard.press("Enter")
        await page.keyboard.type("Regards")
        await expect(blocks).to_have_count(4)
        for n in range(4):
            await expect(blocks.nth(n)).to_have_attribute("dir", "auto")
        for n in range(4):  # wherever the caret put them: each block by its own text
            text = await blocks.nth(n).inner_text()
            want = "rtl" if ARABIC in text else "ltr"
            assert await blocks.nth(n).evaluate(direction) == want, text
    finally:
        await context.close()


async def test_history_says_auditors_only_without_asking_the_server(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        await create_letter(page, "No history", "Dear Sir,")
        asked: list[str] = []

        def note(request: Request) -> None:
            if re.search(r"/letters/[^/]+/(versions|history)", request.url):
                asked.append(request.url)

        page.on("request", note)
        await page.click("role=tab[name='History']")
        history = page.locator(".panel.history")
        await expect(history).to_contain_text("Versions: for auditors only.")
        await expect(history).to_contain_text("The activity timeline: for auditors only.")
        # A request would have been sent by now: the panel shows its outcome only after it.
        assert asked == []
    finally:
        await context.close()


async def test_one_undo_removes_your_sentence_while_a_colleague_types(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Undo", "Dear Sir,\nThe terms follow.")
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await parker.wait_for_selector(EDITABLE)
        await expect(avery.locator(".users [data-name='Parker Paralegal']")).to_be_visible()

        sentence = " Parker keeps typing here for a while, word after word."
        colleague = asyncio.create_task(type_at_end(parker, sentence))
        await expect(avery.locator(".letter-body")).to_contain_text("Parker keeps")
        await avery.click(".letter-body p >> nth=0")
        await avery.keyboard.press("End")
        await avery.keyboard.type(" We write on behalf of Ms. Lee.", delay=40)
        await colleague
        await expect(avery.locator(".letter-body")).to_contain_text("word after word.")
        await avery.keyboard.press("Control+z")
        await expect(avery.locator(".letter-body p >> nth=0")).to_have_text("Dear Sir,")
        # Parker's sentence exactly as typed, spaces included. Once in CI it read "typinghere":
        # his keystrokes had undone Avery's click, her sentence went into his, and her undo took
        # a space of his along (test_concurrent_input.py has the race).
        await saved(avery)
        await saved(parker)
        for page in (avery, parker):
            second = await block_text(page.locator(".letter-body p").nth(1))
            assert second == "The terms follow." + sentence


async def test_a_retyped_ending_staysmarked(base_url: str, browser: Browser) -> None:
    """ "March 14" retyped "March 15": the mark covers the new ending, for the typist (its step
    maps) and for a colleague (the diffed remote change), and after a reload (the server's anchor
    `after`); text typed after an ending left alone stays outside, as before."""
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(
            avery, "Retype", "Dear Sir,\nPayment is due March 14, as agreed.\nKind regards"
        )
        await _comment_on(avery, 1, "March 14", "Is this the right date?")
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await expect(parker.locator(".comment-anchor")).to_have_text("March 14")

        await _select_word(avery, 1, "14")
        await avery.keyboard.type("15")
        await expect(avery.locator(".letter-body p >> nth=1")).to_contain_text("March 15, as")
        for page in (avery, parker):  # (parker's page shows avery's caret after "15")
            await eventually(functools.partial(marked, page, "March 15"))
        await parker.reload()
        await eventually(lambda: marked(parker, "March 15"))
        # Marked anew from the server (`open_end`): what is typed at its end still joins it.
        await parker.goto("about:blank")  # (no caret of his in avery's paragraph)
        await avery.reload()
        await eventually(lambda: marked(avery, "March 15"))
        await _select_word(avery, 1, "15")
        await avery.keyboard.press("ArrowRight")
        await avery.keyboard.type("th")
        await eventually(lambda: marked(avery, "March 15th"))

        await _select_word(avery, 2, "Kind")
        await avery.fill(".new-thread textarea", "Too familiar?")
        await avery.click("button:has-text('Comment on selection')")
        await expect(avery.locator(".thread .quote", has_text="Kind")).to_be_visible()
        await _select_word(avery, 2, "Kind")
        await avery.keyboard.press("ArrowRight")  # the caret right after "Kind"
        await avery.keyboard.type("est")
        await expect(avery.locator(".letter-body p >> nth=2")).to_have_text("Kindest regards")
        await eventually(lambda: marked(avery, "March 15th", "Kind"))
