"""`GET /v1/letters/{id}/state` carries what the letter's document holds pending (an update
logged before the one it builds on), as a sync step 2 does: a backend that drafts from it
integrates that update once the missing one arrives, as a live editor does."""

import base64
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Text

from eventlog.records import Entry
from schemas.events import Topic
from tests.gateway.harness import Running


def _appended(doc: Doc[Any], *texts: str) -> list[bytes]:
    """One update per text appended to `doc`'s "text": each builds on the one before."""
    updates: list[bytes] = []
    sub = doc.observe(lambda event: updates.append(event.update))
    text = doc.get("text", type=Text)
    for value in texts:
        text += value
    doc.unobserve(sub)
    return updates


async def _log(gw: Running, letter: str, update: bytes) -> None:
    ctx = gw.app.state.gateway.ctx
    entry: Entry = ctx.entry(letter, update, firm="firm-a", user="svc", type="doc.update")
    await gw.log.append(gw.settings.topic(Topic.LETTERS), letter.encode(), [entry])


async def _state(http: httpx.AsyncClient, gw: Running, letter: str, vector: bytes | None) -> bytes:
    vector_b64 = base64.urlsafe_b64encode(vector or b"").decode().rstrip("=")
    params = {"state_vector": vector_b64} if vector else {}
    headers = {"Authorization": f"Bearer {gw.token(user='drafter', role='service')}"}
    r = await http.get(f"/v1/letters/{letter}/state", params=params, headers=headers)
    assert r.status_code == 200
    return r.content


@pytest.mark.parametrize("held", [False, True], ids=["unheld", "held"])
@pytest.mark.parametrize("diff", [False, True], ids=["whole", "state-vector"])
async def test_the_state_carries_an_update_pending_on_a_missing_one(
    gw: Running, held: bool, diff: bool
) -> None:
    letter = await gw.create_letter()
    writer: Doc[Any] = Doc()
    (hello,) = _appended(writer, "hello ")
    first, second = _appended(writer, "first ", "second")
    await _log(gw, letter, hello)
    await _log(gw, letter, second)  # before `first`, which it builds on: pending
    clients = []
    if held:  # the room loads the letter; else it is rebuilt for the request
        clients.append(await gw.client(letter, user="bob"))
        await clients[0].synced.wait()
        assert gw.app.state.gateway.rooms.get(letter) is not None
    backend: Doc[Any] = Doc()
    if diff:  # a backend that has the letter up to `hello` asks for the rest
        backend.apply_update(hello)
    async with httpx.AsyncClient(base_url=gw.http) as http:
        backend.apply_update(await _state(http, gw, letter, backend.get_state() if diff else None))
    assert str(backend.get("text", type=Text)) == "hello "
    backend.apply_update(first)  # what the pending update waited for
    assert str(backend.get("text", type=Text)) == "hello first second"
    for client in clients:
        await client.close()


async def test_the_state_of_a_letter_with_no_content_is_an_empty_update(gw: Running) -> None:
    letter = await gw.create_letter()
    async with httpx.AsyncClient(base_url=gw.http) as http:
        for vector in (None, b"\x00"):
            doc: Doc[Any] = Doc()
            doc.apply_update(await _state(http, gw, letter, vector))
            assert doc.get_state() == b"\x00"


async def test_a_padded_state_vector_is_read_as_an_unpadded_one(gw: Running) -> None:
    """Python's `urlsafe_b64encode` (and most encoders) pad with '='; JavaScript's do not."""
    letter = await gw.create_letter()
    headers = {"Authorization": f"Bearer {gw.token(user='drafter', role='service')}"}
    async with httpx.AsyncClient(base_url=gw.http) as http:
        doc: Doc[Any] = Doc()
        doc.apply_update(await _state(http, gw, letter, None))
        vector = base64.urlsafe_b64encode(doc.get_state()).decode()
        assert vector.endswith("=")  # else the test shows nothing
        answers = [
            await http.get(
                f"/v1/letters/{letter}/state", params={"state_vector": v}, headers=headers
            )
            for v in (vector, vector.rstrip("="))
        ]
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert answers[0].content == answers[1].content
