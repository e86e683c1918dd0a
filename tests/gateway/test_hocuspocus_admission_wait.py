"""`/v1/hocuspocus` at the byte level: a document refused for now (over the user's handshake
budget, the log unavailable) waits for the refusal's retry-after and is admitted then, up to
`rate_wait_max_s`; the socket's other documents go on meanwhile. Past that it is denied, and a
socket left with nothing authenticated closes with 1013 (a 2.x provider never reconnects after
the 4401 of the auth deadline), not 4401."""

import time
from pathlib import Path
from typing import Any

from pycrdt import create_update_message

from gateway.api.hocuspocus import Multiplexed
from gateway.errors import TRY_AGAIN_LATER
from gateway.wire import hocuspocus as hp
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.faults import faulty_gateway
from tests.gateway.harness import running_gateway
from tests.gateway.hocuspocus_client import HpClient, edit
from tests.support import eventually

# One handshake, then one a second: a second document waits about 1 s.
BUDGET: dict[str, Any] = {"handshakes_burst": 1, "handshakes_per_s": 1.0}
RATE_LIMITED = 'gateway_refusals_total{reason="handshake_rate_limited"}'
STEP_1 = bytes([0, 0, 1, 0])  # sync step 1 of an empty document


async def test_a_document_over_the_handshake_budget_is_admitted_once_it_refills(
    tmp_path: Path, read_path: str
) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, **BUDGET)
    async with running_gateway(settings) as gw:
        first, second = await gw.create_letter(), await gw.create_letter("Dear Sir,")
        client = await HpClient.connect(gw)
        token = gw.token(user="alice")
        doc = await client.synced(f"letter-{first}", token)  # the whole burst
        waited_from = time.monotonic()
        await client.auth(f"letter-{second}", token)
        await client.send(f"letter-{second}", STEP_1)  # as providers do, before the answer
        # Meanwhile the socket is read, and its other document goes on.
        await client.send(f"letter-{first}", create_update_message(edit(doc, "meanwhile")))
        assert (await client.next(f"letter-{first}", hp.SYNC_STATUS)).body == b"\x01"
        assert not [r for r in client.received if r.address == f"letter-{second}"]
        answer = await client.next(f"letter-{second}", hp.AUTH)
        assert answer.body[0] == hp.AUTH_OK, answer.body
        assert time.monotonic() - waited_from >= 0.5  # the budget refilled first
        # Its step 1, kept while it waited, is answered with the letter.
        step2 = await client.next(f"letter-{second}", hp.SYNC)
        assert step2.body[0] == 1 and b"Dear Sir," in step2.body
        assert await gw.logged_text(first) == "meanwhile"
        metrics = await gw.metrics()
        assert metrics["gateway_messages_paced_total"] >= 1
        assert RATE_LIMITED not in metrics
        assert not client.closed.is_set()
        await client.close()


async def test_a_document_over_the_budget_past_the_wait_is_denied_and_told_to_try_again(
    tmp_path: Path, read_path: str
) -> None:
    """Two sockets wait for the one handshake the budget has after 1 s: one is admitted, the
    other, over the budget again and past `rate_wait_max_s`, is denied; with nothing
    authenticated on it, its socket closes with 1013, not the 4401 of the auth deadline."""
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, rate_wait_max_s=1.5, **BUDGET)
    async with running_gateway(settings) as gw:
        letter = await gw.create_letter()
        token = gw.token(user="alice")
        holder = await HpClient.connect(gw)
        await holder.synced(f"letter-{letter}", token)  # the whole burst
        waiting = [await HpClient.connect(gw) for _ in range(2)]
        for client in waiting:
            await client.auth(f"letter-{letter}", token)
        answers = [(await c.next(f"letter-{letter}", hp.AUTH)).body for c in waiting]
        assert sorted(a[0] for a in answers) == [hp.AUTH_DENIED, hp.AUTH_OK]
        admitted, denied = waiting if answers[0][0] == hp.AUTH_OK else waiting[::-1]
        assert b"handshake_rate_limited" in answers[waiting.index(denied)]
        await denied.closed.wait()
        assert denied.close_code == TRY_AGAIN_LATER
        assert not admitted.closed.is_set() and not holder.closed.is_set()
        metrics = await gw.metrics()
        assert metrics[RATE_LIMITED] == 1
        assert metrics["gateway_messages_paced_total"] == 2  # the second wait would be too long
        for client in (admitted, holder):
            await client.close()


