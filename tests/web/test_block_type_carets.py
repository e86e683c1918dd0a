"""A colleague who changes the type of the block your caret is in (a paragraph made a heading or
a list item, or back) leaves your caret where it was in it: y-tiptap replaces the block (a new
Yjs element), so the caret went to the start of the next block, or to a sibling with the same
text, and what you typed next went there (web/src/editor/replaced-block.ts).

Against `steno-collab dev` in Debian's Chromium (the stack and browser fixtures of conftest.py).
"""

import pytest
from playwright.async_api import Browser, Page

from tests.support import eventually
from tests.web.browser import block_text, create_letter, open_letter, pages, saved, sign_in
from tests.web.carets import server_lines

# Parker's page changes the type of the letter's textblocks `first` to `last` (in document order,
# a list item's paragraph too), selected from the first one's start to the last one's end, as
# the toolbar's buttons do.
_RETYPE = """([first, last, command]) => {
  const editor = document.querySelector('.letter-body').editor
  const textblocks = []
  editor.state.doc.descendants((node, pos) => {
    if (!node.isTextblock) return true
    textblocks.push([pos + 1, pos + 1 + node.content.size])
    return false
  })
  const [from, to] = [textblocks[first][0], textblocks[last][1]]
  const chain = editor.chain().setTextSelection({ from, to })
  const commands = {
    heading: () => chain.setNode('heading', { level: 2 }),
    paragraph: () => chain.setParagraph(),
    bulletList: () => chain.toggleBulletList(),
    orderedList: () => chain.toggleOrderedList(),
  }
  if (!commands[command]().run()) throw new Error(command + ' was refused')
}"""

# The letter's structure: each top-level block's tag, a list's as "ul>li,li" (its items' tags).
_SHAPE = """() => {
  const tag = (element) => element.tagName.toLowerCase()
  return [...document.querySelector('.letter-body').children].map((block) =>
    block.matches('ul, ol') ? `${tag(block)}>${[...block.children].map(tag)}` : tag(block))
}"""

_TEXTBLOCKS = ".letter-body :is(p, h2)"


async def _lines(page: Page) -> list[str]:
    """The text of each textblock (a list item's paragraph too): the server's lines."""
    blocks = page.locator(_TEXTBLOCKS)
    return [await block_text(blocks.nth(i)) for i in range(await blocks.count())]


async def _shows(page: Page, shape: list[str], lines: list[str]) -> None:
    async def seen() -> tuple[list[str], list[str]]:
        return await page.evaluate(_SHAPE), await _lines(page)

    async def shown() -> bool:
        return await seen() == (shape, lines)

    try:
        await eventually(shown)
    except AssertionError:
        assert await seen() == (shape, lines)  # what differs
        raise


async def _caret_at(page: Page, block: str, index: int, offset: int) -> None:
    await page.locator(block).nth(index).click()
    await page.keyboard.press("Home")
    for _ in range(offset):
        await page.keyboard.press("ArrowRight")


async def _opened(browser_pages: list[Page], base_url: str, title: str, lines: list[str]) -> str:
    avery, parker = browser_pages
    await sign_in(avery, base_url, "avery")
    letter = await create_letter(avery, title, "\n".join(lines))
    await open_letter(parker, base_url, "parker", letter)
    return letter


class _Letter:
    """What both pages and the server should show: the structure, each textblock's text, and
    where Avery's caret is (a textblock's index and an offset in it)."""

    def __init__(self, shape: list[str], lines: list[str], line: int, offset: int) -> None:
        self.shape, self.lines, self.line, self.offset = shape, lines, line, offset

    def typed(self, text: str) -> None:
        old = self.lines[self.line]
        self.lines[self.line] = old[: self.offset] + text + old[self.offset :]
        self.offset += len(text)

    async def everywhere(self, base_url: str, letter: str, *people: Page) -> None:
        for page in people:
            await _shows(page, self.shape, self.lines)
        for page in people:
            await saved(page)
        assert await server_lines(base_url, letter) == self.lines


_LINES = ["Dear Claims Adjuster,", "We represent Mr. Smith.", "Yours,"]
# Parker's commands on the second block, and its tag after each.
_STEPS = [
    ("heading", "h2"),
    ("paragraph", "p"),
    ("bulletList", "ul>li"),
    ("bulletList", "p"),  # the list item back to a paragraph
    ("orderedList", "ol>li"),
    ("heading", "h2"),  # out of the list, a heading at once
]


