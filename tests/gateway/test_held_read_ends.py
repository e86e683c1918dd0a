"""Reads of a held letter on Kafka (gateway/live/tail.py, Tail.caught_up): each asks the end of
the letter's partition alone (it listed every partition's end: Tansu probes each non-empty one),
concurrent reads share lookups yet each sees a write acknowledged before it came, and a broker
that is down answers 503 within the configured append timeout (it took KafkaLog's own 10 s)."""

import asyncio
import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.events import Topic
from schemas.settings import Settings
from steno_collab.processes import Supervised
from tests.eventlog.brokers import own_broker
from tests.gateway.drafting import text_of, with_paragraph
from tests.gateway.harness import Running, running_gateway
from tests.support import frozen

__all__ = ["own_broker"]  # the fixture of tests/eventlog/brokers.py: a broker the test may stop
READS = 12
TIMEOUT_S = 1.0
SLACK_S = 1.5  # a loaded machine's lag past the bound


async def test_concurrent_held_reads_share_fresh_lookups_of_the_letters_partition(
    pair: tuple[Running, Running],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = pair
    letter = await a.create_letter("Dear Sir,")
    holder = await a.client(letter, user="alice")  # a holds the letter in memory
    await holder.synced.wait()
    topic = a.settings.topic(Topic.LETTERS)
    partition = a.log.partition_for(topic, letter.encode())
    auth = {"Authorization": f"Bearer {a.token('svc', role='service')}"}
    state, updates = f"/v1/letters/{letter}/state", f"/v1/letters/{letter}/updates"

    # Observed on the real log: which partitions each lookup asks, and what it listed. The
    # first lookup is held after listing, so reads arriving meanwhile find it in flight.
    asked: list[list[int]] = []
    listed: list[int] = []
    first_listed, release = asyncio.Event(), asyncio.Event()
    end_offset, end_offsets = a.log.end_offset, a.log.end_offsets

    async def held_first(found: int) -> None:
        listed.append(found)
        if len(asked) == 1:
            first_listed.set()
            await release.wait()

    async def one(t: str, p: int) -> int:
        asked.append([p])
        found = await end_offset(t, p)
        await held_first(found)
        return found

    async def every(t: str) -> dict[int, int]:
        asked.append(list(range(await a.log.partition_count(t))))
        found = await end_offsets(t)
        await held_first(found[partition])
        return found

    monkeypatch.setattr(a.log, "end_offset", one)
    monkeypatch.setattr(a.log, "end_offsets", every)
    # Arrivals: a read has entered caught_up (and found the lookup in flight) once counted.
    tail = a.app.state.gateway.tail
    caught_up, arrived, all_in = tail.caught_up, [0], asyncio.Event()

    async def counted(letter_id: str, timeout_s: float) -> bool:
        arrived[0] += 1
        if arrived[0] == READS:
            all_in.set()
        return bool(await caught_up(letter_id, timeout_s))

    monkeypatch.setattr(tail, "caught_up", counted)

    async with httpx.AsyncClient(timeout=30, headers=auth) as http:
        first = asyncio.ensure_future(http.get(a.http + state))
        await first_listed.wait()  # its lookup listed the end before the write below
        base = (await http.get(b.http + state)).content
        posted = await http.post(
            b.http + updates,
            content=with_paragraph(base, "fresh"),
            headers={"content-type": "application/octet-stream"},
        )
        assert posted.status_code == 200, posted.text  # acknowledged: in the log
        later = [asyncio.ensure_future(http.get(a.http + state)) for _ in range(READS - 1)]
        await all_in.wait()
        release.set()
        answers: list[Any] = await asyncio.gather(first, *later)
    assert [r.status_code for r in answers] == [200] * READS
    assert all("fresh" in text_of(r.content) for r in answers[1:])  # read after the ack
    assert asked == [[partition], [partition]]  # two lookups, of the letter's partition alone
    assert listed[1] > listed[0]  # the second listed after the write
    await holder.close()


@pytest.mark.parametrize("down", ["stopped", "stalled"])
async def test_a_held_read_answers_503_within_the_append_timeout_while_the_broker_is_down(
    own_broker: tuple[str, Supervised], tmp_path: Path, down: str
) -> None:
    bootstrap, broker = own_broker
    settings = Settings(
        data_dir=tmp_path / "steno", partitions=2, topic_prefix=f"h{uuid.uuid4().hex[:8]}.",
        log_url=f"kafka://{bootstrap}", kafka_idempotence=False, append_timeout_s=TIMEOUT_S,
    )  # fmt: skip
    async with running_gateway(settings) as gw:
        letter = await gw.create_letter("Dear Sir,")
        holder = await gw.client(letter, user="alice")
        await holder.synced.wait()
        auth = {"Authorization": f"Bearer {gw.token('svc', role='service')}"}
        async with httpx.AsyncClient(timeout=30, headers=auth) as http:
            state = gw.http + f"/v1/letters/{letter}/state"
            assert (await http.get(state)).status_code == 200
            with contextlib.ExitStack() as outage:
                if down == "stopped":
                    await broker.stop(timeout=5)  # its port refuses connections from now on
                else:
                    outage.enter_context(frozen(broker.pid))
                for at_once in (1, 1, READS):  # one; one while the first's lookup runs; many
                    began = time.monotonic()
                    answers = await asyncio.gather(*(http.get(state) for _ in range(at_once)))
                    assert [a.status_code for a in answers] == [503] * at_once
                    assert time.monotonic() - began < TIMEOUT_S + SLACK_S
        await holder.close()
