"""An editor saves a named version from the letter page ("Save version…": a label, Save), which
`POST /v1/letters/{id}/versions` appends as `version.saved`; auditors then see it under that
label. The label is trimmed and NFC-normalised in the page, then checked as the server checks
it (nothing sent for a blank or too long one; the server's 422 shown for what only it refuses),
a double click saves once, a 503 `log behind` is sent again after its Retry-After, a save
waits until the page's own edits are confirmed, a second Enter after a save does not open the
form again, and read-only roles see no control.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (its stack and
browser fixtures).
"""

import asyncio

from playwright.async_api import Browser, Route, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.web.browser import (
    SOCKET_DOWN,
    SOCKET_UP,
    STACK_SECRET,
    HeldEchoes,
    open_letter,
    pages,
    post_letter,
    saved,
    shot,
    type_at_end,
)
from tests.web.versions import (
    FORM,
    STATUS,
    TOGGLE,
    editor_page,
    listed,
    named_content,
    save_as,
)


async def test_an_editor_saves_a_named_version_that_auditors_see(
    base_url: str, browser: Browser
) -> None:
    letter = await post_letter(base_url, STACK_SECRET, "Named versions")
    async with editor_page(base_url, browser, letter) as page:
        toggle = page.locator(TOGGLE)
        await expect(toggle).to_have_text("Save version…")
        await expect(toggle).to_have_attribute("aria-expanded", "false")
        await toggle.click()
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        label = page.get_by_label("Version label")  # a <label> names it
        await expect(label).to_be_focused()
        # Keyboard: Enter in the label submits; the focus comes back to the button.
        await page.keyboard.type("Draft for client")
        await shot(page, "save-version-form")
        await page.keyboard.press("Enter")
        await expect(page.locator(STATUS)).to_have_text("Saved version “Draft for client”.")
        await expect(page.locator(FORM)).to_be_hidden()
        await expect(toggle).to_be_focused()

        # A double click on Save sends one request: the button is disabled while it is in flight.
        await toggle.click()
        await label.fill("Final for client")
        await page.locator("#save-version-form button[type=submit]").dblclick()
        await expect(page.locator(STATUS)).to_have_text("Saved version “Final for client”.")
        assert [r.post_data_json for r in page.saves] == [  # type: ignore[attr-defined]
            {"label": "Draft for client"},
            {"label": "Final for client"},
        ]
        await saved(page)

    assert sorted(await listed(base_url, letter, "Draft for client", "Final for client")) == [
        "Draft for client",
        "Final for client",
    ]
    # And in an auditor's page, under their labels.
    async with pages(browser, 1) as (auditor,):
        await auditor.goto(f"{base_url}/?as=audrey#/letters/{letter}")
        await auditor.click("role=tab[name='History']")
        rows = auditor.locator(".versions li")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_contain_text("Final for client")
        await expect(rows.nth(1)).to_contain_text("Draft for client")
        await expect(auditor.locator(TOGGLE)).to_have_count(0)  # an auditor may not save one


async def test_a_label_the_server_would_refuse_is_refused_in_the_page(
    base_url: str, browser: Browser
) -> None:
    letter = await post_letter(base_url, STACK_SECRET, "Labels")
    async with editor_page(base_url, browser, letter) as page:
        await page.click(TOGGLE)
        label = page.get_by_label("Version label")
        status = page.locator(STATUS)
        for value, said in [
            ("   ", "Give the version a label."),
            ("x" * 201, "A label is at most 200 characters; this one has 201."),
            ("Draft\tfor client", "A label is one line of text, without control characters."),
        ]:
            await label.fill(value)
            await page.keyboard.press("Enter")
            await expect(status).to_have_text(said)
            await expect(label).to_have_attribute("aria-invalid", "true")
            await expect(label).to_be_focused()
        assert page.saves == []  # type: ignore[attr-defined]

        # What only the server tells (an invisible character): its 422, said in the page.
        await label.fill("Draft\u200bfor client")
        await page.keyboard.press("Enter")
        await expect(status).to_have_text(
            "The server refused the label: one line of text, not blank, "
            "without control or invisible characters"
        )
        await expect(label).to_have_attribute("aria-invalid", "true")
        # 200 characters are taken, counted as the server counts them (code points, not the
        # UTF-16 units of these emoji), with the blank ends the server refuses trimmed.
        await label.fill(" " + "😀" * 200 + " ")
        await page.keyboard.press("Enter")
        await expect(status).to_have_text(f"Saved version “{'😀' * 200}”.")
        assert len(page.saves) == 2  # type: ignore[attr-defined]
    assert await listed(base_url, letter, "😀" * 200) == ["😀" * 200]


