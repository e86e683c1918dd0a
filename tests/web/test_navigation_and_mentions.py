"""Leaving a letter with pending edits asks first, a mention opens on its thread, and the letter's
headings stand out from its text.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import asyncio
import re

import httpx
from playwright.async_api import Browser, Dialog, Page, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.web.browser import (
    STACK_SECRET,
    TIMEOUT_MS,
    create_letter,
    pages,
    saved,
    select_paragraph,
    shot,
    sign_in,
    type_at_end,
)
from tests.web.stacks import own_base_url

# A stack of this module's own (it asserts firm- or user-wide state): stacks.py's own_base_url
__all__ = ["own_base_url"]

LEAVE_QUESTION = "Some of your edits have not reached the server yet"


class Dialogs:
    """The page's confirm() questions, answered as `accept` says (Playwright would dismiss all)."""

    def __init__(self, page: Page) -> None:
        self.asked: asyncio.Queue[str] = asyncio.Queue()
        self.accept = False
        page.on("dialog", self._answer)

    async def _answer(self, dialog: Dialog) -> None:
        await self.asked.put(f"{dialog.type}: {dialog.message}")
        await (dialog.accept() if self.accept else dialog.dismiss())

    async def next(self) -> str:
        return await asyncio.wait_for(self.asked.get(), TIMEOUT_MS / 1000)


async def test_leaving_a_letter_with_pending_edits_asks_first(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 1) as (avery,):
        dialogs = Dialogs(avery)
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Dunn claim", "Dear Ms. Dunn,")
        on_letter = re.compile(rf"#/letters/{letter}$")

        # Everything saved: "← Letters" leaves without a question.
        await avery.click("a.back")
        await avery.wait_for_selector("#new-title")
        assert dialogs.asked.empty()
        await avery.click(".letter-list a:has-text('Dunn claim')")
        await saved(avery)

        await avery.context.set_offline(True)
        await type_at_end(avery, " Typed offline.")
        await expect(avery.locator(".connection")).to_have_attribute("data-pending", "true")

        # "← Letters" asks; declined, the letter stays open with the edit.
        await avery.click("a.back")
        assert (await dialogs.next()).startswith(f"confirm: {LEAVE_QUESTION}")
        await expect(avery).to_have_url(on_letter)
        await expect(avery.locator(".letter-body")).to_contain_text("Typed offline.")
        await expect(avery.locator(".connection")).to_have_attribute("data-pending", "true")

        # So does the browser's Back; declined, the letter's address comes back, still open.
        await avery.go_back()
        assert (await dialogs.next()).startswith(f"confirm: {LEAVE_QUESTION}")
        await expect(avery).to_have_url(on_letter)
        await expect(avery.locator(".letter-body")).to_contain_text("Typed offline.")

        # Accepted: to the letter list.
        dialogs.accept = True
        await avery.click("a.back")
        assert (await dialogs.next()).startswith(f"confirm: {LEAVE_QUESTION}")
        await avery.wait_for_selector("#new-title")
        await expect(avery).to_have_url(re.compile(r"#/$"))
        assert dialogs.asked.empty()
        assert not avery.errors  # type: ignore[attr-defined]


PARAGRAPHS = [f"Paragraph {n}: the terms of clause {n} apply." for n in range(1, 41)]


def _client(base_url: str) -> httpx.AsyncClient:
    token = mint_token(Settings(jwt_secret=STACK_SECRET), "avery", "demo-firm", "editor", "Avery")
    return httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"})


async def _comment(http: httpx.AsyncClient, letter: str, paragraph: int, body: str) -> str:
    """Avery comments on paragraph `paragraph` (from 1), mentioning Parker if the body does."""
    start = len("\n".join(PARAGRAPHS[: paragraph - 1])) + (paragraph > 1)
    anchor = {"from": start, "to": start + len(PARAGRAPHS[paragraph - 1])}
    mentions = ["parker"] if "@Parker" in body else []
    answer = await http.post(
        f"/v1/letters/{letter}/comments",
        json={"body": body, "anchor": anchor, "mentions": mentions},
    )
    assert answer.status_code == 201, answer.text
    thread: str = answer.json()["thread_id"]
    return thread


async def _open_mention(page: Page, text: str) -> None:
    toggle = page.locator("button.mentions-toggle")
    if await toggle.get_attribute("aria-expanded") != "true":
        await toggle.click()
    await page.click(f".mentions-list a:has-text('{text}')")


