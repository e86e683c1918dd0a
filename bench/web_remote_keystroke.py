"""Benchmark: what a colleague's keystroke costs the other pages' main thread on a long letter.

    .venv/bin/python bench/web_remote_keystroke.py [--paragraphs 1500] [--keys 50] [--profile]

`steno-collab dev` on a scratch data dir, a letter of `paragraphs` paragraphs (~125 characters
each: 1,500 make ~190 kB) with 31 comment threads across it and two section locks, created
through the REST API; Debian's Chromium (Playwright) opens it as Avery (A) and Parker (B). A
types `keys` characters into a paragraph in the middle, one at a time; for each, B's main-thread
time (CDP `Performance.getMetrics` TaskDuration and ScriptDuration, deltas) is read from just
before the key until B has shown it and its carets' redraw has passed. Prints the medians;
`--profile` also prints B's hottest functions (CDP Profiler, self time) over the keystrokes;
`--bundle DIR` serves the pages another build of web/ (`npx vite build --minify false --outDir
DIR`: readable function names) instead of web/dist.
web/README.md, "Long letters", records the figures.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import CDPSession, Page, Route, async_playwright

# Run as the browser tests run; tests/ is not an installed package, so the root goes on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gateway.auth import mint_token
from schemas.settings import Settings
from steno_collab.processes import free_port
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, STACK_SECRET, open_letter, pages
from tests.web.stacks import start_stack

WORDS = (
    "the claimant sustained injuries at the premises owned by your insured on March 14 and "
    "requests full compensation for medical expenses lost wages and pain and suffering "
).split()
SETTLE_S = 0.15  # after B shows the key: y-tiptap redraws carets in a timeout after awareness


def paragraph(n: int) -> str:
    words = [WORDS[(n * 7 + i) % len(WORDS)] for i in range(21)]
    return f"{n + 1}. " + " ".join(words).capitalize() + "."


async def build_letter(base_url: str, paragraphs: int) -> str:
    settings = Settings(jwt_secret=STACK_SECRET)
    headers = {"Authorization": "Bearer " + mint_token(settings, "avery", "demo-firm")}
    content = "\n".join(paragraph(n) for n in range(paragraphs))
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        created = await client.post(
            "/v1/letters", json={"firm_id": "demo-firm", "title": "Long demand", "content": content}
        )
        created.raise_for_status()
        letter: str = created.json()["letter_id"]
        starts = [0]
        for line in content.split("\n"):
            starts.append(starts[-1] + len(line) + 1)
        for i in range(31):
            at = starts[(i * paragraphs) // 31] + 4
            anchor = {"from": at, "to": at + 20}
            body = {"body": f"Check this ({i})", "anchor": anchor, "mentions": []}
            (await client.post(f"/v1/letters/{letter}/comments", json=body)).raise_for_status()
        for section in ("paragraph 3", f"paragraph {paragraphs // 3}"):
            (await client.post(f"/v1/letters/{letter}/locks/{section}")).raise_for_status()
    return letter


async def metrics(cdp: CDPSession) -> dict[str, float]:
    found = await cdp.send("Performance.getMetrics")
    return {m["name"]: m["value"] for m in found["metrics"]}


PARTS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")


async def keystroke(
    typist: Page, reader: Page, cdp: CDPSession, key: str, own: CDPSession | None = None
) -> list[float]:
    """B's task, script, layout and style time for one key A types, and A's task time: ms."""
    await reader.evaluate(
        """() => { window.__shown = new Promise((resolve) => {
          const seen = new MutationObserver(() => { seen.disconnect(); resolve(true) })
          seen.observe(document.querySelector('.letter-body'),
            { characterData: true, childList: true, subtree: true })
        }) }"""
    )
    before = await metrics(cdp)
    typing = await metrics(own) if own else {}
    await typist.keyboard.type(key)
    await reader.evaluate("() => window.__shown")
    await asyncio.sleep(SETTLE_S)
    after = await metrics(cdp)
    typed = (await metrics(own))["TaskDuration"] - typing["TaskDuration"] if own else 0.0
    return [(after[part] - before[part]) * 1000 for part in PARTS] + [typed * 1000]


def hottest(profile: dict[str, Any], top: int) -> list[tuple[str, float]]:
    """Self time per function (ms), from the samples of a CDP CPU profile."""
    interval = (profile["endTime"] - profile["startTime"]) / max(1, len(profile["samples"])) / 1000
    hits = Counter(profile["samples"])
    by_name: dict[str, float] = {}
    for node in profile["nodes"]:
        frame = node["callFrame"]
        where = f"{frame['url'].rsplit('/', 1)[-1]}:{frame['lineNumber']}"
        name = f"{frame['functionName'] or '(anonymous)'} {where}"
        by_name[name] = by_name.get(name, 0.0) + hits[node["id"]] * interval
    return sorted(by_name.items(), key=lambda item: -item[1])[:top]


async def serve_bundle(page: Page, bundle: Path) -> None:
    """The page's index and assets from `bundle` (the API still from the gateway)."""

    async def local(route: Route) -> None:
        path = route.request.url.split("?")[0].split("#")[0].split("/", 3)[3]
        await route.fulfill(path=bundle / (path if path.startswith("assets/") else "index.html"))

    await page.route(lambda url: "/assets/" in url or url.split("?")[0].endswith("/"), local)


