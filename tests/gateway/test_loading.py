"""Loading a letter: Redis snapshot, else latest letter_version, then the log after it; idle
unload; the REST API."""

import gc
import weakref
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from pycrdt import Doc, Text

from eventlog.records import Entry
from gateway.access import LetterMeta
from schemas.events import Topic
from tests.gateway.harness import Running
from tests.support import eventually


def _text_update(text: str, base: Doc[Any] | None = None) -> tuple[bytes, Doc[Any]]:
    doc = base or Doc()
    before = doc.get_state()
    t = doc.get("text", type=Text)
    t.insert(len(t), text)
    return doc.get_update(before), doc


async def _append_update(gw: Running, letter: str, update: bytes) -> int:
    ctx = gw.app.state.gateway.ctx
    entry: Entry = ctx.entry(letter, update, firm="firm-a", user="svc", type="doc.update")
    topic = gw.settings.topic(Topic.LETTERS)
    [offset] = await gw.log.append(topic, letter.encode(), [entry])
    return offset


async def _end(gw: Running, letter: str) -> int:
    topic = gw.settings.topic(Topic.LETTERS)
    return (await gw.log.end_offsets(topic))[gw.log.partition_for(topic, letter.encode())]


async def _text_of(gw: Running, letter: str) -> str:
    client = await gw.client(letter)
    await client.synced.wait()
    text = str(client.text)
    await client.close()
    return text


async def test_loads_redis_snapshot_then_the_log_after_it(stores: Running) -> None:
    letter = await stores.create_letter()
    snapshot, doc = _text_update("from-redis ")  # never in the log: only Redis has it
    redis = stores.app.state.gateway.ctx.redis
    await redis.mset(
        {f"ydoc:{letter}": snapshot, f"ydoc:{letter}:offset": await _end(stores, letter)}
    )
    later, _ = _text_update("after", doc)
    await _append_update(stores, letter, later)
    assert await _text_of(stores, letter) == "from-redis after"


async def test_loads_latest_letter_version_then_the_log_after_it(
    stores: Running, stores_writer: asyncpg.Connection
) -> None:
    letter = await stores.create_letter()
    old, doc = _text_update("v1 ")
    _state, doc = _text_update("from-pg ", doc)
    pg = stores_writer
    topic = stores.settings.topic(Topic.LETTERS)
    await pg.execute(
        "INSERT INTO letters (letter_id, firm_id, title, created_at, created_by, log_topic,"
        " log_partition, log_offset) VALUES ($1, 'firm-a', 'T', now(), 'u', $2, 0, 0)",
        letter, topic,
    )  # fmt: skip
    for number, ydoc in ((1, old), (2, doc.get_update())):
        await pg.execute(
            "INSERT INTO letter_version (letter_id, version_number, content, document, ydoc_state,"
            " log_topic, log_partition, log_offset, change_data, created_at)"
            " VALUES ($1, $2, '', '{}', $3, $4, 0, $5, '{}', now())",
            letter, number, ydoc, topic, await _end(stores, letter),
        )  # fmt: skip
    later, _ = _text_update("after", doc)
    await _append_update(stores, letter, later)
    assert await _text_of(stores, letter) == "v1 from-pg after"


async def test_with_no_snapshot_the_log_is_read_from_the_letters_creation(
    stores: Running,
    stores_writer: asyncpg.Connection,
) -> None:
    """Not from the partition's beginning: the topic is kept forever. In each case an update
    placed before the start the projections give stands for that history: it is not read."""
    pg = stores_writer
    topic = stores.settings.topic(Topic.LETTERS)
    # The letters row says where the letter was created.
    known = await stores.create_letter()
    await _append_update(stores, known, _text_update("skipped ")[0])
    created = await _end(stores, known)
    await pg.execute(
        "INSERT INTO letters (letter_id, firm_id, title, created_at, created_by, log_topic,"
        " log_partition, log_offset) VALUES ($1, 'firm-a', 'T', now(), 'u', $2, $3, $4)",
        known, topic, stores.log.partition_for(topic, known.encode()), created,
    )  # fmt: skip
    await _append_update(stores, known, _text_update("read")[0])
    assert await _text_of(stores, known) == "read"
    # Not in the table yet: created past the snapshotter's position in its partition.
    fresh = await stores.create_letter()
    await _append_update(stores, fresh, _text_update("skipped ")[0])
    partition = stores.log.partition_for(topic, fresh.encode())
    await pg.execute(
        "INSERT INTO consumer_positions (consumer_group, topic, partition, next_offset)"
        " VALUES ('snapshotter', $1, $2, $3)",
        topic, partition, await _end(stores, fresh),
    )  # fmt: skip
    await _append_update(stores, fresh, _text_update("read")[0])
    assert await _text_of(stores, fresh) == "read"