async def test_documents_waiting_on_one_socket_keep_it_open_when_one_is_denied(
    tmp_path: Path, read_path: str
) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, rate_wait_max_s=1.5, **BUDGET)
    async with running_gateway(settings) as gw:
        letters = [await gw.create_letter() for _ in range(3)]
        token = gw.token(user="alice")
        client = await HpClient.connect(gw)
        await client.synced(f"letter-{letters[0]}", token)
        for letter in letters[1:]:
            await client.auth(f"letter-{letter}", token)
        answers = [(await client.next(f"letter-{x}", hp.AUTH)).body[0] for x in letters[1:]]
        assert sorted(answers) == [hp.AUTH_DENIED, hp.AUTH_OK]
        assert not client.closed.is_set()  # it has documents
        await client.close()


async def test_a_document_closed_while_it_waits_is_not_admitted(
    tmp_path: Path, read_path: str
) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, **BUDGET)
    async with running_gateway(settings) as gw:
        first, second, third = [await gw.create_letter() for _ in range(3)]
        token = gw.token(user="alice")
        client = await HpClient.connect(gw)
        await client.synced(f"letter-{first}", token)
        (socket,) = [s for s in gw.app.state.gateway.sockets if isinstance(s, Multiplexed)]
        await client.auth(f"letter-{second}", token)
        await eventually(lambda: socket._waits)  # it waits for the budget
        await client.send(f"letter-{second}", bytes([hp.CLOSE]))  # the provider detached
        await eventually(lambda: not socket._waits)  # its wait is over
        # The handshake that refilled meanwhile was not spent on it: the next one has it.
        await client.auth(f"letter-{third}", token)
        assert (await client.next(f"letter-{third}", hp.AUTH)).body[0] == hp.AUTH_OK
        assert (await gw.metrics())["gateway_messages_paced_total"] == 1  # it did not wait
        assert not [r for r in client.received if r.address == f"letter-{second}"]
        records = await gw.records(Topic.LETTERS, second)
        assert not [r for r in records if dict(r.headers)["type"] == b"session.joined"]
        await client.close()


async def test_a_document_whose_letter_cannot_be_looked_up_is_tried_again_then_denied(
    tmp_path: Path,
) -> None:
    """An unknown letter is looked for in the log: while it cannot be read that is a refusal
    for now (log_unavailable), tried again each second up to `rate_wait_max_s`."""
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, rate_wait_max_s=1.5)
    async with faulty_gateway(settings) as (gw, log):
        letter = await gw.create_letter()
        topic = gw.settings.topic(Topic.LETTERS)
        partition = log.partition_for(topic, letter.encode())
        unknown = next(
            u
            for n in range(100)
            if log.partition_for(topic, (u := f"gone-{n}").encode()) == partition
        )
        log.reads_broken = True
        client = await HpClient.connect(gw)
        started = time.monotonic()
        await client.auth(f"letter-{unknown}", gw.token(user="alice"))
        answer = await client.next(f"letter-{unknown}", hp.AUTH)
        assert answer.body[0] == hp.AUTH_DENIED and b"log_unavailable" in answer.body
        assert time.monotonic() - started >= 1.0  # tried again after 1 s first
        await client.closed.wait()
        assert client.close_code == TRY_AGAIN_LATER
        log.reads_broken = False
        metrics = await gw.metrics()
        assert metrics['gateway_refusals_total{reason="log_unavailable"}'] == 1
        assert metrics["gateway_messages_paced_total"] == 1
