"""Two people in two browsers on one letter: the page, the gateway and y-websocket end to end.

Runs Debian's Chromium headless against `steno-collab dev` (gateway, projector and snapshotter
on the embedded log, PostgreSQL and Redis; dev login). Screenshots of each state go to
test-artifacts/web/.
"""

import asyncio
import re
import secrets
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Route, WebSocketRoute, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from steno_collab.processes import free_port
from tests.support import eventually
from tests.web.browser import (
    HOST_OPENS_EDITOR,
    STACK_SECRET,
    body_text,
    create_letter,
    new_page,
    pages,
    saved,
    select_paragraph,
    shot,
    sign_in,
    type_at_end,
)
from tests.web.stacks import start_stack

# What the browser does when its tab goes to the background.
_HIDE_TAB = """() => {
  Object.defineProperty(document, 'visibilityState', { get: () => 'hidden' })
  document.dispatchEvent(new Event('visibilitychange'))
}"""


async def test_two_users_see_each_others_typing_and_carets(base_url: str, browser: Browser) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(
            avery, "Smith v. Acme", "Dear Claims Adjuster,\nWe represent Ms. Smith."
        )
        # The dev URL for a second person: signs in as that demo user and opens the letter.
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await expect(parker.locator(".letter-body")).to_contain_text("We represent Ms. Smith.")
        await expect(parker.locator(".who")).to_contain_text("Parker Paralegal")
        assert "as=" not in parker.url

        # Parker types; Avery sees the words, "Parker Paralegal is typing…" and the labelled caret.
        typing = asyncio.create_task(type_at_end(parker, " Her claim is valid."))
        await expect(avery.locator(".typing")).to_have_text("Parker Paralegal is typing…")
        await typing
        await expect(avery.locator(".letter-body")).to_contain_text("Her claim is valid.")
        await expect(avery.locator(".collaboration-carets__label")).to_have_text("Parker Paralegal")
        await expect(avery.locator(".users [data-name='Parker Paralegal']")).to_be_visible()
        await expect(avery.locator(".recent-edit").first).to_contain_text("valid")
        await shot(avery, "1-avery-sees-parker")

        # And the other way round.
        typing = asyncio.create_task(type_at_end(avery, " Please respond in 30 days."))
        await expect(parker.locator(".typing")).to_have_text("Avery Attorney is typing…")
        await typing
        await expect(parker.locator(".letter-body")).to_contain_text("Please respond in 30 days.")
        await expect(parker.locator(".collaboration-carets__label")).to_have_text("Avery Attorney")
        await shot(parker, "2-parker-sees-avery")

        # Every edit was acknowledged by the server (echo), and both ended with the same text.
        await saved(avery)
        await saved(parker)
        final = await body_text(avery)
        assert final == await body_text(parker)
        assert "Her claim is valid." in final and "Please respond in 30 days." in final

        # Parker switches to another tab: Avery sees him as away.
        await parker.evaluate(_HIDE_TAB)
        parker_row = avery.locator(".users [data-name='Parker Paralegal'] .status")
        await expect(parker_row).to_have_text("away")

        await parker.reload()
        await expect(parker.locator(".letter-body")).to_contain_text("Please respond in 30 days.")
        assert await body_text(parker) == final
        await shot(parker, "3-parker-after-reload")
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]


async def test_a_host_token_opens_the_letter_read_only_for_a_viewer(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser, width=420, height=900)
    try:
        await sign_in(page, base_url, "avery")
        letter = await create_letter(page, "For the client", "Status update for Ms. Smith.")
        async with httpx.AsyncClient(base_url=base_url) as client:
            token = (await client.post("/dev/token", json={"user_id": "vera"})).json()["token"]
        viewer_context, viewer = await new_page(browser, width=420, height=900)
        try:
            # As a host app would link to it: the token in the query, the letter in the route.
            await viewer.goto(f"{base_url}/?token={token}#/letters/{letter}")
            await expect(viewer.locator(".letter-body")).to_contain_text(
                "Status update for Ms. Smith."
            )
            # A caret and keyboard selection, the letter unchanged (web/src/editor/read-only.ts).
            await expect(viewer.locator(".letter-body")).to_have_attribute("aria-readonly", "true")
            await expect(viewer.locator(".readonly-note")).to_contain_text("viewer")
            assert "token=" not in viewer.url  # not left in the address bar or history
            await shot(viewer, "4-viewer-narrow-window")
        finally:
            await viewer_context.close()
    finally:
        await context.close()


