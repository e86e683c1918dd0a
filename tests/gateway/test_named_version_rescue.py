"""A named version comes after every edit the instance accepted before the request, also those
a failed append left to the letter's rescue (gateway/live/rescue.py): `version.saved` was
appended after the room's queue only, so edits still held by a rescue landed after it and the
version the user named missed them. Now the request waits for the rescue, within the append
timeout, and answers 503 with Retry-After (nothing appended) if it cannot land in time."""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from pycrdt import Doc, Text, merge_updates

from eventlog.errors import LogUnavailableError
from eventlog.records import Entry, Record
from gateway.live.appender import UnconfirmedAppend
from gateway.live.rescue import Rescue
from gateway.metrics import Metrics
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.faults import FaultyLog, faulty_gateway
from tests.gateway.harness import Running, running_gateway, types_of
from tests.support import eventually, started_log

TOPIC, KEY = "steno.letters", b"letter-1"


class RefusesAllButVersions(FaultyLog):
    """While `refusing`, single appends other than `version.saved` are refused: the rescue's
    last attempt failed and its next has not come yet when the version is asked for."""

    refusing = False

    async def append(self, topic: str, key: bytes, entries: Sequence[Entry]) -> list[int]:
        if self.refusing and any(dict(e.headers)["type"] != b"version.saved" for e in entries):
            raise LogUnavailableError("injected: the log refuses the rescue's append")
        return await super().append(topic, key, entries)


@asynccontextmanager
async def refusing_gateway(
    settings: Settings,
) -> AsyncIterator[tuple[Running, RefusesAllButVersions]]:
    async with started_log(settings) as real:
        log = RefusesAllButVersions(real)
        async with running_gateway(settings, log=log) as gw:
            yield gw, log


async def _failed_with_hello(gw: Running, fault: Callable[[], None]) -> str:
    """A letter whose editor typed "hello" once `fault` broke or stalled the log: the room's
    append failed or went unconfirmed, its editor was closed with 4503, the rescue holds it."""
    letter = await gw.create_letter()
    alice = await gw.client(letter, user="alice")
    await alice.synced.wait()
    # Her session.joined logged first: its append failing would fail the room before "hello"
    # arrives, which it would then refuse (nothing for the rescue to hold).
    await eventually(lambda: _has(gw, letter, "session.joined"))
    fault()
    await alice.insert("hello")
    await alice.closed.wait()
    assert alice.close_code == 4503
    return letter


async def _save(gw: Running, letter: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
        return await http.post(
            f"/v1/letters/{letter}/versions",
            json={"label": "sent"},
            headers={"Authorization": f"Bearer {gw.token(user='bob')}"},
        )


def _text_up_to(records: list[Record], offset: int) -> str:
    """The letter's text as a version cut at `offset` holds it."""
    updates = [
        r.value for r in records if r.offset < offset and dict(r.headers)["type"] == b"doc.update"
    ]
    doc: Doc[Any] = Doc()
    if updates:
        doc.apply_update(merge_updates(*updates))
    return str(doc.get("text", type=Text))


async def test_a_version_waits_for_the_rescued_edits_and_is_refused_while_they_are_out(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    async with refusing_gateway(settings) as (gw, log):

        def fail() -> None:  # the room's append fails, and so does its rescue's first attempt
            log.broken = log.refusing = True

        letter = await _failed_with_hello(gw, fail)
        log.broken = False  # the log is back, but the rescue's attempt was refused
        refused = await _save(gw, letter)
        # It went ahead before, with "hello" still out of the log: 202, a version without it.
        assert (refused.status_code, refused.json()) == (503, {"detail": "log behind"})
        assert refused.headers["retry-after"] == "1"
        records = await gw.records(Topic.LETTERS, letter)
        assert "version.saved" not in types_of(records)  # nothing written: retry is safe

        log.refusing = False
        saved = await _save(gw, letter)
        assert saved.status_code == 202, saved.text
        records = await gw.records(Topic.LETTERS, letter)
        assert _text_up_to(records, saved.json()["offset"]) == "hello"


async def test_a_version_behind_an_unconfirmed_append_is_refused_not_written(
    tmp_path: Path,
) -> None:
    timeout = 0.5  # append_timeout_s: the room's append and the request's wait for the rescue
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, append_timeout_s=timeout)
    async with faulty_gateway(settings) as (gw, log):
        try:
            letter = await _failed_with_hello(gw, log.gate.clear)  # "hello" goes unconfirmed
            refused = await _save(gw, letter)
            # Before, `version.saved` went to the stalled log behind it (504), and the entries
            # the rescue held (the session's end) landed after it once the log woke.
            assert (refused.status_code, refused.json()) == (503, {"detail": "log behind"})
            assert refused.headers["retry-after"] == "1"
        finally:
            log.gate.set()
        # The log wakes: the unconfirmed append lands, then what the rescue held, and no version.
        await eventually(lambda: _has(gw, letter, "session.left"))
        assert not await _has(gw, letter, "version.saved")
        saved = await _save(gw, letter)
        assert saved.status_code == 202, saved.text
        records = await gw.records(Topic.LETTERS, letter)
        assert max(r.offset for r in records) == saved.json()["offset"]
        assert _text_up_to(records, saved.json()["offset"]) == "hello"


async def _has(gw: Running, letter: str, kind: str) -> bool:
    return kind in types_of(await gw.records(Topic.LETTERS, letter))


async def test_landed_waits_for_an_unconfirmed_append_then_appends_the_rest(
    tmp_path: Path,
) -> None:
    async with started_log(Settings(data_dir=tmp_path / "steno", partitions=1)) as real:
        log = FaultyLog(real)
        log.gate.clear()  # the room's append is held: unconfirmed at its deadline
        first = [Entry(b"one")]
        call = asyncio.ensure_future(log.append(TOPIC, KEY, first))
        held = [*first, Entry(b"two")]
        rescue = Rescue(
            log,
            TOPIC,
            KEY,
            held,
            5.0,
            metrics=Metrics(),
            unconfirmed=UnconfirmedAppend(call, first),
        )
        waiting = asyncio.create_task(rescue.landed(5.0))
        done, _ = await asyncio.wait([waiting], timeout=0.1)
        assert not done  # it waits for the outcome rather than answer "not yet"
        log.gate.set()  # "one" lands; "two" is appended after it, once
        assert await waiting
        assert [r.value for r in await log.read(TOPIC, 0, 0)] == [b"one", b"two"]
        assert rescue.entries == []


async def test_landed_gives_up_at_its_deadline_and_the_rescue_goes_on(tmp_path: Path) -> None:
    async with started_log(Settings(data_dir=tmp_path / "steno", partitions=1)) as real:
        log = FaultyLog(real)
        log.gate.clear()
        first = [Entry(b"one")]
        call = asyncio.ensure_future(log.append(TOPIC, KEY, first))
        finished: list[Rescue] = []
        rescue = Rescue(
            log, TOPIC, KEY, [*first, Entry(b"two")], 5.0, finished.append,
            metrics=Metrics(), unconfirmed=UnconfirmedAppend(call, first),
        )  # fmt: skip
        assert not await rescue.landed(0.2)
        assert len(rescue.entries) == 2  # still held, nothing appended behind the stalled one
        log.gate.set()
        await eventually(lambda: finished == [rescue])  # its own retries land it
        assert [r.value for r in await log.read(TOPIC, 0, 0)] == [b"one", b"two"]
