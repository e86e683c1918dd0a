"""A gateway composed by the app shell (steno_collab/services.py `gateway_app`, as `gateway` and
`dev` run it) restores the section locks by itself once Redis lost them: no `backfill locks`.
Real Redis, the embedded log, the projector in-process (steno_collab/lock_restore.py)."""

import asyncio
import io
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from eventlog.factory import open_log
from gateway import restored
from gateway.metrics import Metrics
from schemas.keys import RESTORED, RESTORING
from schemas.settings import Settings
from steno_collab.lock_restore import WARN_GAP_S, Reminder, Watcher
from tests.collab.conftest import Collab
from tests.collab.redis_wiped import unrestored
from tests.collab.restore_shell import CHECK_S, Site, shell, watcher
from tests.projector.support import projector
from tests.support import eventually
from tools.backfill import backfill
from tools.lease import lease
from tools.progress import Meter
from tools.sources import Sources


@pytest_asyncio.fixture(loop_scope="session")
async def site(tmp_path: Path, redis_db: str) -> AsyncIterator[Site]:
    settings = Settings(
        data_dir=tmp_path / "steno", redis_url=redis_db, partitions=2, database_url=None
    )
    log = open_log(settings)
    await log.start()
    redis = aioredis.Redis.from_url(redis_db)
    try:
        async with projector(settings, log):
            yield Site(settings, log, redis)
    finally:
        await redis.aclose()
        await log.close()


async def held_then_wiped(site: Site) -> str:
    """A letter whose section `intro` alice holds, in a Redis then wiped: its id."""
    async with shell(site, locks_auto_restore=False) as collab:
        lid = await collab.gw.create_letter("Intro\nDamages")
        r = await collab.call("POST", f"/v1/letters/{lid}/locks/intro", user="alice")
        assert r.is_success, r.text
    await site.redis.flushdb()  # the test's database: FLUSHALL, for it
    return lid


async def run_id(site: Site) -> bytes:
    return (await restored.run_id(site.redis)).encode()


async def taken_by_alice(collab: Collab, lid: str) -> bool:
    r = await collab.call("POST", f"/v1/letters/{lid}/locks/intro", user="bob")
    assert r.status_code in (409, 503), r.text
    return r.status_code == 409 and r.json()["locked_by"]["id"] == "alice"


async def test_the_gateway_restores_the_locks_at_start_and_after_a_wipe(site: Site) -> None:
    lid = await held_then_wiped(site)
    async with shell(site) as collab:
        await eventually(lambda: taken_by_alice(collab, lid))  # no manual command
        await eventually(lambda: watcher(collab).restores == 1)  # the marker set after the locks
        assert await site.redis.get(RESTORED) == await run_id(site)
        r = await collab.call("POST", f"/v1/letters/{lid}/locks/damages", user="bob")
        assert r.is_success, r.text
        assert watcher(collab).restores == 1

        await site.redis.flushdb()  # at runtime
        await eventually(lambda: taken_by_alice(collab, lid))
        r = await collab.call("POST", f"/v1/letters/{lid}/locks/damages", user="carol")
        assert r.status_code == 409 and r.json()["locked_by"]["id"] == "bob"  # restored too
        await eventually(lambda: watcher(collab).restores == 2)
        metrics = (await collab.http.get("/metrics")).text
        assert "gateway_locks_auto_restores_total 2.0" in metrics


async def test_a_marker_of_another_redis_process_is_restored_again(site: Site) -> None:
    """A Redis restarted from an older snapshot has the marker back, but not the locks taken
    after it: the marker names the process that set it, another one (or predates run ids)."""
    for stale in ("0" * 40, "restored"):
        lid = await held_then_wiped(site)  # alice's lock lost, as a snapshot before it would
        await site.redis.set(RESTORED, stale)
        async with shell(site) as collab:
            await eventually(lambda: watcher(collab).restores == 1)
            assert await site.redis.get(RESTORED) == await run_id(site)
            assert await taken_by_alice(collab, lid)
            w = watcher(collab)
            checks = w.checks + 3
            await eventually(partial(at_least, w, checks))
            assert watcher(collab).restores == 1  # the current process's marker is kept


