"""The projector through a Redis outage (found in a review against real services): it retried a
failed batch every second and logged a warning for it, and for each failing housekeeping step,
on every tick of the whole outage; after Redis was paused (SIGSTOP) it blamed "another writer"
for a position its own unanswered commit had set once Redis ran it."""

import asyncio
import logging
import os
import signal
from typing import Any

import pytest
import redis.asyncio as aioredis

from eventlog import Log
from projector.consumer import FOLD_RETRY_FIRST_S
from schemas.settings import Settings
from tests.projector.support import OPTIONS, Editor, Instance, append, caught_up, created, doc_text
from tests.stoppable_redis import StoppableRedis
from tests.support import eventually


def _messages(caplog: pytest.LogCaptureFixture, start: str, level: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelname == level and r.getMessage().startswith(start)]


def _args(record: logging.LogRecord) -> tuple[object, ...]:
    assert isinstance(record.args, tuple)
    return record.args


async def test_a_redis_outage_is_retried_with_a_backoff_and_warned_of_once(
    settings: Settings,
    log: Log,
    outage_redis: StoppableRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="projector")
    settings = settings.model_copy(update={"redis_url": outage_redis.url})
    ed = Editor("BO1")
    await append(log, settings, [created("BO1"), ed.event(ed.paragraph("up"))])
    instance = Instance(settings, log, OPTIONS)  # housekeeping every 0.1 s
    try:
        await asyncio.wait_for(asyncio.shield(instance.ready), 30)
        async with aioredis.Redis.from_url(outage_redis.url) as client:
            await caught_up(log, settings, client)

        await outage_redis.stop()
        await append(log, settings, [ed.event(ed.type(0, "!"))])

        def waits() -> list[object]:  # before each retry of the batch
            return [_args(r)[1] for r in caplog.records if str(r.msg).startswith("batch not fold")]

        await eventually(lambda: len(waits()) >= 3, 20)  # 1 + 2 s into the outage
        assert waits()[:3] == [FOLD_RETRY_FIRST_S, 2 * FOLD_RETRY_FIRST_S, 4 * FOLD_RETRY_FIRST_S]
        assert len(_messages(caplog, "batch not folded", "WARNING")) == 1
        # ~30 ticks failed their check (and sweeps, every 0.2 s; the report too if its 5 s came
        # due in the outage): one warning per step.
        warned = sorted(
            str(_args(r)[0]) for r in _messages(caplog, "projector housekeeping", "WARNING")
        )
        assert warned in (["check", "sweep"], ["check", "report", "sweep"])
        assert not instance.task.done()

        await outage_redis.start()
        async with aioredis.Redis.from_url(outage_redis.url) as client:
            await caught_up(log, settings, client, timeout=30)
            assert doc_text(await client.get("ydoc:BO1")) == "<paragraph>up!</paragraph>"

        def recovered() -> bool:
            back = _messages(caplog, "projector housekeeping", "INFO")
            steps = sorted(str(_args(r)[0]) for r in back)
            return steps == warned and bool(_messages(caplog, "batches folded again", "INFO"))

        await eventually(recovered, 10)
    finally:
        await instance.stop()


async def test_its_own_commit_run_late_by_a_paused_redis_is_not_another_writers(
    settings: Settings,
    log: Log,
    outage_redis: StoppableRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis paused (SIGSTOP) past the client's socket timeout as a batch is committed: the
    commit fails client-side but sits in Redis' socket, and runs once Redis resumes (SIGCONT).
    The pause is timed by a hook on the store's commit (a pause at random mostly catches the
    batch's reads, which leave nothing to run late)."""
    caplog.set_level(logging.INFO, logger="projector")
    url = f"{outage_redis.url}?socket_timeout=0.5"
    settings = settings.model_copy(update={"redis_url": url})
    ed = Editor("BO2")
    await append(log, settings, [created("BO2"), ed.event(ed.paragraph("up"))])
    instance = Instance(settings, log, OPTIONS)
    assert outage_redis._proc is not None
    pid = outage_redis._proc.pid
    try:
        proj = await asyncio.wait_for(asyncio.shield(instance.ready), 30)
        async with aioredis.Redis.from_url(outage_redis.url) as client:
            await caught_up(log, settings, client)
        commit = proj.store.commit

        async def paused_commit(*args: Any, **kwargs: Any) -> Any:
            proj.store.commit = commit  # type: ignore[method-assign]
            os.kill(pid, signal.SIGSTOP)
            return await commit(*args, **kwargs)

        proj.store.commit = paused_commit  # type: ignore[method-assign]
        try:
            await append(log, settings, [ed.event(ed.type(0, "!"))])
            await eventually(lambda: _messages(caplog, "batch not folded", "WARNING"), 10)
        finally:
            os.kill(pid, signal.SIGCONT)
        async with aioredis.Redis.from_url(outage_redis.url) as client:
            await caught_up(log, settings, client)
            assert doc_text(await client.get("ydoc:BO2")) == "<paragraph>up!</paragraph>"
        await eventually(lambda: _messages(caplog, "position of", "INFO"), 10)
        assert "our unanswered commit landed" in _messages(caplog, "position of", "INFO")[0].msg
        assert not [r for r in caplog.records if "another writer" in r.getMessage()]
    finally:
        await instance.stop()
