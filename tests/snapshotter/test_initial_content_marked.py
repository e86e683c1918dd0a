"""The content a letter is created with is an audit row of its own (`initial`, history's "created
the content"), taken from the mark POST /v1/letters puts on its create's records
(schemas/envelope.py INITIAL_HEADER), not guessed: a backend's first write to a letter created
empty, however soon, is that backend's edit. A log from before the mark (records without it,
written through the log API) is audited as before: the letter's next update, made within 5 s of
its creation, is the content."""

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import httpx
import pytest

from eventlog.embedded import EmbeddedLog
from eventlog.records import Record
from schemas.envelope import INITIAL_HEADER, Event
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.fold import SAME_REQUEST_MS, Folder
from tests.gateway.harness import running_gateway
from tests.projector.support import Editor
from tests.snapshotter.audit_rows import NAME, stored_edits
from tests.snapshotter.folding import Log, restored
from tests.snapshotter.scripts import LetterScript
from tests.tools.snapshots import snapshot_all

pytestmark = pytest.mark.timeout(120)


async def _marks(log: EmbeddedLog, settings: Settings, letter: str) -> list[tuple[str, bool]]:
    """(type, whether marked) of the letter's records, in log order."""
    topic = settings.topic(Topic.LETTERS)
    records = await log.read(topic, log.partition_for(topic, letter.encode()), 0)
    return [
        (dict(r.headers)["type"].decode(), INITIAL_HEADER in dict(r.headers))
        for r in records
        if r.key == letter.encode()
    ]


async def test_the_content_is_marked_and_a_backends_first_write_is_its_edit(
    make_settings: Callable[..., Settings], elog: EmbeddedLog
) -> None:
    settings = make_settings()
    began = time.monotonic()
    async with running_gateway(settings, log=elog) as gw:
        with_content = await gw.create_letter(content="Dear Sir,")
        empty = await gw.create_letter()
        token = gw.token(user="backend", role="service", name=NAME)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=gw.http, timeout=30, headers=headers) as http:
            written = await http.post(
                f"/v1/letters/{empty}/updates",
                content=Editor(empty, "backend").paragraph("Drafted by the backend"),
                headers={"content-type": "application/octet-stream"},
            )
            assert written.status_code == 200, written.text
            # Within 5 s of the creation: what the guess alone took for the content.
            assert time.monotonic() - began < SAME_REQUEST_MS / 1000
            saved = await http.post(f"/v1/letters/{empty}/versions", json={"label": "draft"})
            assert saved.status_code == 202, saved.text  # closes the backend's burst

    assert await _marks(elog, settings, with_content) == [
        ("letter.created", True),
        ("doc.update", True),
    ]
    assert (await _marks(elog, settings, empty))[:2] == [
        ("letter.created", True),
        ("doc.update", False),
    ]
    await snapshot_all(settings, elog)
    assert [u for u, _ in await stored_edits(settings, with_content, initial=True)] == ["u1"]
    assert await stored_edits(settings, with_content, initial=False) == []
    assert await stored_edits(settings, empty, initial=True) == []
    assert await stored_edits(settings, empty, initial=False) == [("backend", NAME)]


def _edits(folder: Folder, records: Sequence[Record]) -> list[tuple[str, bool]]:
    """(user, initial) of the edit rows folded from `records`."""
    rows = folder.fold(records).audit
    return [
        (r.user_id, bool(r.change_data.get("initial"))) for r in rows if r.change_type == "edit"
    ]


def _marked(record: Record, value: bytes = b"1") -> Record:
    return replace(record, headers=[*record.headers, (INITIAL_HEADER, value)])


def test_an_unmarked_update_of_a_marked_creation_is_an_edit_after_a_restart_too() -> None:
    s, log = LetterScript("L-new"), Log()
    created = _marked(log.records([s.created("alice")])[0])
    later = log.records([s.paragraph("backend", "drafted"), s.save("alice", "v1")])  # within 5 s
    first = Folder(Settings())
    first.fold([created])
    assert _edits(first, later) == [("backend", False)]

    # The state saved between the creation and the update (a save at creation, a restart).
    first = Folder(Settings())
    first.fold([created])
    row = first.save(first.letters[s.letter_id])
    second = Folder(Settings())
    second.adopt([restored(first, row)])
    assert _edits(second, later) == [("backend", False)]


def test_an_unmarked_log_keeps_the_guess() -> None:
    """Records logged before the mark (through the log API, as an older gateway wrote them): the
    letter's next update, made with its creation, is the content."""
    s = LetterScript("L-old")
    events: list[Event] = [s.created("alice"), s.paragraph("alice", "Dear Sir,"), s.save("a", "v")]
    assert _edits(Folder(Settings()), Log().records(events)) == [("alice", True)]


@pytest.mark.parametrize("value", [b"0", b"", b"true", b"11"])
def test_only_the_gateways_value_marks_a_record(value: bytes) -> None:
    """The header with another value than the gateway's `1` (written past the gateway) marks
    nothing: not an update as the content, nor a creation as one whose content is marked."""
    s, log = LetterScript("L-other"), Log()
    created, update, save = log.records(
        [s.created("alice"), s.paragraph("bob", "x"), s.save("a", "v")]
    )
    assert _edits(Folder(Settings()), [_marked(created), _marked(update, value), save]) == [
        ("bob", False)
    ]
    # A creation so headed is unmarked: its next update, made with it, is the content.
    assert _edits(Folder(Settings()), [_marked(created, value), update, save]) == [("bob", True)]
