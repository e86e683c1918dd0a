"""Helpers shared by the tests: waiting on a condition instead of sleeping, free ports, the
CLI as a real process, a started log, a Node script's JSON."""

import asyncio
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar, overload

from eventlog import Log
from eventlog.factory import open_log
from schemas.settings import Settings

T = TypeVar("T")


@overload
async def eventually(
    predicate: Callable[[], Awaitable[T | None]], timeout: float = ..., interval: float = ...
) -> T: ...
@overload
async def eventually(
    predicate: Callable[[], T | None], timeout: float = ..., interval: float = ...
) -> T: ...
async def eventually(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01
) -> Any:
    """Poll `predicate` (sync or async) until it returns a truthy value; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            last = result
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CLI = [sys.executable, "-c", "from steno_collab.cli import main; main()"]
ROOT = Path(__file__).resolve().parents[1]


async def cli_stderr_and_status(
    *args: str, env: dict[str, str], timeout: float = 30
) -> tuple[str, int]:
    """`steno-collab ARGS` as a real process: its stderr and exit status. One still running
    after `timeout` is killed, and the caller's assertion on the status fails: it did not
    notice what it should have refused."""
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        err = b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return err.decode(), proc.returncode if proc.returncode is not None else -9


@asynccontextmanager
async def started_log(settings: Settings) -> AsyncIterator[Log]:
    """The settings' log, started, and closed on the way out (a fixture's `async with`)."""
    log = open_log(settings)
    await log.start()
    try:
        yield log
    finally:
        await log.close()


def node_json(script: Path, node_modules: Path) -> Any:
    """What a Node script (stock npm packages from `node_modules`) prints, as JSON."""
    env = {**os.environ, "NODE_PATH": str(node_modules)}
    out = subprocess.run(["node", str(script)], env=env, capture_output=True, check=True, text=True)
    return json.loads(out.stdout)


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    """Process `pid` stopped (SIGSTOP) for the block: a stalled broker, its sockets still open
    and taking what is sent to them, answering nothing."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
