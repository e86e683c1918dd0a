"""Notifications (issue 7): comment events that mention users, per letter. Pure.

A letter's `notes` map `<userId>:<commentId>` to what the mentioned user is shown; the store
writes each into the hash of that user of the letter's firm, `notes_key(firm, user)` (field
`<letterId>:<commentId>`), so a user's notifications from every letter of their firm meet in one
key while each letter's fold stays its own. User ids are only unique within a firm: keyed by the
id alone, another firm's mentions would fill (and be read with) the user's hash.
`notification.read` (the envelope's user read them) flips `read`; a deleted comment takes its
notifications with it. Mentioning yourself notifies nobody.
"""

import json
from collections.abc import Iterable

from projector.state import Json, LetterState
from schemas import CommentCreated, CommentDeleted, CommentEdited, CommentReplied, Event
from schemas.events import NotificationRead
from schemas.keys import notes_key

NOTES_LIMIT = 500  # per letter; the oldest go first
USER_NOTES_LIMIT = 500  # per (firm, user) across letters: the store drops the oldest


def fold_notes(state: LetterState, event: Event) -> None:
    """Fold `event` into the notes. The fold passes only comment events that applied to the
    comments (projector/fold.py): a void reply or edit, to a gone thread or of a deleted
    comment, notifies nobody, so notes point only at live comments."""
    p = event.payload
    if isinstance(p, CommentCreated | CommentReplied):
        _mention(state, event, p.thread_id, p.comment_id, p.body, p.mentions)
    elif isinstance(p, CommentEdited):
        for note in _of_comment(state, p.comment_id):
            note["body"] = p.body
        _mention(state, event, p.thread_id, p.comment_id, p.body, p.mentions)
    elif isinstance(p, CommentDeleted):
        for key in [k for k, n in state.notes.items() if n["comment_id"] == p.comment_id]:
            del state.notes[key]
    elif isinstance(p, NotificationRead):
        for cid in p.comment_ids:
            read = state.notes.get(f"{event.envelope.user}:{cid}")
            if read is not None:
                read["read"] = True


def _mention(
    state: LetterState, event: Event, thread: str, cid: str, body: str, users: Iterable[str]
) -> None:
    author = event.envelope.user
    author_name = _author_name(state, event)
    for user in users:
        key = f"{user}:{cid}"
        if user == author or key in state.notes:
            continue  # an edit keeps who was notified (and whether they read it)
        state.notes[key] = {
            "letter_id": state.letter_id,
            "firm_id": event.envelope.firm,  # shown to the user of that firm only (user ids
            # are the identity provider's; a mention of another firm's user reaches nobody)
            "thread_id": thread,
            "comment_id": cid,
            "author": {"id": author, "name": author_name},
            "body": body,
            "created_at": event.envelope.ts,
            "read": False,
        }
    if len(state.notes) > NOTES_LIMIT:
        newest = sorted(state.notes.items(), key=lambda kv: kv[1]["created_at"])[-NOTES_LIMIT:]
        state.notes = dict(newest)


def _author_name(state: LetterState, event: Event) -> str:
    p = event.payload
    ref = getattr(p, "author", None)
    if ref is not None and ref.name:
        return str(ref.name)
    if isinstance(p, CommentEdited):  # it names no author: the comment's own, as folded (an
        # author who wrote over REST only is in no session's `users`: the name was blank)
        thread = state.comments.get(p.thread_id) or {}
        for comment in thread.get("comments", ()):
            if comment["comment_id"] == p.comment_id and comment["author"]["name"]:
                return str(comment["author"]["name"])
    return str(state.users.get(event.envelope.user, {}).get("name", ""))


def _of_comment(state: LetterState, cid: str) -> list[Json]:
    return [note for note in state.notes.values() if note["comment_id"] == cid]


def note_views(state: LetterState) -> dict[str, str]:
    """`<notes_key>\\n<letterId>:<commentId>` -> JSON, what the store compares and writes (the
    encoded key holds no newline)."""
    return {
        f"{_user_key(key, note)}\n{state.letter_id}:{note['comment_id']}": json.dumps(
            note, separators=(",", ":"), sort_keys=True
        )
        for key, note in state.notes.items()
    }


def _user_key(key: str, note: Json) -> str:
    user = key[: -len(note["comment_id"]) - 1]  # `<userId>:<commentId>`; either may hold ':'
    return notes_key(note["firm_id"], user)
