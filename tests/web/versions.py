"""The "Save version…" control and the saved versions as an auditor reads them over REST: what
the save-version browser tests share."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from playwright.async_api import Browser, Page, Request

from tests.support import eventually
from tests.web.browser import LETTER_SOCKET, HeldEchoes, auth, open_letter, pages

TOGGLE = "button.save-version-toggle"
STATUS = ".save-version [role=status]"
FORM = "#save-version-form"


async def versions(base_url: str, letter: str) -> list[dict[str, Any]]:
    """The letter's versions as an auditor reads them over REST."""
    async with httpx.AsyncClient(base_url=base_url, headers=auth("audrey", "auditor")) as http:
        answer = await http.get(f"/v1/letters/{letter}/versions")
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()
        return found


def labels(found: list[dict[str, Any]]) -> list[str]:
    return [v["change_data"]["label"] for v in found if v["change_data"]["type"] == "named"]


async def listed(base_url: str, letter: str, *wanted: str) -> list[str]:
    """The named versions' labels, once PostgreSQL has every one of `wanted` (the snapshotter
    writes a version a moment after the save's 202)."""

    async def found() -> list[str] | None:
        named = labels(await versions(base_url, letter))
        return named if set(wanted) <= set(named) else None

    named: list[str] = await eventually(found, timeout=30, interval=0.2)
    return named


async def named_content(base_url: str, letter: str, label: str) -> str:
    """The text of the letter's version saved under `label`, once PostgreSQL has it."""
    await listed(base_url, letter, label)
    number = next(
        v["version_number"]
        for v in await versions(base_url, letter)
        if v["change_data"].get("label") == label
    )
    async with httpx.AsyncClient(base_url=base_url, headers=auth("audrey", "auditor")) as http:
        answer = await http.get(f"/v1/letters/{letter}/versions/{number}")
        assert answer.status_code == 200, answer.text
        return str(answer.json()["content"])


@asynccontextmanager
async def editor_page(
    base_url: str, browser: Browser, letter: str, socket: HeldEchoes | None = None
) -> AsyncIterator[Page]:
    """Avery's page on `letter` (its letter socket through `socket`, if given); `page.saves`
    lists the save requests it sends."""
    async with pages(browser, 1) as (page,):
        if socket is not None:
            await page.route_web_socket(LETTER_SOCKET, socket.route)
        saves: list[Request] = []

        def note(request: Request) -> None:
            if request.method == "POST" and request.url.endswith(f"/v1/letters/{letter}/versions"):
                saves.append(request)

        page.on("request", note)
        page.saves = saves  # type: ignore[attr-defined]
        await open_letter(page, base_url, "avery", letter)
        yield page
        assert page.errors == []  # type: ignore[attr-defined]


async def save_as(page: Page, label: str) -> None:
    """Open "Save version…", enter `label` and press Enter (the outcome is the test's to see)."""
    await page.click(TOGGLE)
    await page.get_by_label("Version label").fill(label)
    await page.keyboard.press("Enter")
