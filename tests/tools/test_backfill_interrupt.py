"""Ctrl-C during `backfill`: the terminal sends SIGINT to its foreground process group. The
projector's worker processes are in a group of their own and ignore SIGINT (the parent stops
them): the command says it was interrupted (exit 130), once, without a worker's KeyboardInterrupt
traceback or another error in its place, and leaves no worker running."""

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
from steno_collab import cli
from tests.support import eventually
from tests.tools.cli import cli_env
from tests.tools.processes import alive, process_state
from tests.tools.test_backfill import typing

LETTERS = ("typed-a", "typed-b", "typed-c", "typed-d", "typed-e", "typed-f")
INTERRUPTED = "steno-collab backfill: interrupted; run the same command again to continue"


@pytest.fixture
def log_kind() -> str:
    return "embedded"


def _workers(pid: int) -> set[int]:
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


class Run:
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
            workers = _workers(self.proc.pid)
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
) -> AsyncIterator[Run]:
    """`backfill projector --reset --workers 2` over a seeded log, run by `program` (`python -c`,
    the command's arguments after it), killed with its group if still running at the end."""
    settings = make_settings(partitions=4)
    log = open_log(settings)
    await log.start()
    try:
        for letter_id in LETTERS:
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
    run = Run(proc, settings)
    run.ends = ends
    try:
        yield run
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.communicate()


@pytest.mark.parametrize("folding", [False, True], ids=["starting", "folding"])
async def test_ctrl_c_says_interrupted_without_tracebacks(
    make_settings: Callable[..., Settings], folding: bool
) -> None:
    async with backfill_run(make_settings) as run:
        workers = await run.workers_when(folding)
        os.killpg(run.proc.pid, signal.SIGINT)
        code, _, err = await run.ended()
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1] == INTERRUPTED, err
    assert not any(alive(w) for w in workers)  # the parent stopped them


async def test_workers_ignore_sigint(make_settings: Callable[..., Settings]) -> None:
    """A SIGINT that reaches a worker all the same is ignored (they used to die of the group's,
    a traceback each, and the run failed)."""
    async with backfill_run(make_settings) as run:
        for worker in await run.workers_when(folding=True):
            os.kill(worker, signal.SIGINT)
        code, out, err = await run.ended()
    assert code == 0, err
    assert "Traceback" not in err, err
    assert "backfill done:" in out


# The command with its work replaced by one that a cancel makes fail otherwise, as a commit cut
# short by the interrupt does (PostgreSQL then says "position is no longer N").
CUT_SHORT = """
import asyncio
from snapshotter.store import StalePositionError
from steno_collab.cli import main
from steno_collab.commands import backfill

async def work(settings, args, since):
    print("working", flush=True)
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        raise StalePositionError("snapshotter letters/1: position is no longer 1000") from None

backfill._backfill = work
main(["backfill", "snapshotter"])
"""


async def test_an_error_the_interrupt_caused_is_reported_as_the_interrupt(tmp_path: Path) -> None:
    env = os.environ | {"STENO_DATA_DIR": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CUT_SHORT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"working\n"
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    assert proc.returncode == 130, err.decode()
    assert err.decode().splitlines() == [INTERRUPTED]


def test_a_ctrl_c_while_the_commands_are_imported_is_exit_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The parser imports the command's modules (up to seconds): a Ctrl-C then was a traceback."""

    def interrupted(_argv: object = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    with pytest.raises(SystemExit) as exited:
        cli.main(["backfill", "projector"])
    assert exited.value.code == 130 and capsys.readouterr().err == ""


async def test_ctrl_z_stops_the_workers_with_the_command(
    make_settings: Callable[..., Settings],
) -> None:
    """A terminal's Ctrl-Z stops its foreground job's group: workers in a group of their own
    folded on while the command was stopped (its lease lapsing meanwhile)."""
    async with backfill_run(make_settings) as run:
        workers = await run.workers_when(folding=True)
        # What Ctrl-Z's SIGTSTP does to the foreground group (the kernel drops SIGTSTP for a
        # group with no parent in its session, as this test's: SIGSTOP stops it alike).
        os.killpg(run.proc.pid, signal.SIGSTOP)

        def stopped() -> bool:  # the command, and its workers still there (one at least)
            left = [state for state in map(process_state, workers) if state]
            return process_state(run.proc.pid) == "T" and bool(left) and set(left) == {"T"}

        await eventually(stopped, 10)
        os.killpg(run.proc.pid, signal.SIGCONT)
        code, out, err = await run.ended()
    assert code == 0, err
    assert "backfill done:" in out
