"""The in-letter highlight of an update written over REST names its writer: a backend that
never opened the letter has no awareness state, and the page read "Edited by A collaborator".
The gateway names the write's Yjs client ids in a `doc.writer` app message before the update
(src/editor/writers.ts). Against `steno-collab dev` in Debian's Chromium (conftest.py's
stack and browser fixtures)."""

import httpx
from playwright.async_api import Browser, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.gateway.drafting import with_paragraph
from tests.web.browser import EDITABLE, STACK_SECRET, create_letter, pages, saved, sign_in

WRITTEN = "Received through the intake form"


async def test_a_rest_writers_edit_is_highlighted_under_its_name(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 1) as (avery,):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Intake", "Dear Sir,")
        await avery.wait_for_selector(EDITABLE)
        await saved(avery)
        settings = Settings(jwt_secret=STACK_SECRET)
        token = mint_token(settings, "intake", "demo-firm", "service", name="Intake Bot")
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            state = (await http.get(f"/v1/letters/{letter}/state")).content
            posted = await http.post(
                f"/v1/letters/{letter}/updates",
                content=with_paragraph(state, WRITTEN),
                headers={"content-type": "application/octet-stream"},
            )
            assert posted.status_code == 200, posted.text
        highlight = avery.locator(".recent-edit", has_text=WRITTEN)
        await expect(highlight).to_have_attribute("title", "Edited by Intake Bot")
        assert avery.errors == []  # type: ignore[attr-defined]
