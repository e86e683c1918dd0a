"""Child processes that cannot outlive us: spawn, wait until ready, stop, clean up orphans.

Used by the embedded services (steno_collab.embedded) and the test harness (Tansu broker).

Why PR_SET_PDEATHSIG: a SIGKILLed parent runs no cleanup code, so only the kernel can stop its
children. The signal is tied to the *thread* that forked, so `spawn` must be called from a thread
that lives as long as the child (the event loop thread; never from `asyncio.to_thread`). It is set
in `preexec_fn`, which CPython runs after the uid/gid switch: a credential change would clear it.
"""

import asyncio
import atexit
import ctypes
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_LIVE: set["Supervised"] = set()


class ServiceStartError(RuntimeError):
    """An embedded service could not be started (the message says why and where its log is)."""


class ServiceExited(ServiceStartError):
    """It exited before it answered (a port taken meanwhile, among other causes)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Supervised:
    """One running child process and how to stop it politely."""

    def __init__(self, name: str, popen: "subprocess.Popen[bytes]", log: Path, sig: int) -> None:
        self.name = name
        self.popen = popen
        self.log = log
        self.stop_signal = sig

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def stop(self, timeout: float = 20.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(self.stop_signal)
        try:
            await asyncio.to_thread(self.popen.wait, timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            await asyncio.to_thread(self.popen.wait)
        _LIVE.discard(self)

    def stop_now(self, timeout: float = 10.0) -> None:
        """Synchronous stop, for atexit."""
        if self.popen.poll() is None:
            self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        _LIVE.discard(self)


def _die_with_parent(sig: int) -> Callable[[], None]:
    parent = os.getpid()
    return lambda: exit_with_parent(parent, sig)


def exit_with_parent(parent: int, sig: int = signal.SIGTERM) -> None:
    """In a child process: have the kernel send `sig` when its parent (pid `parent`) dies."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def spawn(name: str, args: list[str], log: Path, sig: int, user: str | None = None) -> Supervised:
    """Start `args` with output appended to `log`; `sig` stops it, also when we die."""
    log.parent.mkdir(parents=True, exist_ok=True)
    creds: dict[str, object] = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        creds = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Own session: a terminal's Ctrl-C reaches only us; we stop children in order.
            start_new_session=True,
            preexec_fn=_die_with_parent(sig),
            **creds,  # type: ignore[call-overload]
        )
    proc = Supervised(name, popen, log, sig)
    _LIVE.add(proc)
    return proc


async def wait_ready(
    proc: Supervised, check: Callable[[], Awaitable[bool]], timeout: float = 60.0
) -> None:
    """Poll `check` until it answers True; fail early with the log if the process exits."""
    deadline = time.monotonic() + timeout
    while True:
        code = proc.popen.poll()
        if code is not None:
            _LIVE.discard(proc)
            raise ServiceExited(
                f"{proc.name} exited with code {code} while starting; log {proc.log}:\n"
                f"{proc.log_tail()}"
            )
        try:
            if await check():
                return
        except Exception:  # refused, reset, "starting up": all mean "not yet"
            pass
        if time.monotonic() > deadline:
            await proc.stop()
            raise ServiceStartError(f"{proc.name} did not answer within {timeout}s; log {proc.log}")
        await asyncio.sleep(0.05)


def kill_orphan(pidfile: Path, process_name: str, sig: int, timeout: float = 15.0) -> None:
    """Stop a server left running by an unclean stop, then forget its pid file.

    Only a process with that name whose working directory is the pid file's folder counts: after
    a reboot the pid may belong to anything. Callers hold the data-dir lock, so a live match is
    an orphan, not a sibling.
    """
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pidfile.unlink(missing_ok=True)
        return
    if _is_our_server(pid, process_name, pidfile.parent):
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Running, not a zombie (a zombie has exited; only its parent's wait() is missing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _is_our_server(pid: int, process_name: str, directory: Path) -> bool:
    try:
        exe = Path(os.readlink(f"/proc/{pid}/exe")).name
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return exe == process_name and cwd.resolve() == directory.resolve()


@atexit.register
def _stop_all() -> None:
    for proc in list(_LIVE):
        proc.stop_now()