class HeldSocket:
    """A routed WebSocket whose messages from the server wait until `release()`."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self._page: WebSocketRoute | None = None
        self._waiting: list[str | bytes] | None = []

    def route(self, page: WebSocketRoute) -> None:
        server = page.connect_to_server()
        page.on_message(server.send)
        server.on_message(self._to_page)
        self._page = page
        self.connected.set()

    def _to_page(self, message: str | bytes) -> None:
        if self._waiting is None:
            assert self._page is not None
            self._page.send(message)
        else:
            self._waiting.append(message)

    def release(self) -> None:
        waiting, self._waiting = self._waiting or [], None
        for message in waiting:
            self._to_page(message)


async def test_the_editor_takes_input_only_once_the_letter_has_arrived(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Held back", "First line.\nSecond line.")
        # What the server sends Parker is held back by the test: the page is up, the socket is
        # open, the letter has not arrived yet.
        held = HeldSocket()
        await parker.route_web_socket(re.compile(r"/v1/letter-"), held.route)
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await asyncio.wait_for(held.connected.wait(), timeout=10)
        body = parker.locator(".letter-body")
        await expect(body).to_have_attribute("contenteditable", "false")
        await body.click()
        await parker.keyboard.type("typed too early")
        assert "typed too early" not in await body_text(parker)

        held.release()
        await expect(body).to_have_attribute("contenteditable", "true")
        assert await body_text(parker) == "First line.\nSecond line."
        await type_at_end(parker, " Typed after the sync.")
        await expect(avery.locator(".letter-body")).to_contain_text(
            "Second line. Typed after the sync."
        )
        await saved(parker)
        assert await body_text(avery) == "First line.\nSecond line. Typed after the sync."


async def test_edits_made_offline_are_pending_then_delivered(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Offline draft", "Opening paragraph.")
        await sign_in(parker, base_url, "parker")
        await parker.goto(f"{base_url}/#/letters/{letter}")
        await saved(parker)

        await parker.context.set_offline(True)
        await type_at_end(parker, " Written on the train.")
        badge = parker.locator(".connection")
        await expect(badge).to_have_attribute("data-link", "offline")
        await expect(badge).to_have_attribute("data-pending", "true")
        await expect(badge).to_contain_text("edits pending")
        await shot(parker, "5-parker-offline-edits-pending")
        assert "Written on the train." not in await body_text(avery)

        await parker.context.set_offline(False)
        await saved(parker)
        await expect(avery.locator(".letter-body")).to_contain_text("Written on the train.")
        assert await body_text(avery) == await body_text(parker)


async def test_the_host_app_can_hand_over_a_token_by_post_message(
    base_url: str, browser: Browser
) -> None:
    context, author = await new_page(browser)
    try:
        await sign_in(author, base_url, "avery")
        letter = await create_letter(author, "Embedded", "Shown inside the case file.")
        async with httpx.AsyncClient(base_url=base_url) as client:
            token = (await client.post("/dev/token", json={"user_id": "audrey"})).json()["token"]
        host = await context.new_page()
        await host.goto(base_url + "/dev/users")  # any page of the same origin can act as host
        async with context.expect_page() as opened:
            url = f"{base_url}/#/letters/{letter}"
            await host.evaluate(HOST_OPENS_EDITOR, {"url": url, "token": token})
        editor = await opened.value
        await expect(editor.locator(".who")).to_contain_text("Audrey Auditor")
        await expect(editor.locator(".letter-body")).to_contain_text("Shown inside the case file.")
        await expect(editor.locator(".letter-body")).to_have_attribute("aria-readonly", "true")
    finally:
        await context.close()


# What an embedding app does to keep the session: answer the page's request for a fresh token.
_HOST_RENEWS = """({url, first, later}) => new Promise((resolve) => {
  window.addEventListener('message', (event) => {
    if (event.data?.type === 'steno:ready') {
      event.source.postMessage({type: 'steno:token', token: first}, '*')
      resolve(true)
    } else if (event.data?.type === 'steno:token-expiring') {
      window.askedAt = event.data.expiresAt
      event.source.postMessage({type: 'steno:token', token: later}, '*')
    }
  })
  window.open(url)
})"""


async def test_the_page_asks_the_host_for_a_token_and_renews_its_connection_in_place(
    base_url: str, browser: Browser
) -> None:
    """Before its token expires the page asks the host (`steno:token-expiring`); the token the
    host hands back goes to the open connection (`auth.renew` on the app channel), which is
    then not closed at the first token's expiry."""
    context, author = await new_page(browser)
    try:
        await sign_in(author, base_url, "avery")
        letter = await create_letter(author, "Renewed", "Kept open.")
        settings = Settings(jwt_secret=STACK_SECRET)
        first, later = (
            mint_token(settings, "parker", "demo-firm", "editor", "Parker Paralegal", ttl)
            for ttl in (8, 1200)  # asked at half the first one's life (the lead is 60 s)
        )
        before = await _renewals(base_url)
        host = await context.new_page()
        await host.goto(base_url + "/dev/users")
        async with context.expect_page() as opened:
            url = f"{base_url}/#/letters/{letter}"
            await host.evaluate(_HOST_RENEWS, {"url": url, "first": first, "later": later})
        editor = await opened.value
        await saved(editor)
        await eventually(lambda: _renewed(base_url, before), timeout=20)
        assert await host.evaluate("window.askedAt") > 0
        await expect(editor.locator(".connection")).to_have_attribute("data-link", "connected")
        await type_at_end(editor, " Still connected.")
        await saved(editor)
    finally:
        await context.close()


