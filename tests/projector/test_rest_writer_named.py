"""A Yjs update written over REST by a user who never joined the letter (a backend's service
token) is named in `recent:<id>`: its record carries the token's name (the optional `name`
header, schemas/envelope.py NAME_HEADER), which the projector takes as `creator_name` is taken.
Without it the editors' pages said "Someone edited ..." (gateway/collab/channel.py follows
`recent:<id>` for `section.edited`)."""

import json
from dataclasses import replace
from unittest.mock import ANY

import httpx
import pytest
import redis.asyncio as aioredis

from eventlog import Log
from projector.fold import fold_letter
from projector.state import LetterState
from schemas.envelope import NAME_HEADER, decode_record, encode_event, raw_headers
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.crash_owners import logged
from tests.gateway.harness import running_gateway
from tests.projector.support import Editor, caught_up, created, items, joined, projector
from tests.support import eventually

pytestmark = pytest.mark.timeout(60)


async def test_a_rest_writer_who_never_joined_is_named(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    async with running_gateway(settings, log=log) as gw:
        letter = await gw.create_letter()
        drafted = Editor(letter, "backend").paragraph("Drafted by the backend")
        token = gw.token(user="backend", role="service", name="Drafting Bot")
        async with httpx.AsyncClient(base_url=gw.http, timeout=30) as http:
            answer = await http.post(
                f"/v1/letters/{letter}/updates",
                content=drafted,
                headers={
                    "Authorization": f"Bearer {token}",
                    "content-type": "application/octet-stream",
                },
            )
        assert answer.status_code < 300, answer.text
        records = await gw.records(Topic.LETTERS, letter)
    updates = [r for r in records if dict(r.headers)["type"] == b"doc.update"]
    assert [dict(r.headers).get(NAME_HEADER) for r in updates] == [b"Drafting Bot"]
    assert decode_record(updates[0].key, updates[0].value, updates[0].headers).envelope.name == (
        "Drafting Bot"
    )
    async with projector(settings, log):
        await caught_up(log, settings, client)
    recent = {k: json.loads(v) for k, v in (await client.hgetall(f"recent:{letter}")).items()}
    assert [(r["userId"], r["name"]) for r in recent.values()] == [("backend", "Drafting Bot")]


async def test_websocket_updates_carry_no_name(log: Log, settings: Settings) -> None:
    """A connection's user is named by its session.joined: its updates stay as they were."""
    async with running_gateway(settings, log=log) as gw:
        letter, alice, _bob = await gw.two_editors()
        await alice.insert("typed")
        await eventually(lambda: logged(gw, letter, "typed"))
        await alice.close()
        await _bob.close()
        records = await gw.records(Topic.LETTERS, letter)
    updates = [dict(r.headers) for r in records if dict(r.headers)["type"] == b"doc.update"]
    assert updates and all(NAME_HEADER not in h for h in updates)


def test_the_name_header_round_trips_and_older_records_fold_as_before() -> None:
    ed = Editor("L", "backend")
    named = ed.event(ed.paragraph("one"))
    named = replace(named, envelope=replace(named.envelope, name="Drafting Bot", v=1))
    key, value, headers = encode_event(named)
    assert decode_record(key, value, headers) == named
    raw = raw_headers("L", "doc.update", firm="F", user="backend", name="Drafting Bot")
    assert (NAME_HEADER, b"Drafting Bot") in raw
    assert NAME_HEADER not in dict(raw_headers("L", "doc.update", firm="F", user="backend"))
    # Not UTF-8: the record keeps its event, only the name is mangled.
    mangled = [(k, b"\xff" if k == NAME_HEADER else v) for k, v in headers]
    assert decode_record(key, value, mangled).payload == named.payload

    state = LetterState("L")
    fold_letter(state, items([created("L", "u1"), named]), "default")
    assert state.recent["0"] == {"userId": "backend", "name": "Drafting Bot", "at": ANY}
    older = LetterState("L")  # a record logged before the header: unnamed, as before
    plain = Editor("L", "backend")
    fold_letter(older, items([created("L", "u1"), plain.event(plain.paragraph("x"))]), "default")
    assert older.recent["0"]["name"] == ""
    # A join names them as it names everyone (its name wins from then on).
    fold_letter(state, items([joined("L", "c1", "backend")], 2), "default")
    assert state.users["backend"] == {"name": "BACKEND", "color": "#123456"}
