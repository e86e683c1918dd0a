"""`diff` and `history` on a letter holding a record that makes pycrdt panic (the one the
snapshotter quarantines, tests/attacks/test_quarantine.py): the record is skipped, as every
consumer and `replay` skip it, through the functions and through the REST endpoints of a
gateway without PostgreSQL."""

import httpx
import pytest

from eventlog import Log
from schemas.envelope import new_event
from schemas.events import Topic
from schemas.settings import Settings
from steno_collab.services import gateway_app
from tests.attacks.panics import panicking_update
from tests.snapshotter.scripts import LetterScript, append
from tests.tools.rest import auth
from tests.tools.snapshots import run_to_end
from tools.diff import diff
from tools.history import history
from tools.replay import Cut
from tools.sources import open_sources

LETTER = "L-poison"


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the panic is in the fold, whichever log holds the record


async def _poisoned(log: Log, settings: Settings) -> str:
    """The letter: created, "before" (alice), the panicking update (mallory), "after" (alice)."""
    s = LetterScript(LETTER)
    poison = new_event(
        LETTER, panicking_update(s.doc.client_id, 0), firm=s.firm, user="mallory",
        type="doc.update",
    )  # fmt: skip
    first = s.paragraph("alice", "before")
    await append(log, settings.topic(Topic.LETTERS), [s.created(), first, poison,
                                                      s.paragraph("alice", "after")])  # fmt: skip
    return s.firm


async def test_diff_skips_the_panicking_update(settings: Settings, log: Log) -> None:
    await _poisoned(log, settings)
    async with open_sources(settings) as src:
        result = await diff(src, LETTER, Cut(offset=1), Cut(offset=4))  # from its creation
    assert result.end.snapshot.content.endswith("after")
    assert [(h.added, h.authors) for h in result.hunks] == [
        (result.end.snapshot.content.split("\n"), ["alice"])
    ]


async def test_history_from_the_log_skips_the_panicking_update(
    settings: Settings, log: Log
) -> None:
    await _poisoned(log, settings)
    await run_to_end(log, settings)  # quarantines the record, then its audit rows are the truth
    async with open_sources(settings) as src:
        from_log = await history(src, LETTER)
    async with open_sources(settings, pg=True) as src:
        from_pg = await history(src, LETTER)
    assert [(e.kind, e.user, e.offset) for e in from_log] == [
        (e.kind, e.user, e.offset) for e in from_pg
    ]
    assert from_log and all(e.offset != 2 for e in from_log)  # nothing of the poison record


async def test_rest_diff_and_history_without_postgres(settings: Settings, log: Log) -> None:
    firm = await _poisoned(log, settings)
    app = gateway_app(settings, log, None, None)
    headers = auth(settings, firm=firm)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        base = f"/v1/letters/{LETTER}"
        created = await c.get(f"{base}/replay", params={"offset": 1}, headers=headers)
        since = created.json()["as_of"]  # a diff from before the letter is refused
        changes = await c.get(f"{base}/diff", params={"from": since, "to": "2999-01-01"},
                              headers=headers)  # fmt: skip
        timeline = await c.get(f"{base}/history", headers=headers)
    assert changes.status_code == 200, changes.text
    assert changes.json()["content"]["to"].endswith("after")
    assert timeline.status_code == 200, timeline.text
    # "before", the letter's first update, is its initial content: a row of its own at once;
    # "after" is in a burst still open.
    assert [(e["type"], e["data"].get("initial")) for e in timeline.json()] == [
        ("letter.created", None),
        ("edit", True),
    ]
