"""A hard break (Shift+Enter) is one "\\n" of the letter's plain text on the page as on the
server: a thread the page marks by the server's offsets (its positions name characters not
received yet) marks the words the server quotes, after breaks inside and at the start of a
paragraph, and after images (an image right after another in a quote, a list item or a cell is
on the same empty line, as on the server: a run of inline content).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from playwright.async_api import Browser, Page, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.support import eventually
from tests.web.browser import INSERT_AT_END, STACK_SECRET, marked, open_letter, pages, saved
from tests.web.threads import rewrite_anchors

WORDS = ("damages", "5000", "Regards")


def _position(client: int, clock: int) -> str:
    """Yjs' encodeRelativePosition of a position on item (client, clock < 128), assoc 0: on a
    client the letter has none of, so the page marks the thread by its offsets meanwhile."""
    return base64.b64encode(bytes([0, client & 0x7F | 0x80, client >> 7, clock, 0])).decode()


AWAITING = {"start": _position(4242, 1), "end": _position(4242, 2), "after": ""}


@asynccontextmanager
async def _letter(
    base_url: str, browser: Browser, title: str, content: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Page, Page, str]]:
    """Avery's new letter (created over REST), open on her page; parker's page beside it: (her
    REST client, her page, his, the letter's id)."""
    token = mint_token(Settings(jwt_secret=STACK_SECRET), "avery", "demo-firm", name="Avery")
    async with (
        httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as http,
        pages(browser, 2) as (avery, parker),
    ):
        body = {"firm_id": "demo-firm", "title": title, "content": content}
        created = await http.post("/v1/letters", json=body)
        assert created.status_code == 201, created.text
        letter = created.json()["letter_id"]
        await open_letter(avery, base_url, "avery", letter)
        yield http, avery, parker, letter


async def _content(http: httpx.AsyncClient, letter: str) -> str:
    return str((await http.get(f"/v1/letters/{letter}")).json()["content"])


async def _comment_on(
    http: httpx.AsyncClient, letter: str, content: str, words: tuple[str, ...]
) -> None:
    """A thread on each of `words`, by its offsets in the server's `content`."""
    for word in words:
        at = content.index(word)
        comment = {"body": word, "anchor": {"from": at, "to": at + len(word)}, "mentions": []}
        assert (await http.post(f"/v1/letters/{letter}/comments", json=comment)).status_code == 201


async def _marked_by_offsets(
    page: Page, base_url: str, letter: str, words: tuple[str, ...]
) -> None:
    """Parker's page, its threads' positions naming characters it has not received, marks
    `words` by the offsets alone."""
    await rewrite_anchors(page, lambda _: AWAITING)
    await open_letter(page, base_url, "parker", letter)
    await expect(page.locator(".thread .quote")).to_have_count(len(words))
    await eventually(lambda: marked(page, *words))


async def test_offsets_after_a_hard_break_are_the_servers(base_url: str, browser: Browser) -> None:
    async with _letter(base_url, browser, "Breaks", "Dear Sir,\nWe claim") as opened:
        http, avery, parker, letter = opened
        await avery.locator(".letter-body p").nth(1).click()
        await avery.keyboard.press("End")
        for key in ["Shift+Enter", "damages of 5000", "Shift+Enter", "Shift+Enter", "Regards"]:
            await (avery.keyboard.press if key.startswith("Shift") else avery.keyboard.type)(key)
        await avery.locator(".letter-body p").nth(0).click()
        await avery.keyboard.press("Home")
        await avery.keyboard.press("Shift+Enter")
        await saved(avery)

        content = await _content(http, letter)
        assert content == "\nDear Sir,\nWe claim\ndamages of 5000\n\nRegards"
        await _comment_on(http, letter, content, WORDS)
        threads = (await http.get(f"/v1/letters/{letter}/comments")).json()["threads"]
        assert [(t["anchor"]["from"], t["anchor"]["quote"]) for t in threads] == [
            (content.index(word), word) for word in WORDS
        ]

        await _marked_by_offsets(parker, base_url, letter, WORDS)
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]


IMG = '<img src="/none.png">'  # the page's own origin (its CSP), nothing there: no picture
# Two images in a row in a quote; text then an image then text in a list item; an image then
# text and text then an image in cells; two images in a row in the document (a line each).
IMAGES = (
    f"<blockquote>{IMG}{IMG}<p>quoted</p></blockquote>"
    f"<ul><li><p>listed</p>{IMG}<p>after</p></li></ul>"
    f"<table><tbody><tr><td>{IMG}<p>celltail</p></td><td><p>cellhead</p>{IMG}</td></tr></tbody></table>"
    f"{IMG}{IMG}<p>End word</p>"
)
IMAGE_WORDS = ("quoted", "listed", "after", "celltail", "cellhead", "End")


async def test_offsets_after_images_are_the_servers(base_url: str, browser: Browser) -> None:
    async with _letter(base_url, browser, "Images", "Dear Sir,") as opened:
        http, avery, parker, letter = opened
        await avery.evaluate(INSERT_AT_END, IMAGES)
        await expect(avery.locator(".letter-body img")).to_have_count(7)
        await saved(avery)

        content = await _content(http, letter)
        # The quote's images one line; the list item's and the cells' one each; the document's two.
        assert (
            content == "Dear Sir,\n\nquoted\nlisted\n\nafter\n\ncelltail\ncellhead\n\n\n\nEnd word"
        )
        await _comment_on(http, letter, content, IMAGE_WORDS)

        await _marked_by_offsets(parker, base_url, letter, IMAGE_WORDS)
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]
