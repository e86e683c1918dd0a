"""Fixtures of the browser tests. One `steno-collab dev` stack per pytest process (each xdist
worker) behind `base_url`: a stack per module was ~35 starts of its PostgreSQL, Redis and
services (4-6 s each under the suite's load). The tests on it make letters of their own; a
module that asserts firm- or user-wide state takes `own_base_url` (stacks.py), which overrides
this `base_url` there. And one Chromium per process behind `browser`."""

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser

from tests.support import spawn_listening
from tests.web.browser import chromium
from tests.web.bundle import WEB
from tests.web.stacks import opened_fixture, stack_url
from tests.web.web_modules import web_node_modules

shared_stack_url = opened_fixture(stack_url, "session")
shared_browser = opened_fixture(chromium, "session")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir outside pytest's basetemp: a concurrent pytest run chmods that to 0700, and the
    embedded PostgreSQL (an unprivileged user when we are root) must traverse the parents."""
    with tempfile.TemporaryDirectory(prefix="steno-web-") as path:
        yield Path(path)


@pytest.fixture(scope="module")
def base_url(shared_stack_url: str) -> str:
    """The stack every module shares: a test makes letters of its own there and asserts nothing
    of the firm's or a user's other letters (else: stacks.py's `own_base_url`)."""
    return shared_stack_url


@pytest.fixture(scope="module")
def browser(shared_browser: Browser) -> Browser:
    """The Chromium every module shares; each test opens contexts of its own and closes them."""
    return shared_browser


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def dev_server() -> AsyncIterator[str]:
    """`npm run dev` (Vite's dev server) on a free port: its URL."""
    vite = web_node_modules() / ".bin" / "vite"

    async def start(port: int) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            str(vite), "--host", "127.0.0.1", "--port", str(port), "--strictPort",
            cwd=WEB, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    async def answers(port: int) -> bool:
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"http://127.0.0.1:{port}/")).status_code == 200
        except httpx.TransportError:
            return False

    proc, port = await spawn_listening(start, answers, timeout=60)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        await proc.wait()
