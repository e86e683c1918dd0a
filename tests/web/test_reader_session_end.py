"""A reader's session that ends (viewer, commenter, auditor: they cannot type) is worded for
them: not "sign in again to keep editing" or "everything you typed was saved"; and a
commenter's panel is not told to "select text and add one" then.

Against `steno-collab dev` in Debian's Chromium (conftest.py's browser, session_end.py's stack).
"""

import pytest
from playwright.async_api import Browser, Page, expect

from tests.web.browser import create_letter, new_page, sign_in, stack_token
from tests.web.session_end import SHORT_TTLS_S, base_url, before_expiry

# The stack with no JWT leeway (a session ends at its token's expiry), over conftest.py's.
__all__ = ["base_url"]

NO_COMMENTS = "No comments yet."


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("user", "role", "again"),
    [
        ("vera", "viewer", "see new changes"),
        ("cole", "commenter", "comment and see new changes"),
        ("audrey", "auditor", "see new changes"),
    ],
)
async def test_a_readers_expired_session_is_worded_for_a_reader(
    base_url: str, browser: Browser, user: str, role: str, again: str
) -> None:
    context, author = await new_page(browser)
    opened = [context]
    try:
        await sign_in(author, base_url, "avery")
        letter = await create_letter(author, f"Read by a {role}", "Dear Sir,\nThe terms follow.")
        status = ".comments [role=status]"

        async def attempt(ttl_s: int) -> Page:
            reader, page = await new_page(browser)
            opened.append(reader)
            token = stack_token(user, role, ttl_s=ttl_s)
            await page.goto(f"{base_url}/?token={token}#/letters/{letter}")
            await expect(page.locator(".letter-body")).to_contain_text("The terms follow.")
            if role == "commenter":
                await expect(page.locator(status)).to_have_text(
                    NO_COMMENTS + " Select text and add one."
                )
            return page

        page = await before_expiry(attempt)
        refusal = page.locator(".refusal[data-code='4401']")
        await expect(refusal).to_be_visible(timeout=(SHORT_TTLS_S[-1] + 20) * 1000)
        await expect(refusal.locator(".refusal-text")).to_have_text(
            f"Your session expired: the letter no longer shows others' changes. "
            f"Sign in again to {again}."
        )
        await expect(page.locator(".connection")).to_have_text(
            f"Your session expired. Sign in again to {again}"
        )
        for text in (refusal, page.locator(".connection")):
            await expect(text).not_to_contain_text("editing")
            await expect(text).not_to_contain_text("typed")
        if role == "commenter":
            await expect(page.locator(".comments-closed")).to_have_text(
                "Comments cannot be added or changed: your session is over."
            )
            await expect(page.locator(status)).to_have_text(NO_COMMENTS)
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        for each in opened:
            await each.close()