async def test_idle_letter_is_unloaded_and_reloads(stores: Running) -> None:
    letter = await stores.create_letter()
    client = await stores.client(letter)
    await client.synced.wait()
    await client.insert("kept")
    await eventually(lambda: len(client.updates) >= 2)  # acknowledged
    rooms = stores.app.state.gateway.rooms
    loaded = rooms.get(letter)
    assert loaded is not None
    room, loaded = weakref.ref(loaded), None
    await client.close()
    await eventually(lambda: rooms.get(letter) is None)  # closing: it flushes, then leaves

    def collected() -> bool:
        gc.collect()
        return room() is None  # nothing keeps its document, presence, appenders

    await eventually(collected)  # a leak keeps it past the timeout
    assert await _text_of(stores, letter) == "kept"


async def test_rest_create_read_and_permissions(stores: Running) -> None:
    editor = {"Authorization": f"Bearer {stores.token(firm='firm-a')}"}
    async with httpx.AsyncClient(base_url=stores.http) as http:
        body = {"firm_id": "firm-a", "title": "Demand", "content": "Dear Sir,\nPay."}
        r = await http.post("/v1/letters", json=body, headers=editor)
        assert r.status_code == 201
        created = r.json()
        assert created["firm_id"] == "firm-a" and created["title"] == "Demand"
        letter = created["letter_id"]
        r = await http.get(f"/v1/letters/{letter}", headers=editor)
        assert r.json() == {**created, "content": "Dear Sir,\nPay."}

        other = {"Authorization": f"Bearer {stores.token(firm='firm-b')}"}
        viewer = {"Authorization": f"Bearer {stores.token(firm='firm-a', role='viewer')}"}
        service = {"Authorization": f"Bearer {stores.token(firm='ops', role='service')}"}
        assert (await http.get(f"/v1/letters/{letter}", headers=other)).status_code == 403
        assert (await http.get("/v1/letters/nope", headers=editor)).status_code == 403
        assert (await http.get(f"/v1/letters/{letter}")).status_code == 401
        assert (await http.post("/v1/letters", json=body, headers=other)).status_code == 403
        assert (await http.post("/v1/letters", json=body, headers=viewer)).status_code == 403
        assert (await http.post("/v1/letters", json=body, headers=service)).status_code == 201
        assert (await http.get(f"/v1/letters/{letter}", headers=service)).status_code == 200

        # Edits over the socket show in GET (a paragraph appended to TipTap's fragment).
        client = await stores.client(letter)
        await client.synced.wait()
        from pycrdt import XmlElement, XmlFragment, XmlText

        await client.edit(lambda d: d.get("default", type=XmlFragment).children.append(
            XmlElement("paragraph", {}, [XmlText("Regards")])))  # fmt: skip
        await eventually(lambda: len(client.updates) >= 2)
        r = await http.get(f"/v1/letters/{letter}", headers=editor)
        assert r.json()["content"] == "Dear Sir,\nPay.\nRegards"
        await client.close()

        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"log": "ok", "redis": "ok", "postgres": "ok"}
        gateway_id = stores.app.state.gateway.ctx.gateway_id
        ttl = await stores.app.state.gateway.ctx.redis.ttl(f"gateway:{gateway_id}:alive")
        assert 0 < ttl <= 30
        metrics = (await http.get("/metrics")).text
        assert "gateway_append_seconds_bucket" in metrics
        assert 'gateway_refusals_total{reason="forbidden"}' in metrics
        counts = {
            (sample.name, sample.labels.get("type")): sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
        }
        assert counts[("gateway_messages_in_total", "sync_update")] >= 1  # the client's edit
        assert counts[("gateway_messages_out_total", "sync_step2")] >= 1
        assert counts[("gateway_messages_out_total", "update")] >= 1  # its echo
        assert counts[("gateway_fanout_seconds_count", None)] >= 1  # the client's edit, fanned out


async def test_a_method_a_path_does_not_have_is_405_naming_all_it_has(stores: Running) -> None:
    """Starlette's Allow named the methods of the first route whose path matched alone."""
    auth = {"Authorization": f"Bearer {stores.token()}"}
    async with httpx.AsyncClient(base_url=stores.http) as http:
        listed = await http.put("/v1/letters", headers=auth)
        assert (listed.status_code, listed.headers["allow"]) == (405, "GET, POST")
        assert listed.json() == {"detail": "Method Not Allowed"}
        comment = await http.put("/v1/letters/x/comments/t/c", headers=auth)
        assert comment.headers["allow"] == "PATCH, DELETE"


async def test_a_letter_opened_as_its_idle_unload_begins_is_loaded_again(gw: Running) -> None:
    """The idle timer decides to unload a letter nobody is on; a join before the unload's task
    first runs must not get the room being closed (its connection would be left on a room this
    instance no longer holds): it waits for the unload, then loads the letter again."""
    letter = await gw.create_letter("kept")
    rooms = gw.app.state.gateway.rooms
    meta = LetterMeta(letter, "firm-a", "T")
    room = await rooms.open(meta)  # loaded, nobody on it: its idle timer runs
    rooms._cancel_unload(letter)
    rooms._unload_soon(room)  # as the timer would
    opened = await rooms.open(meta)
    assert opened is not room and not opened.closing
    assert room.closed.is_set() and rooms.get(letter) is opened
