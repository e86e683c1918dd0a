"""What a reviewer found in two Chromium pages: double clicks that sent a form twice, a token that
expired with no host page to renew it (the editor stayed editable), a lock kept on a heading
renamed since, and a viewer told to add comments.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (conftest.py's
browser, session_end.py's stack).
"""

import asyncio
import re

import httpx
from playwright.async_api import Browser, Dialog, Page, Request, expect

from tests.support import eventually
from tests.web.browser import (
    EDITABLE,
    HOST_OPENS_EDITOR,
    LETTER_SOCKET,
    HeldEchoes,
    create_letter,
    new_page,
    saved,
    select_paragraph,
    sign_in,
    stack_token,
    type_at_end,
)
from tests.web.session_end import SHORT_TTLS_S, base_url, before_expiry

# The stack with no JWT leeway (a session ends at its token's expiry), over conftest.py's.
__all__ = ["base_url"]

LETTERS = re.compile(r"/v1/letters$")
COMMENTS = re.compile(r"/v1/letters/[^/]+/comments$")
REPLIES = re.compile(r"/v1/letters/[^/]+/comments/[^/]+/replies$")
COMMENT = re.compile(r"/v1/letters/[^/]+/comments/[^/]+/[^/]+$")


async def _server_locks(base_url: str, letter: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {stack_token('audrey', 'auditor')}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
        locks = (await http.get(f"/v1/letters/{letter}/locks")).json()["locks"]
    return {lock["section"]: lock["locked_by"]["id"] for lock in locks}


def _posts(sent: list[Request], path: re.Pattern[str], method: str = "POST") -> list[Request]:
    return [r for r in sent if r.method == method and path.search(r.url.split("?")[0])]


async def test_a_double_click_on_create_letter_makes_one_letter(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        sent: list[Request] = []
        page.on("request", lambda request: sent.append(request))
        await page.fill("#new-title", "Clicked twice")
        await page.fill("#new-content", "Dear Sir,")
        await page.dblclick("button:has-text('Create letter')")
        await page.wait_for_selector(EDITABLE)
        await saved(page)
        creates = _posts(sent, LETTERS)
        assert len(creates) == 1, [r.url for r in creates]
        # A retry of the same fill (no answer came) would answer the same letter.
        assert re.fullmatch(r"[0-9a-f]{32}", await creates[0].header_value("idempotency-key") or "")
    finally:
        await context.close()


async def test_double_clicks_post_one_comment_one_reply_and_one_edit(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        await create_letter(page, "Comment twice", "Alpha one\nBravo two")
        sent: list[Request] = []
        page.on("request", lambda request: sent.append(request))
        await select_paragraph(page, 1)  # and wait for the editor to have it (a CI run did not)
        await page.fill(".new-thread textarea", "Once")
        await page.dblclick("button:has-text('Comment on selection')")
        await expect(page.locator(".thread")).to_have_count(1)

        await page.fill(".reply textarea", "Reply once")
        await page.dblclick(".reply button[type=submit]")
        await expect(page.locator(".thread .comment-list li")).to_have_count(2)

        await page.click(".thread .comment-list li >> nth=0 >> button:has-text('Edit')")
        await page.fill(".edit-comment textarea", "Once, edited")
        await page.dblclick(".edit-comment button[type=submit]")
        await expect(page.locator(".thread .comment-list li >> nth=0")).to_contain_text("(edited)")

        assert len(_posts(sent, COMMENTS)) == 1
        assert len(_posts(sent, REPLIES)) == 1
        assert len(_posts(sent, COMMENT, "PATCH")) == 1
        await expect(page.locator(".thread .comment-list li")).to_have_count(2)
    finally:
        await context.close()


async def test_a_viewer_is_not_asked_to_add_a_comment(base_url: str, browser: Browser) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        letter = await create_letter(page, "Quiet", "Nothing to say.")
        await page.goto(f"{base_url}/?token={stack_token('vera', 'viewer')}#/letters/{letter}")
        status = page.locator(".comments [role=status]")
        await expect(status).to_have_text("No comments yet.")
        await expect(page.locator(".comments")).to_contain_text(
            "can read comments but not add them"
        )
    finally:
        await context.close()


async def test_an_expired_token_no_host_renews_leaves_the_letter_read_only(
    base_url: str, browser: Browser
) -> None:
    """Opened with `?token=` and no host page: at the 4401 close the editor goes read-only,
    says the last edits were not saved (they stay shown), and locks and comments stop; "Here
    now" says this tab is disconnected and lists no colleague as if still here (it said
    "active"); a REST call with the expired token says the session expired, not
    "unauthorized"."""
    context, author = await new_page(browser)
    opened = [context]
    try:
        await sign_in(author, base_url, "avery")
        letter = await create_letter(author, "Expiring", "Alpha one\nBravo two")
        own = ".users [data-name='Parker'] .status"
        colleague = ".users [data-name='Avery Attorney']"
        stale = ".presence-stale"

        async def attempt(ttl_s: int) -> Page:
            reader, page = await new_page(browser)
            opened.append(reader)
            echoes = HeldEchoes()
            await page.route_web_socket(LETTER_SOCKET, echoes.route)
            token = stack_token("parker", ttl_s=ttl_s)
            await page.goto(f"{base_url}/?token={token}#/letters/{letter}")
            await page.wait_for_selector(EDITABLE)
            await saved(page)
            await expect(page.locator(own)).to_have_text("active")
            await expect(page.locator(colleague)).to_be_visible()
            await expect(page.locator(stale)).to_be_hidden()
            echoes.held = True
            await type_at_end(page, " Not saved.")
            await expect(page.locator(".connection")).to_have_attribute("data-pending", "true")
            return page

        page = await before_expiry(attempt)
        refusal = page.locator(".refusal[data-code='4401']")
        await expect(refusal).to_be_visible(timeout=(SHORT_TTLS_S[-1] + 20) * 1000)
        await expect(refusal).to_contain_text("Your session expired and the editor is read-only")
        await expect(refusal).to_contain_text("Your last edits were not saved")
        await expect(refusal.locator("button.copy-text")).to_be_visible()
        await expect(refusal.locator("button.retry")).to_be_hidden()  # refused again: no retry
        body = page.locator(".letter-body")
        await expect(body).to_have_attribute("contenteditable", "false")
        await expect(body).to_contain_text("Bravo two Not saved.")  # still there to copy
        await expect(page.locator("button.lock-toggle")).to_be_disabled()
        await expect(page.locator(".new-thread")).to_be_hidden()
        await expect(page.locator(".comments-closed")).to_be_visible()
        await expect(page.locator(own)).to_have_text("disconnected")
        await expect(page.locator(".users [data-name='Parker']")).to_have_class(
            "user status-disconnected"
        )
        await expect(page.locator(colleague)).to_have_count(0)  # not shown as if still here
        await expect(page.locator(stale)).to_have_text(
            "Not connected: who else is here is not known."
        )
        # Moving the mouse (activity) does not make the row claim "active" again.
        await page.mouse.move(10, 10)
        await page.mouse.move(200, 200)
        await expect(page.locator(own)).to_have_text("disconnected")

        async def leave(dialog: Dialog) -> None:
            await dialog.accept()  # "leave this letter and lose the edits?"

        page.on("dialog", lambda dialog: asyncio.ensure_future(leave(dialog)))
        await page.click("text=← Letters")
        await expect(page.locator(".letters-page")).to_contain_text(
            "Could not load the letter list (your session expired or was refused: sign in again)"
        )
    finally:
        for each in opened:
            await each.close()


async def test_an_expired_token_the_host_does_not_renew_leaves_the_letter_read_only(
    base_url: str, browser: Browser
) -> None:
    """With a host page that hands no new token: the editor waits for one after the 4401 close,
    then goes read-only as without a host."""
    context, author = await new_page(browser)
    # The page's timers are the test's to advance (the editor's wait for a token, below); until
    # then they run as the real clock does.
    await context.clock.install()
    try:
        await sign_in(author, base_url, "avery")
        letter = await create_letter(author, "Host asleep", "Alpha one")

        async def attempt(ttl_s: int) -> Page:
            # A host of its own (the last one's would hand its token too); any page of the same
            # origin can act as host.
            host = await context.new_page()
            await host.goto(base_url + "/dev/users")
            token = stack_token("parker", ttl_s=ttl_s)
            async with context.expect_page() as opened:
                url = f"{base_url}/#/letters/{letter}"
                await host.evaluate(HOST_OPENS_EDITOR, {"url": url, "token": token})
            page = await opened.value
            await page.wait_for_selector(EDITABLE)
            await saved(page)
            return page

        page = await before_expiry(attempt)
        await expect(page.locator(".connection")).to_contain_text(
            "Your session expired", timeout=(SHORT_TTLS_S[-1] + 20) * 1000
        )  # the 4401 close: the host has 10 s to hand a token, and the letter stays editable
        body = page.locator(".letter-body")
        assert await body.get_attribute("contenteditable") == "true"
        assert await page.locator(".refusal").is_hidden()
        await page.clock.fast_forward(10_000)  # RENEWAL_WAIT_MS (web/src/editor/refusal.ts)
        refusal = page.locator(".refusal[data-code='4401']")
        await expect(refusal).to_be_visible(timeout=5_000)  # now, not 10 s of real time later
        await expect(refusal).to_contain_text("Everything you typed before was saved")
        await expect(body).to_have_attribute("contenteditable", "false")
    finally:
        await context.close()


async def test_a_lock_on_a_renamed_heading_is_released_and_the_holder_told(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        letter = await create_letter(page, "Renamed", "Intro line\nTerms\nBody of terms")
        await page.click(".letter-body p:has-text('Terms') >> nth=0")
        await page.click("button[aria-label=Heading]")
        await expect(page.locator(".letter-body h2")).to_have_text("Terms")
        await page.click(".letter-body p:has-text('Body of terms')")
        await expect(page.locator(".caret-section")).to_contain_text("“Terms”")
        await page.click("button.lock-toggle")
        status = page.locator(".lock-status")
        await expect(status).to_contain_text("You locked “Terms”")
        assert await _server_locks(base_url, letter) == {"Terms": "avery"}

        await page.click(".letter-body h2")
        await page.keyboard.press("End")
        await page.keyboard.type(" and Conditions")
        await expect(status).to_contain_text(
            "Your lock on “Terms” was released: its heading was renamed or removed."
        )
        await expect(page.locator(".lock-row")).to_have_count(0)
        await eventually(lambda: _no_locks(base_url, letter))
        await expect(page.locator(".caret-section")).to_contain_text("“Terms and Conditions”")
        await expect(page.locator(".lock-toggle")).to_have_text("Lock this section")
    finally:
        await context.close()


async def _no_locks(base_url: str, letter: str) -> bool:
    return await _server_locks(base_url, letter) == {}
