"""A colleague's keystroke is a small change on the other pages: the blocks it did not touch stay
the same ProseMirror nodes (y-tiptap rebuilds the whole letter per remote change; the page keeps
the blocks that did not change, so the view, prosemirror-tables and the plugins skip them), the
direction of each block is its own rendering rather than a decoration per block, and the lock
marks follow edits instead of being worked out again per transaction. Comment marks, lock marks,
recent-edit marks, carets and text direction stay right through remote edits.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py). The page's editor is read through the `editor` TipTap puts on its
element.
"""

import httpx
from playwright.async_api import Browser, Page, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.support import eventually
from tests.web.browser import STACK_SECRET, block_text, open_letter, pages, type_in

ARABIC = "مرحبا بالعالم"
PARAGRAPHS = [f"Paragraph {n} of the letter, about the damages claimed." for n in range(1, 31)]
EDITOR = "document.querySelector('.letter-body').editor"


async def _letter(base_url: str, comment_on: tuple[int, int] | None = None, lock: str = "") -> str:
    """A letter of PARAGRAPHS made through the API, with a comment on [from, to) and a lock."""
    token = mint_token(
        Settings(jwt_secret=STACK_SECRET), "avery", "demo-firm", name="Avery Attorney"
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:
        body = {"firm_id": "demo-firm", "title": "Long", "content": "\n".join(PARAGRAPHS)}
        created = await client.post("/v1/letters", json=body)
        created.raise_for_status()
        letter: str = created.json()["letter_id"]
        if comment_on:
            anchor = {"from": comment_on[0], "to": comment_on[1]}
            comment = {"body": "Check", "anchor": anchor, "mentions": []}
            (await client.post(f"/v1/letters/{letter}/comments", json=comment)).raise_for_status()
        if lock:
            (await client.post(f"/v1/letters/{letter}/locks/{lock}")).raise_for_status()
    return letter


async def _shows(page: Page, paragraph: int, text: str) -> None:
    """The paragraph reads `text` on `page` (a colleague's caret drawn in it is not text)."""
    block = page.locator(".letter-body p").nth(paragraph)

    async def shown() -> bool:
        return await block_text(block) == text

    await eventually(shown)


async def test_a_colleagues_keystroke_keeps_the_other_blocks(
    base_url: str, browser: Browser
) -> None:
    letter = await _letter(base_url)
    async with pages(browser, 2) as (avery, parker):
        await open_letter(parker, base_url, "parker", letter)
        await open_letter(avery, base_url, "avery", letter)
        await parker.evaluate(f"() => {{ window.before = {EDITOR}.state.doc }}")
        await type_in(avery, 14, "X")
        await _shows(parker, 14, PARAGRAPHS[14] + "X")
        kept = await parker.evaluate(
            f"""() => {{
              const doc = {EDITOR}.state.doc
              const kept = []
              doc.forEach((node, _, i) => {{ if (node === window.before.child(i)) kept.push(i) }})
              return kept
            }}"""
        )
        assert kept == [i for i in range(len(PARAGRAPHS)) if i != 14]

        # A join (Backspace at a paragraph's start) and a split (Enter): the same letter on both.
        await avery.keyboard.press("Home")
        await avery.keyboard.press("Backspace")
        await _shows(parker, 13, PARAGRAPHS[13] + PARAGRAPHS[14] + "X")
        await avery.keyboard.press("Enter")
        await _shows(parker, 14, PARAGRAPHS[14] + "X")
        letter_json = f"() => JSON.stringify({EDITOR}.getJSON())"
        assert await parker.evaluate(letter_json) == await avery.evaluate(letter_json)


async def test_each_block_takes_its_direction_without_a_decoration_per_block(
    base_url: str, browser: Browser
) -> None:
    letter = await _letter(base_url)
    async with pages(browser, 2) as (avery, parker):
        await open_letter(parker, base_url, "parker", letter)
        await open_letter(avery, base_url, "avery", letter)
        await type_in(avery, 29, "")
        await avery.keyboard.press("Enter")
        await avery.keyboard.type(ARABIC)
        blocks = parker.locator(".letter-body p")
        await expect(blocks).to_have_count(31)
        await _shows(parker, 30, ARABIC)
        for n in (0, 29, 30):
            await expect(blocks.nth(n)).to_have_attribute("dir", "auto")
        direction = "(el) => getComputedStyle(el).direction"
        assert await blocks.nth(0).evaluate(direction) == "ltr"
        assert await blocks.nth(30).evaluate(direction) == "rtl"
        # ProseMirror compares a block's decorations with its drawing at every redraw: none here
        # (no comment, lock or caret on these blocks), not one per block.
        decorated = await parker.evaluate(
            """() => document.querySelector('.letter-body').pmViewDesc.children
                 .filter((block) => block.outerDeco && block.outerDeco.length > 0).length"""
        )
        assert decorated == 0
        # The attribute is the page's: nothing of it is written into the shared Yjs document
        # (y-tiptap's binding, the plugin state under its key "y-sync$").
        attrs = await parker.evaluate(
            f"""() => {EDITOR}.state['y-sync$'].binding.type.toArray()
                 .map((element) => element.getAttribute('autoDirection') ?? null)"""
        )
        assert attrs == [None] * 31


async def test_marks_stay_right_through_a_colleagues_edits(base_url: str, browser: Browser) -> None:
    # "damages" in the second paragraph (offsets count one line per paragraph).
    start = len(PARAGRAPHS[0]) + 1 + PARAGRAPHS[1].index("damages")
    letter = await _letter(base_url, comment_on=(start, start + len("damages")), lock="paragraph 5")
    async with pages(browser, 2) as (avery, parker):
        await open_letter(parker, base_url, "parker", letter)
        await open_letter(avery, base_url, "avery", letter)
        body = parker.locator(".letter-body")
        await expect(body.locator(".comment-anchor")).to_have_text("damages")
        locked = body.locator("p.section-locked")
        await expect(locked).to_have_count(1)
        await expect(locked).to_have_text(PARAGRAPHS[4])
        lock_mark = f"() => {EDITOR}.state['sectionLocks$'].find()[0].type"
        await parker.evaluate(f"() => {{ window.lockMark = ({lock_mark})() }}")

        # In the commented paragraph, before the comment: the mark stays on "damages".
        await avery.locator(".letter-body p").nth(1).click()
        await avery.keyboard.press("Home")
        await avery.keyboard.type("New ")
        await _shows(parker, 1, "New " + PARAGRAPHS[1])
        await expect(body.locator(".comment-anchor")).to_have_text("damages")
        await expect(body.locator(".recent-edit").first).to_contain_text("New")
        await expect(body.locator(".collaboration-carets__label")).to_have_text("Avery Attorney")
        # Moved with the edits, not worked out again per keystroke.
        assert await parker.evaluate(f"() => ({lock_mark})() === window.lockMark")

        # Inside the locked paragraph (a colleague's edit replaces that block): still marked.
        await type_in(avery, 4, " More.")
        await _shows(parker, 4, PARAGRAPHS[4] + " More.")
        await expect(locked).to_have_count(1)
        assert await block_text(locked) == PARAGRAPHS[4] + " More."
        await expect(body.locator(".lock-badge")).to_have_count(1)

        # A block added above: "paragraph 5" is now the block that was the fourth (sections.ts).
        await type_in(avery, 0, "")
        await avery.keyboard.press("Enter")
        await avery.keyboard.type("Inserted")
        await _shows(parker, 1, "Inserted")
        await expect(locked).to_have_text(PARAGRAPHS[3])
        await expect(body.locator(".comment-anchor")).to_have_text("damages")
        await expect(body.locator("p").nth(1)).to_have_attribute("dir", "auto")