async def run(paragraphs: int, keys: int, profile: bool, bundle: Path | None) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="steno-bench-") as data:
        stack = await start_stack(Path(data), port, STACK_SECRET)
        try:
            base_url = f"http://127.0.0.1:{port}"
            letter = await build_letter(base_url, paragraphs)
            async with async_playwright() as playwright:
                # A routed page counts as not local: its WebSocket to 127.0.0.1 would be refused.
                extra = ["--disable-features=LocalNetworkAccessChecks"] if bundle else []
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS + extra
                )
                async with pages(browser, 2) as (typist, reader):
                    for page in (typist, reader):
                        page.set_default_timeout(60_000)  # a long letter loads slowly
                    if bundle:
                        await serve_bundle(typist, bundle)
                        await serve_bundle(reader, bundle)
                    await open_letter(reader, base_url, "parker", letter)
                    await open_letter(typist, base_url, "avery", letter)
                    await reader.wait_for_selector(".comment-anchor")
                    await reader.locator(".letter-body p").nth(10).click()
                    middle = typist.locator(".letter-body p").nth(paragraphs // 2)
                    await middle.scroll_into_view_if_needed()
                    await middle.click()
                    await typist.keyboard.press("End")
                    cdp = await reader.context.new_cdp_session(reader)
                    await cdp.send("Performance.enable")
                    own = await typist.context.new_cdp_session(typist)
                    await own.send("Performance.enable")
                    for _ in range(5):  # warm up
                        await keystroke(typist, reader, cdp, "x")
                    if profile:
                        await cdp.send("Profiler.enable")
                        await cdp.send("Profiler.setSamplingInterval", {"interval": 200})
                        await cdp.send("Profiler.start")
                    costs = [
                        await keystroke(typist, reader, cdp, "abcdefgh "[i % 9], own)
                        for i in range(keys)
                    ]
                    tasks = sorted(cost[0] for cost in costs)
                    medians = [statistics.median(cost[n] for cost in costs) for n in range(5)]
                    print(
                        f"{paragraphs} paragraphs, {keys} keys: B's main thread per remote key, "
                        f"medians: task {medians[0]:.1f} ms (p90 {tasks[int(keys * 0.9)]:.1f}), "
                        f"script {medians[1]:.1f}, layout {medians[2]:.1f}, "
                        f"style {medians[3]:.1f}; A's own per key: task {medians[4]:.1f} ms"
                    )
                    if profile:
                        found = (await cdp.send("Profiler.stop"))["profile"]
                        for name, ms in hottest(found, 25):
                            print(f"  {ms / keys:7.2f} ms/key  {name}")
                await browser.close()
        finally:
            await stack.stop(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paragraphs", type=int, default=1500)
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--bundle", type=Path, default=None)
    args = parser.parse_args()
    asyncio.run(run(args.paragraphs, args.keys, args.profile, args.bundle))


if __name__ == "__main__":
    main()
