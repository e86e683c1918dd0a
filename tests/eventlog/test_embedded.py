"""Embedded-only properties: checksums on read, the writer lock, read-only readers in other
processes, retention, and persistence across reopen."""

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from eventlog import CorruptLogError, Entry, LogError, LogUnavailableError
from eventlog.embedded import EmbeddedLog
from tests.support import eventually

REPO = Path(__file__).resolve().parents[2]


async def started(log: EmbeddedLog) -> EmbeddedLog:
    await log.start()
    return log


async def test_flipped_byte_in_a_record_is_reported_never_returned(tmp_path: Path) -> None:
    log = await started(EmbeddedLog(tmp_path, 1, {"letters": None}))
    await log.append("letters", b"k", [Entry(b"A" * 40 + b"-MARK-%04d" % i) for i in range(50)])
    await log.close()  # checkpoints: the rows are now in log.sqlite3 itself
    db = tmp_path / "log.sqlite3"
    data = bytearray(db.read_bytes())
    data[data.index(b"-MARK-0017") + 2] ^= 0x01
    db.write_bytes(bytes(data))

    reader = await started(EmbeddedLog(tmp_path, 1, readonly=True))
    try:
        with pytest.raises(CorruptLogError) as raised:
            await reader.read("letters", 0, 0)
        assert raised.value.path == str(db)
        assert raised.value.position == "letters/0@17"
        assert str(db) in str(raised.value)
        assert [r.offset for r in await reader.read("letters", 0, 0, limit=17)] == list(range(17))
        assert (await reader.read("letters", 0, 18))[0].value.endswith(b"-MARK-0018")
    finally:
        await reader.close()


async def test_damaged_database_page_is_reported_with_the_file(tmp_path: Path) -> None:
    log = await started(EmbeddedLog(tmp_path, 1, {"letters": None}))
    await log.append("letters", b"k", [Entry(b"v" * 200) for _ in range(200)])
    await log.close()
    db = tmp_path / "log.sqlite3"
    data = bytearray(db.read_bytes())
    page = 4096
    data[2 * page : len(data)] = b"\xa5" * (len(data) - 2 * page)  # every b-tree page but 2
    db.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError) as raised:
        reader = await started(EmbeddedLog(tmp_path, 1, readonly=True))
        try:
            await reader.read("letters", 0, 0)
        finally:
            await reader.close()
    assert raised.value.path == str(db)


async def test_second_writer_is_refused_but_readers_are_welcome(tmp_path: Path) -> None:
    writer = await started(EmbeddedLog(tmp_path, 2, {"letters": None}))
    try:
        with pytest.raises(LogUnavailableError, match=str(tmp_path)):
            await EmbeddedLog(tmp_path, 2, {"letters": None}).start()
        await writer.append("letters", b"k", [Entry(b"v")])
        reader = await started(EmbeddedLog(tmp_path, 2, readonly=True))
        try:
            records = await reader.read("letters", writer.partition_for("letters", b"k"), 0)
            assert [r.value for r in records] == [b"v"]
            with pytest.raises(LogError, match="read-only"):
                await reader.append("letters", b"k", [Entry(b"w")])
        finally:
            await reader.close()
    finally:
        await writer.close()


async def test_readonly_without_a_log_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(LogUnavailableError, match="no embedded log"):
        await EmbeddedLog(tmp_path / "missing", 1, readonly=True).start()


async def test_reopen_keeps_records_group_offsets_and_continues_densely(tmp_path: Path) -> None:
    log = await started(EmbeddedLog(tmp_path, 2, {"letters": None}))
    first = await log.append("letters", b"k", [Entry(b"a"), Entry(b"b")])
    await log.commit("projector", "letters", {0: 1, 1: 2})
    await log.close()
    log = await started(EmbeddedLog(tmp_path, 2, {"letters": None}))
    try:
        assert await log.committed("projector", "letters") == {0: 1, 1: 2}
        assert await log.append("letters", b"k", [Entry(b"c")]) == [first[-1] + 1]
        records = await log.read("letters", log.partition_for("letters", b"k"), 0)
        assert [r.value for r in records] == [b"a", b"b", b"c"]
    finally:
        await log.close()


