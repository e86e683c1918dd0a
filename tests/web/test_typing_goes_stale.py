"""A colleague whose network drops while he types stops showing as "typing" within seconds.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import asyncio

from playwright.async_api import Browser, expect

from tests.web.browser import EDITABLE, INSERT_AT_END, TABLE_HTML, create_letter, pages, sign_in

TYPING = "Parker Paralegal is typing…"
# Longer than web/src/editor/presence.ts's HEARD_TYPING_MS (3 s) and a render tick (1 s) after it.
SILENCE_S = 5.0


async def test_a_colleague_gone_silent_stops_typing_but_one_deleting_in_place_does_not(
    base_url: str, browser: Browser
) -> None:
    """Chromium's offline emulation stops Parker's frames but keeps his socket open, as a
    dropped network does: no close reaches the server, which took ~30 s (its ping timeout,
    y-protocols' outdated timeout) to remove his awareness, and Avery read "is typing…" until
    then. A reader now believes 'typing' only while it hears that client."""
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(
            avery, "Stale", "Dear Sir,\nThe terms follow, and none of them is open to negotiation."
        )
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await parker.wait_for_selector(EDITABLE)
        await parker.click(".letter-body p >> nth=1")
        await parker.keyboard.press("Home")
        typing_line = avery.locator(".typing")
        parker_status = avery.locator(".users [data-name='Parker Paralegal'] .status")

        # Delete keys leave his caret where it is (no awareness update of their own): he still
        # shows as typing for longer than a reader waits to hear from a typer.
        await parker.keyboard.press("Delete")
        await expect(typing_line).to_have_text(TYPING)
        for _ in range(int(SILENCE_S / 0.25)):
            await asyncio.sleep(0.25)  # a person's pace, not a wait for anything
            await parker.keyboard.press("Delete")
        assert await typing_line.text_content() == TYPING
        assert await parker_status.text_content() == "typing"

        # His network drops mid-word: the line clears within seconds, and he is still listed
        # (his socket is open: the server has not removed him), as active.
        await parker.keyboard.type(" and more", delay=40)
        await parker.context.set_offline(True)
        await expect(typing_line).to_have_text(TYPING)
        await expect(typing_line).to_be_empty(timeout=8_000)  # was ~30 s
        await expect(parker_status).to_have_text("active")
        assert avery.errors == []  # type: ignore[attr-defined]


async def test_copying_or_selecting_all_is_not_typing_but_a_character_is(
    base_url: str, browser: Browser
) -> None:
    """Keys that change nothing (copy, select all, find) left an editor "typing" to everyone for
    2 s: only keys that may change the letter count (presence.ts)."""
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Copy", "Dear Sir,\nThe terms follow.")
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await parker.wait_for_selector(EDITABLE)
        await parker.click(".letter-body p >> nth=1")
        own_status = parker.locator(".users [data-name='Parker Paralegal'] .status")
        seen_status = avery.locator(".users [data-name='Parker Paralegal'] .status")
        typing_line = avery.locator(".typing")

        # His status is published on the key, at once; Ctrl+A also moves his selection, which
        # Avery sees only after the status sent with or before it.
        for key in ["Control+c", "Control+f", "Meta+c", "Control+a"]:
            await parker.keyboard.press(key)
            assert await own_status.inner_text() == "active", key
        await expect(avery.locator(".letter-body .ProseMirror-yjs-selection").first).to_be_visible()
        assert await seen_status.inner_text() == "active"
        assert await typing_line.inner_text() == ""

        await parker.keyboard.press("ArrowRight")
        await parker.keyboard.press("x")
        assert await own_status.inner_text() == "typing"
        await expect(typing_line).to_have_text(TYPING)
        await expect(seen_status).to_have_text("typing")

        # Other layouts: Dvorak's Ctrl+C sits at QWERTY's I (a copy), a Russian Ctrl+V reports
        # "м" (a paste); Alt+Shift+letter is an app shortcut (Alt+Shift+L locks), not a letter.
        await expect(own_status).to_have_text("active", timeout=8_000)
        for key, code, modifiers in [
            ("c", "KeyI", "ctrlKey: true"),
            ("K", "KeyK", "altKey: true, shiftKey: true"),
            ("м", "KeyV", "ctrlKey: true"),
        ]:
            await parker.locator(EDITABLE).evaluate(
                "el => el.dispatchEvent(new KeyboardEvent('keydown',"
                f" {{key: '{key}', code: '{code}', {modifiers}, bubbles: true, cancelable: true}}))"
            )
            assert await own_status.inner_text() == ("typing" if key == "м" else "active"), key

        # What an IME or a phone keyboard writes reports no key ("Process"): its input counts.
        await expect(own_status).to_have_text("active", timeout=8_000)
        await parker.locator(EDITABLE).evaluate(
            "el => el.dispatchEvent(new InputEvent('input',"
            " {inputType: 'insertCompositionText', data: 'か', bubbles: true}))"
        )
        assert await own_status.inner_text() == "typing"

        # Tab in a paragraph moves the focus on; in a list item it indents the item (an edit).
        await expect(own_status).to_have_text("active", timeout=8_000)
        await parker.click(".letter-body p >> nth=1")
        await parker.keyboard.press("End")
        await parker.keyboard.press("Tab")
        assert await own_status.inner_text() == "active"
        await parker.click(".letter-body p >> nth=1")
        await parker.keyboard.press("End")
        await parker.keyboard.press("Enter")
        await parker.keyboard.type("- Costs")
        await parker.keyboard.press("Enter")
        await parker.keyboard.type("Fees")
        await expect(own_status).to_have_text("active", timeout=8_000)
        await parker.keyboard.press("Tab")
        assert await own_status.inner_text() == "typing"
        await expect(avery.locator(".letter-body li li p")).to_contain_text("Fees")
        # The first item cannot be indented: its Tab moves the focus on, changing nothing.
        await expect(own_status).to_have_text("active", timeout=8_000)
        await parker.click(".letter-body li p >> text=Costs")
        await parker.keyboard.press("Tab")
        assert await own_status.inner_text() == "active"
        assert await avery.locator(".letter-body li li").count() == 1
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]


async def test_tab_is_typing_only_when_it_changes_the_letter(
    base_url: str, browser: Browser
) -> None:
    """Tab between a table's cells moves the caret (not typing); in its last cell it adds a row
    (typing). The editor decides in its own keydown handler: presence compares the document."""
    async with pages(browser, 1) as (parker,):
        await sign_in(parker, base_url, "parker")
        await create_letter(parker, "Table", "Dear Sir,")
        await parker.evaluate(INSERT_AT_END, TABLE_HTML)
        own_status = parker.locator(".users [data-name='Parker Paralegal'] .status")
        rows = parker.locator(".letter-body tr")
        await expect(rows).to_have_count(2)
        await parker.click(".letter-body td >> text=a2")
        await expect(own_status).to_have_text("active", timeout=8_000)
        await parker.keyboard.press("Tab")  # to b2
        assert await own_status.inner_text() == "active"
        assert await rows.count() == 2
        await parker.keyboard.press("Tab")  # b2 is the last cell: a row is added
        assert await own_status.inner_text() == "typing"
        await expect(rows).to_have_count(3)
        assert parker.errors == []  # type: ignore[attr-defined]
