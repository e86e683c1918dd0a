"""The projector's notification fold (projector/notes.py), without services."""

from projector.notes import fold_notes, note_views
from projector.state import LetterState
from schemas import Anchor, CommentCreated, CommentDeleted, CommentEdited, UserRef, new_event
from schemas.events import NotificationRead, Payload

ANCHOR = Anchor(start="AAA=", end="AAE=", quote="q")


def _fold(state: LetterState, payload: Payload, user: str = "al") -> None:
    fold_notes(state, new_event("L1", payload, firm="f", user=user))


def test_mentions_edits_reads_and_deletes() -> None:
    state = LetterState("L1")
    author = UserRef(id="al", name="Al")
    made = CommentCreated(thread_id="t", comment_id="c1", anchor=ANCHOR, body="hi @bo",
                          mentions=["bo", "al"], author=author)  # fmt: skip
    _fold(state, made)
    assert list(state.notes) == ["bo:c1"]  # not the author herself
    assert state.notes["bo:c1"]["author"] == {"id": "al", "name": "Al"}
    _fold(state, NotificationRead(comment_ids=["c1"]), user="bo")
    _fold(state, CommentEdited(thread_id="t", comment_id="c1", body="hi @bo @cy",
                               mentions=["bo", "cy"]))  # fmt: skip
    assert state.notes["bo:c1"]["read"] is True and state.notes["bo:c1"]["body"] == "hi @bo @cy"
    assert state.notes["cy:c1"]["read"] is False
    assert set(note_views(state)) == {"notifications:f:bo\nL1:c1", "notifications:f:cy\nL1:c1"}
    _fold(state, CommentDeleted(thread_id="t", comment_id="c1"))
    assert state.notes == {}
