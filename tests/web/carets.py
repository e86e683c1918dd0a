"""What the caret tests (test_blank_line_carets.py, test_block_type_carets.py) read: the letter's
lines on every page and on the server, once each page's edits are confirmed."""

import httpx
from playwright.async_api import Page

from tests.web.browser import auth, body_text, saved


async def server_lines(base_url: str, letter: str) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, headers=auth("avery")) as http:
        return str((await http.get(f"/v1/letters/{letter}")).json()["content"]).split("\n")


async def same_everywhere(base_url: str, letter: str, *people: Page) -> list[str]:
    """The letter's lines, once every page has had its edits confirmed: the same on each page
    and on the server."""
    for page in people:
        await saved(page)
    lines = (await body_text(people[0])).split("\n")
    for page in people[1:]:
        assert (await body_text(page)).split("\n") == lines
    assert await server_lines(base_url, letter) == lines
    return lines
