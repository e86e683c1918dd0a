"""The gateway, projector and snapshotter as separate processes on one embedded log (README
"Stale connections": the gateway writes it, the others read it), in either start order: none
takes the writer lock from the gateway, and a log not created yet is created by whoever starts
first."""

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from eventlog.errors import LogUnavailableError
from eventlog.factory import open_log
from schemas.settings import Settings
from tests.support import ROOT, gateway_ready, spawn_listening

STENO_COLLAB = str(Path(sys.executable).parent / "steno-collab")  # as an operator starts it


async def _spawn(
    stack: AsyncExitStack, tmp_path: Path, command: str, env: dict[str, str]
) -> asyncio.subprocess.Process:
    """`steno-collab COMMAND` listening (the gateway ready, the others serving /metrics)."""
    flag = "--port" if command == "gateway" else "--metrics-port"

    async def start(port: int) -> asyncio.subprocess.Process:
        with (tmp_path / f"{command}.err").open("ab") as err:
            return await asyncio.create_subprocess_exec(
                STENO_COLLAB, command, flag, str(port), env=env, cwd=ROOT,
                stdout=asyncio.subprocess.DEVNULL, stderr=err,
            )  # fmt: skip

    ready = gateway_ready if command == "gateway" else None
    proc, _ = await spawn_listening(start, ready, timeout=60)
    stack.push_async_callback(_stopped, proc)
    return proc


async def _stopped(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@pytest.fixture
async def env(tmp_path: Path, redis_db: str, pg_database: str) -> AsyncIterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {
        "STENO_DATA_DIR": str(tmp_path / "steno"),
        "STENO_PARTITIONS": "1",
        "STENO_REDIS_URL": redis_db,
        "STENO_DATABASE_URL": pg_database,
        "STENO_JWT_SECRET": secrets.token_hex(32),
    }
    yield env


@pytest.mark.parametrize(
    "order",
    [("gateway", "projector", "snapshotter"), ("projector", "snapshotter", "gateway")],
    ids=["gateway-first", "gateway-last"],
)
async def test_separate_processes_share_the_embedded_log_in_any_start_order(
    tmp_path: Path, env: dict[str, str], order: tuple[str, ...]
) -> None:
    async with AsyncExitStack() as stack:
        procs = [await _spawn(stack, tmp_path, command, env) for command in order]
        # Each listens only once its log is open: all three are up together.
        for command, proc in zip(order, procs, strict=True):
            err = (tmp_path / f"{command}.err").read_text()
            assert proc.returncode is None, f"{command} exited {proc.returncode}: {err}"
            assert "already being written" not in err, err
        # A second writer is told which process holds the log, and what to do.
        gateway = procs[order.index("gateway")]
        settings = Settings(data_dir=Path(env["STENO_DATA_DIR"]), partitions=1)
        with pytest.raises(LogUnavailableError) as refused:
            await open_log(settings).start()
        said = str(refused.value)
        assert f"(pid {gateway.pid}: python steno-collab gateway --port " in said, said
        assert said.endswith("stop that one first, or give this one another STENO_DATA_DIR")
        statuses = []
        for proc in procs:
            proc.terminate()
            statuses.append(await asyncio.wait_for(proc.wait(), 30))
        assert statuses == [0, 0, 0], [(tmp_path / f"{c}.err").read_text() for c in order]
