"""Helpers shared by the tests: waiting on a condition instead of sleeping, free ports and
services that listen on them, the CLI as a real process, a started log, a Node script's JSON."""

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

import httpx

from eventlog import Log
from eventlog.factory import open_log
from schemas.settings import Settings
from steno_collab.embedded import EmbeddedPostgres, EmbeddedServices, on_a_free_port
from steno_collab.processes import ServiceExited

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


def bound_socket() -> socket.socket:
    """A socket bound to a free loopback port and kept, for an in-process server to listen on
    (uvicorn's `serve(sockets=[...])`): unlike a `free_port`, nothing else can take it first,
    and uvicorn's own failed bind would be a SystemExit in the tests' event loop."""
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets accepted from one that says
    # so, and without it small frames wait for Nagle (a peer's relay arrives late).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


# A port from `free_port` is released before the service binds it: with two test workers the
# other one's service can take it meanwhile. Ours then fails to bind (and exits), while the
# other answers on "our" port: ready means our own process listens there, else another port
# (`on_a_free_port`, as the embedded services do).


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds the socket listening on 127.0.0.1:`port` (Linux /proc)."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # exited
        return False
    sockets = set()
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            sockets.add(target[len("socket:[") : -1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()  # sl local_address rem_address st ... inode
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and int(local.split(":")[1], 16) == port and inode in sockets:
            return True
    return False


async def spawn_listening(
    start: Callable[[int], Awaitable[asyncio.subprocess.Process]],
    ready: Callable[[int], Awaitable[bool]] | None = None,
    timeout: float = 30.0,
) -> tuple[asyncio.subprocess.Process, int]:
    """`start(port)` on a free port; returns the process and its port once it listens there
    itself and `ready(port)` (False for "not yet"). One that exits first (its bind failed) is
    started again on another port; one not up within `timeout` is killed."""

    async def attempt() -> tuple[asyncio.subprocess.Process, int]:
        port = free_port()
        proc = await start(port)

        async def settled() -> bool:
            if proc.returncode is not None:
                return True
            return listens(proc.pid, port) and (ready is None or await ready(port))

        try:
            await eventually(settled, timeout, interval=0.05)
        except BaseException:  # not up in time, or cancelled
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if proc.returncode is not None:
            raise ServiceExited(
                f"process {proc.pid} exited with {proc.returncode} before listening on {port}"
            )
        return proc, port

    return await on_a_free_port(attempt)


async def gateway_ready(port: int) -> bool:
    """Whatever listens on `port` answers the gateway's /readyz with 200 (False: not yet)."""
    try:
        async with httpx.AsyncClient() as http:
            return (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
    except httpx.TransportError:
        return False


async def own_services(directory: Path, **kw: Any) -> EmbeddedServices:
    """`EmbeddedServices(directory, **kw)`, started: each server its own on its port (the
    supervisor checks whose answer it gets, and takes another port if its bind failed)."""
    svc = EmbeddedServices(directory, **kw)
    await svc.start()
    return svc


async def own_postgres(directory: Path) -> EmbeddedPostgres:
    """`EmbeddedPostgres(directory)` (no durability), started, as `own_services`."""
    pg = EmbeddedPostgres(directory, persistent=False)
    await pg.start()
    return pg


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
    and taking what is sent to them, answering nothing. From the moment ALL its threads are:
    the kernel hands SIGSTOP to one of them, and until that one runs (44 ms late seen on a
    loaded machine) the others still answer requests."""
    os.kill(pid, signal.SIGSTOP)
    try:
        _wait_stopped(pid)
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _wait_stopped(pid: int, timeout_s: float = 10.0) -> None:
    """Until every thread of `pid` is stopped (state T in /proc: works for any process, not
    only our children, whom `os.waitid` could tell)."""
    deadline = time.monotonic() + timeout_s
    while not all(
        _thread_state(pid, tid) in ("T", "t", "Z", "X", None)
        for tid in os.listdir(f"/proc/{pid}/task")
    ):
        assert time.monotonic() < deadline, f"process {pid} did not stop within {timeout_s} s"
        time.sleep(
            0.001
        )  # nothing to wait on for another's process: the kernel only says so in /proc


def _thread_state(pid: int, tid: str) -> str | None:
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]  # the name may hold spaces and ")"
    except (FileNotFoundError, ProcessLookupError):
        return None  # the thread ended meanwhile
