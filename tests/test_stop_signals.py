"""`steno-collab snapshotter` and `projector` on SIGTERM (`docker stop`) or Ctrl-C: an orderly
stop, status 0; the snapshotter first saves the letters' working states ahead of their rows (a
restart folds nothing again). The gateway's are uvicorn's (tests/web stop it by SIGTERM)."""

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from eventlog.factory import open_log
from schemas.events import Topic
from schemas.settings import Settings
from tests.snapshotter.scripts import LetterScript, append
from tests.support import eventually, spawn_listening

CLI = [sys.executable, "-c", "from steno_collab.cli import main; main()"]
ROOT = Path(__file__).resolve().parents[1]
# The state is saved when the letter is created and otherwise only at an orderly stop.
RARELY = {
    "snapshotter_state_records": "10000",
    "autosave_updates": "10000",
    "snapshotter_state_s": "3600",
}


async def _saved_state(dsn: str, letter_id: str) -> tuple[int | None, bool]:
    """The `covers` of the letter's saved state (None: no row yet), and whether it is listed as
    lagging its committed records (`snapshotter_unsaved`)."""
    conn = await asyncpg.connect(dsn)
    try:
        state = await conn.fetchval(
            "SELECT state::text FROM snapshotter_letter_state WHERE letter_id = $1", letter_id
        )
        lagging = await conn.fetchval(
            "SELECT count(*) FROM snapshotter_unsaved WHERE letter_id = $1", letter_id
        )
    finally:
        await conn.close()
    return (None if state is None else json.loads(state)["covers"]), bool(lagging)


async def _committed(dsn: str, topic: str) -> dict[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT partition, next_offset FROM consumer_positions"
            " WHERE consumer_group = 'snapshotter' AND topic = $1",
            topic,
        )
    except asyncpg.UndefinedTableError:  # not migrated yet
        return {}
    finally:
        await conn.close()
    return {row["partition"]: row["next_offset"] for row in rows}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_the_snapshotter_saves_letter_states_on_a_stop_signal_and_exits_0(
    tmp_path: Path, pg_database: str, sig: signal.Signals
) -> None:
    settings = Settings(data_dir=tmp_path / "steno", database_url=pg_database, partitions=1)
    topic = settings.topic(Topic.LETTERS)
    letter = LetterScript("L-stopped")
    events = [letter.created(), letter.joined("alice", "c1")]
    events += [letter.paragraph("alice", f"Paragraph {i}.") for i in range(8)]
    log = open_log(settings)  # this process writes, as the gateway would; the snapshotter reads
    await log.start()
    try:
        await append(log, topic, events)
        end = (await log.end_offsets(topic))[0]
    finally:
        await log.close()

    steno = {"data_dir": str(settings.data_dir), "database_url": pg_database, **RARELY}
    proc = await _start("snapshotter", **steno)
    try:

        async def folded() -> bool:
            assert proc.returncode is None, "the snapshotter exited early"
            return (await _committed(pg_database, topic)).get(0) == end

        await eventually(folded, timeout=60, interval=0.2)
        # Every record is committed, but the state was saved with the creation only.
        covers, lagging = await _saved_state(pg_database, letter.letter_id)
        assert covers is not None and covers < end and lagging

        await _stopped_with_0(proc, sig)
    finally:
        await _killed(proc)

    # Saved as far as its last record; nothing left for a restart to fold again.
    assert await _saved_state(pg_database, letter.letter_id) == (end, False)


async def test_the_projector_stops_on_sigterm_with_status_0(tmp_path: Path, redis_db: str) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    log = open_log(settings)
    await log.start()
    try:
        await append(log, settings.topic(Topic.LETTERS), [LetterScript("L-projected").created()])
    finally:
        await log.close()

    async def start(port: int) -> asyncio.subprocess.Process:
        return await _start("projector", "--metrics-port", str(port), redis_url=redis_db,
                            data_dir=str(settings.data_dir))  # fmt: skip

    proc, port = await spawn_listening(start)
    try:

        async def folded() -> bool:
            assert proc.returncode is None, "the projector exited early"
            try:
                async with httpx.AsyncClient() as client:
                    text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            except httpx.ConnectError:  # not serving yet
                return False
            return 'projector_events_folded_total{type="letter.created"} 1.0' in text

        await eventually(folded, timeout=60, interval=0.2)
        await _stopped_with_0(proc, signal.SIGTERM)
    finally:
        await _killed(proc)


async def _start(command: str, *args: str, **steno: str) -> asyncio.subprocess.Process:
    """`steno-collab COMMAND ARGS` with STENO_* set from `steno` alone (one partition)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {f"STENO_{name.upper()}": value for name, value in steno.items()}
    env["STENO_PARTITIONS"] = "1"
    return await asyncio.create_subprocess_exec(
        *CLI, command, *args, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _stopped_with_0(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    proc.send_signal(sig)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]


async def _killed(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()