async def test_a_token_with_another_role_opens_the_letter_again_with_that_role(
    base_url: str, browser: Browser
) -> None:
    """The gateway renews only the same user, firm and role in place; a host token with a
    changed role (here editor to viewer) reopens the page as that session."""
    context, author = await new_page(browser)
    try:
        await sign_in(author, base_url, "avery")
        letter = await create_letter(author, "Demoted", "Kept open.")
        settings = Settings(jwt_secret=STACK_SECRET)
        editor_token = mint_token(settings, "parker", "demo-firm", "editor", "Parker P", 1200)
        viewer_token = mint_token(settings, "parker", "demo-firm", "viewer", "Parker P", 1200)
        host = await context.new_page()
        await host.goto(base_url + "/dev/users")
        async with context.expect_page() as opened:
            url = f"{base_url}/#/letters/{letter}"
            await host.evaluate(_HOST_KEEPS_EDITOR, {"url": url, "token": editor_token})
        page = await opened.value
        body = page.locator(".letter-body")
        await expect(body).to_have_attribute("contenteditable", "true")
        await host.evaluate(
            "(token) => window.stenoEditor.postMessage({type: 'steno:token', token}, '*')",
            viewer_token,
        )
        await expect(body).to_have_attribute("aria-readonly", "true")
        await expect(page.locator(".connection")).to_have_attribute("data-link", "connected")
    finally:
        await context.close()


# As HOST_OPENS_EDITOR, keeping the editor's window to hand it later tokens.
_HOST_KEEPS_EDITOR = HOST_OPENS_EDITOR.replace(
    "event.source.postMessage(", "window.stenoEditor = event.source\n    event.source.postMessage("
)