async def test_read_only_roles_see_no_save_control(base_url: str, browser: Browser) -> None:
    letter = await post_letter(base_url, STACK_SECRET, "Read-only")
    for user in ("casey", "vera", "audrey"):  # commenter, viewer, auditor
        async with pages(browser, 1) as (page,):
            await open_letter(page, base_url, user, letter)
            await expect(page.locator(".readonly-note")).to_be_visible()
            await expect(page.locator(TOGGLE)).to_have_count(0)
            await expect(page.locator("#version-label")).to_have_count(0)


async def test_a_log_behind_answer_is_waited_out_and_the_version_saved_once(
    base_url: str, browser: Browser
) -> None:
    letter = await post_letter(base_url, STACK_SECRET, "Log behind")
    async with editor_page(base_url, browser, letter) as page:
        refused: list[str] = []
        passed: list[str] = []

        async def behind_once(route: Route) -> None:
            # The gateway's answer while the log has not taken its edits yet: nothing appended.
            if route.request.method != "POST":
                await route.fallback()
            elif not refused:
                refused.append(route.request.post_data or "")
                await route.fulfill(
                    status=503, headers={"Retry-After": "1"}, json={"detail": "log behind"}
                )
            else:
                passed.append(route.request.post_data or "")
                await route.fallback()

        await page.route(f"**/v1/letters/{letter}/versions", behind_once)
        await save_as(page, "After a wait")
        await expect(page.locator(STATUS)).to_have_text("Saved version “After a wait”.")
        assert len(page.saves) == 2  # type: ignore[attr-defined]
        assert len(refused) == 1 and passed == refused  # the server had it once
    assert await listed(base_url, letter, "After a wait") == ["After a wait"]


async def test_a_service_page_lists_the_version_it_saved(base_url: str, browser: Browser) -> None:
    """A service may save versions and read them: its versions list shows the new one once the
    snapshotter has written it, without a Refresh (here the first listing after the save is
    answered as before it, as when the snapshotter has not folded it yet)."""
    letter = await post_letter(base_url, STACK_SECRET, "Service")
    posted: list[str] = []
    stale: list[str] = []

    async def lagging(route: Route) -> None:
        if route.request.method == "POST":
            posted.append(route.request.post_data or "")
        elif posted and not stale:
            stale.append(route.request.url)
            await route.fulfill(json=[])
            return
        await route.fallback()

    token = mint_token(
        Settings(jwt_secret=STACK_SECRET), "backend", "demo-firm", "service", "Backend"
    )
    async with pages(browser, 1) as (page,):
        await page.route(f"**/v1/letters/{letter}/versions", lagging)
        await page.goto(f"{base_url}/?token={token}#/letters/{letter}")
        await saved(page)
        await page.click("role=tab[name='History']")
        await expect(page.locator(".history [role=status]").first).to_have_text(
            "No saved versions yet."
        )
        await save_as(page, "Sent to client")
        await expect(page.locator(STATUS)).to_have_text("Saved version “Sent to client”.")
        await expect(page.locator(".versions li")).to_contain_text(["Sent to client"])
        assert len(stale) == 1
        assert page.errors == []  # type: ignore[attr-defined]


async def test_no_version_is_offered_once_the_session_is_over(
    base_url: str, browser: Browser
) -> None:
    """A token no host renews expires: the letter goes read-only (refusal.ts) and the control
    with it, as comments and locks (the server would answer 401)."""
    letter = await post_letter(base_url, STACK_SECRET, "Expiring")
    # The stack's 10 s JWT leeway on top: the session ends ~16 s after the mint, where the
    # page is ready in 2-4 s.
    token = mint_token(Settings(jwt_secret=STACK_SECRET), "parker", "demo-firm", "editor", "P", 6)
    async with pages(browser, 1) as (page,):
        await page.goto(f"{base_url}/?token={token}#/letters/{letter}")
        await page.click(TOGGLE)
        await page.get_by_label("Version label").fill("Too late")
        await expect(page.locator(".refusal[data-code='4401']")).to_be_visible(timeout=40_000)
        await expect(page.locator(TOGGLE)).to_be_disabled()
        await expect(page.locator(FORM)).to_be_hidden()


