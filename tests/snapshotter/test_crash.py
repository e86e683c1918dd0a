"""Exactly once under kill -9: a snapshotter process killed at random points of a long stream
and restarted writes exactly the rows of an uninterrupted run (which folds the same log in
different batch sizes, so the rows do not depend on batch boundaries either)."""

import os
import random
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from eventlog.embedded import EmbeddedLog
from eventlog.factory import open_log
from eventlog.records import Log, Record
from schemas.envelope import Event
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.migrate import migrate
from snapshotter.store import Store
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.scripts import Clock, append, drain
from tests.snapshotter.streams import Stream, build_stream
from tests.snapshotter.table_dump import TABLES, dump
from tests.support import eventually


async def positions_total(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT to_regclass('consumer_positions') IS NOT NULL")
        if not exists:
            return 0
        return int(
            await conn.fetchval("SELECT coalesce(sum(next_offset), 0) FROM consumer_positions")
        )
    finally:
        await conn.close()


async def end_total(log: Log, topic: str = LETTERS) -> int:
    return sum((await log.end_offsets(topic)).values())


# Both entry points: the `steno-collab snapshotter` command and `python -m snapshotter`.
COMMANDS = [
    [str(Path(sys.executable).parent / "steno-collab"), "snapshotter"],
    [sys.executable, "-m", "snapshotter"],
]


def spawn_snapshotter(env: dict[str, str], logfile: Path, nth: int) -> subprocess.Popen[bytes]:
    with logfile.open("ab") as out:
        return subprocess.Popen(COMMANDS[nth % 2], env=env, stdout=out, stderr=subprocess.STDOUT)


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        STENO_DATA_DIR=str(settings.data_dir),
        STENO_DATABASE_URL=str(settings.database_url),
        STENO_PARTITIONS=str(settings.partitions),
        STENO_TOPIC_PREFIX=settings.topic_prefix,
        STENO_SNAPSHOTTER_BATCH="17",  # many small transactions: many places to die in
        STENO_AUTOSAVE_UPDATES="40",
        STENO_AUTOSAVE_ACTIVITY_S="30",
        # Working states saved by wall-clock age would depend on how long each process lived:
        # the same value as the reference run's, which outlives none of them.
        STENO_SNAPSHOTTER_STATE_S=str(settings.snapshotter_state_s),
    )
    if settings.log_url:
        env.update(STENO_LOG_URL=settings.log_url, STENO_KAFKA_IDEMPOTENCE="false")
    return env


async def produce(
    log: Log, topic: str, clock: Clock | None, chunk: list[tuple[Event, float]]
) -> None:
    for event, gap in chunk:
        if clock is not None:
            clock.advance(gap)
        await append(log, topic, [event])


