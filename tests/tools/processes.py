"""A process's life as /proc shows it, and `backfill projector` run as a terminal's foreground
job (tests of commands that start workers)."""

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from eventlog.factory import open_log
from schemas.events import Topic
from schemas.keys import projector_position_key
from schemas.settings import Settings
from tests.support import eventually
from tests.tools.backfill_logs import typing
from tests.tools.cli import cli_env

TYPED = ("typed-a", "typed-b", "typed-c", "typed-d", "typed-e", "typed-f")


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()  # reaped by the parent: gone


def process_state(pid: int) -> str:
    """The process's state letter ("T": stopped), "" once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def backfill_workers(pid: int) -> set[int]:
    """The worker processes of the backfill process `pid`."""
    found: set[int] = set()
    if not Path(f"/proc/{pid}/task").exists():  # ended and reaped; its returncode comes next
        return found
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            for child in f.read().split():
                with contextlib.suppress(OSError), open(f"/proc/{child}/cmdline", "rb") as c:
                    if b"_worker_from_stdin" in c.read():
                        found.add(int(child))
    return found


class BackfillRun:
    """`backfill projector --reset --workers 2` in its own process group (a terminal's
    foreground job), over a log of four partitions folded 20 records at a time."""

    def __init__(self, proc: asyncio.subprocess.Process, settings: Settings) -> None:
        self.proc, self.settings = proc, settings
        self.ends: dict[int, int] = {}

    async def workers_when(self, folding: bool) -> set[int]:
        """The two workers, once they run and the positions have moved (`folding`) or not."""
        assert self.settings.redis_url is not None
        topic = self.settings.topic(Topic.LETTERS)
        keys = [projector_position_key(topic, p) for p in sorted(self.ends)]
        redis = aioredis.Redis.from_url(self.settings.redis_url)

        async def ready() -> set[int]:
            if self.proc.returncode is not None:
                _, err = await self.proc.communicate()
                pytest.fail(f"the backfill ended before it was interrupted: {err.decode()[-2000:]}")
            done = sum(int(v or 0) for v in await redis.mget(keys))
            workers = backfill_workers(self.proc.pid)
            moved = 0 < done < sum(self.ends.values())
            return workers if len(workers) == 2 and moved == folding else set()

        try:
            return await eventually(ready, 60, 0.005)
        finally:
            await redis.aclose()

    async def ended(self) -> tuple[int, str, str]:
        out, err = await asyncio.wait_for(self.proc.communicate(), 60)
        assert self.proc.returncode is not None
        return self.proc.returncode, out.decode(), err.decode()


CLI_MAIN = "from steno_collab.cli import main; main()"


@contextlib.asynccontextmanager
async def backfill_run(
    make_settings: Callable[..., Settings],
    program: str = CLI_MAIN,
) -> AsyncIterator[BackfillRun]:
    """`backfill projector --reset --workers 2` over a seeded log, run by `program` (`python -c`,
    the command's arguments after it), killed with its group if still running at the end."""
    settings = make_settings(partitions=4)
    log = open_log(settings)
    await log.start()
    try:
        for letter_id in TYPED:
            await typing(log, settings, letter_id, 400)
        ends = {p: e for p, e in (await log.end_offsets(settings.topic(Topic.LETTERS))).items()}
        assert len([e for e in ends.values() if e]) > 1  # a share for each worker
    finally:
        await log.close()
    # Small batches: positions move often, so the signal lands mid-run.
    env = cli_env(settings, STENO_PROJECTOR_BATCH_RECORDS="20", STENO_PROJECTOR_FOLLOW_BATCH="20")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", program,
        "backfill", "projector", "--reset", "--workers", "2", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    run = BackfillRun(proc, settings)
    run.ends = ends
    try:
        yield run
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.communicate()