async def test_a_version_saved_while_the_last_edit_is_on_its_way_waits_for_it(
    base_url: str, browser: Browser
) -> None:
    """Saved while the socket was reconnecting with an edit pending, the version was the letter
    as the server had it: without that edit. The page now waits until its edits are confirmed
    ("all changes saved"), says so, and then sends the save once."""
    letter = await post_letter(base_url, STACK_SECRET, "On its way")
    async with editor_page(base_url, browser, letter) as page:
        badge = page.locator(".connection")
        await page.evaluate(SOCKET_DOWN)
        await expect(badge).to_have_attribute("data-link", "reconnecting")
        await type_at_end(page, " Typed while reconnecting.")
        await expect(badge).to_have_attribute("data-pending", "true")
        await save_as(page, "With the last edit")
        status = page.locator(STATUS)
        await expect(status).to_have_text("Saving after your last changes reach the server…")
        await expect(page.get_by_label("Version label")).to_be_disabled()
        assert page.saves == []  # type: ignore[attr-defined]

        await page.evaluate(SOCKET_UP)
        await expect(status).to_have_text("Saved version “With the last edit”.")
        assert len(page.saves) == 1  # type: ignore[attr-defined]
    content = await named_content(base_url, letter, "With the last edit")
    assert content.endswith(" Typed while reconnecting."), content


async def test_a_save_waiting_for_an_echo_is_not_sent_once_the_session_ends(
    base_url: str, browser: Browser
) -> None:
    """An edit the server has not acknowledged yet (its echo not back) is waited for too; if the
    session ends meanwhile (access revoked), the save is given up, said so, and nothing sent."""
    letter = await post_letter(base_url, STACK_SECRET, "Echo held")
    socket = HeldEchoes()
    async with editor_page(base_url, browser, letter, socket) as page:
        socket.held = True
        await type_at_end(page, " Not acknowledged.")
        await expect(page.locator(".connection")).to_have_attribute("data-pending", "true")
        await save_as(page, "Never sent")
        status = page.locator(STATUS)
        await expect(status).to_have_text("Saving after your last changes reach the server…")

        assert socket.page is not None
        await socket.page.close(code=4403, reason="access revoked")
        await expect(status).to_have_text(
            "The version was not saved: your last changes could not reach the server."
        )
        await expect(page.locator(TOGGLE)).to_be_disabled()
        assert page.saves == []  # type: ignore[attr-defined]


async def test_enter_pressed_twice_saves_once_and_leaves_the_form_closed(
    base_url: str, browser: Browser
) -> None:
    """The second Enter of a double press landed on "Save version…" (the focus goes back to it
    after the save) and opened the form again, empty, as if the save had not happened. An Enter
    right after a save now does nothing; a click, or an Enter a moment later, opens it."""
    letter = await post_letter(base_url, STACK_SECRET, "Enter twice")
    async with editor_page(base_url, browser, letter) as page:
        await save_as(page, "Pressed twice")
        status, toggle, form = page.locator(STATUS), page.locator(TOGGLE), page.locator(FORM)
        await expect(status).to_have_text("Saved version “Pressed twice”.")
        await expect(toggle).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(form).to_be_hidden()
        await expect(toggle).to_have_attribute("aria-expanded", "false")
        await expect(status).to_have_text("Saved version “Pressed twice”.")
        assert len(page.saves) == 1  # type: ignore[attr-defined]

        await toggle.click()  # a click is meant
        await expect(form).to_be_visible()
        await page.keyboard.press("Escape")
        await expect(form).to_be_hidden()
        # Past the grace (save-version.ts REOPEN_GRACE_MS, 1 s): Enter opens it again.
        await asyncio.sleep(1.0)
        await toggle.focus()
        await page.keyboard.press("Enter")
        await expect(form).to_be_visible()
        assert len(page.saves) == 1  # type: ignore[attr-defined]
