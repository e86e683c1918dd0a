"""The header's mentions inbox, and editing / deleting your own comments in the comments panel.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import httpx
from playwright.async_api import Browser, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.web.browser import STACK_SECRET, create_letter, pages, saved, select_paragraph, sign_in
from tests.web.stacks import own_base_url

# A stack of this module's own (it asserts firm- or user-wide state): stacks.py's own_base_url
__all__ = ["own_base_url"]

NAMES = {"avery": "Avery Attorney", "parker": "Parker Paralegal"}


def _client(base_url: str, user: str) -> httpx.AsyncClient:
    token = mint_token(Settings(jwt_secret=STACK_SECRET), user, "demo-firm", "editor", NAMES[user])
    return httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"})


async def _mention(base_url: str, letter: str, body: str, who: str = "parker") -> None:
    """Avery comments on the letter's first word, mentioning `who`."""
    async with _client(base_url, "avery") as http:
        anchor = {"from": 0, "to": 4}
        answer = await http.post(
            f"/v1/letters/{letter}/comments",
            json={"body": body, "anchor": anchor, "mentions": [who]},
        )
        assert answer.status_code == 201, answer.text


async def _unread(base_url: str, user: str) -> int:
    async with _client(base_url, user) as http:
        unread: int = (await http.get("/v1/notifications")).json()["unread"]
    return unread


async def test_the_inbox_shows_live_mentions_opens_them_and_marks_them_read(
    base_url: str, browser: Browser
) -> None:
    async with _client(base_url, "avery") as http:
        created = await http.post(
            "/v1/letters",
            json={"firm_id": "demo-firm", "title": "Baker lease", "content": "Dear Mr. Baker,"},
        )
        letter = created.json()["letter_id"]
    async with pages(browser, 1) as (parker,):
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await saved(parker)
        toggle = parker.locator("button.mentions-toggle")
        await expect(toggle).to_have_attribute("data-unread", "0")

        # A mention arrives on the open letter's app channel: the count follows, without a poll.
        await _mention(base_url, letter, "@Parker Paralegal please check the rent clause")
        await expect(toggle).to_have_attribute("data-unread", "1")
        await expect(toggle).to_have_accessible_name("Mentions, 1 unread")

        # From the letter list: the panel lists it, unread; opening it goes to the letter.
        await parker.click("a.back")
        await parker.wait_for_selector("#new-title")
        await toggle.click()
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        row = parker.locator(".mentions-list li")
        await expect(row).to_have_count(1)
        await expect(row).to_have_attribute("data-read", "false")
        await expect(row).to_contain_text("Avery Attorney")
        await expect(row).to_contain_text("Baker lease")  # the title, not the id
        await expect(row).to_contain_text("please check the rent clause")
        await row.locator("a").click()
        await parker.wait_for_url(f"**/#/letters/{letter}")
        await expect(toggle).to_have_attribute("data-unread", "0")
        await expect(toggle).to_have_attribute("aria-expanded", "false")
        assert await _unread(base_url, "parker") == 0

        # Two more, newest first; "Mark all read" clears them on the server too.
        await saved(parker)
        await _mention(base_url, letter, "First of two")
        await expect(toggle).to_have_attribute("data-unread", "1")
        await _mention(base_url, letter, "Second of two")
        await expect(toggle).to_have_attribute("data-unread", "2")
        await toggle.click()
        await expect(row).to_have_count(3)
        await expect(row.first).to_contain_text("Second of two")
        await expect(parker.locator(".mentions-list li[data-read=false]")).to_have_count(2)
        await parker.click(".mentions-panel button:has-text('Mark all read')")
        await expect(toggle).to_have_attribute("data-unread", "0")
        await expect(parker.locator(".mentions-list li[data-read=false]")).to_have_count(0)
        assert await _unread(base_url, "parker") == 0

        # Escape closes the panel and gives the focus back to the button.
        await parker.keyboard.press("Escape")
        await expect(toggle).to_have_attribute("aria-expanded", "false")
        await expect(toggle).to_be_focused()


async def test_only_your_own_comments_can_be_edited_and_deleted(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Cole estate", "Dear Ms. Cole,\nThe will is attached.")
        await select_paragraph(avery, 1)
        await avery.fill(".new-thread textarea", "Check the date")
        await avery.click("button:has-text('Comment on selection')")
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await expect(parker.locator(".thread")).to_contain_text("Check the date")
        await parker.fill(".reply textarea", "Date checked")
        await parker.click(".reply button")
        await expect(avery.locator(".thread")).to_contain_text("Date checked")

        # Each sees Edit / Delete on their own comment only.
        for page, own, other in (
            (avery, "Check the date", "Date checked"),
            (parker, "Date checked", "Check the date"),
        ):
            mine = page.locator(".comment-list li", has_text=own)
            theirs = page.locator(".comment-list li", has_text=other)
            await expect(mine.locator("button:has-text('Edit')")).to_be_visible()
            await expect(mine.locator("button:has-text('Delete')")).to_be_visible()
            await expect(theirs.locator("button")).to_have_count(0)

        # Avery edits hers: Cancel keeps it, Save changes it for Parker too.
        mine = avery.locator(".comment-list li", has_text="Check the date")
        await mine.locator("button:has-text('Edit')").click()
        box = avery.locator("textarea[aria-label='Edit your comment']")
        await expect(box).to_be_focused()
        await expect(box).to_have_value("Check the date")
        await avery.click(".edit-comment button:has-text('Cancel')")
        await expect(box).to_have_count(0)
        await mine.locator("button:has-text('Edit')").click()
        await box.fill("Check the date of signing")
        await avery.click(".edit-comment button:has-text('Save')")
        edited = avery.locator(".comment-list li").first
        await expect(edited.locator("p")).to_have_text("Check the date of signing")
        await expect(edited).to_contain_text("(edited)")
        await parker.reload()
        await expect(parker.locator(".comment-list li").first).to_contain_text(
            "Check the date of signing"
        )

        # Parker deletes his reply, after a confirmation; Avery no longer sees it.
        reply = parker.locator(".comment-list li", has_text="Date checked")
        await reply.locator("button:has-text('Delete')").click()
        await expect(reply).to_contain_text("Delete this comment?")
        await reply.locator("button:has-text('Cancel')").click()
        await reply.locator("button:has-text('Delete')").click()
        await reply.locator("button:has-text('Yes, delete')").click()
        await expect(parker.locator(".comment-list li")).to_have_count(1)
        await avery.reload()
        await expect(avery.locator(".comment-list li")).to_have_count(1)
        await expect(avery.locator(".thread")).not_to_contain_text("Date checked")
        assert not avery.errors and not parker.errors  # type: ignore[attr-defined]
