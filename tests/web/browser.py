"""Debian's Chromium driven by Playwright, and the page-level steps the browser tests share."""

import asyncio
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Frame,
    Locator,
    Page,
    Playwright,
    Response,
    Route,
    WebSocket,
    WebSocketRoute,
    async_playwright,
    expect,
)

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.support import eventually

CHROMIUM = os.environ.get("STENO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
EDITABLE = ".letter-body[contenteditable=true]"
FIRST_SECTION = "paragraph 1"  # the section id of a letter's first paragraph
TIMEOUT_MS = 10_000  # generous: CI shares two cores with the whole suite
expect.set_options(timeout=TIMEOUT_MS)
STACK_SECRET = secrets.token_hex(32)  # stacks.py's stacks (`base_url`): tests mint their tokens
# The toolbar's Undo and Redo buttons (src/views/editor.ts `toolbar`).
UNDO = ".toolbar button[aria-label='Undo your last change (Ctrl+Z)']"
REDO = ".toolbar button[aria-label='Redo (Ctrl+Shift+Z)']"

# What an embedding app does: open the editor, wait for its "ready", post the user's token.
HOST_OPENS_EDITOR = """({url, token}) => new Promise((resolve) => {
  window.addEventListener('message', (event) => {
    if (event.data?.type !== 'steno:ready') return
    event.source.postMessage({type: 'steno:token', token}, '*')
    resolve(true)
  })
  window.open(url)
})"""


def auth(
    user: str, role: str = "editor", name: str = "", secret: str = STACK_SECRET
) -> dict[str, str]:
    """The Authorization header of a demo-firm user's token (named `name`, else `user` title-cased)
    for the stack signing with `secret`."""
    token = mint_token(Settings(jwt_secret=secret), user, "demo-firm", role, name or user.title())
    return {"Authorization": f"Bearer {token}"}


def stack_token(user: str, role: str = "editor", ttl_s: int = 3600) -> str:
    """A demo-firm user's token (named `user` title-cased) of `ttl_s` seconds for the stacks."""
    return mint_token(
        Settings(jwt_secret=STACK_SECRET), user, "demo-firm", role, user.title(), ttl_s
    )


async def launch(playwright: Playwright) -> Browser:
    if shutil.which(CHROMIUM) is None:
        raise RuntimeError(
            f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (make test does)"
        )
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, closed after."""
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(
    browser: Browser, width: int = 1280, height: int = 800
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    _journal(page)
    return context, page


@asynccontextmanager
async def pages(browser: Browser, count: int) -> AsyncIterator[list[Page]]:
    """`count` people, each in a browser context of their own (own storage, own session)."""
    opened = [await new_page(browser) for _ in range(count)]
    try:
        yield [page for _, page in opened]
    finally:
        for context, _ in opened:
            await context.close()


def _journal(page: Page) -> None:
    """Print the page's WebSocket life and console warnings: pytest shows them when a test fails,
    which is what a flaky browser test needs to be understood from a CI log."""
    started = time.monotonic()
    tag = f"page{id(page) % 1000:03d}"

    def note(what: str) -> None:
        print(f"[{time.monotonic() - started:7.3f}s {tag}] {what}")

    def on_socket(ws: WebSocket) -> None:
        note(f"ws open {ws.url.split('?')[0]}")
        ws.on("close", lambda _: note("ws closed"))
        ws.on("socketerror", lambda error: note(f"ws error {error}"))
        ws.on("framereceived", lambda frame: _app_frame(note, "in", frame))
        ws.on("framesent", lambda frame: _app_frame(note, "out", frame))

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            note(f"console {message.text}")

    def on_navigated(frame: Frame) -> None:
        if frame == page.main_frame:
            note(f"at {frame.url}")

    def on_response(r: Response) -> None:
        if "/v1/" in r.url:
            note(f"{r.request.method} {r.url.split('?')[0]} {r.status}")

    page.on("websocket", on_socket)
    page.on("console", on_console)
    page.on("framenavigated", on_navigated)
    page.on("response", on_response)


def _app_frame(note: Any, direction: str, frame: str | bytes) -> None:
    # App messages (y-protocol type 100, varuint 0x64) are the live notices; the rest is noise.
    if isinstance(frame, bytes) and frame[:1] == b"\x64":
        note(f"app {direction} {frame[1:160]!r}")


async def sign_in(page: Page, base_url: str, user_id: str) -> None:
    """The dev login: pick a demo user on the page."""
    await page.goto(base_url + "/")
    await page.click(f"button[data-user={user_id}]")
    await page.wait_for_selector("text=Switch user")


async def create_letter(page: Page, title: str, content: str) -> str:
    await page.fill("#new-title", title)
    await page.fill("#new-content", content)
    await page.click("button:has-text('Create letter')")
    await page.wait_for_selector(".letter-body")
    await saved(page)
    return page.url.split("#/letters/")[1]


async def open_letter(page: Page, base_url: str, user_id: str, letter: str) -> None:
    """`letter` opened as the dev user `user_id`, connected and synced."""
    await page.goto(f"{base_url}/?as={user_id}#/letters/{letter}")
    await page.wait_for_selector(EDITABLE)
    await saved(page)


async def post_letter(url: str, secret: str, title: str) -> str:
    """A letter Avery created over REST on the stack at `url` (signing with `secret`)."""
    async with httpx.AsyncClient(base_url=url) as http:
        body = {"firm_id": "demo-firm", "title": title, "content": "Dear Sir,\nTerms."}
        created = await http.post(
            "/v1/letters", json=body, headers=auth("avery", name="Avery", secret=secret)
        )
        assert created.status_code == 201, created.text
        return str(created.json()["letter_id"])


async def locks_refused(url: str) -> float:
    """The gateway's `gateway_locks_unrestored_found`: one per 503 of its gates."""
    async with httpx.AsyncClient(base_url=url) as http:
        text = (await http.get("/metrics")).text
    found = re.search(r"^gateway_locks_unrestored_found_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def lock_first_paragraph(page: Page, name: str = "Avery Attorney") -> Locator:
    """The page's user (`name`) locks the letter's first paragraph: its lock rows, showing it."""
    await page.locator(".letter-body p").first.click()
    await page.click("button.lock-toggle")
    rows = page.locator(".lock-row")
    await expect(rows).to_have_text([f"“{FIRST_SECTION}” {name} (you)"])
    return rows


async def marked(page: Page, *texts: str) -> bool:
    """The marked text of each comment thread (a mark shows as several spans where other
    decorations cut it, such as a recent edit's) is `texts`, in the letter's order."""
    spans = page.locator(".letter-body .comment-anchor")
    found: dict[str, str] = {}
    for thread, text in await spans.evaluate_all(
        "spans => spans.map(s => [s.dataset.thread, s.textContent])"
    ):
        found[thread] = found.get(thread, "") + text
    assert tuple(found.values()) == texts, found
    return True


async def saved(page: Page) -> None:
    """Connected, synced and no local edit waiting for the server's echo."""
    await page.wait_for_selector(
        ".connection[data-link=connected][data-pending=false][data-tone=ok]"
    )


async def type_at_end(page: Page, text: str) -> None:
    await page.wait_for_selector(EDITABLE)  # the letter has arrived: the editor takes input
    await page.click(".letter-body p >> nth=-1")
    await page.keyboard.press("End")
    await page.keyboard.type(text, delay=40)


async def type_in(page: Page, paragraph: int, text: str, key: str = "End") -> None:
    """`text` typed into the letter's paragraph number `paragraph` (from 0), at its end (or
    where `key` puts the caret: "Home" for its start)."""
    await page.locator(".letter-body p").nth(paragraph).click()
    await page.keyboard.press(key)
    await page.keyboard.type(text)


# A block's text without the carets' name labels (a caret is drawn inside the block it is in).
_BLOCK_TEXT = """(block) => {
  const copy = block.cloneNode(true)
  copy.querySelectorAll('.collaboration-carets__caret').forEach((caret) => caret.remove())
  return copy.textContent
}"""
# The letter's text, one line per block.
_TEXT = f"() => [...document.querySelectorAll('.letter-body > *')].map({_BLOCK_TEXT}).join('\\n')"


async def body_text(page: Page) -> str:
    text: str = await page.evaluate(_TEXT)
    return text


async def block_text(block: Locator) -> str:
    text: str = await block.evaluate(_BLOCK_TEXT)
    return text


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


# An answer a test's route tags with this header (route.fulfill(headers=...)) is noted in the
# page once read: `window.taggedReads` lists the tags, each added a task after the page's
# Response.json() resolved, so the code awaiting that answer has run by then.
# The page's y-websocket provider, through the TipTap editor on the letter's element.
_PROVIDER = """document.querySelector('.letter-body').editor.extensionManager.extensions
  .find((extension) => extension.name === 'collaborationCaret').options.provider"""
# Inserts HTML (the argument) at the end of the letter, through the page's own editor.
INSERT_AT_END = """(html) => {
  document.querySelector('.letter-body').editor.chain().focus('end').insertContent(html).run()
}"""
# A table of two rows and two cells, for INSERT_AT_END.
TABLE_HTML = (
    "<table><tbody><tr><td><p>a1</p></td><td><p>b1</p></td></tr>"
    "<tr><td><p>a2</p></td><td><p>b2</p></td></tr></tbody></table>"
)
# Closes the page's socket (a network drop's close, as the page sees it).
DROP_SOCKET = f"() => {_PROVIDER}.ws.close()"
# The same close, but y-websocket does not reconnect (its ~0.2 s backoff) until SOCKET_UP: the
# page stays "reconnecting" for as long as a test needs, its REST requests going through.
SOCKET_DOWN = f"() => {_PROVIDER}.disconnect()"
SOCKET_UP = f"() => {_PROVIDER}.connect()"
# The awareness clock of the client named `name` as this page last heard it (its own: as it
# last sent it), or null if the page has no state of it.
AWARENESS_CLOCK = f"""(name) => {{
  const awareness = {_PROVIDER}.awareness
  const entry = [...awareness.getStates()].find(([, state]) => state.user?.name === name)
  return entry ? awareness.meta.get(entry[0]).clock : null
}}"""


@dataclass
class Seen:
    """`watcher`'s view of `name`, whose own page is `own`: listed in "Here now", caret drawn."""

    own: Page
    watcher: Page
    name: str
    listed: Locator
    caret: Locator

    async def clock(self) -> int:
        """`name`'s awareness clock as its own page last sent it."""
        return int(await self.own.evaluate(AWARENESS_CLOCK, self.name))

    async def heard(self) -> bool:
        """Whether the watcher has `name`'s last awareness update."""
        return await self.watcher.evaluate(AWARENESS_CLOCK, self.name) == await self.clock()


async def seen_on_a_letter(
    base_url: str, avery: Page, parker: Page, title: str, *, own: Page, name: str
) -> Seen:
    """Avery creates letter `title` and Parker opens it; `own` (either, user `name`) places its
    caret in it (an awareness change: its renewal is 15 s away from here), the other page lists
    it with its caret and has its last awareness update (the caret's come in two)."""
    await sign_in(avery, base_url, "avery")
    letter = await create_letter(avery, title, "Dear Sir,\nThe terms follow.")
    await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
    await parker.wait_for_selector(EDITABLE)
    await saved(parker)
    watcher = parker if own is avery else avery
    await own.locator(".letter-body p").first.click()
    listed = watcher.locator(f".users [data-name='{name}']")
    caret = watcher.locator(".letter-body .collaboration-carets__label", has_text=name.split()[0])
    await expect(listed).to_have_count(1)
    await expect(caret).to_have_count(1)
    seen = Seen(own, watcher, name, listed, caret)
    await eventually(seen.heard, timeout=10, interval=0.1)
    return seen


TAG_HEADER = "x-steno-test-tag"
_NOTE_TAGGED_READS = f"""(() => {{
  window.taggedReads = []
  const json = Response.prototype.json
  Response.prototype.json = function () {{
    const read = json.call(this)
    const tag = this.headers.get('{TAG_HEADER}')
    if (tag !== null) read.finally(() => setTimeout(() => window.taggedReads.push(tag)))
    return read
  }}
}})()"""


async def note_tagged_reads(page: Page) -> None:
    """From the page's next document on: see TAG_HEADER."""
    await page.add_init_script(_NOTE_TAGGED_READS)


async def tagged_read(page: Page, tag: str) -> None:
    """Until the page has read the answer tagged `tag`, and acted on it."""
    await page.wait_for_function("(tag) => window.taggedReads?.includes(tag)", arg=tag)


# The page's letter socket, for `page.route_web_socket(LETTER_SOCKET, ...)`.
LETTER_SOCKET = re.compile(r"/v1/letter-")


class HeldEchoes:
    """The page's letter socket, passed through (a `route_web_socket` handler); once `held`, what
    the server sends is dropped (its echoes: the page's edits stay pending). The server's close
    still reaches the page; `page` is the page's end, to close it as the server would."""

    def __init__(self) -> None:
        self.page: WebSocketRoute | None = None
        self.held = False

    def route(self, page: WebSocketRoute) -> None:
        server = page.connect_to_server()
        page.on_message(server.send)
        server.on_message(lambda message: None if self.held else page.send(message))
        self.page = page


class Hold:
    """A `page.route` handler that holds the page's `method` requests (the first `count`; all
    with None) until `release()`, or while `until()` runs if given (something to do while one
    waits); other requests go on (`route.fallback`: to earlier routes, else the server). With
    `answered` the server answers at once and the answer waits: the page reads it late. `tag`
    marks the answer for `tagged_read` (TAG_HEADER); `rewrite` edits its JSON body. `held` is set
    once a request waits, `passed` once one went on. `hold()` holds the next ones again."""

    def __init__(
        self,
        method: str = "GET",
        *,
        count: int | None = 1,
        answered: bool = False,
        tag: str | None = None,
        rewrite: Callable[[Any], None] | None = None,
        until: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.method, self.count, self.answered = method, count, answered
        self.tag, self.rewrite, self.until = tag, rewrite, until
        self.held, self.passed = asyncio.Event(), asyncio.Event()
        self._open = asyncio.Event()
        self._taken = 0

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def __call__(self, route: Route) -> None:
        if route.request.method != self.method or self._taken == self.count:
            await route.fallback()
            return
        self._taken += 1
        self.held.set()
        answer = await route.fetch() if self.answered else None
        await (self.until() if self.until else self._open.wait())
        self.passed.set()
        if answer is None and self.tag is None and self.rewrite is None:
            await route.fallback()
            return
        answer = answer or await route.fetch()
        headers = {**answer.headers, **({TAG_HEADER: self.tag} if self.tag else {})}
        body = None
        if self.rewrite is not None:
            data = await answer.json()
            self.rewrite(data)
            body = json.dumps(data)
        await route.fulfill(response=answer, headers=headers, body=body)


async def select_paragraph(page: Page, index: int) -> None:
    """Select the paragraph (one line of text) with the keyboard, and wait for the editor to have
    that selection: ProseMirror reads the browser's on its next selectionchange, and until then
    it keeps the one before (focus moving to the comment box, or a key, would act on that)."""
    paragraph = page.locator(".letter-body p").nth(index)
    text = [*await block_text(paragraph)]  # code points, as the form counts them
    await paragraph.click()
    await page.keyboard.press("End")
    await page.keyboard.press("Shift+Home")
    quote = "".join(text[:80]) + "…" if len(text) > 80 else "".join(text)
    await expect(page.locator(".comment-target")).to_have_text(f"On: “{quote}”")


# The page's requests for a letter's history (a page of it each).
HISTORY = re.compile(r"/v1/letters/[^/]+/history(\?.*)?$")