@pytest.mark.timeout(150)
@pytest.mark.parametrize("offset", [0, 12, len(_LINES[1])], ids=["start", "middle", "end"])
async def test_your_caret_stays_in_your_paragraph_when_a_colleague_changes_its_type(
    base_url: str, browser: Browser, offset: int
) -> None:
    """Avery's caret at the start, in the middle or at the end of the second paragraph; Parker
    turns it into a heading, a paragraph again, a list item, a paragraph, a numbered item and a
    heading; what Avery types after each goes where her caret was, on both pages and on the
    server."""
    async with pages(browser, 2) as people:
        avery, parker = people
        letter = await _opened(people, base_url, f"Retyped at {offset}", _LINES)
        await _caret_at(avery, ".letter-body p", 1, offset)
        expected = _Letter(["p", "p", "p"], list(_LINES), 1, offset)
        for step, (command, tag) in enumerate(_STEPS):
            await parker.evaluate(_RETYPE, [1, 1, command])
            expected.shape[1] = tag
            await _shows(avery, expected.shape, expected.lines)  # before she types
            await avery.keyboard.type(str(step))
            expected.typed(str(step))
            # Parker's next change is made on her text (a change made before it arrives would
            # replace the block without it).
            await expected.everywhere(base_url, letter, avery, parker)
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("block", [1, 2], ids=["first", "second"])
@pytest.mark.parametrize("at_end", [False, True], ids=["start", "end"])
async def test_your_caret_stays_in_your_block_beside_one_with_the_same_text(
    base_url: str, browser: Browser, block: int, at_end: bool
) -> None:
    """Two paragraphs read "Thank you.": Parker makes the one Avery's caret is in a heading.
    y-tiptap looked for "the Nth paragraph with its text" and found the other one (or none);
    her caret stays in hers."""
    lines = ["Dear Sir,", "Thank you.", "Thank you.", "Yours,"]
    async with pages(browser, 2) as people:
        avery, parker = people
        letter = await _opened(people, base_url, f"Twins {block} {at_end}", lines)
        offset = len(lines[block]) if at_end else 0
        await _caret_at(avery, ".letter-body p", block, offset)
        expected = _Letter(["p"] * 4, list(lines), block, offset)
        await parker.evaluate(_RETYPE, [block, block, "heading"])
        expected.shape[block] = "h2"
        await _shows(avery, expected.shape, expected.lines)
        await avery.keyboard.type("X")
        expected.typed("X")
        await expected.everywhere(base_url, letter, avery, parker)
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]


@pytest.mark.timeout(120)
async def test_your_caret_stays_in_your_list_item_when_a_colleague_changes_the_list(
    base_url: str, browser: Browser
) -> None:
    """Nested blocks: Avery's caret in the middle of a list's second item; Parker makes the list
    a numbered one, lifts her item out of it (the list splits around it), then makes it a
    bulleted item again."""
    lines = ["Dear Sir,", "Alpha item", "Bravo item", "Charlie item", "Yours,"]
    async with pages(browser, 2) as people:
        avery, parker = people
        letter = await _opened(people, base_url, "Nested retyped", lines)
        await parker.evaluate(_RETYPE, [1, 3, "bulletList"])
        expected = _Letter(["p", "ul>li,li,li", "p"], list(lines), 2, 3)
        await expected.everywhere(base_url, letter, avery, parker)
        await _caret_at(avery, ".letter-body li p", 1, 3)
        steps = [
            ("orderedList", ["p", "ol>li,li,li", "p"]),
            ("orderedList", ["p", "ol>li", "p", "ol>li", "p"]),
            ("bulletList", ["p", "ol>li", "ul>li", "ol>li", "p"]),
        ]
        for step, (command, shape) in enumerate(steps):
            await parker.evaluate(_RETYPE, [2, 2, command])
            expected.shape = shape
            await _shows(avery, expected.shape, expected.lines)
            await avery.keyboard.type(str(step))
            expected.typed(str(step))
            await expected.everywhere(base_url, letter, avery, parker)
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]
