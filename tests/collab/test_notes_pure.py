"""The projector's notification fold (projector/notes.py), without services."""

from projector.fold import Item, fold_letter
from projector.notes import fold_notes, note_views
from projector.state import LetterState
from schemas import Anchor, CommentCreated, CommentDeleted, CommentEdited, UserRef, new_event
from schemas.events import NotificationRead, Payload, Topic

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


def test_a_mention_edited_in_names_the_comments_author() -> None:
    """Ed wrote over REST only (in no session, so not among the letter's `users`) and then
    edited a mention into his comment: nina's notification named ``""`` (the edit carries no
    author; found by an integrator)."""
    state = LetterState("L1")
    made = CommentCreated(thread_id="t", comment_id="c1", anchor=ANCHOR, body="hi",
                          mentions=[], author=UserRef(id="ed", name="Ed"))  # fmt: skip
    edited = CommentEdited(thread_id="t", comment_id="c1", body="now @nina", mentions=["nina"])
    events = [new_event("L1", p, firm="f", user="ed") for p in (made, edited)]
    fold_letter(state, [Item(Topic.LETTERS, i, e) for i, e in enumerate(events)], "default")
    assert state.notes["nina:c1"]["author"] == {"id": "ed", "name": "Ed"}