async def _renewals(base_url: str) -> float:
    async with httpx.AsyncClient(base_url=base_url) as client:
        text = (await client.get("/metrics")).text
    found = re.search(r"^gateway_token_renewals_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def _renewed(base_url: str, before: float) -> bool:
    return await _renewals(base_url) > before


async def test_letters_list_remembers_letters_and_refuses_unknown_ones(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "parker")
        await create_letter(page, "Johnson settlement", "Draft.")
        await page.click("text=← Letters")
        await expect(page.locator(".letter-list")).to_contain_text("Johnson settlement")
        await page.fill("#open-id", "no-such-letter")
        await page.click("button:has-text('Open')")
        await expect(page.locator("main")).to_contain_text("Letter not available")
        await shot(page, "6-unknown-letter")
    finally:
        await context.close()


async def test_edits_survive_a_restart_of_dev_mode_and_are_resent(
    data_dir: Path, browser: Browser
) -> None:
    port, secret = free_port(), secrets.token_hex(32)
    base_url = f"http://127.0.0.1:{port}"
    gateway = await start_stack(data_dir, port, secret)
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        await create_letter(page, "Restart", "Before the restart.")
        await gateway.stop(timeout=30)
        badge = page.locator(".connection")
        await expect(badge).to_have_attribute("data-link", "reconnecting")
        await type_at_end(page, " Typed while the server was down.")
        await expect(badge).to_have_attribute("data-pending", "true")
        await shot(page, "7-reconnecting-edits-pending")

        gateway = await start_stack(data_dir, port, secret)
        await saved(page)  # resent after the reconnect, and confirmed by the server's echo
        await page.reload()
        await expect(page.locator(".letter-body")).to_contain_text(
            "Before the restart. Typed while the server was down."
        )
    finally:
        await context.close()
        await gateway.stop(timeout=30)


async def test_outside_dev_mode_the_page_waits_for_the_host_token(
    data_dir: Path, browser: Browser
) -> None:
    port, secret = free_port(), secrets.token_hex(32)
    base_url = f"http://127.0.0.1:{port}"
    gateway = await start_stack(data_dir, port, secret, dev=False)
    context, page = await new_page(browser)
    try:
        await page.goto(base_url + "/")
        await expect(page.locator("h1")).to_have_text("Waiting for sign-in")
        assert await page.locator("button[data-user]").count() == 0
        settings = Settings(jwt_secret=secret)
        token = mint_token(settings, "avery", "firm-a", "editor", "Avery Attorney")
        await page.goto(f"{base_url}/?token={token}")
        await expect(page.locator(".who")).to_contain_text("Avery Attorney")
        await create_letter(page, "Production letter", "Signed in by the host app.")
    finally:
        await context.close()
        await gateway.stop(timeout=30)


async def test_after_a_rate_limit_close_the_page_reconnects_and_saves_what_was_typed(
    data_dir: Path, browser: Browser
) -> None:
    """y-websocket 3.1 takes every 44xx close as final; the page comes back after 4429 (over
    the rate for longer than the gateway paces), and what was typed meanwhile reaches the
    server. Typing goes on through the reconnects: a keystroke sent before the page's sync
    step 2 builds on edits the gateway lacks, and is dropped for that step 2 to carry (it was
    a 4400, final, 3 runs in 8)."""
    port, secret = free_port(), secrets.token_hex(32)
    base_url = f"http://127.0.0.1:{port}"
    limit = {"rate_messages_per_s": "5", "rate_burst": "10", "rate_wait_max_s": "0.5"}
    gateway = await start_stack(data_dir, port, secret, dev=False, **limit)
    context, page = await new_page(browser)
    try:
        token = mint_token(Settings(jwt_secret=secret), "avery", "firm-a", "editor", "Avery")
        await page.goto(f"{base_url}/?token={token}")
        await create_letter(page, "Rate limited", "Dear Sir,")
        typed = " Typed faster than five messages a second allows."
        await type_at_end(page, typed)  # a keystroke every 40 ms: over the limit
        await eventually(lambda: _refused(base_url, "rate_limited"))
        await saved(page)  # reconnected, and every edit confirmed by the server
        await page.reload()
        await expect(page.locator(".letter-body")).to_contain_text("Dear Sir," + typed)
    finally:
        await context.close()
        await gateway.stop(timeout=30)


async def _refused(base_url: str, reason: str) -> bool:
    async with httpx.AsyncClient(base_url=base_url) as client:
        text = (await client.get("/metrics")).text
    return f'gateway_refusals_total{{reason="{reason}"}}' in text


async def test_a_request_over_the_users_budget_is_sent_again_after_retry_after(
    base_url: str, browser: Browser
) -> None:
    """The gateway answers 429 with Retry-After before the route does anything (test_limits):
    the page waits and asks again, and only a long wait surfaces as an error."""
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        letter = await create_letter(page, "Budget", "Dear Sir,")
        asked: list[str] = []

        async def over_budget_once(route: Route, wait_s: str) -> None:
            asked.append(route.request.method)
            if len(asked) == 1:  # as the gateway words it
                headers = {"Retry-After": wait_s, "Content-Type": "application/json"}
                body = '{"detail":"too many requests"}'
                await route.fulfill(status=429, headers=headers, body=body)
            else:
                await route.continue_()

        comments = re.compile(r"/v1/letters/[^/]+/comments$")
        await page.route(comments, lambda route: over_budget_once(route, "1"))
        await page.goto(f"{base_url}/?as=avery#/letters/{letter}")
        await expect(page.locator(".comments")).to_contain_text("No comments yet")
        assert asked == ["GET", "GET"]

        await page.unroute(comments)
        asked.clear()
        await page.route(comments, lambda route: over_budget_once(route, "3600"))
        await page.reload()
        await expect(page.locator(".comments")).to_contain_text(
            "Could not load comments: too many requests"
        )
        assert asked == ["GET"]
    finally:
        await context.close()


async def test_comments_reach_the_other_user_and_history_shows_both_authors(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 3) as (avery, parker, audrey):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Jones v. Delta", "Dear Sir,\nOur client was injured.")
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await type_at_end(parker, " She needs surgery.")
        await expect(avery.locator(".letter-body")).to_contain_text("She needs surgery.")

        # Avery comments on the second paragraph and mentions Parker; Parker sees it live.
        await select_paragraph(avery, 1)
        await avery.fill(".new-thread textarea", "Attach the records, please")
        await expect(avery.locator(".users [data-name='Parker Paralegal']")).to_be_visible()
        await avery.focus(".new-thread select.mention")  # the list is filled as it gets focus
        await avery.select_option(".new-thread select.mention", "Parker Paralegal")
        await avery.click("button:has-text('Comment on selection')")
        thread = parker.locator(".thread")
        await expect(thread).to_contain_text("Attach the records, please @Parker Paralegal")
        await expect(thread.locator(".quote")).to_contain_text("Our client was injured.")
        await expect(parker.locator(".comment-anchor").first).to_be_visible()
        await parker.fill(".reply textarea", "Done, attached.")
        await parker.click(".reply button")
        await expect(avery.locator(".thread")).to_contain_text("Done, attached.")
        await shot(avery, "8-comment-thread")

        # The auditor's history view: both authors in the timeline.
        await audrey.goto(f"{base_url}/?as=audrey#/letters/{letter}")
        await audrey.click("role=tab[name='History']")
        timeline = audrey.locator(".timeline")

        status = audrey.locator(".history p[role='status']").nth(1)  # the timeline's

        async def both_authors() -> bool:
            # A refresh empties the list, then fills it: read it once the page has come (read
            # at once, it was empty whenever the answer took longer than the click: under load).
            await audrey.click(".history button:has-text('Refresh')")
            await expect(status).not_to_have_text("Loading…")
            text = await timeline.inner_text()
            return "Avery Attorney commented" in text and "Parker Paralegal replied" in text

        await eventually(both_authors, timeout=20, interval=0.5)
        await shot(audrey, "9-history-both-authors")


async def test_a_section_lock_is_shown_live_refused_to_others_and_released(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Lee settlement", "Dear Ms. Lee,\nThe terms follow.")
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await expect(parker.locator(".letter-body")).to_contain_text("The terms follow.")

        # Avery locks the section her caret is in, with the keyboard shortcut.
        await avery.click(".letter-body p >> nth=1")
        await expect(avery.locator(".caret-section")).to_contain_text("“paragraph 2”")
        await avery.keyboard.press("Alt+Shift+L")
        await expect(avery.locator(".lock-status")).to_contain_text("You locked “paragraph 2”")
        await expect(avery.locator(".lock-toggle")).to_have_text("Unlock this section")

        # Parker sees it live: a badge on the section in the letter and a row in the panel.
        badge = parker.locator(".letter-body .lock-badge[data-section='paragraph 2']")
        await expect(badge).to_have_text("Locked · Avery Attorney")
        await expect(parker.locator(".lock-row")).to_contain_text("Avery Attorney")

        # His attempt to lock the same section is refused with the holder's name; typing there
        # is still allowed (locks are advisory), with a warning.
        await parker.click(".letter-body p >> nth=1")
        await parker.keyboard.press("End")
        await parker.click("button.lock-toggle")
        await expect(parker.locator(".lock-status")).to_contain_text("locked by Avery Attorney")
        await parker.locator(".letter-body").focus()
        await parker.keyboard.type(" Noted.")
        await expect(parker.locator(".lock-warning")).to_contain_text("Avery Attorney has locked")
        await expect(avery.locator(".letter-body")).to_contain_text("The terms follow. Noted.")
        await shot(parker, "10-section-lock")

        # Avery releases it: gone for Parker, who can now lock it himself.
        await avery.click("button.lock-toggle")
        await expect(badge).to_have_count(0)
        await expect(parker.locator(".lock-list")).to_have_text("No section is locked.")
        await parker.click("button.lock-toggle")
        await expect(parker.locator(".lock-status")).to_contain_text("You locked “paragraph 2”")
        await expect(avery.locator(".lock-badge")).to_have_text("Locked · Parker Paralegal")
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]


async def test_comment_offsets_after_an_emoji_are_code_points_as_the_server_counts(
    base_url: str, browser: Browser
) -> None:
    """ProseMirror counts UTF-16 units, the server code points: an emoji is two of the one and
    one of the other. A comment on text after one anchors that text, and the server's anchors
    after one highlight and select their own text (anchors on text unedited since)."""
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        letter = await create_letter(page, "Emoji", "Dear Sir,\nRe: 😀 claim 5000 EUR")
        await page.click(".letter-body p >> nth=1")
        await page.keyboard.press("End")
        for key in ["ArrowLeft"] * 4 + ["Shift+ArrowLeft"] * 4:  # back past " EUR", then "5000"
            await page.keyboard.press(key)
        await expect(page.locator(".comment-target")).to_have_text("On: “5000”")
        await page.fill(".new-thread textarea", "Check the amount")
        await page.click("button:has-text('Comment on selection')")
        await expect(page.locator(".thread .quote")).to_have_text("“5000”")

        avery = mint_token(Settings(jwt_secret=STACK_SECRET), "avery", "demo-firm", "editor")
        path = f"/v1/letters/{letter}/comments"
        async with httpx.AsyncClient(base_url=base_url, headers=_bearer(avery)) as http:
            threads = (await http.get(path)).json()["threads"]
            assert [_anchor(t) for t in threads] == [(22, 26, "5000")]
            for start, end in [(14, 15), (27, 30)]:  # the emoji itself, and "EUR"
                body = {"body": "Here", "anchor": {"from": start, "to": end}, "mentions": []}
                assert (await http.post(path, json=body)).status_code == 201
            threads = (await http.get(path)).json()["threads"]
        assert sorted(_anchor(t) for t in threads) == [
            (14, 15, "😀"),
            (22, 26, "5000"),
            (27, 30, "EUR"),
        ]

        await page.reload()
        marks = page.locator(".letter-body .comment-anchor")
        await expect(marks).to_have_text(["😀", "5000", "EUR"])
        await page.click(".thread .quote:has-text('😀')")  # selects its anchor in the letter
        await expect(page.locator(".comment-target")).to_have_text("On: “😀”")
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _anchor(thread: dict[str, Any]) -> tuple[int, int, str]:
    anchor = thread["anchor"]
    return anchor["from"], anchor["to"], anchor["quote"]
