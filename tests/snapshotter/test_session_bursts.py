"""Edit rows name their session: a burst is one session's typing, so two connections of one user
typing at once (two tabs, a laptop and a phone) are two rows, each with its `conn_id`; edits
outside a session the letter holds (REST writes) coalesce per user, with none."""

from typing import Any

from schemas.settings import Settings
from snapshotter.audit import AuditRow, Burst, Bursts
from snapshotter.document import EditDelta
from snapshotter.fold import Folder
from tests.snapshotter.folding import Log, restored
from tests.snapshotter.scripts import LetterScript


def _edits(rows: list[AuditRow]) -> list[tuple[str, Any, int, int]]:
    """(user, conn_id, inserted, updates) of the typing rows (not the initial content)."""
    return [
        (
            r.user_id,
            r.change_data.get("conn_id"),
            r.change_data["inserted"],
            r.change_data["updates"],
        )
        for r in rows
        if r.change_type == "edit" and not r.change_data.get("initial")
    ]


def test_two_sessions_of_one_user_typing_at_once_are_two_bursts() -> None:
    s, log, folder = LetterScript("L-tabs"), Log(), Folder(Settings())
    folder.fold(
        log.records(
            [s.created("alice"), s.paragraph("alice", ""), s.joined("alice", "tab-1"),
             s.joined("alice", "tab-2")]
        )
    )  # fmt: skip
    typing = [
        s.type_text("alice", 0, 0, "ab", conn="tab-1"),
        s.type_text("alice", 0, 0, "cde", conn="tab-2"),
        s.type_text("alice", 0, 0, "f", conn="tab-1"),
        s.type_text("alice", 0, 0, "g", conn="rest-request-1"),  # no session: a REST write
        s.type_text("alice", 0, 0, "h", conn="rest-request-2"),
    ]
    assert _edits(folder.fold(log.records(typing)).audit) == []  # all open, within the window
    # Her first tab closes: its burst ends there, the other tab's goes on.
    first = folder.fold(log.records([s.left("alice", "tab-1")])).audit
    assert _edits(first) == [("alice", "tab-1", 3, 2)]
    # Her last session ends: every burst of hers closes.
    last = folder.fold(log.records([s.left("alice", "tab-2")])).audit
    assert sorted(_edits(last), key=lambda e: e[1] or "") == [
        ("alice", None, 2, 2),  # her two REST writes: no session, no conn_id
        ("alice", "tab-2", 3, 1),
    ]


def test_an_open_session_burst_survives_a_saved_state() -> None:
    """A letter saved and reloaded mid-burst (a restart, an eviction) goes on with the same
    bursts: its rows are those of a fold without the reload."""
    s, log = LetterScript("L-saved"), Log()
    head = log.records(
        [s.created("alice"), s.paragraph("alice", ""), s.joined("alice", "tab-1"),
         s.joined("alice", "tab-2"), s.type_text("alice", 0, 0, "ab", conn="tab-1"),
         s.type_text("alice", 0, 0, "c", conn="tab-2")]
    )  # fmt: skip
    tail = log.records(
        [s.type_text("alice", 0, 0, "d", conn="tab-1"), s.left("alice", "tab-1"),
         s.left("alice", "tab-2")]
    )  # fmt: skip
    whole = Folder(Settings())
    expected = _edits(whole.fold(head).audit + whole.fold(tail).audit)
    first = Folder(Settings())
    first.fold(head)
    row = first.save(first.letters[s.letter_id])
    loaded = restored(first, row)
    second = Folder(Settings())
    second.adopt([loaded])
    assert (
        _edits(second.fold(tail).audit)
        == expected
        == [
            ("alice", "tab-1", 3, 2),
            ("alice", "tab-2", 1, 1),
        ]
    )


def test_a_burst_saved_before_sessions_were_told_apart_goes_on_as_the_users() -> None:
    """States saved before key their open bursts by user, without user or connection."""
    saved = {"first_offset": 4, "last_offset": 4, "start_ms": 10, "end_ms": 10, "inserted": 2,
             "deleted": 0, "updates": 1, "paragraphs": [0]}  # fmt: skip
    bursts = Bursts(5000, {"alice": Burst.from_json(saved)})
    assert bursts.edit("alice", 5, 20, EditDelta(1, 0, {0})) is None  # joins it: same key
    [(user, burst)] = bursts.close("alice")
    assert (user, burst.conn, burst.inserted, burst.updates) == ("alice", None, 3, 2)
