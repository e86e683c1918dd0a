"""One `steno-collab dev` stack per pytest process (each xdist worker) for the browser tests
that take test_browser.py's `base_url`: a stack per module was ~35 starts of its PostgreSQL,
Redis and services (4-6 s each under the suite's load). The tests on it make letters of their
own; a module that asserts firm- or user-wide state takes `own_base_url` (stacks.py). And one
Chromium per process for test_browser.py's `browser`."""

from collections.abc import AsyncIterator

import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from tests.web.browser import launch
from tests.web.stacks import stack_url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_stack_url() -> AsyncIterator[str]:
    async with stack_url() as url:
        yield url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            yield browser
        finally:
            await browser.close()
