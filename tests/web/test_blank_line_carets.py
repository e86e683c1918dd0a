"""A colleague's new blank line does not take your caret: y-tiptap took "both carets at a block's
start" for a misresolved caret and moved it to "the Nth block of the same type and text", and
every empty line has the same text (web/vite.config.ts `caretAtBlockStart` rewrites that).

Against `steno-collab dev` in Debian's Chromium (the stack and browser fixtures of conftest.py).
"""

import asyncio
import random
import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.support import eventually
from tests.web.browser import block_text, create_letter, open_letter, pages, sign_in
from tests.web.carets import same_everywhere
from tests.web.vite_dev import Y_TIPTAP, module_graph


async def _caret_on_a_new_line_after(page: Page, paragraph: int) -> None:
    await page.locator(".letter-body p").nth(paragraph).click()
    await page.keyboard.press("End")
    await page.keyboard.press("Enter")


async def _shows_line(page: Page, index: int, text: str) -> None:
    """The page's paragraph `index` reads `text` (a colleague's caret label aside)."""

    async def shown() -> bool:
        return await block_text(page.locator(".letter-body p").nth(index)) == text

    await eventually(shown)


@pytest.mark.timeout(120)
async def test_a_blank_line_above_yours_keeps_your_caret(base_url: str, browser: Browser) -> None:
    """The reviewer's steps: Parker's blank line above Avery's took her caret, and each typed
    into the other's line (on both pages and on the server)."""
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(
            avery, "Blank lines", "Dear Claims Adjuster,\nWe represent Mr. Smith."
        )
        await open_letter(parker, base_url, "parker", letter)
        await _caret_on_a_new_line_after(avery, 1)
        await expect(parker.locator(".letter-body p")).to_have_count(3)
        await _caret_on_a_new_line_after(parker, 0)
        await expect(avery.locator(".letter-body p")).to_have_count(4)  # his line above hers

        await avery.keyboard.type("AVERY")
        await _shows_line(parker, 3, "AVERY")
        await parker.keyboard.type("PARKER")
        await _shows_line(avery, 1, "PARKER")
        lines = await same_everywhere(base_url, letter, avery, parker)
        assert lines == ["Dear Claims Adjuster,", "PARKER", "We represent Mr. Smith.", "AVERY"]
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]


@pytest.mark.timeout(180)
async def test_two_people_typing_with_new_lines_keep_to_their_sections(
    base_url: str, browser: Browser
) -> None:
    """Avery writes under "Avery:", Parker under "Parker:", both at once, each word after a
    space or on a new line (chosen at random): every word ends up once, in order, in its
    author's section, on both pages and on the server."""
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")  # shown with a failure: the same presses again
    chosen = random.Random(seed)
    words = 12
    plans = {
        name: [(f"{name[0]}{i}", chosen.random() < 0.6) for i in range(1, words + 1)]
        for name in ("avery", "parker")
    }
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Two sections", "Avery:\nParker:")
        await open_letter(parker, base_url, "parker", letter)
        for page, paragraph in ((avery, 0), (parker, 1)):
            await page.locator(".letter-body p").nth(paragraph).click()
            await page.keyboard.press("End")

        async def write(page: Page, plan: list[tuple[str, bool]]) -> None:
            for word, new_line in plan:
                await page.keyboard.press("Enter" if new_line else "Space")
                await page.keyboard.type(word, delay=25)

        await asyncio.gather(write(avery, plans["avery"]), write(parker, plans["parker"]))
        lines = await same_everywhere(base_url, letter, avery, parker)
        split = lines.index(next(line for line in lines if line.startswith("Parker:")))
        for name, section in (("avery", lines[:split]), ("parker", lines[split:])):
            found = re.findall(r"\S+", " ".join(section))
            assert found == [f"{name.title()}:"] + [word for word, _ in plans[name]], lines
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]


# Parker's page moves the letter's last block in front of the first (one transaction: delete and
# insert, as a drag of the block does).
_LAST_BLOCK_TO_THE_FRONT = """() => {
  const editor = document.querySelector('.letter-body').editor
  const doc = editor.state.doc
  const last = doc.lastChild
  const tr = editor.state.tr.delete(doc.content.size - last.nodeSize, doc.content.size)
  editor.view.dispatch(tr.insert(0, last))
}"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("block", [0, 1])
async def test_a_caret_at_a_block_start_follows_its_block_when_one_is_moved_in_front(
    base_url: str, browser: Browser, block: int
) -> None:
    """What the rewritten check is there for still works: Parker moves a block in front of
    the one Avery's caret is at the start of (the first or the second), and what she types
    goes into her block, not the one that took its place."""
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        lines = ["Dear Claims Adjuster,", "We represent Mr. Smith.", "Yours,"]
        letter = await create_letter(avery, f"Moved above {block}", "\n".join(lines))
        await open_letter(parker, base_url, "parker", letter)
        await avery.locator(".letter-body p").nth(block).click()
        await avery.keyboard.press("Home")
        await parker.evaluate(_LAST_BLOCK_TO_THE_FRONT)
        await _shows_line(avery, 0, "Yours,")
        await avery.keyboard.type("X")
        lines[block] = "X" + lines[block]
        assert await same_everywhere(base_url, letter, avery, parker) == [lines[2], *lines[:2]]
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]


async def test_the_dev_server_serves_y_tiptap_rewritten(dev_server: str) -> None:
    """`npm run dev` serves y-tiptap through the config's plugins (not pre-bundled): rewritten
    there too, as in the build (`npm run build` fails where the rewrite finds nothing)."""
    graph = await module_graph(dev_server)
    [y_tiptap] = [module for module in graph.values() if Y_TIPTAP.search(module)]
    assert "if (suspicious) {" in y_tiptap
    assert "bothAtStart ||" not in y_tiptap
