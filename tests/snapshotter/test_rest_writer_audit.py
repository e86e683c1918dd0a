"""The audit trail names a REST writer who never joined the letter (a backend's service token):
their edit row carries the name their records' `name` header gives (schemas/envelope.py
NAME_HEADER), as a joined editor's `session-start` row names them; without it auditors (and
the history panel, which learns names from rows' `data.name`) had only a user id. The rows REST
`/history` folds from the log past the snapshotter's position name them alike."""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from eventlog.embedded import EmbeddedLog
from schemas.envelope import Event
from schemas.settings import Settings
from snapshotter.audit import Burst
from snapshotter.fold import Folder
from tests.gateway.harness import running_gateway
from tests.projector.support import Editor
from tests.snapshotter.audit_rows import NAME, stored_edits
from tests.snapshotter.folding import Log
from tests.snapshotter.scripts import LetterScript
from tests.tools.rest import auth, rest_client
from tests.tools.snapshots import snapshot_all
from tools.history import Entry, describe

pytestmark = pytest.mark.timeout(120)


async def _edit_rows(settings: Settings, log: EmbeddedLog, letter: str) -> list[tuple[str, Any]]:
    """(user, data.name) of the letter's edit rows but its initial content's, as the auditor's
    `/history` answers them."""
    async with rest_client(settings, log, settings.database_url) as client:
        answer = await client.get(
            f"/v1/letters/{letter}/history", headers=auth(settings, firm="firm-a")
        )
    assert answer.status_code == 200, answer.text
    edits = [e for e in answer.json() if e["type"] == "edit" and not e["data"].get("initial")]
    return [(e["user"], e["data"].get("name")) for e in edits]


async def test_a_rest_writer_who_never_joined_is_named_in_history(
    make_settings: Callable[..., Settings], elog: EmbeddedLog
) -> None:
    settings = make_settings()
    async with running_gateway(settings, log=elog) as gw:
        # Created with content: the backend's write is not the letter's second record (which,
        # made within 5 s of the creation, is taken for the content it was created with).
        letter = await gw.create_letter(content="Dear Sir,")
        await snapshot_all(settings, elog)  # the snapshotter's position past the creation
        token = gw.token(user="backend", role="service", name=NAME)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=gw.http, timeout=30, headers=headers) as http:
            drafted = Editor(letter, "backend").paragraph("Drafted by the backend")  # appended
            written = await http.post(
                f"/v1/letters/{letter}/updates",
                content=drafted,
                headers={"content-type": "application/octet-stream"},
            )
            assert written.status_code == 200, written.text
            # A version closes the open burst: its row exists, past the snapshotter's position.
            saved = await http.post(f"/v1/letters/{letter}/versions", json={"label": "draft"})
            assert saved.status_code == 202, saved.text

    # Folded on the spot from the log (the snapshotter has not seen the write yet)...
    assert await _edit_rows(settings, elog, letter) == [("backend", NAME)]
    # ... and as the snapshotter stores it.
    await snapshot_all(settings, elog)
    assert await stored_edits(settings, letter, initial=False) == [("backend", NAME)]
    assert await _edit_rows(settings, elog, letter) == [("backend", NAME)]


def _named(event: Event) -> Event:
    return replace(event, envelope=replace(event.envelope, name=NAME))


def test_a_sessions_rows_and_older_records_stay_unnamed() -> None:
    """A session's edits are named by its join (its `session-start` row), not by a header; a
    record without the header (logged before it existed) makes an unnamed row, as before."""
    s = LetterScript("L-named")
    events = [
        s.created("alice"),
        s.joined("alice", "c1"),
        _named(s.paragraph("alice", "in a session", conn="c1")),
        s.paragraph("older", "no header"),
        _named(s.paragraph("backend", "over REST")),
        s.paragraph("backend", "again, unnamed record"),  # one burst: its first name holds
        s.save("alice", "cut"),  # closes every burst
    ]
    rows = Folder(Settings()).fold(Log().records(events)).audit
    edits = {r.user_id: r.change_data for r in rows if r.change_type == "edit"}
    assert "name" not in edits["alice"] and edits["alice"]["conn_id"] == "c1"
    assert "name" not in edits["older"]
    assert edits["backend"]["name"] == NAME and edits["backend"]["updates"] == 2

    # `steno-collab history` prints it, as it prints a joined user's name on their join's line.
    row = next(r for r in rows if r.change_type == "edit" and r.user_id == "backend")
    entry = Entry(row.timestamp_ms, row.user_id, row.change_type, row.change_data, 0)
    assert describe(entry).startswith(f"edited ({NAME}): +")

    # The letter's second record, a named update made with its creation: the initial row.
    first = LetterScript("L-initial")
    made = [first.created("backend"), _named(first.paragraph("backend", "drafted"))]
    initial = [
        r for r in Folder(Settings()).fold(Log().records(made)).audit if r.change_type == "edit"
    ]
    assert [(r.change_data.get("initial"), r.change_data.get("name")) for r in initial] == [
        (True, NAME)
    ]
    # An open burst saved with the letter's state keeps its name over a restart.
    burst = Burst(0, 0, 0, 0, user="backend", name=NAME)
    assert Burst.from_json(burst.to_json()) == burst
    assert "name" not in Burst(0, 0, 0, 0, user="alice").to_json()


async def test_a_letter_created_with_content_names_its_creator_on_the_initial_row(
    make_settings: Callable[..., Settings], elog: EmbeddedLog
) -> None:
    """The create's own `doc.update` (its content) carries the creator's name as a REST write's
    does (re-read RR2: its initial row had none, the backend shown by its user id)."""
    settings = make_settings()
    async with running_gateway(settings, log=elog) as gw:
        token = gw.token(user="backend", role="service", name=NAME)
        async with httpx.AsyncClient(base_url=gw.http, timeout=30) as http:
            created = await http.post(
                "/v1/letters",
                json={"firm_id": "firm-a", "title": "T", "content": "Dear Sir,"},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert created.status_code == 201, created.text
        letter = created.json()["letter_id"]
    await snapshot_all(settings, elog)
    assert await stored_edits(settings, letter, initial=True) == [("backend", NAME)]