async def test_opening_a_mention_shows_its_thread_and_its_text(
    base_url: str, browser: Browser
) -> None:
    async with _client(base_url) as http:
        created = await http.post(
            "/v1/letters",
            json={"firm_id": "demo-firm", "title": "Long lease", "content": "\n".join(PARAGRAPHS)},
        )
        letter = created.json()["letter_id"]
        # Enough threads above the mentioned one that the list must scroll to show it.
        for n in range(1, 11):
            await _comment(http, letter, n, f"Note on clause {n}")
        await _comment(http, letter, 40, "@Parker Paralegal see the last clause")
        resolved = await _comment(http, letter, 20, "@Parker Paralegal settled one")
        answer = await http.post(f"/v1/letters/{letter}/comments/{resolved}/resolve")
        assert answer.status_code == 200, answer.text
        await _comment(http, letter, 30, "@Parker Paralegal about to go")

    async with pages(browser, 1) as (parker,):
        await parker.goto(f"{base_url}/?as=parker")
        await parker.wait_for_selector("#new-title")
        comments_tab = parker.get_by_role("tab", name="Comments")
        current = parker.locator(".thread[aria-current=true]")
        target = parker.locator(".comment-target")

        # From the letter list: the letter opens on the thread, its text selected and in view.
        await _open_mention(parker, "see the last clause")
        await parker.wait_for_url(f"**/#/letters/{letter}")
        await expect(current).to_have_count(1)
        await expect(current).to_contain_text("see the last clause")
        await expect(current).to_be_in_viewport()
        await expect(target).to_have_text(f"On: “{PARAGRAPHS[39]}”")
        await expect(parker.locator(".letter-body p").nth(39)).to_be_in_viewport()

        # On the letter, with History showing and the page scrolled back up: a resolved thread
        # is shown too, without opening the letter again.
        await parker.evaluate("document.querySelector('.editor-page').dataset.kept = 'yes'")
        await parker.get_by_role("tab", name="History").click()
        await parker.evaluate("window.scrollTo(0, 0)")
        await _open_mention(parker, "settled one")
        await expect(comments_tab).to_have_attribute("aria-selected", "true")
        await expect(current).to_contain_text("settled one")
        await expect(current).to_have_class(re.compile(r"\bresolved\b"))
        await expect(current).to_be_in_viewport()
        await expect(target).to_have_text(f"On: “{PARAGRAPHS[19]}”")
        await expect(parker.locator(".letter-body p").nth(19)).to_be_in_viewport()
        await expect(parker.locator(".editor-page[data-kept=yes]")).to_have_count(1)
        await expect(parker).to_have_url(re.compile(rf"#/letters/{letter}$"))

        # A thread whose text was deleted: shown in the list, and focused (no text to select).
        await saved(parker)
        await select_paragraph(parker, 29)
        await parker.keyboard.press("Backspace")
        doomed = parker.locator(".thread", has_text="about to go")
        await expect(doomed).to_have_class(re.compile(r"\bdetached\b"))
        await parker.evaluate("window.scrollTo(0, 0)")
        await _open_mention(parker, "about to go")
        await expect(current).to_contain_text("about to go")
        await expect(current).to_be_in_viewport()
        await expect(current).to_be_focused()
        assert not parker.errors  # type: ignore[attr-defined]


async def test_the_letters_headings_stand_out_from_its_text(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 1) as (avery,):
        await sign_in(avery, base_url, "avery")
        await create_letter(avery, "Headings", "Opening line.")
        # TipTap's Markdown shortcuts: "# " starts a level-1 heading, and so on.
        await type_at_end(avery, "")
        for line in ("# Title", "## Section", "### Subsection", "Body text."):
            await avery.keyboard.press("Enter")
            await avery.keyboard.type(line, delay=10)
        await expect(avery.locator(".letter-body h3")).to_have_text("Subsection")
        await shot(avery, "headings")
        style = await avery.evaluate(
            """() => Object.fromEntries(['h1', 'h2', 'h3', 'p'].map((tag) => {
              const s = getComputedStyle(document.querySelector(`.letter-body ${tag}`))
              return [tag, [parseFloat(s.fontSize), Number(s.fontWeight), parseFloat(s.marginTop)]]
            }))"""
        )
        body = style["p"][0]
        h1, h2, h3 = style["h1"][0], style["h2"][0], style["h3"][0]
        assert h1 > h2 > h3 >= 1.1 * body, style
        assert h2 >= 1.25 * body and h1 <= 2 * body, style  # distinct, still modest
        assert all(style[h][1] >= 600 and style[h][2] > 0 for h in ("h1", "h2", "h3")), style
