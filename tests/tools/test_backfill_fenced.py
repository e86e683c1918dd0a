"""A whole rebuild of the projector writes to Redis only while it holds its lease: each commit,
each batch of its wipe and its reset marker's writes check the lease's token in the same
script. A run that lost it (paused past its TTL, another run took it over) writes nothing more,
even before its renewal finds out, and stops as one that found it lost does (exit 1, "run the
same command again"). The lease's TTL is the default here (a renewal every 10 s): only the
fence stops these runs."""

import asyncio
import io
import sys
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from eventlog import Log
from eventlog.factory import open_log
from projector import consumer, quarantine
from projector.settings import ProjectorSettings
from projector.store import Store
from schemas.events import Topic
from schemas.rebuilds import PROJECTOR_RESET, PROJECTOR_RUN
from schemas.settings import Settings
from tests.tools.backfill_logs import fill
from tests.tools.cli import cli_env
from tests.tools.leases import OTHER, TOOK_OVER
from tools import backfill_projector as projector
from tools.backfill import backfill
from tools.backfill_projector import BackfillError
from tools.progress import Meter
from tools.sources import Sources, open_sources


@pytest.fixture
def log_kind() -> str:
    return "embedded"


async def take_over(redis: Redis) -> None:
    """What another run does once this one's lease lapsed: it takes the lease."""
    assert await redis.set(PROJECTOR_RUN, OTHER, px=60_000, xx=True)


async def snapshot(redis: Redis) -> dict[bytes, bytes | None]:
    """Every key but the lease, with its value."""
    keys = [k async for k in redis.scan_iter(count=1000) if k != PROJECTOR_RUN.encode()]
    return {k: await redis.dump(k) for k in keys}


def taken_over_before_the_fold(monkeypatch: pytest.MonkeyPatch) -> dict[bytes, bytes | None]:
    """Another run takes the lease just before the rebuild folds; what Redis held then (filled
    in when it happens)."""
    fold = projector.run_all
    before: dict[bytes, bytes | None] = {}

    async def taken_over(src: Sources, *args: Any, **kwargs: Any) -> int:
        assert src.redis is not None
        before.update(await snapshot(src.redis))
        await take_over(src.redis)
        return await fold(src, *args, **kwargs)

    monkeypatch.setattr(projector, "run_all", taken_over)
    return before


async def rebuild(src: Sources, **kwargs: Any) -> None:
    """`backfill projector --reset`, which must stop for its lost lease, as the command says."""
    meter = Meter(out=io.StringIO(), every_s=3600)
    with pytest.raises(BackfillError) as stopped:
        await asyncio.wait_for(backfill(src, "projector", reset=True, meter=meter, **kwargs), 60)
    assert str(stopped.value) == TOOK_OVER


