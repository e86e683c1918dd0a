"""A log that cannot be followed (a broker outage) is retried every second, and said once: the
projector logged a WARNING per attempt and topic, 60 lines a minute for the whole outage."""

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from eventlog import Log
from eventlog.errors import LogUnavailableError
from projector import consumer
from schemas.settings import Settings
from tests.projector.support import Editor, append, caught_up, created, doc_text, projector
from tests.support import eventually

FAILURES = 3


async def test_a_follow_outage_is_warned_of_once_and_its_end_once(
    settings: Settings,
    log: Log,
    client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="projector.consumer")
    follow, calls = log.follow, {"letters": 0}
    letters = settings.topic_prefix + "letters"

    def failing_follow(topic: str, *args: object, **kwargs: object) -> object:
        if topic.endswith("letters"):  # the log's own follow then, once the outage is over
            calls["letters"] += 1
            if calls["letters"] <= FAILURES:
                raise LogUnavailableError("the broker is down (injected)")
        return follow(topic, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(log, "follow", failing_follow)
    ed = Editor("FOL1")
    await append(log, settings, [created("FOL1"), ed.event(ed.paragraph("back"))])
    async with projector(settings, log):
        await caught_up(log, settings, client, timeout=30)
        assert doc_text(await client.get("ydoc:FOL1")) == "<paragraph>back</paragraph>"

    def lines(level: int, text: str) -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno == level and r.getMessage().startswith(text)
        ]

    assert calls["letters"] > FAILURES
    warned = lines(logging.WARNING, f"following {letters} failed")
    assert len(warned) == 1, warned
    assert "injected" in warned[0]
    assert lines(logging.INFO, f"following {letters} again, after {FAILURES} failures")


async def test_a_quiet_topics_outages_are_each_warned_of_and_their_ends_told(
    settings: Settings,
    log: Log,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No record arrives on a quiet topic to say the log is back: the end of an outage went
    untold and the next outage was not warned of (DEBUG only; re-read). A follow that lasts
    FOLLOW_HEALTHY_S without failing ends the outage."""
    caplog.set_level(logging.INFO, logger="projector.consumer")
    monkeypatch.setattr(consumer, "FOLLOW_HEALTHY_S", 0.3)
    follow, calls = log.follow, {"n": 0}
    letters = settings.topic_prefix + "letters"
    down_again = asyncio.Event()

    async def quiet_until_down_again() -> AsyncIterator[list[object]]:
        await down_again.wait()  # nothing to read meanwhile, as on a quiet topic
        raise LogUnavailableError("the broker is down again (injected)")
        yield []  # pragma: no cover (an async generator)

    def failing_follow(topic: str, *args: object, **kwargs: object) -> object:
        if topic != letters:
            return follow(topic, *args, **kwargs)  # type: ignore[arg-type]
        calls["n"] += 1
        if calls["n"] in (1, 2, 4, 5):
            raise LogUnavailableError("the broker is down (injected)")
        if calls["n"] == 3:
            return quiet_until_down_again()
        return follow(topic, *args, **kwargs)  # type: ignore[arg-type]

    def told(level: int, text: str) -> int:
        return sum(r.levelno == level and r.getMessage().startswith(text) for r in caplog.records)

    monkeypatch.setattr(log, "follow", failing_follow)
    async with projector(settings, log):
        await eventually(lambda: told(logging.INFO, f"following {letters} again"), 20)
        down_again.set()
        await eventually(lambda: told(logging.INFO, f"following {letters} again") == 2, 20)
    assert told(logging.WARNING, f"following {letters} failed") == 2
