"""An editor saves a named version from the letter page ("Save version…": a label, Save), which
`POST /v1/letters/{id}/versions` appends as `version.saved`; auditors then see it under that
label. The label is trimmed and NFC-normalised in the page, then checked as the server checks
it (nothing sent for a blank or too long one; the server's 422 shown for what only it refuses),
a double click saves once, a 503 `log behind` is sent again after its Retry-After, and
read-only roles see no control.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (its stack and
browser fixtures).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from playwright.async_api import Browser, Page, Request, Route, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.support import eventually
from tests.web.browser import STACK_SECRET, auth, new_page, open_letter, saved, shot
from tests.web.test_browser import base_url, browser

__all__ = ["base_url", "browser"]  # the stack and browser fixtures of test_browser.py

TOGGLE = "button.save-version-toggle"
STATUS = ".save-version [role=status]"


async def _letter(base_url: str, title: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, headers=auth("avery")) as http:
        body = {"firm_id": "demo-firm", "title": title, "content": "Dear Claims Adjuster,"}
        created = await http.post("/v1/letters", json=body)
        assert created.status_code == 201, created.text
        return str(created.json()["letter_id"])


async def _versions(base_url: str, letter: str) -> list[dict[str, Any]]:
    """The letter's versions as an auditor reads them over REST."""
    async with httpx.AsyncClient(base_url=base_url, headers=auth("audrey", "auditor")) as http:
        answer = await http.get(f"/v1/letters/{letter}/versions")
        assert answer.status_code == 200, answer.text
        versions: list[dict[str, Any]] = answer.json()
        return versions


def _labels(versions: list[dict[str, Any]]) -> list[str]:
    return [v["change_data"]["label"] for v in versions if v["change_data"]["type"] == "named"]


async def _listed(base_url: str, letter: str, *labels: str) -> list[str]:
    """The named versions' labels, once PostgreSQL has every one of `labels` (the snapshotter
    writes a version a moment after the save's 202)."""

    async def found() -> list[str] | None:
        named = _labels(await _versions(base_url, letter))
        return named if set(labels) <= set(named) else None

    listed: list[str] = await eventually(found, timeout=30, interval=0.2)
    return listed


@asynccontextmanager
async def _editor(base_url: str, browser: Browser, letter: str) -> AsyncIterator[Page]:
    """Avery's page on `letter`; `page.saves` lists the save requests it sends."""
    context, page = await new_page(browser)
    saves: list[Request] = []

    def note(request: Request) -> None:
        if request.method == "POST" and request.url.endswith(f"/v1/letters/{letter}/versions"):
            saves.append(request)

    page.on("request", note)
    page.saves = saves  # type: ignore[attr-defined]
    try:
        await open_letter(page, base_url, "avery", letter)
        yield page
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()


async def test_an_editor_saves_a_named_version_that_auditors_see(
    base_url: str, browser: Browser
) -> None:
    letter = await _letter(base_url, "Named versions")
    async with _editor(base_url, browser, letter) as page:
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
        await expect(page.locator("#save-version-form")).to_be_hidden()
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

    assert sorted(await _listed(base_url, letter, "Draft for client", "Final for client")) == [
        "Draft for client",
        "Final for client",
    ]
    # And in an auditor's page, under their labels.
    context, auditor = await new_page(browser)
    try:
        await auditor.goto(f"{base_url}/?as=audrey#/letters/{letter}")
        await auditor.click("role=tab[name='History']")
        versions = auditor.locator(".versions li")
        await expect(versions).to_have_count(2)
        await expect(versions.nth(0)).to_contain_text("Final for client")
        await expect(versions.nth(1)).to_contain_text("Draft for client")
        await expect(auditor.locator(TOGGLE)).to_have_count(0)  # an auditor may not save one
    finally:
        await context.close()


async def test_a_label_the_server_would_refuse_is_refused_in_the_page(
    base_url: str, browser: Browser
) -> None:
    letter = await _letter(base_url, "Labels")
    async with _editor(base_url, browser, letter) as page:
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
    assert await _listed(base_url, letter, "😀" * 200) == ["😀" * 200]


async def test_read_only_roles_see_no_save_control(base_url: str, browser: Browser) -> None:
    letter = await _letter(base_url, "Read-only")
    for user in ("casey", "vera", "audrey"):  # commenter, viewer, auditor
        context, page = await new_page(browser)
        try:
            await open_letter(page, base_url, user, letter)
            await expect(page.locator(".readonly-note")).to_be_visible()
            await expect(page.locator(TOGGLE)).to_have_count(0)
            await expect(page.locator("#version-label")).to_have_count(0)
        finally:
            await context.close()


async def test_a_log_behind_answer_is_waited_out_and_the_version_saved_once(
    base_url: str, browser: Browser
) -> None:
    letter = await _letter(base_url, "Log behind")
    async with _editor(base_url, browser, letter) as page:
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
        await page.click(TOGGLE)
        await page.get_by_label("Version label").fill("After a wait")
        await page.keyboard.press("Enter")
        await expect(page.locator(STATUS)).to_have_text("Saved version “After a wait”.")
        assert len(page.saves) == 2  # type: ignore[attr-defined]
        assert len(refused) == 1 and passed == refused  # the server had it once
    assert await _listed(base_url, letter, "After a wait") == ["After a wait"]


async def test_a_service_page_lists_the_version_it_saved(base_url: str, browser: Browser) -> None:
    """A service may save versions and read them: its versions list shows the new one once the
    snapshotter has written it, without a Refresh (here the first listing after the save is
    answered as before it, as when the snapshotter has not folded it yet)."""
    letter = await _letter(base_url, "Service")
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
    context, page = await new_page(browser)
    try:
        await page.route(f"**/v1/letters/{letter}/versions", lagging)
        await page.goto(f"{base_url}/?token={token}#/letters/{letter}")
        await saved(page)
        await page.click("role=tab[name='History']")
        await expect(page.locator(".history [role=status]").first).to_have_text(
            "No saved versions yet."
        )
        await page.click(TOGGLE)
        await page.get_by_label("Version label").fill("Sent to client")
        await page.keyboard.press("Enter")
        await expect(page.locator(STATUS)).to_have_text("Saved version “Sent to client”.")
        await expect(page.locator(".versions li")).to_contain_text(["Sent to client"])
        assert len(stale) == 1
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()


async def test_no_version_is_offered_once_the_session_is_over(
    base_url: str, browser: Browser
) -> None:
    """A token no host renews expires: the letter goes read-only (refusal.ts) and the control
    with it, as comments and locks (the server would answer 401)."""
    letter = await _letter(base_url, "Expiring")
    # The stack's 10 s JWT leeway on top: the session ends ~16 s after the mint, where the
    # page is ready in 2-4 s.
    token = mint_token(Settings(jwt_secret=STACK_SECRET), "parker", "demo-firm", "editor", "P", 6)
    context, page = await new_page(browser)
    try:
        await page.goto(f"{base_url}/?token={token}#/letters/{letter}")
        await page.click(TOGGLE)
        await page.get_by_label("Version label").fill("Too late")
        await expect(page.locator(".refusal[data-code='4401']")).to_be_visible(timeout=40_000)
        await expect(page.locator(TOGGLE)).to_be_disabled()
        await expect(page.locator("#save-version-form")).to_be_hidden()
    finally:
        await context.close()
