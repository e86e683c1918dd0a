"""`steno-collab backup`: a consistent copy of the embedded log while it is being appended to,
read back whole; a restore that the log takes up again; refusals."""

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from eventlog import CorruptLogError, Entry, LogUnavailableError
from eventlog.embedded import EmbeddedLog
from eventlog.embedded_backup import backup, check

TOPICS = {"letters": None, "presence": 60_000}


async def _all(log: EmbeddedLog, topic: str, partition: int) -> list[tuple[int, bytes]]:
    found, offset = [], 0
    while batch := await log.read(topic, partition, offset):
        found += [(r.offset, r.value) for r in batch]
        offset = batch[-1].offset + 1
    return found


async def test_a_backup_taken_while_appends_go_on_is_a_prefix_of_every_partition(
    tmp_path: Path,
) -> None:
    source = EmbeddedLog(tmp_path / "log", 4, TOPICS)
    await source.start()
    stop, under_way = asyncio.Event(), asyncio.Event()

    async def appending() -> int:
        n = 0
        while not stop.is_set():
            key = b"letter-%d" % (n % 16)
            await source.append("letters", key, [Entry(b"update %d" % n), Entry(b"more %d" % n)])
            await source.append("presence", key, [Entry(b"caret %d" % n)])
            n += 1
            if n == 700:
                under_way.set()
        return n

    writer = asyncio.create_task(appending())
    try:
        await under_way.wait()
        report = await asyncio.to_thread(backup, tmp_path / "log", tmp_path / "copy")
    finally:
        stop.set()
        appended = await writer
    assert appended > 0 and sum(report.records.values()) > 0

    copy = EmbeddedLog(tmp_path / "copy", 4, readonly=True)
    await copy.start()
    try:
        later = sum((await source.end_offsets("letters")).values())
        assert later > report.records["letters"]  # appends went on past the snapshot
        for topic in TOPICS:
            for partition in range(4):
                original = await _all(source, topic, partition)
                copied = await _all(copy, topic, partition)
                assert copied == original[: len(copied)]  # a snapshot: a prefix, no gap
                assert report.next_offsets[topic][partition] == len(copied)
        assert report.records["letters"] == sum(report.next_offsets["letters"].values())
    finally:
        await copy.close()
        await source.close()


async def test_a_restored_backup_is_a_log_that_goes_on(tmp_path: Path) -> None:
    source = EmbeddedLog(tmp_path / "log", 2, TOPICS)
    await source.start()
    await source.append("letters", b"k", [Entry(b"first"), Entry(b"second")])
    report = await asyncio.to_thread(backup, tmp_path / "log", tmp_path / "copy")
    await source.close()
    assert [p.name for p in (tmp_path / "copy").iterdir()] == ["log.sqlite3"]  # one file
    restored = EmbeddedLog(tmp_path / "copy", 2, TOPICS)
    await restored.start()
    try:
        partition = restored.partition_for("letters", b"k")
        assert report.next_offsets["letters"][partition] == 2
        assert await restored.append("letters", b"k", [Entry(b"third")]) == [2]
        assert [v for _, v in await _all(restored, "letters", partition)] == [
            b"first",
            b"second",
            b"third",
        ]
    finally:
        await restored.close()


async def test_a_damaged_copy_is_reported(tmp_path: Path) -> None:
    source = EmbeddedLog(tmp_path / "log", 1, {"letters": None})
    await source.start()
    await source.append("letters", b"k", [Entry(b"A" * 40 + b"-MARK-%04d" % i) for i in range(50)])
    await asyncio.to_thread(backup, tmp_path / "log", tmp_path / "copy")
    await source.close()
    db = tmp_path / "copy" / "log.sqlite3"
    data = bytearray(db.read_bytes())
    data[data.index(b"-MARK-0017") + 2] ^= 0x01
    db.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError, match="letters/0@17"):
        check(tmp_path / "copy")


async def test_records_past_a_partitions_end_are_reported(tmp_path: Path) -> None:
    source = EmbeddedLog(tmp_path / "log", 1, {"letters": None})
    await source.start()
    await source.append("letters", b"k", [Entry(b"%d" % i) for i in range(10)])
    await source.close()
    db = sqlite3.connect(tmp_path / "log" / "log.sqlite3")
    with db:  # the offsets say 7: records 7-9 were never made visible
        db.execute("UPDATE partitions SET next_offset = 7 WHERE topic = 'letters'")
    db.close()
    with pytest.raises(
        CorruptLogError, match=r"letters/0@7.*go on to 9, past the partition's end 7"
    ):
        check(tmp_path / "log")


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    command = [sys.executable, "-c", "from steno_collab.cli import main; main()", *args]
    return subprocess.run(command, env=clean | env, capture_output=True, text=True, timeout=60)


async def test_the_command_reports_and_refuses(tmp_path: Path) -> None:
    source = EmbeddedLog(tmp_path / "data" / "log", 2, TOPICS)
    await source.start()
    await source.append("letters", b"k", [Entry(b"x")] * 3)
    try:  # while the log is open for writing, as under a running service
        done = await asyncio.to_thread(
            _cli, "backup", "--to", str(tmp_path / "b1"), STENO_DATA_DIR=str(tmp_path / "data")
        )
        assert done.returncode == 0, done.stderr
        assert "3 records" in done.stdout and "letters: 3 records" in done.stdout
        again = await asyncio.to_thread(
            _cli, "backup", "--to", str(tmp_path / "b1"), "--data-dir", str(tmp_path / "data")
        )
        assert again.returncode == 2 and "is not empty" in again.stderr
    finally:
        await source.close()
    nothing = _cli("backup", "--to", str(tmp_path / "b2"), "--data-dir", str(tmp_path / "none"))
    assert nothing.returncode == 2 and "no embedded log" in nothing.stderr
    kafka = _cli("backup", "--to", str(tmp_path / "b3"), STENO_LOG_URL="kafka://127.0.0.1:1")
    assert kafka.returncode == 2 and "Kafka" in kafka.stderr


def test_a_missing_log_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(LogUnavailableError):
        backup(tmp_path / "none", tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
