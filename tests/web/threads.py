"""The page's requests for a letter's threads answered with other anchors than the server's (the
server never lists such: it refuses them, and resolves what it stores)."""

import re
from collections.abc import Callable
from typing import Any

from playwright.async_api import Page, Route

COMMENTS = re.compile(r"/v1/letters/[^/]+/comments$")


async def rewrite_anchors(page: Page, anchor: Callable[[str], dict[str, Any]]) -> None:
    """Each thread listed to `page` gets `anchor(thread_id)`'s fields over its own."""

    async def rewrite(route: Route) -> None:
        if route.request.method != "GET":
            await route.continue_()
            return
        response = await route.fetch()
        listed = await response.json()
        for thread in listed["threads"]:
            thread["anchor"].update(anchor(thread["thread_id"]))
        await route.fulfill(response=response, json=listed)

    await page.route(COMMENTS, rewrite)
