"""The history panel over the paginated `GET /v1/letters/{id}/history?order=desc`, newest first:
the latest page on opening, each earlier one (its cursor from `X-Next-Cursor`) as the reader
reaches the end of the list, until the whole history is shown and said to be whole; never a
silent first page.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py. The server's
page is 1000 entries; the test asks for pages of PAGE by setting `limit` on the page's
requests, so a letter of a few dozen entries spans several pages of the real endpoint.
"""

import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from playwright.async_api import Browser, Route, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.support import eventually
from tests.web.browser import HISTORY, STACK_SECRET, new_page, shot

PAGE = 12
NOTES = 30


def _token(user: str, role: str) -> str:
    return mint_token(Settings(jwt_secret=STACK_SECRET), user, "demo-firm", role, user.title())


async def _letter_with_notes(base_url: str) -> str:
    """A letter with NOTES comments."""
    editor = {"Authorization": f"Bearer {_token('avery', 'editor')}"}
    async with httpx.AsyncClient(base_url=base_url, headers=editor) as http:
        content = {"firm_id": "demo-firm", "title": "Busy", "content": "Dear Sir, see notes."}
        created = await http.post("/v1/letters", json=content)
        assert created.status_code == 201, created.text
        letter: str = created.json()["letter_id"]
        for n in range(1, NOTES + 1):
            body = {"body": f"Note {n:02}", "anchor": {"from": 0, "to": 4}, "mentions": []}
            assert (await http.post(f"/v1/letters/{letter}/comments", json=body)).status_code == 201
    return letter


async def _history_once_recorded(base_url: str, letter: str) -> list[dict[str, Any]]:
    """The letter's whole history once it holds the notes and the auditor's own session."""
    auditor = {"Authorization": f"Bearer {_token('audrey', 'auditor')}"}
    async with httpx.AsyncClient(base_url=base_url, headers=auditor) as http:

        async def recorded() -> list[dict[str, Any]]:
            entries: list[dict[str, Any]] = (await http.get(f"/v1/letters/{letter}/history")).json()
            kinds = [(e.get("type"), e.get("user")) for e in entries]
            notes = sum(kind == "comment.created" for kind, _ in kinds)
            here = ("session-start", "audrey") in kinds
            return entries if notes == NOTES and here else []

        return await eventually(recorded, timeout=30, interval=0.3)


async def test_the_history_panel_loads_every_page_as_the_reader_reaches_the_end(
    base_url: str, browser: Browser
) -> None:
    letter = await _letter_with_notes(base_url)
    asked: list[dict[str, list[str]]] = []  # each history request's query, as the page sent it
    cursors: list[str | None] = []  # X-Next-Cursor of each answer the page got

    async def small_pages(route: Route) -> None:
        url = urlsplit(route.request.url)
        query = parse_qs(url.query)
        asked.append(query)
        if len(asked) == 1:  # over the request budget once: sent again after Retry-After
            headers = {"Retry-After": "1", "Content-Type": "application/json"}
            await route.fulfill(status=429, headers=headers, body='{"detail":"too many"}')
            return
        query["limit"] = [str(PAGE)]
        response = await route.fetch(url=url._replace(query=urlencode(query, doseq=True)).geturl())
        cursors.append(response.headers.get("x-next-cursor"))
        await route.fulfill(response=response)

    context, page = await new_page(browser)
    try:
        await page.route(HISTORY, small_pages)
        await page.goto(f"{base_url}/?as=audrey#/letters/{letter}")
        total = len(await _history_once_recorded(base_url, letter))  # nothing more comes
        assert total > 2 * PAGE  # three pages at least
        await page.click("role=tab[name='History']")
        timeline = page.locator(".timeline")
        rows = timeline.locator("li:not(.more)")
        status = page.locator(".history p[role=status]").nth(1)

        # The latest page, and a word that earlier ones follow.
        await expect(status).to_have_text(
            f"The latest {PAGE} entries, newest first; earlier ones follow."
        )
        await expect(rows).to_have_count(PAGE)
        # The oldest entry, the letter's creation, is not on the latest page.
        await expect(rows.filter(has_text="created the letter")).to_have_count(0)
        await expect(timeline.locator(".more button")).to_have_text("Load more")
        await shot(page, "10-history-first-page")
        # Scrolling to the end of the list brings the next page, and so on to the last.
        for shown in (2 * PAGE, total):
            await timeline.evaluate("(list) => { list.scrollTop = list.scrollHeight }")
            await expect(rows).to_have_count(shown)
        await expect(status).to_have_text(f"{total} entries, newest first.")
        await expect(timeline.locator(".more")).to_have_count(0)

        texts = await rows.all_inner_texts()
        notes = [int(m.group(1)) for t in texts if (m := re.search(r"“Note (\d+)”", t))]
        assert notes == list(range(NOTES, 0, -1))  # each once, newest first
        assert "created the letter" in texts[-1]  # the oldest entry comes last
        # Then the content it was created with: its own row, not someone's typing.
        assert "created the content: +20 \u22120 characters" in texts[-2], texts[-2]
        # One request per page: the first sent twice (the 429), each later one after the
        # cursor its predecessor handed out.
        pages = -(-total // PAGE)
        assert len(asked) == 1 + pages
        assert all(q["order"] == ["desc"] for q in asked)
        assert "after" not in asked[0] and "after" not in asked[1]
        assert [q["after"] for q in asked[2:]] == [[c] for c in cursors[:-1]]
        assert cursors[-1] is None
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()
