"""POST /v1/letters/{id}/versions: a named version, from the request through the log to the
snapshotter's `named` letter_version and the letter's history."""

import asyncio
import contextlib
import functools
import json
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.migrate import migrate
from snapshotter.service import serve as run_snapshotter
from tests.gateway.faults import faulty_gateway
from tests.gateway.harness import Running, running_gateway
from tests.support import eventually
from tools.history import describe, history
from tools.sources import Sources


def _auth(gw: Running, **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.token(**kw)}"}


async def _add_paragraph(gw: Running, letter: str, text: str, user: str) -> None:
    """A paragraph appended to the letter as `user`, through POST .../updates (in the log once
    answered)."""
    async with httpx.AsyncClient(base_url=gw.http) as http:
        state = await http.get(f"/v1/letters/{letter}/state", headers=_auth(gw, user=user))
        doc: Doc[Any] = Doc()
        doc.apply_update(state.content)
        before = doc.get_state()
        fragment = doc.get(gw.settings.doc_field, type=XmlFragment)
        fragment.children.append(XmlElement("paragraph", {}, [XmlText(text)]))
        r = await http.post(
            f"/v1/letters/{letter}/updates",
            content=doc.get_update(before),
            headers=_auth(gw, user=user),
        )
    assert r.status_code == 200, r.text


async def _save(gw: Running, letter: str, label: Any, **who: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.http) as http:
        return await http.post(
            f"/v1/letters/{letter}/versions", json={"label": label}, headers=_auth(gw, **who)
        )


async def test_a_named_version_is_written_at_its_place_in_the_log_and_in_history(
    tmp_path: Path, pg_database: str
) -> None:
    await migrate(pg_database)
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, database_url=pg_database)
    pg = await asyncpg.create_pool(pg_database, min_size=1, max_size=2)
    try:
        async with running_gateway(settings, pg=pg) as gw:
            letter = await gw.create_letter("Dear Sir,")
            await _add_paragraph(gw, letter, "We write about the claim", user="alice")
            draft = await _save(gw, letter, "Draft for the client", user="alice")
            assert draft.status_code == 202, draft.text
            offset = draft.json()["offset"]
            assert draft.json() == {"letter_id": letter, "label": "Draft for the client",
                                    "offset": offset}  # fmt: skip
            # Saved again with nothing changed since: the snapshotter writes it all the same.
            again = await _save(gw, letter, "Unchanged", role="service", user="backend")
            assert again.status_code == 202, again.text
            await _add_paragraph(gw, letter, "Regards", user="alice")  # after both versions

            records = {r.offset: r for r in await gw.records(Topic.LETTERS, letter)}
            headers = dict(records[offset].headers)
            assert (headers["type"], headers["user"]) == (b"version.saved", b"alice")
            assert dict(records[again.json()["offset"]].headers)["user"] == b"backend"

            snapshotter = asyncio.create_task(run_snapshotter(settings, gw.log))
            try:
                query = "SELECT count(*) = 2 FROM letter_version WHERE letter_id = $1"
                await eventually(lambda: pg.fetchval(query, letter), timeout=30)
            finally:
                snapshotter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await snapshotter
            rows = await pg.fetch(
                "SELECT version_number, content, log_offset, change_data FROM letter_version"
                " WHERE letter_id = $1 ORDER BY version_number",
                letter,
            )
            text = "Dear Sir,\nWe write about the claim"
            assert [(r["version_number"], r["content"], r["log_offset"]) for r in rows] == [
                (1, text, offset + 1),  # everything up to the version.saved record, no more
                (2, text, again.json()["offset"] + 1),
            ]
            data = [json.loads(r["change_data"]) for r in rows]
            assert [(d["type"], d["label"]) for d in data] == [
                ("named", "Draft for the client"),
                ("named", "Unchanged"),
            ]
            assert data[1]["contributors"] == []  # nobody edited between the two

            entries = await history(Sources(settings, gw.log, None, pg), letter)
            saved = [e for e in entries if e.kind == "version"]
            assert [(e.user, e.offset) for e in saved] == [
                ("alice", offset),
                ("backend", again.json()["offset"]),
            ]
            assert 'version 1 (named "Draft for the client"; edits by ' in describe(saved[0])
            assert describe(saved[1]).endswith("; no edits since the last version)")
    finally:
        await pg.close()


