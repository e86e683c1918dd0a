"""Ctrl-C during `backfill`: the terminal sends SIGINT to its foreground process group. The
projector's worker processes are in a group of their own and ignore SIGINT (the parent stops
them): the command says it was interrupted (exit 130), once, without a worker's KeyboardInterrupt
traceback or another error in its place, and leaves no worker running."""

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.settings import Settings
from steno_collab import cli
from tests.support import eventually
from tests.tools.processes import alive, backfill_run, process_state

INTERRUPTED = "steno-collab backfill: interrupted; run the same command again to continue"


@pytest.fixture
def log_kind() -> str:
    return "embedded"


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
