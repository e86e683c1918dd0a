"""Every aiokafka client a test opens must be closed when its teardown ends (tests/conftest.py).

A client left open keeps its metadata task on the session's event loop: once its broker is
gone (a test's own Tansu, stopped) it retries for the rest of the worker's run and logs an
aiokafka ERROR into whichever test runs then (CI: test_snapshotter_entry_dev_died, long after
the test that leaked it). `track()` wraps `AIOKafkaClient.__init__` (every producer, consumer
and admin client builds one), noting who made each client; `left_open(owner)` lists those of
`owner` still open, and stops them, so that one leak fails its own test and no later one.
"""

import sys
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.client import AIOKafkaClient

REPO = str(Path(__file__).resolve().parent.parent)


@dataclass
class Made:
    owner: object  # the test item, or the wider-scoped fixture being set up, that made it
    where: str  # the first frames of ours that made it
    closed: bool = False  # close() was called


_made: "weakref.WeakKeyDictionary[AIOKafkaClient, Made]" = weakref.WeakKeyDictionary()
owners: list[object] = []  # innermost last: the running test, a wider fixture being set up


def track() -> None:
    """Note every AIOKafkaClient made from now on, and its close() (once per process)."""
    init, close = AIOKafkaClient.__init__, AIOKafkaClient.close
    if getattr(init, "tracked", False):
        return

    def tracked_init(self: AIOKafkaClient, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if owners:
            _made[self] = Made(owners[-1], _ours(sys._getframe(1)))

    async def tracked_close(self: AIOKafkaClient) -> None:
        made = _made.get(self)
        if made is not None:
            made.closed = True
        await close(self)

    tracked_init.tracked = True  # type: ignore[attr-defined]
    AIOKafkaClient.__init__ = tracked_init
    AIOKafkaClient.close = tracked_close


def _ours(frame: Any) -> str:
    """The first three frames of the repository's code (not aiokafka's) on the stack."""
    found: list[str] = []
    while frame is not None and len(found) < 3:
        path = frame.f_code.co_filename
        if path.startswith(REPO) and "/.venv/" not in path:
            found.append(f"{path[len(REPO) + 1 :]}:{frame.f_lineno}")
        frame = frame.f_back
    return " < ".join(found) or "?"


def _open(client: AIOKafkaClient, made: Made) -> bool:
    # close() cancels and clears the metadata task and closes every connection: aiokafka
    # keeps no closed flag of its own. A started one never closed counts whatever its task's
    # state: the last test of a session ends after its event loop cancelled every task.
    task = client._sync_task
    if task is not None and not made.closed:
        return True
    if task is not None and not task.done():
        return True
    return any(conn.connected() for conn in client._conns.values())


def _stop(client: AIOKafkaClient) -> None:
    """What close() would do, without the loop (not running between tests)."""
    if client._sync_task is not None:
        client._sync_task.cancel()
    for conn in client._conns.values():
        conn.close()


def left_open(owner: object) -> list[str]:
    """Those of `owner`'s clients still open, each named by where it was made; stopped."""
    found = [(c, m) for c, m in list(_made.items()) if m.owner is owner and _open(c, m)]
    for client, _ in found:
        _stop(client)
    return [f"{client!r} made at {made.where}" for client, made in found]
