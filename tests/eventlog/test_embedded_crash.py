"""Crash safety of the embedded log: kill -9 during appends loses nothing acknowledged, and a
torn or damaged WAL tail is cut cleanly (a dense prefix survives), never returned as data."""

import asyncio
import logging
import sys
from pathlib import Path

import pytest

from eventlog import Entry, LogUnavailableError, Record
from eventlog.embedded import EmbeddedLog
from eventlog.embedded_recovery import FRAME_HEADER, WAL_HEADER

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 4  # as in crash_writer
Acked = dict[tuple[int, int], bytes]


async def run_and_kill(path: Path, round_: str, lines: int, checkpoint_s: str = "0.5") -> Acked:
    """Start the crash writer, let it acknowledge at least `lines` records, kill -9 it."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.eventlog.crash_writer",
        str(path),
        round_,
        checkpoint_s,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    acked: Acked = {}
    try:
        assert await asyncio.wait_for(child.stdout.readline(), 30) == b"ready\n"
        with pytest.raises(LogUnavailableError, match=f"{path}.*pid {child.pid}"):
            await EmbeddedLog(path, PARTITIONS, {"letters": None}).start()  # one writer only
        while len(acked) < lines:
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            assert line.endswith(b"\n"), "crash writer died on its own"
            _take(acked, line)
    finally:
        child.kill()  # SIGKILL: no cleanup, mid-burst
        await child.wait()
    for line in (await child.stdout.read()).splitlines(keepends=True):
        if line.endswith(b"\n"):  # a line cut by the kill promises nothing
            _take(acked, line)
    return acked


def _take(acked: Acked, line: bytes) -> None:
    partition, offset, value = line.split()
    acked[int(partition), int(offset)] = value


async def read_all(log: EmbeddedLog, partition: int) -> list[Record]:
    records: list[Record] = []
    while batch := await log.read("letters", partition, len(records), limit=5000):
        records += batch
    return records


async def check_dense_and_continue(path: Path, acked: Acked) -> dict[tuple[int, int], bytes]:
    """Every partition is a dense, checksum-clean run from 0; appends continue after it."""
    log = EmbeddedLog(path, PARTITIONS, {"letters": None})
    await log.start()
    try:
        ends = await log.end_offsets("letters")
        stored = {}
        for partition in range(PARTITIONS):
            records = await read_all(log, partition)
            assert [r.offset for r in records] == list(range(ends[partition]))
            stored.update({(partition, r.offset): r.value for r in records})
        key = b"letter-0"
        partition = log.partition_for("letters", key)
        assert await log.append("letters", key, [Entry(b"after")]) == [ends[partition]]
        return stored
    finally:
        await log.close()


async def test_kill_9_during_appends_loses_nothing_acknowledged(tmp_path: Path) -> None:
    acked: Acked = {}
    for round_, lines in enumerate([300, 40, 2500, 900]):
        acked |= await run_and_kill(tmp_path, f"r{round_}", lines)
    stored = await check_dense_and_continue(tmp_path, acked)
    missing = {pos: v for pos, v in acked.items() if stored.get(pos) != v}
    assert not missing, f"{len(missing)} acknowledged records lost or changed"
    assert len(acked) >= 3740


@pytest.mark.parametrize("damage", ["torn_tail", "flipped_byte"])
async def test_damaged_wal_tail_is_cut_cleanly_and_reported(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    # No checkpoints in the child: every acknowledged record is still only in the WAL.
    acked = await run_and_kill(tmp_path, "r", 1500, checkpoint_s="3600")
    wal = tmp_path / "log.sqlite3-wal"
    data = bytearray(wal.read_bytes())
    if damage == "torn_tail":  # the last ~10% gone, ending halfway through a frame
        frame = FRAME_HEADER + 4096
        cut_at = WAL_HEADER + (len(data) * 9 // 10 - WAL_HEADER) // frame * frame + 100
        del data[cut_at:]
    else:
        cut_at = len(data) * 2 // 3
        data[cut_at] ^= 0xFF
    wal.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="eventlog"):
        stored = await check_dense_and_continue(tmp_path, acked)
    assert all(acked[pos] == v for pos, v in stored.items() if pos in acked)
    lost = [pos for pos in acked if pos not in stored]
    assert lost, "the damage should have cut acknowledged records"
    assert f"{wal}: " in caplog.text and "are cut, never read as data" in caplog.text
