"""Debian's Chromium driven by Playwright, and the page-level steps the browser tests share."""

import os
import shutil
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, Playwright, expect

CHROMIUM = os.environ.get("STENO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
TIMEOUT_MS = 10_000  # generous: CI shares two cores with the whole suite
expect.set_options(timeout=TIMEOUT_MS)


async def launch(playwright: Playwright) -> Browser:
    if shutil.which(CHROMIUM) is None:
        raise RuntimeError(
            f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (make test does)"
        )
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


async def new_page(
    browser: Browser, width: int = 1280, height: int = 800
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    return context, page


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


async def saved(page: Page) -> None:
    """Connected, synced and no local edit waiting for the server's echo."""
    await page.wait_for_selector(
        ".connection[data-link=connected][data-pending=false][data-tone=ok]"
    )


async def type_at_end(page: Page, text: str) -> None:
    await page.click(".letter-body p >> nth=-1")
    await page.keyboard.press("End")
    await page.keyboard.type(text, delay=40)


# The letter's text, one line per block, without the carets' name labels.
_TEXT = """() => [...document.querySelectorAll('.letter-body > *')].map((block) => {
  const copy = block.cloneNode(true)
  copy.querySelectorAll('.collaboration-carets__caret').forEach((caret) => caret.remove())
  return copy.textContent
}).join('\\n')"""


async def body_text(page: Page) -> str:
    text: str = await page.evaluate(_TEXT)
    return text


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