async def test_who_may_save_and_what_a_label_may_be(gw: Running) -> None:
    letter = await gw.create_letter("Dear Sir,")
    before = await gw.records(Topic.LETTERS, letter)
    for role in ("viewer", "commenter", "auditor"):
        refused = await _save(gw, letter, "mine", role=role)
        assert (refused.status_code, refused.json()) == (
            403, {"detail": f"role {role} cannot save versions"}
        )  # fmt: skip
    # Another firm's letter and one that does not exist alike (no existence leak).
    for other in (letter, "no-such-letter"):
        refused = await _save(gw, other, "mine", firm="firm-b")
        assert (refused.status_code, refused.json()) == (403, {"detail": "forbidden"})
    for label in ("", "   ", "two\nlines", "esc\x1b[2J", "x" * 201, 7, None):
        refused = await _save(gw, letter, label)
        assert refused.status_code == 422, (label, refused.text)
        assert refused.json()["detail"].startswith("invalid request: body.label"), refused.text
    async with httpx.AsyncClient(base_url=gw.http) as http:
        empty = await http.post(f"/v1/letters/{letter}/versions", json={}, headers=_auth(gw))
        anonymous = await http.post(f"/v1/letters/{letter}/versions", json={"label": "x"})
        surrogate = await http.post(
            f"/v1/letters/{letter}/versions",
            content=b'{"label": "\\ud800"}',
            headers={**_auth(gw), "Content-Type": "application/json"},
        )
    assert empty.status_code == 422 and surrogate.status_code == 422, surrogate.text
    assert anonymous.status_code == 401
    assert await gw.records(Topic.LETTERS, letter) == before  # nothing refused was logged
    assert (await gw.metrics())['gateway_refusals_total{reason="read_only"}'] == 3
    longest = await _save(gw, letter, "é" * 200)  # characters, as the event schema counts
    assert longest.status_code == 202, longest.text


async def test_503_while_the_log_cannot_take_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    async with faulty_gateway(settings) as (gw, log):
        letter = await gw.create_letter("Dear Sir,")
        log.broken = True
        down = await _save(gw, letter, "draft")
        log.broken = False
        assert (down.status_code, down.json()) == (503, {"detail": "log unavailable"})
        assert (await _save(gw, letter, "draft")).status_code == 202


async def test_503_with_retry_after_while_the_log_is_behind(tmp_path: Path) -> None:
    limit = 8192  # a few one-character updates fill it (gateway/live/intake.py)
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, append_buffer_bytes=limit)
    async with faulty_gateway(settings) as (gw, log):
        letter, alice, bob = await gw.two_editors()
        log.gate.clear()  # the log stops taking appends
        typed = ""
        while (await gw.metrics())["gateway_unlogged_bytes"] <= limit:
            typed += "a"
            await alice.insert("a")
            # Peers do not wait for the log.
            await eventually(functools.partial(lambda seen: str(bob.text) == seen, typed))
        behind = await _save(gw, letter, "draft")
        assert (behind.status_code, behind.json()) == (503, {"detail": "log behind"})
        assert behind.headers["retry-after"] == "1"
        log.gate.set()
        await eventually(lambda: _drained(gw))
        saved = await _save(gw, letter, "draft")
        assert saved.status_code == 202, saved.text
        await alice.close()
        await bob.close()


async def _drained(gw: Running) -> bool:
    return (await gw.metrics())["gateway_unlogged_bytes"] == 0


async def test_the_version_follows_the_edits_this_instance_took_before_it(tmp_path: Path) -> None:
    # Edits wait up to 100 ms to be appended in a batch: the request comes in meanwhile.
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, append_linger_ms=100)
    async with running_gateway(settings) as gw:
        letter, alice, bob = await gw.two_editors()
        async with httpx.AsyncClient(base_url=gw.http) as http:
            await http.get("/healthz")  # connected already: the request comes in at once
            await alice.insert("hello")
            # Taken by the gateway: peers do not wait for the log.
            await eventually(lambda: str(bob.text) == "hello")
            saved = await http.post(
                f"/v1/letters/{letter}/versions",
                json={"label": "after hello"},
                headers=_auth(gw, user="bob"),
            )
        assert saved.status_code == 202, saved.text
        records = await gw.records(Topic.LETTERS, letter)
        edits = [r.offset for r in records if dict(r.headers)["type"] == b"doc.update"]
        assert max(edits) < saved.json()["offset"]
        await alice.close()
        await bob.close()