async def run_with_kills(
    log: Log, clock: Clock | None, stream: Stream, settings: Settings, tmp: Path
) -> int:
    """Produce chunk by chunk; for each, start the process and kill -9 it mid-way."""
    rng, kills = random.Random(7), 0
    env, logfile = child_env(settings), tmp / "snapshotter.log"
    dsn, topic = str(settings.database_url), settings.topic(Topic.LETTERS)
    for chunk in stream.chunks:
        await produce(log, topic, clock, chunk)
        done, end = await positions_total(dsn), await end_total(log, topic)
        target = rng.randrange(done + 1, end)
        proc = spawn_snapshotter(env, logfile, kills)
        try:
            await eventually(_progress(dsn, target, proc), timeout=60, interval=0.005)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        kills += 1
    proc = spawn_snapshotter(env, logfile, kills)
    try:
        end = await end_total(log, topic)
        await eventually(_progress(dsn, end, proc), timeout=60, interval=0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return kills


def _progress(
    dsn: str, target: int, proc: subprocess.Popen[bytes]
) -> Callable[[], Awaitable[bool]]:
    async def reached() -> bool:
        assert proc.poll() is None, "the snapshotter process exited on its own"
        return await positions_total(dsn) >= target

    return reached


async def reference_run(settings: Settings, log: Log, dsn: str) -> None:
    await migrate(dsn)
    store = await Store.open(dsn)
    try:
        await drain(Snapshotter(settings.model_copy(update={"database_url": dsn}), log, store), log)
    finally:
        await store.close()


async def loaded_states(settings: Settings, log: Log, dsn: str) -> dict[str, tuple[Any, ...]]:
    """Every letter's working state as a snapshotter starting on `dsn` rebuilds it: its row,
    caught up with its records since if listed as lagging."""
    store = await Store.open(dsn)
    try:
        snapshotter = Snapshotter(settings.model_copy(update={"database_url": dsn}), log, store)
        await snapshotter.resume()
        for partition, position in snapshotter.positions.items():
            records: list[Record] = []
            while len(records) < position:
                records += await log.read(snapshotter.topic, partition, len(records), position)
            await snapshotter._load(partition, position, records)
        letters = snapshotter.folder.letters.items()
        return {lid: (s.to_json(), s.doc.snapshot(), s.doc._doc.get_state()) for lid, s in letters}
    finally:
        await store.close()


async def check_identical(
    settings: Settings, log: Log, interrupted: str, reference: str, stream: Stream
) -> None:
    topic = settings.topic(Topic.LETTERS)
    got, want = await dump(interrupted), await dump(reference)
    assert got["consumer_positions"] == want["consumer_positions"]
    assert sum(r[3] for r in got["consumer_positions"]) == await end_total(log, topic)
    for table in TABLES:
        if table != "snapshotter_letter_state":  # saved also when caught up after a restart
            assert got[table] == want[table], f"{table} differs after kill -9 and restart"
    states = await loaded_states(settings, log, interrupted)
    assert states == await loaded_states(settings, log, reference)
    assert len(states) == len(want["letters"])
    audit = got["collaboration"]
    types = [row[3] for row in audit]
    assert types.count("session-start") == stream.produced["session.joined"]
    assert types.count("session-end") == stream.produced["session.left"]
    assert types.count("comment.created") == stream.produced["comment.created"]
    assert len(got["letter_version"]) > 10 and types.count("edit") > 20


async def test_kill_9_at_random_points_then_restart_gives_identical_rows(
    tmp_path: Path, make_settings: Callable[..., Settings], pg_dsn: str, db: str
) -> None:
    settings = make_settings(autosave_updates=40, autosave_activity_s=30, snapshotter_state_s=3600)
    clock = Clock()
    log = EmbeddedLog(settings.data_dir / "log", 2, {LETTERS: None}, clock=clock)
    await log.start()
    reference = await _fresh_database(pg_dsn, "ref")
    try:
        stream = build_stream(seed=11, letters=12, events=3000, chunks=4)
        kills = await run_with_kills(log, clock, stream, settings, tmp_path)
        assert kills == 4
        await reference_run(settings, log, reference)
        await check_identical(settings, log, db, reference, stream)
    finally:
        await log.close()
        await _drop_database(pg_dsn, reference)


async def test_kill_9_and_restart_on_the_kafka_log(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    pg_dsn: str,
    db: str,
    kafka_bootstrap: str,
) -> None:
    settings = make_settings(
        autosave_updates=40,
        autosave_activity_s=30,
        snapshotter_state_s=3600,
        log_url=f"kafka://{kafka_bootstrap}",
        kafka_idempotence=False,
        topic_prefix=f"snap{random.randrange(1 << 30)}.",
    )
    log = open_log(settings)
    await log.start()
    reference = await _fresh_database(pg_dsn, "kref")
    try:
        # One kill: after a kill -9, Kafka hands the partitions to the restarted member only
        # once the dead member's session times out (10 s).
        stream = build_stream(seed=5, letters=6, events=1000, chunks=1)
        assert await run_with_kills(log, None, stream, settings, tmp_path) == 1
        await reference_run(settings, log, reference)
        await check_identical(settings, log, db, reference, stream)
    finally:
        await log.close()
        await _drop_database(pg_dsn, reference)


async def _fresh_database(admin_dsn: str, suffix: str) -> str:
    name = f"snap_{suffix}_{os.getpid()}_{random.randrange(1 << 30)}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_dsn.rsplit("/", 1)[0] + f"/{name}"


async def _drop_database(admin_dsn: str, dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()
