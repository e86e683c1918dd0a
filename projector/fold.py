"""The fold: a letter's state plus a stretch of its events gives its next state. Pure.

Idempotence (DESIGN.md "Guarantees"): records below the letter's stored offsets were folded
already and are skipped, so replaying any stretch of the log changes nothing. A retried append can
still put the same event at a second offset, a few records later; non-Yjs events are therefore
also skipped when their id is among the letter's last `SEEN_IDS` event ids (Yjs updates are
idempotent by themselves). Events of other letters never meet: the fold is per letter.
"""

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from projector.awareness import fold_awareness, note_activity
from projector.document import DocUpdate, fold_document
from projector.notes import fold_notes
from projector.state import CLOSED_CONNS, SEEN_IDS, Json, LetterState
from schemas import (
    CommentCreated,
    CommentDeleted,
    CommentEdited,
    CommentReopened,
    CommentReplied,
    CommentResolved,
    Envelope,
    Event,
    LetterCreated,
    SessionJoined,
    SessionLeft,
    Topic,
)

logger = logging.getLogger(__name__)

RECENT_LIMIT = 500  # paragraphs remembered in recent:<id>


@dataclass(frozen=True, slots=True)
class Item:
    """One decoded record of the letter: which topic, at which offset."""

    topic: Topic
    offset: int
    event: Event


@dataclass
class Outcome:
    folded: Counter[str] = field(default_factory=Counter)  # event type -> count
    poison: list[tuple[Topic, int, str]] = field(default_factory=list)  # (topic, offset, why)


def fold_letter(state: LetterState, items: Sequence[Item], doc_field: str) -> Outcome:
    """Fold `items` (in log order per topic) into `state`, in place."""
    outcome = Outcome()
    updates: list[DocUpdate] = []
    for item in items:
        if not _is_new(state, item):
            continue
        _advance(state, item)
        if item.event.type == "doc.update":
            updates.append(_doc_update(item))
            _name_writer(state, item.event.envelope)
            continue
        if updates and item.topic is Topic.LETTERS:
            # Updates fold in runs, but a letters event after them (a join naming their user)
            # must not reach back: the state may not depend on where a batch ended.
            _fold_updates(state, updates, doc_field, outcome)
            updates = []
        try:
            _fold_one(state, item)
        except ValueError as exc:  # bad awareness bytes: the record is poison, not our bug
            outcome.poison.append((item.topic, item.offset, str(exc)))
            continue
        outcome.folded[item.event.type] += 1
    if updates:
        _fold_updates(state, updates, doc_field, outcome)
    return outcome


def _is_new(state: LetterState, item: Item) -> bool:
    if item.topic is Topic.LETTERS:
        if item.offset < state.letters_offset:
            return False
    elif item.offset < state.presence_offset:
        return False
    return item.event.type == "doc.update" or item.event.envelope.id not in state.seen


def _advance(state: LetterState, item: Item) -> None:
    if item.topic is Topic.LETTERS:
        state.letters_offset = item.offset + 1
    else:
        state.presence_offset = item.offset + 1
    state.clock = max(state.clock, item.event.envelope.ts)
    if item.event.type not in ("doc.update", "awareness.update"):
        state.seen = [*state.seen, item.event.envelope.id][-SEEN_IDS:]


def _name_writer(state: LetterState, env: Envelope) -> None:
    """A REST write's record names its writer (schemas/envelope.py NAME_HEADER), who may never
    join: their paragraphs in `recent` are named (they said "Someone"), as `creator_name` names
    the initial content's. A join gives the colour, and its name wins, as for everyone else."""
    if env.name and env.user not in state.users:
        state.users[env.user] = {"name": env.name, "color": ""}


def _doc_update(item: Item) -> DocUpdate:
    env = item.event.envelope
    assert isinstance(item.event.payload, bytes)  # doc.update carries raw bytes by contract
    return DocUpdate(item.offset, env.user, env.ts, item.event.payload)


def _fold_updates(
    state: LetterState, updates: list[DocUpdate], doc_field: str, outcome: Outcome
) -> None:
    result = fold_document(state.doc, updates, doc_field, state.doc_clean)
    state.doc, state.doc_clean = result.state, result.clean
    bad = {offset for offset, _ in result.refused}
    outcome.folded["doc.update"] += len(updates) - len(bad)
    outcome.poison += [(Topic.LETTERS, offset, reason) for offset, reason in result.refused]
    for upd in updates:
        if upd.offset not in bad:
            note_activity(state, upd.user, "edit", upd.ts)
    for paragraph, (user, ts) in result.touched.items():
        name = state.users.get(user, {}).get("name", "")
        state.recent[str(paragraph)] = {"userId": user, "name": name, "at": ts}
    if len(state.recent) > RECENT_LIMIT:
        newest = sorted(state.recent.items(), key=lambda kv: kv[1]["at"])[-RECENT_LIMIT:]
        state.recent = dict(newest)


# -- one event -------------------------------------------------------------------------------


def _fold_one(state: LetterState, item: Item) -> None:
    comment = _COMMENT_HANDLERS.get(item.event.type)
    if comment is not None:
        if comment(state, item.event):  # a void comment event notifies nobody
            fold_notes(state, item.event)
        return
    handler = _HANDLERS.get(item.event.type)
    if handler is not None:  # locks are the gateway's keys; version.saved is the snapshotter's
        handler(state, item.event)
    fold_notes(state, item.event)  # mentions -> notifications (issue 7)


