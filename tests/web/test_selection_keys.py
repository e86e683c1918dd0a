"""A selection extended with Shift+Arrow keys takes every press while a colleague types above it.

ProseMirror reads the selection a key made in the DOM on the next "selectionchange", a task of its
own; a colleague's edit applied before that task redraws the letter with the selection from before
the key, writes it back to the DOM, and the press is lost (pending-input.ts reads the DOM first).
Without that, each run here lost presses (12 to 20 of its 35); with it, none did in 75 runs, 49 of
them on a machine kept busy.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import asyncio

from playwright.async_api import Browser, Page, expect

from tests.web.browser import create_letter, open_letter, pages, sign_in

LETTER = "\n".join(
    [
        "Dear Sir or Madam,",
        "We write on behalf of our client about the accident.",
        "The damages claimed amount to five thousand dollars.",
        "Please reply within fourteen days of this letter.",
        "Yours faithfully.",
    ]
)
# The selection once the editor holds the DOM's (ProseMirror reads it on "selectionchange", a task
# after the key's), as [paragraph, offset] of its anchor and head. TipTap keeps its editor on the
# editable element.
_SETTLED = """() => {
  const editor = document.querySelector('.letter-body').editor
  const dom = window.getSelection()
  if (!dom || !dom.anchorNode || !editor.view.dom.contains(dom.anchorNode)) return null
  const anchor = editor.view.posAtDOM(dom.anchorNode, dom.anchorOffset)
  const head = editor.view.posAtDOM(dom.focusNode, dom.focusOffset)
  const { selection, doc } = editor.state
  if (selection.anchor !== anchor || selection.head !== head) return null
  const at = (pos) => { const r = doc.resolve(pos); return [r.index(0), r.parentOffset] }
  return [at(anchor), at(head)]
}"""
Spot = tuple[int, int]


async def _settled(page: Page) -> tuple[Spot, Spot]:
    (a, b), (c, d) = await (await page.wait_for_function(_SETTLED)).json_value()
    return (a, b), (c, d)


async def _extend(page: Page, key: str, times: int) -> tuple[Spot, Spot]:
    """From the start of the second paragraph, `key` pressed `times` times."""
    await page.locator(".letter-body p").nth(1).click()
    await _settled(page)  # the click read: what follows is about keys
    await page.keyboard.press("Home")
    for _ in range(times):
        await page.keyboard.press(key)
    return await _settled(page)


async def test_shift_arrows_extend_a_selection_by_every_press_while_a_colleague_types(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Shift arrows", LETTER)
        await open_letter(parker, base_url, "parker", letter)
        await parker.locator(".letter-body p").nth(0).click()
        await parker.keyboard.press("End")
        stop = asyncio.Event()

        async def keep_typing() -> None:
            while not stop.is_set():
                await parker.keyboard.type(" more", delay=20)

        typing = asyncio.create_task(keep_typing())
        try:
            await expect(avery.locator(".letter-body p").nth(0)).to_contain_text("more")
            got = [
                await _extend(avery, "Shift+ArrowRight", 12),
                await _extend(avery, "Shift+ArrowRight", 20),
                await _extend(avery, "Shift+ArrowDown", 3),  # across paragraph breaks
            ]
        finally:
            stop.set()
            await typing
        assert got == [((1, 0), (1, 12)), ((1, 0), (1, 20)), ((1, 0), (4, 0))]
