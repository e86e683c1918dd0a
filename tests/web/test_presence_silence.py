"""A colleague whose network drops silently shows as away within ~20 s, not active until the
server or y-protocols forgets him (~30-45 s); his next awareness renewal shows him active again.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py). The 20 s of silence are not waited for: his awareness entry's last
renewal (y-protocols' `meta.lastUpdated`, what presence.ts reads) is set to 21 s ago on Avery's
page.
"""

from playwright.async_api import Browser, expect

from tests.support import eventually
from tests.web.browser import EDITABLE, create_letter, pages, sign_in

# The page's awareness, through the TipTap editor on the letter's element.
_AWARENESS = """document.querySelector('.letter-body').editor.extensionManager.extensions
  .find((extension) => extension.name === 'collaborationCaret').options.provider.awareness"""
# The last renewal heard from the client named `name`: `ms` ago.
_HEARD_EARLIER = f"""([name, ms]) => {{
  const awareness = {_AWARENESS}
  const [clientId] = [...awareness.getStates()].find(([, state]) => state.user?.name === name)
  awareness.meta.get(clientId).lastUpdated = Date.now() - ms
}}"""
# What y-protocols does every 15 s: the same state again, with a new clock.
_RENEW = f"""() => {{
  const awareness = {_AWARENESS}
  awareness.setLocalState(awareness.getLocalState())
}}"""


async def test_a_colleague_gone_silent_shows_away_until_heard_again(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Silent", "Dear Sir,\nThe terms follow.")
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await parker.wait_for_selector(EDITABLE)
        parker_seen = avery.locator(".users [data-name='Parker Paralegal'] .status")
        await expect(parker_seen).to_have_text("active")

        # His network drops without a close (Chromium's offline emulation keeps the socket): he
        # is not heard from; 21 s later, by his entry's clock, Avery's list says so at its next
        # tick. He is still listed: the server has not removed him.
        await parker.context.set_offline(True)

        async def away() -> bool:
            # Again until seen: a frame he sent just before the drop may still arrive.
            await avery.evaluate(_HEARD_EARLIER, ["Parker Paralegal", 21_000])
            return await parker_seen.text_content() == "away"

        await eventually(away, timeout=10, interval=0.2)
        own = avery.locator(".users [data-name='Avery Attorney'] .status")
        await expect(own).to_have_text("active")  # her own entry is not "heard": it is hers

        # His network is back: the next renewal (the same state, a new clock) makes him active.
        await parker.context.set_offline(False)
        await parker.evaluate(_RENEW)
        await expect(parker_seen).to_have_text("active")
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]