def _letter_created(state: LetterState, event: Event) -> None:
    p = event.payload
    assert isinstance(p, LetterCreated)
    ts = str(event.envelope.ts)
    state.meta = {"firm_id": p.firm_id, "title": p.title, "created_by": p.created_by}
    state.meta["created_at"] = ts
    if p.creator_name and p.created_by not in state.users:
        # Names the initial content's paragraphs in `recent` (they said "Someone" until the
        # creator joined); a join gives the colour, as it names everyone else.
        state.users[p.created_by] = {"name": p.creator_name, "color": ""}


def _session_joined(state: LetterState, event: Event) -> None:
    p, env = event.payload, event.envelope
    assert isinstance(p, SessionJoined)
    state.connections[p.conn_id] = {
        "userId": p.user.id,
        "letterId": state.letter_id,
        "firmId": env.firm,
        "connectedAt": str(env.ts),
        "gateway": env.gw,
        "role": p.role,  # for the session.left the sweep logs if that gateway dies
    }
    state.users[p.user.id] = {"name": p.user.name, "color": p.user.color}
    note_activity(state, p.user.id, "seen", env.ts)


def _session_left(state: LetterState, event: Event) -> None:
    p = event.payload
    assert isinstance(p, SessionLeft)
    drop_connections(state, {p.conn_id})


def drop_connections(state: LetterState, conns: set[str]) -> None:
    """Forget connections (left, or their gateway died) and the awareness clients they owned;
    a user without a connection or a live client disappears from presence. (Their activity
    stays: pruning it would depend on how the letters and presence topics interleave.)"""
    for conn in conns:
        state.connections.pop(conn, None)
    state.closed = [*(c for c in state.closed if c not in conns), *sorted(conns)][-CLOSED_CONNS:]
    state.clients = {k: c for k, c in state.clients.items() if c["conn"] not in conns}


def _awareness(state: LetterState, event: Event) -> None:
    assert isinstance(event.payload, bytes)
    env = event.envelope
    fold_awareness(state, event.payload, env.conn, env.user, env.ts)


# Comment events, in log order (README "Comments", "Races"; snapshotter/store.py applies the
# same rule in SQL): a thread lives while one of its comments does; once its last comment is
# deleted it is gone, and replies, edits, resolves and reopens to it are void, as are an edit
# or delete of a deleted comment and a `comment.created` of a live thread. Each handler says
# whether the event applied.


def _comment_created(state: LetterState, event: Event) -> bool:
    p, env = event.payload, event.envelope
    assert isinstance(p, CommentCreated)
    if p.thread_id in state.comments:
        return False
    state.comments[p.thread_id] = {
        "thread_id": p.thread_id,
        "anchor": p.anchor.model_dump(),
        "resolved": False,
        "created_by": env.user,
        "created_at": env.ts,
        "comments": [_comment(state, event, p.comment_id, p.body, p.mentions)],
    }
    return True


def _comment_replied(state: LetterState, event: Event) -> bool:
    p = event.payload
    assert isinstance(p, CommentReplied)
    thread = state.comments.get(p.thread_id)
    if thread is None or _find(thread, p.comment_id) is not None:
        return False
    thread["comments"].append(_comment(state, event, p.comment_id, p.body, p.mentions))
    return True


def _comment_edited(state: LetterState, event: Event) -> bool:
    p = event.payload
    assert isinstance(p, CommentEdited)
    comment = _find(state.comments.get(p.thread_id), p.comment_id)
    if comment is None:
        return False
    comment.update(body=p.body, mentions=list(p.mentions), edited_at=event.envelope.ts)
    return True


def _comment_deleted(state: LetterState, event: Event) -> bool:
    p = event.payload
    assert isinstance(p, CommentDeleted)
    thread = state.comments.get(p.thread_id)
    if thread is None or _find(thread, p.comment_id) is None:
        return False
    thread["comments"] = [c for c in thread["comments"] if c["comment_id"] != p.comment_id]
    if not thread["comments"]:  # the audit keeps the tombstone; live state drops the thread
        del state.comments[p.thread_id]
    return True


def _thread_flag(resolved: bool) -> Callable[[LetterState, Event], bool]:
    def handler(state: LetterState, event: Event) -> bool:
        p = event.payload
        assert isinstance(p, CommentResolved | CommentReopened)
        thread = state.comments.get(p.thread_id)
        if thread is None:
            return False
        thread["resolved"] = resolved
        return True

    return handler


def _find(thread: Json | None, cid: str) -> Json | None:
    """The live comment `cid` of `thread` (None: the thread is gone or never was)."""
    if thread is None:
        return None
    return next((c for c in thread["comments"] if c["comment_id"] == cid), None)


def _comment(state: LetterState, event: Event, cid: str, body: str, mentions: list[str]) -> Json:
    user = event.envelope.user
    ref = getattr(event.payload, "author", None)  # the token's name, stamped by the gateway
    name = ref.name if ref is not None and ref.name else state.users.get(user, {}).get("name", "")
    return {
        "comment_id": cid,
        "author": {"id": user, "name": name},
        "body": body,
        "mentions": list(mentions),
        "created_at": event.envelope.ts,
        "edited_at": None,
    }


_HANDLERS: dict[str, Callable[[LetterState, Event], None]] = {
    "letter.created": _letter_created,
    "session.joined": _session_joined,
    "session.left": _session_left,
    "awareness.update": _awareness,
}
_COMMENT_HANDLERS: dict[str, Callable[[LetterState, Event], bool]] = {
    "comment.created": _comment_created,
    "comment.replied": _comment_replied,
    "comment.edited": _comment_edited,
    "comment.deleted": _comment_deleted,
    "comment.resolved": _thread_flag(True),
    "comment.reopened": _thread_flag(False),
}
