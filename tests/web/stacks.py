"""`steno-collab dev` stacks for the browser tests, as test_browser.py starts them."""

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest_asyncio

from steno_collab.processes import free_port
from tests.web.browser import STACK_SECRET
from tests.web.test_browser import start_stack


@asynccontextmanager
async def stack_url(**settings: str) -> AsyncIterator[str]:
    """`steno-collab dev` signing with STACK_SECRET in a data dir of its own (`settings`: as
    start_stack's): its URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="steno-web-") as data:
        proc = await start_stack(Path(data), port, STACK_SECRET, True, **settings)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await proc.stop(timeout=30)


@pytest_asyncio.fixture(scope="module", loop_scope="session", name="base_url")
async def own_base_url() -> AsyncIterator[str]:
    """`base_url` for a module that asserts firm- or user-wide state (the letter list, a
    user's unread mentions), which other modules' letters would change: a stack of its own."""
    async with stack_url() as url:
        yield url