async def test_a_gate_finding_the_marker_stale_wakes_the_watcher(site: Site) -> None:
    """A Redis restarted intact (another run_id): the first grant answers 503 and the restore
    runs then, not at the next interval (an hour here: only the wake can explain it)."""
    lid = await held_then_wiped(site)
    async with shell(site, check_s=3600.0) as collab:
        w = watcher(collab)
        await eventually(lambda: w.restores == 1)  # the check at start
        await site.redis.set(RESTORED, "x" * 40)
        damages = f"/v1/letters/{lid}/locks/damages"
        unrestored(await collab.call("POST", damages, user="bob"))
        await eventually(lambda: w.restores == 2)
        assert await site.redis.get(RESTORED) == await run_id(site)
        assert (await collab.call("POST", damages, user="bob")).is_success
        assert await taken_by_alice(collab, lid)


async def test_failed_checks_keep_the_interval_failed_restores_back_off(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a restore (a read of the log) backs off: Redis back after an outage is found
    within one interval, not minutes later."""
    with socket.socket() as sock:  # a port nobody listens on: Redis down
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = aioredis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0))
    try:
        async with running(Watcher(site.settings, site.log, down, check_s=CHECK_S)) as w:
            await eventually(lambda: w.checks >= 4)
            assert w.failures >= 4 and w.delay == CHECK_S
    finally:
        await down.aclose()

    async def failing(*args: Any, **kwargs: Any) -> None:
        raise RedisError("lost during the restore")

    await held_then_wiped(site)  # letters in the log, no marker: a restore is due
    monkeypatch.setattr("steno_collab.lock_restore.restore_all", failing)
    async with running(Watcher(site.settings, site.log, site.redis, check_s=CHECK_S)) as w:
        await eventually(lambda: w.failed_restores >= 2)  # in a row: backing off
        assert w.failures >= 2 and w.checks >= 2
    w.restoring, w.failed_restores = True, 3  # after the third failed restore in a row
    assert w.delay == CHECK_S * 4
    w.restoring = False  # a round that failed before its restore
    assert w.delay == CHECK_S


async def test_wakes_make_one_check_per_gap(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood of 503s (each a wake) checks at once, but once per WAKE_GAP_S at most."""
    gap = 0.05
    monkeypatch.setattr("steno_collab.lock_restore.WAKE_GAP_S", gap)
    w = Watcher(site.settings, site.log, site.redis, check_s=3600.0)  # only wakes check
    async with running(w), waking(w):
        await eventually(lambda: w.checks >= 1)
        began, seen = time.monotonic(), w.checks
        await eventually(lambda: w.checks >= seen + 5)
        assert time.monotonic() - began >= 4 * gap  # a gap between any two of those checks


async def test_a_wake_does_not_cut_a_failed_restores_backoff(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing(*args: Any, **kwargs: Any) -> None:
        raise RedisError("lost during the restore")

    await held_then_wiped(site)  # letters in the log, no marker: a restore is due
    monkeypatch.setattr("steno_collab.lock_restore.restore_all", failing)
    monkeypatch.setattr("steno_collab.lock_restore.WAKE_GAP_S", 0.001)
    check_s = 0.05
    w = Watcher(site.settings, site.log, site.redis, check_s=check_s)
    async with running(w), waking(w):
        await eventually(lambda: w.failed_restores >= 2)  # backing off from now on
        began, seen = time.monotonic(), w.failed_restores
        await eventually(lambda: w.failed_restores >= seen + 2)
        # The backoff after failure seen + 1 ran whole (2 ** seen intervals), woken throughout.
        assert time.monotonic() - began >= check_s * 2**seen


@asynccontextmanager
async def waking(w: Watcher) -> AsyncIterator[None]:
    """Wakes `w` every millisecond, as a gateway's flood of 503s would."""

    async def wake() -> None:
        while True:
            w.wake()
            await asyncio.sleep(0.001)

    task = asyncio.create_task(wake())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait({task})


def at_least(w: Watcher, checks: int) -> bool:
    return w.checks >= checks


@asynccontextmanager
async def running(w: Watcher) -> AsyncIterator[Watcher]:
    task = asyncio.create_task(w.run())
    try:
        yield w
    finally:
        task.cancel()
        await asyncio.wait({task})


async def test_one_gateway_restores_at_a_time(site: Site) -> None:
    lid = await held_then_wiped(site)
    await site.redis.set(RESTORING, "operator", px=60_000)  # `backfill locks` is running
    async with shell(site) as one, shell(site) as two:
        watchers = [watcher(one), watcher(two)]
        await eventually(lambda: all(w.checks >= 3 for w in watchers))
        unrestored(await one.call("POST", f"/v1/letters/{lid}/locks/damages", user="bob"))
        assert [w.restores for w in watchers] == [0, 0]

        await site.redis.delete(RESTORING)  # that run ended (it would have set the marker)
        await eventually(lambda: taken_by_alice(two, lid))
        seen = [w.checks + 3 for w in watchers]
        await eventually(lambda: all(w.checks >= n for w, n in zip(watchers, seen, strict=True)))
        assert sorted(w.restores for w in watchers) == [0, 1]


async def test_with_the_setting_off_grants_wait_for_the_operator(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """Wiped (marker missing) or restarted (a marker of another run_id): 503 until `backfill
    locks`, and the gateway's log says so."""
    caplog.set_level(logging.WARNING, "steno_collab.lock_restore")
    lid = await held_then_wiped(site)
    damages = f"/v1/letters/{lid}/locks/damages"
    async with shell(site, locks_auto_restore=False) as collab:
        assert not hasattr(collab.gw.app.state, "lock_restore")  # nothing would restore them
        unrestored(r := await collab.call("POST", damages, user="bob"))
        assert "STENO_LOCKS_AUTO_RESTORE=false: then `steno-collab" in r.json()["detail"]
        assert not await site.redis.exists(RESTORED)

        await backfill(Sources(site.settings, site.log, site.redis), "locks")  # the operator
        assert await taken_by_alice(collab, lid)
        await site.redis.set(RESTORED, "x" * 40)  # as after any Redis restart
        unrestored(await collab.call("POST", damages, user="bob"))
        assert await site.redis.get(RESTORED) == b"x" * 40  # still stale: nothing restores it

        [warning] = [r for r in caplog.records if r.name == "steno_collab.lock_restore"]
        assert warning.levelno == logging.WARNING  # one a minute: two 503s, one line
        assert "missing or stale" in warning.message
        assert "503 until `steno-collab backfill locks`" in warning.message
        assert "renewals and releases" in warning.message  # held locks lapse meanwhile
        assert "run it now" in warning.message
        metrics = (await collab.http.get("/metrics")).text
        assert "gateway_locks_unrestored_found_total 2.0" in metrics


def test_the_reminder_warns_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "steno_collab.lock_restore")
    wakes = (0.0, 1.0, WARN_GAP_S - 0.1, WARN_GAP_S, WARN_GAP_S + 1, 2 * WARN_GAP_S)
    metrics = Metrics()
    reminder = Reminder(metrics.locks_unrestored_found, clock=iter(wakes).__next__)  # per wake
    for _ in wakes:
        reminder.wake()
    assert len(caplog.records) == 3  # at 0, WARN_GAP_S and twice that
    found = metrics.registry.get_sample_value("gateway_locks_unrestored_found_total")
    assert found == 6  # every wake


async def test_backfill_locks_waits_for_the_run_holding_the_lease(site: Site) -> None:
    await site.redis.set(RESTORING, "gateway", px=60_000)  # a gateway's restore is running
    out = io.StringIO()
    src = Sources(site.settings, site.log, site.redis)
    run = asyncio.create_task(backfill(src, "locks", meter=Meter(out=out, every_s=3600)))
    await eventually(lambda: "waiting for the restore another process runs" in out.getvalue())
    assert not run.done() and not await site.redis.exists(RESTORED)
    await site.redis.delete(RESTORING)  # it ended
    [line] = (await run).lines
    assert line.startswith("locks: 0 restored")
    assert await site.redis.exists(RESTORED) and not await site.redis.exists(RESTORING)


async def test_a_holder_cancelled_while_it_lets_the_lease_go_stops(site: Site) -> None:
    """A gateway's shutdown cancels its restore; a cancel landing as the lease is let go (the
    renewal task awaited) used to be swallowed, and the holder went on (seen as a shutdown
    waiting on the watcher)."""
    entered, left = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with lease(site.redis, RESTORING, 60):
            await asyncio.sleep(0)
            entered.set()  # the cancel below lands in the lease's exit
        left.set()
        await asyncio.Event().wait()  # a holder that missed its cancel waits here for good

    task = asyncio.create_task(holder())
    await entered.wait()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done and task.cancelled() and not left.is_set()
    assert not await site.redis.exists(RESTORING)  # let go all the same
