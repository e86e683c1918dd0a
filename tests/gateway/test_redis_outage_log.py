"""A gateway's log while Redis is down: its lock sweep, its `gateway:<id>:alive` refresh and its
attendance writes each logged a WARNING per retry (~23 lines a minute per gateway, found by a
reviewer on Kafka/Redis/PostgreSQL) and nothing once Redis worked again. Now each kind is one
WARNING when it starts failing, DEBUG while it goes on, and one INFO when it works again
(schemas/outages.py)."""

import logging
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gateway import service
from gateway.collab import locks
from gateway.live import attendance
from schemas.keys import alive_key, attending_key
from schemas.settings import Settings
from tests.gateway.harness import running_gateway
from tests.stoppable_redis import StoppableRedis
from tests.support import eventually

BEAT_S = 0.1  # each loop's pace here (5 s, 10 s and 1 s in production): an outage of a second

# logger -> (what its failures say, what its recovery says)
KINDS = {
    "gateway.collab.locks": ("lock sweep failed", "lock sweep works again after"),
    "gateway.service": ("cannot refresh gateway:", "refreshing gateway:"),
    "gateway.live.attendance": ("cannot write attendance", "writing attendance works again"),
}


def _lines(caplog: pytest.LogCaptureFixture, name: str, which: int) -> list[logging.LogRecord]:
    said = KINDS[name][which]
    return [r for r in caplog.records if r.name == name and said in r.getMessage()]


async def test_a_redis_outage_is_one_warning_per_kind_and_one_info_when_it_ends(
    outage_redis: StoppableRedis,
    service_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(locks, "SWEEP_EVERY_S", BEAT_S)
    monkeypatch.setattr(service, "ALIVE_EVERY_S", BEAT_S)  # the attendance's heartbeat too
    monkeypatch.setattr(attendance, "RETRY_S", BEAT_S)
    for name in KINDS:
        caplog.set_level(logging.DEBUG, logger=name)
    settings = Settings(data_dir=service_tmp / "steno", redis_url=outage_redis.url, partitions=2)
    redis = aioredis.Redis.from_url(outage_redis.url, socket_timeout=2)
    try:
        async with running_gateway(settings, redis=redis) as gw:
            letter = await gw.create_letter()
            alice = await gw.client(letter, user="alice")  # vouched for: attendance writes
            await alice.synced.wait()
            await eventually(lambda: redis.exists(attending_key(letter)))
            gateway_id = gw.app.state.gateway.ctx.gateway_id
            assert await redis.exists(alive_key(gateway_id))

            await outage_redis.stop()
            await eventually(lambda: all(len(_lines(caplog, n, 0)) >= 3 for n in KINDS), 20)
            await outage_redis.start()
            await eventually(lambda: all(_lines(caplog, name, 1) for name in KINDS), 20)
            await alice.close()
    finally:
        await redis.aclose()

    for name in KINDS:
        failed, recovered = _lines(caplog, name, 0), _lines(caplog, name, 1)
        levels = [r.levelno for r in failed]
        assert levels[0] == logging.WARNING and set(levels[1:]) == {logging.DEBUG}, (name, levels)
        assert [r.levelno for r in recovered] == [logging.INFO], name
        assert f"after {len(failed)} failures" in recovered[0].getMessage(), name
        warned = [r.getMessage() for r in caplog.records if r.name == name and r.levelno >= 30]
        assert warned == [failed[0].getMessage()], name  # nothing else said it at WARNING
