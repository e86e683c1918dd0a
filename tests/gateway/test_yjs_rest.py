"""Yjs over REST (gateway/api/yjs.py): a backend reads a letter's state and writes updates as
itself; live editors see them at once, and every refusal an editor's update would get applies."""

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from pycrdt import Doc, Text

from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.faults import faulty_gateway
from tests.gateway.harness import Running, running_gateway, types_of
from tests.support import eventually


def auth(gw: Running, **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.token(**kw)}"}


async def state_of(http: httpx.AsyncClient, gw: Running, letter: str) -> Doc[Any]:
    r = await http.get(f"/v1/letters/{letter}/state", headers=auth(gw))
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    doc: Doc[Any] = Doc()
    doc.apply_update(r.content)
    return doc


def appended(doc: Doc[Any], text: str) -> bytes:
    """What a backend posts: the update its Y.Doc made for `text` at the end of "text"."""
    before = doc.get_state()
    t = doc.get("text", type=Text)
    t.insert(len(t), text)
    return doc.get_update(before)


async def test_a_backends_update_reaches_live_editors_and_the_log(gw: Running) -> None:
    letter, alice, bob = await gw.two_editors()
    await alice.insert("Dear Sir, ")
    await eventually(lambda: str(bob.text) == "Dear Sir, ")
    async with httpx.AsyncClient(base_url=gw.http) as http:
        doc = await state_of(http, gw, letter)
        assert str(doc.get("text", type=Text)) == "Dear Sir, "
        update = appended(doc, "we write on behalf of our client.")
        r = await http.post(
            f"/v1/letters/{letter}/updates",
            content=update,
            headers={
                **auth(gw, user="drafter", role="service"),
                "content-type": "application/octet-stream",
            },
        )
        assert (r.status_code, r.json()) == (200, {"letter_id": letter, "bytes": len(update)})
        # Answered once logged, so the log has it, attributed to the backend's user.
        records = await gw.records(Topic.LETTERS, letter)
        mine = [r for r in records if r.value == update]
        assert len(mine) == 1 and dict(mine[0].headers)["user"] == b"drafter"
        text = "Dear Sir, we write on behalf of our client."
        await eventually(lambda: str(alice.text) == text and str(bob.text) == text)
        assert str((await state_of(http, gw, letter)).get("text", type=Text)) == text
    await alice.close()
    await bob.close()


async def test_an_update_to_a_letter_nobody_holds_is_there_for_the_next_to_join(
    gw: Running,
) -> None:
    letter = await gw.create_letter()
    async with httpx.AsyncClient(base_url=gw.http) as http:
        doc = await state_of(http, gw, letter)
        r = await http.post(
            f"/v1/letters/{letter}/updates", content=appended(doc, "drafted"), headers=auth(gw)
        )
        assert r.status_code == 200
        # Only what a Y.Doc at this state vector lacks: nothing more to apply.
        vector = base64.urlsafe_b64encode(doc.get_state()).decode().rstrip("=")
        rest = await http.get(
            f"/v1/letters/{letter}/state", params={"state_vector": vector}, headers=auth(gw)
        )
        before = doc.get_state()
        doc.apply_update(rest.content)
        assert doc.get_state() == before
    carol = await gw.client(letter, user="carol")
    await carol.synced.wait()
    assert str(carol.text) == "drafted"
    await carol.close()


async def test_refusals_cost_nothing_and_say_why(gw: Running) -> None:
    letter, alice, bob = await gw.two_editors()
    acked = len(alice.updates)
    await alice.insert("mine")
    await eventually(lambda: str(bob.text) == "mine")
    await eventually(lambda: len(alice.updates) > acked)  # her echo: it is logged
    before = types_of(await gw.records(Topic.LETTERS, letter))
    url = f"/v1/letters/{letter}/updates"
    other: Doc[Any] = Doc()
    update = appended(other, "x")
    # An update written under alice's Yjs client id: posing as her.
    posing: Doc[Any] = Doc(client_id=alice.doc.client_id)
    posing.apply_update(alice.doc.get_update())
    async with httpx.AsyncClient(base_url=gw.http) as http:
        cases = [
            (auth(gw, role="viewer"), update, 403),
            (auth(gw, firm="firm-b"), update, 403),
            (auth(gw), b"\xff\x00garbage", 422),
            (auth(gw), b"\x01\x01", 422),  # a truncated update
            (auth(gw, user="mallory"), appended(posing, "!"), 403),
            (auth(gw), appended(Doc(), "y" * (1 << 20)), 413),  # above max_message_bytes
        ]
        for headers, body, status in cases:
            r = await http.post(url, content=body, headers=headers)
            assert r.status_code == status, (status, r.text)
        empty = await http.post(url, content=b"\x00\x00", headers=auth(gw))
        assert empty.status_code == 200  # nothing to log
        bad = await http.get(
            f"/v1/letters/{letter}/state", params={"state_vector": "%%%"}, headers=auth(gw)
        )
        assert bad.status_code == 422
        anonymous = await http.post(url, content=update)
        assert anonymous.status_code == 401
    assert types_of(await gw.records(Topic.LETTERS, letter)) == before  # nothing logged
    await alice.insert(" still")  # the editors were not touched
    await eventually(lambda: str(bob.text) == "mine still")
    await alice.close()
    await bob.close()


@pytest_asyncio.fixture
async def budgeted(tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(
        data_dir=tmp_path / "steno",
        partitions=1,
        update_bytes_burst=1 << 20,
        update_bytes_per_s=1024,
    )
    async with running_gateway(settings) as gw:
        yield gw


async def test_the_callers_bytes_budget_applies(budgeted: Running) -> None:
    gw = budgeted
    letter = await gw.create_letter()
    doc: Doc[Any] = Doc()
    async with httpx.AsyncClient(base_url=gw.http) as http:
        first = appended(doc, "a" * 700_000)
        second = appended(doc, "b" * 700_000)
        url = f"/v1/letters/{letter}/updates"
        assert (await http.post(url, content=first, headers=auth(gw))).status_code == 200
        over = await http.post(url, content=second, headers=auth(gw))
    assert over.status_code == 429 and int(over.headers["retry-after"]) > 100


async def test_an_update_the_log_does_not_take_is_503(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, append_timeout_s=1.0)
    async with faulty_gateway(settings) as (gw, log):
        letter = await gw.create_letter()
        log.broken = True
        async with httpx.AsyncClient(base_url=gw.http) as http:
            r = await http.post(
                f"/v1/letters/{letter}/updates", content=appended(Doc(), "x"), headers=auth(gw)
            )
        log.broken = False
        assert (r.status_code, r.json()) == (503, {"detail": "log unavailable"})
