"""A comment thread whose anchor the page cannot place costs nothing per edit: one whose positions
never resolve (not Yjs positions on characters: only a buggy or hostile client sends such) shows
as detached, as one whose text was deleted, and is not tried again; one that names characters
not received yet is marked by the server's offsets and marked again only once they arrive (not
at every keystroke of a colleague). The server never lists such anchors (it refuses them, and
resolves what it stores): the page's requests for the threads are answered with them here.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py). The page's editor is read through the `editor` TipTap puts on its
element.
"""

import base64

import httpx
from playwright.async_api import Browser, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.web.browser import STACK_SECRET, marked, open_letter, pages, type_in
from tests.web.threads import rewrite_anchors

LETTER = "Dear Sir,\nWe claim damages of 5000 dollars.\nRegards."
EDITOR = "document.querySelector('.letter-body').editor"
# Counts the transactions that mark the threads anew (the comment anchors plugin's meta), from
# now on; first lets any re-marking already queued (a timeout after an edit) run.
COUNT_REMARKS = f"""async () => {{
  await new Promise((done) => setTimeout(done))
  const editor = {EDITOR}
  const key = editor.state.plugins.map((p) => p.key).find((k) => k.startsWith('commentAnchors$'))
  window.remarks = 0
  editor.on('transaction', ({{ transaction }}) => {{
    if (transaction.getMeta(key)) window.remarks += 1
  }})
}}"""
# The count, once the re-marking queued by the edits received so far has run.
REMARKS = "() => new Promise((done) => setTimeout(() => done(window.remarks)))"


def _varuint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([*out, n])


def _position(client: int, clock: int) -> str:
    """Yjs' encodeRelativePosition of a position on item (client, clock), assoc 0."""
    return base64.b64encode(b"\x00" + _varuint(client) + _varuint(clock) + b"\x00").decode()


# Anchors no document can place: not base64, and a kind of position Yjs does not know.
NEVER = {
    "damages": {"start": "not a position!", "end": "not a position!", "after": ""},
    "5000": {"start": "BwA=", "end": "BwA=", "after": ""},
}
# Characters of a client the letter has none of: they may arrive yet, so the page waits.
AWAITING = {"Regards": {"start": _position(4242, 7), "end": _position(4242, 13), "after": ""}}


async def _letter_with_threads(base_url: str) -> tuple[str, dict[str, str]]:
    """The letter, with a thread on each of "Dear", "damages", "5000" and "Regards" (by offsets,
    through the API): its id and the thread ids by word."""
    token = mint_token(
        Settings(jwt_secret=STACK_SECRET), "avery", "demo-firm", name="Avery Attorney"
    )
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        body = {"firm_id": "demo-firm", "title": "Odd anchors", "content": LETTER}
        created = await client.post("/v1/letters", json=body)
        created.raise_for_status()
        letter: str = created.json()["letter_id"]
        threads: dict[str, str] = {}
        for word in ("Dear", "damages", "5000", "Regards"):
            at = LETTER.index(word)
            anchor = {"from": at, "to": at + len(word)}
            comment = {"body": f"About {word}", "anchor": anchor, "mentions": []}
            answer = await client.post(f"/v1/letters/{letter}/comments", json=comment)
            answer.raise_for_status()
            threads[word] = answer.json()["thread_id"]
    return letter, threads


async def test_threads_the_page_cannot_place_are_not_marked_again_at_every_keystroke(
    base_url: str, browser: Browser
) -> None:
    letter, threads = await _letter_with_threads(base_url)
    odd = {threads[word]: anchor for word, anchor in (NEVER | AWAITING).items()}

    async with pages(browser, 2) as (avery, parker):
        await rewrite_anchors(parker, lambda thread: odd.get(thread, {}))
        await open_letter(parker, base_url, "parker", letter)
        await open_letter(avery, base_url, "avery", letter)
        await expect(parker.locator(".thread .quote")).to_have_count(4)
        dear = parker.locator(f".letter-body .comment-anchor[data-thread='{threads['Dear']}']")
        await expect(dear).to_have_text("Dear")

        await parker.evaluate(COUNT_REMARKS)
        await type_in(avery, 1, " We await your answer.")
        await expect(parker.locator(".letter-body p").nth(1)).to_contain_text("your answer.")
        assert await parker.evaluate(REMARKS) == 0

        # Never placed: listed as detached, unmarked. Waiting: marked by the offsets meanwhile.
        detached = parker.locator("article.thread.detached")
        await expect(detached).to_have_count(2)
        await expect(detached.locator(".badge")).to_have_text(
            ["detached (its text was deleted)"] * 2
        )
        await expect(detached.locator(".quote")).to_have_text(["“damages”", "“5000”"])
        assert await marked(parker, "Dear", "Regards")
        assert await marked(avery, "Dear", "damages", "5000", "Regards")
        assert parker.errors == []  # type: ignore[attr-defined]
