"""`history` names the session (connection) of each edit row: an auditor tells two tabs or devices
of one user apart by it, and matches them to the sessions' own rows. The same rows from
PostgreSQL's audit trail and from the log folded on the spot, and on REST."""

import httpx
import pytest

from eventlog import Log
from schemas.events import Topic
from schemas.settings import Settings
from steno_collab.commands.history import _history
from steno_collab.services import gateway_app
from tests.snapshotter.scripts import LetterScript, append
from tests.tools.rest import auth
from tests.tools.snapshots import run_to_end
from tools.history import Entry, format_text, history
from tools.sources import open_sources

LETTER = "L-two-tabs"


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the rows are the fold's, whichever log holds the records


async def _two_tabs(log: Log, settings: Settings) -> str:
    """Alice types in two tabs at once, then closes the first, then the second."""
    s = LetterScript(LETTER)
    events = [s.created("alice"), s.paragraph("alice", ""), s.joined("alice", "tab-1")]
    events += [
        s.joined("alice", "tab-2"),
        s.type_text("alice", 0, 0, "ab", conn="tab-1"),
        s.type_text("alice", 0, 0, "cde", conn="tab-2"),
        s.type_text("alice", 0, 0, "f", conn="tab-1"),
        s.left("alice", "tab-1"),
        s.type_text("alice", 0, 0, "g", conn="tab-2"),
        s.left("alice", "tab-2"),
    ]
    await append(log, settings.topic(Topic.LETTERS), events)
    return s.firm


def _edits(entries: list[Entry]) -> list[tuple[str, object, int]]:
    return [
        (e.user, e.data.get("conn_id"), e.data["inserted"])
        for e in entries
        if e.kind == "edit" and not e.data.get("initial")
    ]


async def test_edit_rows_name_their_session_with_and_without_postgres(
    settings: Settings, log: Log
) -> None:
    firm = await _two_tabs(log, settings)
    await run_to_end(log, settings)
    async with open_sources(settings) as src:
        from_log = await history(src, LETTER)
    async with open_sources(settings, pg=True) as src:
        from_pg = await history(src, LETTER)
    assert [e.to_json() for e in from_log] == [e.to_json() for e in from_pg]
    assert _edits(from_pg) == [("alice", "tab-1", 3), ("alice", "tab-2", 4)]
    lines = format_text(from_pg).splitlines()
    tab_1 = [line for line in lines if "[session tab-1]" in line]
    assert [line.split("  ", 1)[1].split()[1] for line in tab_1] == ["joined", "edited:", "left"]
    assert sum("[session tab-2]" in line for line in lines) == 3
    # The initial content is no session's.
    assert "[session" not in next(line for line in lines if "created the content" in line)

    app = gateway_app(settings, log, None, None)  # REST without PostgreSQL: folded from the log
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        r = await client.get(f"/v1/letters/{LETTER}/history", headers=auth(settings, firm=firm))
    assert r.status_code == 200, r.text
    assert r.json() == [e.to_json() for e in from_pg]


async def test_the_cli_reads_the_log_while_the_snapshotter_is_behind(
    settings: Settings, log: Log
) -> None:
    """With PostgreSQL configured and the snapshotter not run (stopped, or behind), the CLI read
    only its audit trail: the whole timeline was missing, without a word. It reads the log
    alone, never PostgreSQL: one that does not answer changes nothing."""
    await _two_tabs(log, settings)
    assert settings.database_url is not None
    async with open_sources(settings) as src:
        from_log = await history(src, LETTER)
    assert _edits(from_log)
    assert await _history(settings, LETTER, None, None, False) == format_text(from_log)
    gone = settings.model_copy(update={"database_url": "postgresql://postgres@127.0.0.1:1/x"})
    assert await _history(gone, LETTER, None, None, False) == format_text(from_log)