async def test_taken_over_between_batches_it_writes_no_further_batch(
    settings: Settings, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(log, settings, steps=30)
    commit = Store.commit
    after_first: dict[bytes, bytes | None] = {}

    async def first_then_taken_over(self: Store, *args: Any, **kwargs: Any) -> Any:
        result = await commit(self, *args, **kwargs)
        if not after_first:  # the run awaits this: the next batch is folded after it
            after_first.update(await snapshot(self.redis))
            await take_over(self.redis)
        return result

    monkeypatch.setattr(Store, "commit", first_then_taken_over)
    options = ProjectorSettings(metrics_port=None, batch_records=5, follow_batch=5)
    async with open_sources(settings, redis=True) as src:
        assert src.redis is not None
        await rebuild(src, projector_options=options)
        assert await snapshot(src.redis) == after_first
        assert await src.redis.get(PROJECTOR_RUN) == OTHER.encode()
        # More batches were left to fold: the run stopped at its next one.
        topic = settings.topic(Topic.LETTERS)
        ends = await log.end_offsets(topic)
        stored = await Store(src.redis, 1, 1).positions([(topic, p) for p in ends])
        assert sum(v or 0 for v in stored.values()) < sum(ends.values())


@pytest.mark.parametrize("workers", [1, 2])
async def test_taken_over_before_its_fold_it_writes_nothing(
    settings: Settings, log: Log, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """In one process or in worker processes: no commit of theirs lands, no worker's traceback."""
    await fill(log, settings, steps=30)
    before = taken_over_before_the_fold(monkeypatch)
    async with open_sources(settings, redis=True) as src:
        assert src.redis is not None
        await rebuild(src, workers=workers)
        assert before.get(PROJECTOR_RESET.encode()) is not None  # the reset's marker, nothing else
        assert await snapshot(src.redis) == before


async def test_taken_over_its_quarantine_entries_are_not_written(
    settings: Settings, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records it cannot fold are quarantined by a write of their own (not a commit): fenced
    too, so a run that lost its lease records none beside the new holder's rebuild."""
    await fill(log, settings, steps=5)

    def unfoldable(*_args: Any) -> None:
        raise ValueError("a record this projector cannot fold")

    monkeypatch.setattr(consumer, "fold_letter", unfoldable)
    monkeypatch.setattr(quarantine, "fold_letter", unfoldable)
    before = taken_over_before_the_fold(monkeypatch)
    async with open_sources(settings, redis=True) as src:
        assert src.redis is not None
        await rebuild(src, workers=1)
        assert await snapshot(src.redis) == before  # no projector:quarantine among them


async def test_taken_over_after_its_fold_it_leaves_the_reset_marker(
    settings: Settings, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing to fold (an empty log): the run's one write after its reset is the deletion of
    the reset's marker, which is the new holder's to delete once its rebuild is whole."""
    fold = projector.run_all

    async def taken_over(src: Sources, *args: Any, **kwargs: Any) -> int:
        assert src.redis is not None
        await take_over(src.redis)
        return await fold(src, *args, **kwargs)

    monkeypatch.setattr(projector, "run_all", taken_over)
    async with open_sources(settings, redis=True) as src:
        assert src.redis is not None
        await rebuild(src)
        assert await src.redis.get(PROJECTOR_RESET) == b"rebuilding"


async def test_taken_over_during_its_wipe_it_deletes_no_further_batch(
    settings: Settings, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wipe deletes what it scans 1,000 keys at a time; the lease is taken over once the
    first batch is deleted (when the scan yields the next key)."""
    ours = {f"projector:letter:fenced-{i}".encode() for i in range(2500)}
    async with open_sources(settings, redis=True) as src:
        assert src.redis is not None
        redis = src.redis
        await redis.mset(dict.fromkeys(ours, b"x"))
        scan = redis.scan_iter
        scanned: list[bytes] = []

        async def scan_iter(*args: Any, **kwargs: Any) -> Any:
            async for key in scan(*args, **kwargs):
                if len(scanned) == 1000:  # the wipe awaits its first batch's deletion first
                    await take_over(redis)
                scanned.append(key)
                yield key

        monkeypatch.setattr(redis, "scan_iter", scan_iter)
        await rebuild(src)
        monkeypatch.undo()
        assert len(scanned) > 1000  # the scan went on past the first batch
        left = {k async for k in redis.scan_iter(match="projector:*")}
        assert left == ours - set(scanned[:1000])
        assert await redis.get(PROJECTOR_RESET) == b"wiping"  # the next run wipes again


# The command, its lease taken over by another run as its fold begins (its TTL the default).
TAKEN_OVER = """
import sys
from schemas.rebuilds import PROJECTOR_RUN
from steno_collab.cli import main
from tools import backfill_projector

fold = backfill_projector.run_all


async def taken_over(src, *args, **kwargs):
    await src.redis.set(PROJECTOR_RUN, sys.argv[1], px=60_000, xx=True)
    return await fold(src, *args, **kwargs)


backfill_projector.run_all = taken_over
main(["backfill", "projector", "--reset", "--workers", "2"])
"""


async def test_the_command_exits_1_and_its_workers_write_nothing(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(partitions=2)
    log = open_log(settings)
    await log.start()
    try:
        await fill(log, settings, steps=30)
    finally:
        await log.close()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", TAKEN_OVER, OTHER, env=cli_env(settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, raw = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    err = raw.decode()
    assert proc.returncode == 1, err
    assert err.splitlines()[-1] == f"steno-collab backfill: {TOOK_OVER}", err
    assert "Traceback" not in err  # the workers say nothing: the command does
    assert b"backfill done" not in out
    async with open_sources(settings, redis=True) as src:
        assert src.redis is not None
        assert set(await snapshot(src.redis)) == {PROJECTOR_RESET.encode()}
        # The other run's lease stays as it is; the marker as an interrupted reset leaves it.
        assert await src.redis.get(PROJECTOR_RUN) == OTHER.encode()
        assert await src.redis.pttl(PROJECTOR_RUN) > 30_000
        assert await src.redis.get(PROJECTOR_RESET) == b"rebuilding"
