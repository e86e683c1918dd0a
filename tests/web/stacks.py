"""`steno-collab dev` stacks for the browser tests (`start_stack`), and the
fixtures that open them: one per process (conftest.py), one per module (`own_base_url`), one on
a Redis of its own (`stack`, `unrestored`: the lock-restoring tests wipe it)."""

import asyncio
import os
import secrets
import sys
import tempfile
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
import pytest_asyncio
import redis.asyncio as aioredis
from playwright.async_api import Browser, Page

from steno_collab.processes import Supervised, free_port, spawn, wait_ready
from tests.support import own_services
from tests.web.browser import FIRST_SECTION, STACK_SECRET, auth, open_letter, pages, post_letter

T = TypeVar("T")

STENO = str(Path(sys.executable).with_name("steno-collab"))


async def start_stack(
    data: Path, port: int, secret: str, dev: bool = True, **settings: str
) -> Supervised:
    """`steno-collab dev` (everything, embedded), or a lone production-mode gateway; `settings`:
    more STENO_* variables, by their lower-case names without the prefix."""
    env = ["env", f"STENO_JWT_SECRET={secret}"]
    env += [f"STENO_{name.upper()}={value}" for name, value in settings.items()]
    if dev:
        args = [*env, STENO, "dev", "--port", str(port), "--data-dir", str(data)]
    else:
        env += [f"STENO_DATA_DIR={data}", "STENO_DEV=false"]
        args = [*env, STENO, "gateway", "--host", "127.0.0.1", "--port", str(port)]
    proc = spawn("steno-collab", args, data / "steno-collab.log", sig=15)

    async def answers() -> bool:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200

    await wait_ready(proc, answers, timeout=60)
    return proc


def opened_fixture(
    opens: Callable[[], AbstractAsyncContextManager[T]],
    scope: Literal["module", "session"] = "module",
    name: str | None = None,
) -> Any:
    """A fixture of `scope` (named as the attribute it is assigned to, or `name`): what
    `opens()` opens, closed once the scope ends."""

    async def fixture() -> AsyncIterator[T]:
        async with opens() as opened:
            yield opened

    return pytest_asyncio.fixture(fixture, scope=scope, loop_scope="session", name=name)


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


# `base_url` for a module that asserts firm- or user-wide state (the letter list, a user's unread
# mentions), which other modules' letters would change: a stack of its own.
own_base_url = opened_fixture(stack_url, name="base_url")


@dataclass
class Stack:
    url: str
    secret: str
    redis: aioredis.Redis
    data_dir: Path
    redis_url: str


@asynccontextmanager
async def own_stack(**settings: str) -> AsyncIterator[Stack]:
    """`steno-collab dev` on a Redis of its own (`settings`: more STENO_* variables)."""
    secret = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="steno-web-") as data:
        services = await own_services(Path(data) / "redis", persistent=False, postgres=False)
        redis = aioredis.Redis.from_url(services.redis_url)
        stack_dir = Path(data) / "stack"
        stack_dir.mkdir()
        port = free_port()
        url = services.redis_url
        proc = await start_stack(stack_dir, port, secret, True, redis_url=url, **settings)
        try:
            yield Stack(f"http://127.0.0.1:{port}", secret, redis, stack_dir, url)
        finally:
            await proc.stop(timeout=30)
            await redis.aclose()
            await services.stop()


stack = opened_fixture(own_stack)
# A stack whose gateway does not restore Redis by itself: a wipe's 503 lasts until
# `restore_by_hand` (the gateway's own restore, woken by the first 503 or its check every 10 s,
# could come before the page's request).
unrestored = opened_fixture(lambda: own_stack(locks_auto_restore="false"))


async def restore_by_hand(stack: Stack) -> str:
    """`steno-collab backfill locks` on the stack's log and Redis: its output."""
    env = {**os.environ, "STENO_DATA_DIR": str(stack.data_dir), "STENO_REDIS_URL": stack.redis_url}
    proc = await asyncio.create_subprocess_exec(
        STENO, "backfill", "locks", env=env, stdout=PIPE, stderr=STDOUT
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def letter_locked_by_parker(stack: Stack, title: str = "Wiped") -> str:
    """A letter Avery created over REST (browser.post_letter) whose first paragraph Parker
    locked."""
    letter = await post_letter(stack.url, stack.secret, title)
    async with httpx.AsyncClient(base_url=stack.url) as http:
        path = f"/v1/letters/{letter}/locks/{quote(FIRST_SECTION)}"
        locked = await http.post(path, headers=auth("parker", secret=stack.secret))
        assert locked.is_success, locked.text
    return letter


@asynccontextmanager
async def avery_on_a_letter(
    stack: Stack, browser: Browser, title: str, people: int = 1, *, locked: bool = False
) -> AsyncIterator[tuple[str, list[Page]]]:
    """A letter `title` Avery created over REST on `stack` (its first paragraph locked by Parker
    with `locked`), and `people` pages (browser.pages), the first Avery's with the letter open."""
    if locked:
        letter = await letter_locked_by_parker(stack, title)
    else:
        letter = await post_letter(stack.url, stack.secret, title)
    async with pages(browser, people) as opened:
        await open_letter(opened[0], stack.url, "avery", letter)
        yield letter, opened
