"""The history panel names a user who acted over REST only (never joined over the WebSocket) as
it names everyone else: by the name their comment rows carry (`data.author.name`), also on rows
of theirs an earlier page showed before the page with that name came (newest first: a resolve
comes before the comment it resolves).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py; pages of PAGE
entries (the page's requests get `limit`), so the resolve and the comment fall on two pages.
"""

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx
from playwright.async_api import Browser, Route, expect

from tests.support import eventually
from tests.web.browser import HISTORY, auth, create_letter, new_page, saved, sign_in, type_at_end

PAGE = 2


async def _letter_casey_commented_on(base_url: str) -> str:
    """Avery creates a letter; Casey, over REST only, comments on it and resolves the thread."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        content = {"firm_id": "demo-firm", "title": "Names", "content": "Dear Sir, see notes."}
        avery = auth("avery", "editor", "Avery Attorney")
        created = await http.post("/v1/letters", json=content, headers=avery)
        assert created.status_code == 201, created.text
        letter: str = created.json()["letter_id"]
        casey = auth("casey", "commenter", "Casey Commenter")
        body = {"body": "Check this", "anchor": {"from": 0, "to": 4}, "mentions": []}
        made = await http.post(f"/v1/letters/{letter}/comments", json=body, headers=casey)
        assert made.status_code == 201, made.text
        thread = made.json()["thread_id"]
        path = f"/v1/letters/{letter}/comments/{thread}/resolve"
        resolved = await http.post(path, headers=casey)
        assert resolved.status_code == 200, resolved.text
    return letter


async def _recorded(base_url: str, letter: str) -> list[dict[str, Any]]:
    """The letter's history once it holds the resolve and the auditor's own session."""
    async with httpx.AsyncClient(base_url=base_url, headers=auth("audrey", "auditor", "A")) as http:

        async def whole() -> list[dict[str, Any]]:
            entries: list[dict[str, Any]] = (await http.get(f"/v1/letters/{letter}/history")).json()
            kinds = {(e.get("type"), e.get("user")) for e in entries}
            done = {("comment.resolved", "casey"), ("session-start", "audrey")} <= kinds
            return entries if done else []

        return await eventually(whole, timeout=30, interval=0.3)


async def test_a_rest_only_commenter_is_named_on_every_row(base_url: str, browser: Browser) -> None:
    letter = await _letter_casey_commented_on(base_url)

    async def small_pages(route: Route) -> None:
        url = urlsplit(route.request.url)
        query = parse_qs(url.query)
        query["limit"] = [str(PAGE)]
        await route.continue_(url=url._replace(query=urlencode(query, doseq=True)).geturl())

    context, page = await new_page(browser)
    try:
        await page.route(HISTORY, small_pages)
        await page.goto(f"{base_url}/?as=audrey#/letters/{letter}")
        entries = await _recorded(base_url, letter)
        newest = entries[::-1]  # the panel's order (order=desc walks the same key back)
        # The resolve is on the first page, the comment that names Casey on a later one.
        kinds = [e["type"] for e in newest]
        assert kinds.index("comment.resolved") < PAGE <= kinds.index("comment.created"), kinds
        await page.click("role=tab[name='History']")
        timeline = page.locator(".timeline")
        rows = timeline.locator("li:not(.more)")
        resolved = rows.filter(has_text="resolved a comment")
        await expect(resolved).to_have_count(1)
        # Every page, down to the letter's creation (each end of the list is in view at once).
        await expect(rows).to_have_count(len(entries))
        await expect(rows.filter(has_text="Check this").locator("strong")).to_have_text(
            "Casey Commenter"
        )
        await expect(resolved.locator("strong")).to_have_text("Casey Commenter")
        texts = await rows.locator("strong").all_inner_texts()
        assert "casey" not in texts, texts
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()


ZONE = "America/New_York"


def _exact(instant: str) -> str:
    """An ISO instant as the page writes its UTC form: to the millisecond (JavaScript's Date)."""
    moment = datetime.fromisoformat(instant).astimezone(UTC)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _local(instant: str) -> list[str]:
    """What the row shows of an instant in ZONE (en-US): its date, time to the second, zone."""
    moment = datetime.fromisoformat(instant).astimezone(ZoneInfo(ZONE))
    clock = f"{moment.hour % 12 or 12}:{moment:%M:%S} {moment:%p}"
    return [f"{moment:%b} {moment.day}, {moment.year}", clock, str(moment.tzname())]


async def test_history_times_show_their_zone_and_the_exact_instant(
    base_url: str, browser: Browser
) -> None:
    """A reader in New York sees each row's local time with its zone (EST), and the exact UTC
    instant, to the millisecond as REST gives it, in its `<time>`'s datetime and tooltip: rows
    within one second are told apart."""
    letter = await _letter_casey_commented_on(base_url)
    context = await browser.new_context(timezone_id=ZONE, locale="en-US")
    try:
        page = await context.new_page()
        await page.goto(f"{base_url}/?as=audrey#/letters/{letter}")
        newest = (await _recorded(base_url, letter))[::-1]
        await page.click("role=tab[name='History']")
        times = page.locator(".timeline li:not(.more) time")
        await expect(times).to_have_count(len(newest))
        instants = [str(e.get("ts") or e.get("at")) for e in newest]
        exact = [_exact(instant) for instant in instants]
        assert await times.evaluate_all("ts => ts.map(t => t.getAttribute('datetime'))") == exact
        assert await times.evaluate_all("ts => ts.map(t => t.title)") == exact
        shown = [re.sub(r"\s", " ", text) for text in await times.all_inner_texts()]
        for text, instant in zip(shown, instants, strict=True):
            assert all(part in text for part in _local(instant)), (text, instant)
        assert all(re.search(r"\bE[SD]T$", text) for text in shown), shown
    finally:
        await context.close()


async def test_a_version_nobody_chose_to_save_reads_as_triggered(
    base_url: str, browser: Browser
) -> None:
    """Avery types and closes the letter: the session-end version her leave set off read "saved
    version 1" in the history panel, as if she had saved it (the CLI says "triggered" too)."""
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        letter = await create_letter(page, "Triggered", "Dear Sir,")
        await type_at_end(page, " Pay.")
        await saved(page)
    finally:
        await context.close()  # her last session ends: the snapshotter cuts a version
    async with httpx.AsyncClient(base_url=base_url, headers=auth("audrey", "auditor", "A")) as http:

        async def cut() -> bool:
            entries = (await http.get(f"/v1/letters/{letter}/history")).json()
            return any(e["type"] == "version" for e in entries)

        await eventually(cut, timeout=30, interval=0.3)
    context, page = await new_page(browser)
    try:
        await page.goto(f"{base_url}/?as=audrey#/letters/{letter}")
        await page.click("role=tab[name='History']")
        row = page.locator(".timeline li").filter(has_text="version 1")
        await expect(row).to_contain_text("triggered version 1 (session-end)")
    finally:
        await context.close()