def fake_clock(start: int) -> tuple[list[int], Callable[[], int]]:
    now = [start]
    return now, lambda: now[0]


async def test_presence_retention_drops_old_records_and_moves_start(tmp_path: Path) -> None:
    now, clock = fake_clock(1_000_000)
    topics = {"presence": 1000, "letters": None}
    log = await started(EmbeddedLog(tmp_path, 1, topics, sweep_interval_s=1.0, clock=clock))
    try:
        await log.append("presence", b"k", [Entry(b"old")] * 3)
        await log.append("letters", b"k", [Entry(b"kept")])
        now[0] += 500
        await log.append("presence", b"k", [Entry(b"older")] * 2)
        now[0] += 1700
        await log.append("presence", b"k", [Entry(b"young")])
        await eventually(lambda: _starts_at(log, "presence", 5))
        assert [r.value for r in await log.read("presence", 0, 0)] == [b"young"]
        assert (await log.end_offsets("presence"))[0] == 6
        assert await log.start_offsets("letters") == {0: 0}
        assert [r.value for r in await log.read("letters", 0, 0)] == [b"kept"]
    finally:
        await log.close()


async def test_record_times_never_go_back_when_the_clock_does(tmp_path: Path) -> None:
    """A point-in-time replay cuts the log at the first record stamped after the instant, so
    the times of a partition follow its offsets even across a step back of the wall clock."""
    now, clock = fake_clock(5_000)
    log = await started(EmbeddedLog(tmp_path, 1, {"letters": None}, clock=clock))
    try:
        await log.append("letters", b"k", [Entry(b"a")])
        now[0] = 3_000  # stepped back
        await log.append("letters", b"k", [Entry(b"b")])
        now[0] = 6_000
        await log.append("letters", b"k", [Entry(b"c")])
        assert [r.timestamp for r in await log.read("letters", 0, 0)] == [5_000, 5_000, 6_000]
    finally:
        await log.close()


async def _starts_at(log: EmbeddedLog, topic: str, expected: int) -> bool:
    return (await log.start_offsets(topic))[0] == expected


async def lines_of(stream: asyncio.StreamReader) -> AsyncIterator[str]:
    while line := await stream.readline():
        yield line.decode().rstrip("\n")


async def test_reader_in_another_process_follows_the_writer(tmp_path: Path) -> None:
    writer = await started(EmbeddedLog(tmp_path, 2, {"letters": None}))
    await writer.append("letters", b"a", [Entry(b"before")])
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.eventlog.follow_reader",
        str(tmp_path),
        "letters",
        "2",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    try:
        seen: list[str] = []

        async def collect() -> None:
            assert child.stdout is not None
            async for line in lines_of(child.stdout):
                seen.append(line)

        collector = asyncio.create_task(collect())
        await eventually(lambda: seen[:2] == ["ready", "before"], timeout=20)
        await writer.append("letters", b"b", [Entry(b"after-1"), Entry(b"after-2")])
        await eventually(lambda: len(seen) == 4, timeout=5)
        assert seen[2:] == ["after-1", "after-2"]
    finally:
        child.kill()
        await child.wait()
        await writer.close()
    await collector


async def test_bad_entry_fails_its_caller_only(tmp_path: Path) -> None:
    log = await started(EmbeddedLog(tmp_path, 1, {"letters": None}))
    try:
        bad = Entry("not bytes")  # type: ignore[arg-type]
        results = await asyncio.gather(
            log.append("letters", b"k", [Entry(b"a")]),
            log.append("letters", b"k", [Entry(b"b"), bad]),
            log.append("letters", b"k", [Entry(b"c")]),
            return_exceptions=True,
        )
        assert results[0] == [0] and results[2] == [1]
        assert isinstance(results[1], TypeError)
        assert [r.value for r in await log.read("letters", 0, 0)] == [b"a", b"c"]
    finally:
        await log.close()
