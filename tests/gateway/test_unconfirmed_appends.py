"""An append the log does not confirm in time (a stalled broker) may still land: the request
answers 504, not 503 (which says nothing was written), so the caller looks before sending it
again."""

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from eventlog.errors import LogUnavailableError
from eventlog.records import Entry
from gateway.live.confirmed import UNCONFIRMED, Unconfirmed, append_confirmed
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.faults import FaultyLog, faulty_gateway
from tests.gateway.harness import Running, types_of
from tests.support import eventually

TIMEOUT_S = 0.3  # the gateway's append_timeout_s here: how long a held append is waited for


@pytest_asyncio.fixture
async def stalled(tmp_path: Path) -> AsyncIterator[tuple[Running, FaultyLog, httpx.AsyncClient]]:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, append_timeout_s=TIMEOUT_S)
    async with faulty_gateway(settings) as (gw, log):
        headers = {"Authorization": f"Bearer {gw.token()}"}
        # Short: before the fix a held create was answered only once the log took it.
        try:
            async with httpx.AsyncClient(base_url=gw.http, headers=headers, timeout=5) as http:
                yield gw, log, http
        finally:  # a test that failed holding appends: the gateway's drain waits for them
            log.gate.set()


async def test_a_held_create_is_504_and_may_land_after_all(
    stalled: tuple[Running, FaultyLog, httpx.AsyncClient],
) -> None:
    _, log, http = stalled
    body = {"firm_id": "firm-a", "title": "Ghost", "content": "Dear Sir,\nPay."}
    log.gate.clear()  # the broker stalls: appends are sent, not confirmed
    first = await http.post("/v1/letters", json=body)
    assert first.status_code == 504, first.text
    assert first.json() == {"detail": UNCONFIRMED}
    log.gate.set()  # the broker wakes: the letter lands, what the 504 warned of
    listed = await eventually(lambda: _listed(http, "Ghost"))
    assert len(listed) == 1
    read = await http.get(f"/v1/letters/{listed[0]['letter_id']}")
    assert read.json()["content"] == "Dear Sir,\nPay."


async def _listed(http: httpx.AsyncClient, title: str) -> list[dict[str, str]]:
    r = await http.get("/v1/letters")
    assert r.status_code == 200, r.text
    return [letter for letter in r.json()["letters"] if letter["title"] == title]


async def test_a_refused_create_stays_503(
    stalled: tuple[Running, FaultyLog, httpx.AsyncClient],
) -> None:
    _, log, http = stalled
    log.broken = True  # the log answers with an error: nothing appended
    r = await http.post("/v1/letters", json={"firm_id": "firm-a", "title": "T"})
    assert r.status_code == 503 and r.json() == {"detail": "log unavailable"}


@pytest.mark.parametrize(
    ("path", "body", "kind"),
    [
        ("versions", {"label": "sent"}, "version.saved"),
        ("comments", {"body": "check", "anchor": {"from": 0, "to": 4}}, "comment.created"),
    ],
)
async def test_a_held_version_or_comment_is_504(
    stalled: tuple[Running, FaultyLog, httpx.AsyncClient],
    path: str,
    body: dict[str, Any],
    kind: str,
) -> None:
    gw, log, http = stalled
    letter = await gw.create_letter(content="Dear Sir")
    log.gate.clear()
    r = await http.post(f"/v1/letters/{letter}/{path}", json=body)
    assert r.status_code == 504, r.text
    assert r.json() == {"detail": UNCONFIRMED}
    log.gate.set()  # it lands after all: what the 504 warned of
    await eventually(lambda: _has(gw, letter, kind))


async def _has(gw: Running, letter: str, kind: str) -> bool:
    return kind in types_of(await gw.records(Topic.LETTERS, letter))


class KafkaDeadline(FaultyLog):
    """As KafkaLog answers an append its broker did not acknowledge within its own deadline."""

    async def append(self, topic: str, key: bytes, entries: Sequence[Entry]) -> list[int]:
        try:
            raise TimeoutError
        except TimeoutError as exc:
            raise LogUnavailableError(f"Kafka: appending to {topic}/0: no answer") from exc


async def test_the_logs_own_deadline_is_unconfirmed_too(
    stalled: tuple[Running, FaultyLog, httpx.AsyncClient],
) -> None:
    _, log, _ = stalled
    kafka = KafkaDeadline(log.inner)
    with pytest.raises(Unconfirmed):
        await append_confirmed(kafka, "t", b"k", [], TIMEOUT_S)
    log.broken = True  # an error the log answered with is a refusal
    with pytest.raises(LogUnavailableError):
        await append_confirmed(log, "t", b"k", [], TIMEOUT_S)
