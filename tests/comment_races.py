"""Comment events in the orders two gateways can log them (each checks a thread against Redis,
then appends): the racing scenario the projector's and the snapshotter's tests fold, what it
must fold to (README "Comments", "Races"), and a seeded stream of such events."""

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas import (
    Anchor,
    CommentCreated,
    CommentDeleted,
    CommentEdited,
    CommentReopened,
    CommentReplied,
    CommentResolved,
    Event,
    LetterCreated,
    UserRef,
    new_event,
)
from schemas.events import Payload

FIRM = "firm-1"
USERS = ["alice", "bob", "carol", "dave"]


class Commenter:
    """Builds one letter's comment events, as a gateway appends them."""

    def __init__(self, letter_id: str, firm: str = FIRM) -> None:
        self.letter_id, self.firm = letter_id, firm

    def _event(self, user: str, payload: Payload) -> Event:
        return new_event(self.letter_id, payload, firm=self.firm, user=user)

    def letter(self, user: str = "alice") -> Event:
        payload = LetterCreated(
            letter_id=self.letter_id, firm_id=self.firm, title="Demand", created_by=user
        )
        return self._event(user, payload)

    def created(
        self, user: str, thread: str, cid: str, body: str, mentions: Sequence[str] = ()
    ) -> Event:
        anchor = Anchor(start="AA==", end="AQ==", quote=f"quote of {cid}")
        return self._event(
            user,
            CommentCreated(
                thread_id=thread,
                comment_id=cid,
                anchor=anchor,
                body=body,
                mentions=list(mentions),
                author=UserRef(id=user, name=user.title()),
            ),
        )

    def replied(
        self, user: str, thread: str, cid: str, body: str, mentions: Sequence[str] = ()
    ) -> Event:
        author = UserRef(id=user, name=user.title())
        payload = CommentReplied(
            thread_id=thread, comment_id=cid, body=body, mentions=list(mentions), author=author
        )
        return self._event(user, payload)

    def edited(
        self, user: str, thread: str, cid: str, body: str, mentions: Sequence[str] = ()
    ) -> Event:
        payload = CommentEdited(
            thread_id=thread, comment_id=cid, body=body, mentions=list(mentions)
        )
        return self._event(user, payload)

    def deleted(self, user: str, thread: str, cid: str) -> Event:
        return self._event(user, CommentDeleted(thread_id=thread, comment_id=cid))

    def resolved(self, user: str, thread: str) -> Event:
        return self._event(user, CommentResolved(thread_id=thread))

    def reopened(self, user: str, thread: str) -> Event:
        return self._event(user, CommentReopened(thread_id=thread))


def races(letter_id: str) -> list[Event]:
    """The letter's creation, then comment events in orders racing gateways log them."""
    c = Commenter(letter_id)
    return [
        c.letter(),
        # The only comment is deleted, then a reply (checked before the delete) is logged.
        c.created("alice", "t1", "c1", "first"),
        c.deleted("alice", "t1", "c1"),
        c.replied("bob", "t1", "r1", "late reply", ["carol"]),
        c.resolved("bob", "t1"),
        c.reopened("carol", "t1"),
        c.edited("bob", "t1", "r1", "late edit", ["dave"]),
        # A comment is deleted, then an edit adding a mention is logged.
        c.created("alice", "t2", "c2", "second"),
        c.deleted("alice", "t2", "c2"),
        c.edited("alice", "t2", "c2", "edited after delete", ["carol"]),
        # A thread outlives its first comment while a reply is live.
        c.created("alice", "t3", "c3", "third", ["carol"]),
        c.replied("bob", "t3", "r3", "reply"),
        c.deleted("alice", "t3", "c3"),
        c.deleted("alice", "t3", "c3"),
        c.edited("alice", "t3", "c3", "edit of a deleted comment", ["dave"]),
        c.resolved("bob", "t3"),
        c.edited("bob", "t3", "r3", "reply, edited", ["carol"]),
        # A second creation of a live thread.
        c.created("alice", "t4", "c4", "fourth"),
        c.created("bob", "t4", "c4b", "again", ["carol"]),
        # A thread nobody created.
        c.replied("bob", "t-unknown", "rx", "orphan", ["carol"]),
        c.edited("bob", "t-unknown", "rx", "orphan edit", ["dave"]),
        c.resolved("bob", "t-unknown"),
        # A gone thread's id created again: a new thread, open.
        c.created("alice", "t5", "c5", "fifth"),
        c.resolved("alice", "t5"),
        c.deleted("alice", "t5", "c5"),
        c.created("bob", "t5", "c6", "anew", ["carol"]),
    ]


# thread -> (resolved, [(comment id, author, body)]) and the (user, comment id) notified, after
# `races`: everything void is absent, the audit aside.
RACES_LIVE = {
    "t3": (True, [("r3", "bob", "reply, edited")]),
    "t4": (False, [("c4", "alice", "fourth")]),
    "t5": (False, [("c6", "bob", "anew")]),
}
RACES_NOTES = {("carol", "r3"), ("carol", "c6")}


@dataclass
class Stream:
    events: list[Event] = field(default_factory=list)
    races: Counter[str] = field(default_factory=Counter)  # void events by kind, for the test


def stream(seed: int, letters: int, steps: int) -> Stream:
    """A seeded stream of comment events over `letters` letters, interleaved; replies, edits,
    deletes, resolves and reopens pick any thread or comment ever named (gone ones included),
    as racing gateways would log them. A small model counts the void ones."""
    rng = random.Random(seed)
    out = Stream()
    names = [f"S{seed}-{i}" for i in range(letters)]
    commenters = {lid: Commenter(lid) for lid in names}
    threads: dict[str, list[str]] = {lid: [] for lid in names}
    comments: dict[str, list[tuple[str, str, str]]] = {lid: [] for lid in names}
    live: dict[str, dict[str, set[str]]] = {lid: {} for lid in names}  # thread -> live ids
    out.events += [c.letter() for c in commenters.values()]
    for n in range(steps):
        lid = rng.choice(names)
        c, user = commenters[lid], rng.choice(USERS)
        mentions = rng.sample(USERS, rng.randrange(3))
        roll = rng.random()
        body = f"b{n}"
        if roll < 0.22 or not threads[lid]:
            reuse = threads[lid] and rng.random() < 0.15
            thread = rng.choice(threads[lid]) if reuse else f"t{n}"
            if live[lid].get(thread):
                out.races["created_live_thread"] += 1
            else:
                live[lid][thread] = {f"c{n}"}
                comments[lid].append((thread, f"c{n}", user))
            threads[lid].append(thread)
            out.events.append(c.created(user, thread, f"c{n}", body, mentions))
        elif roll < 0.45:
            thread = rng.choice(threads[lid]) if rng.random() < 0.95 else "t-none"
            if live[lid].get(thread):
                live[lid][thread].add(f"c{n}")
                comments[lid].append((thread, f"c{n}", user))
            else:
                out.races["reply_gone_thread"] += 1
            out.events.append(c.replied(user, thread, f"c{n}", body, mentions))
        elif roll < 0.8 and comments[lid]:
            thread, cid, author = rng.choice(comments[lid])
            alive = cid in live[lid].get(thread, set())
            if roll < 0.6:
                out.races["edit_deleted"] += not alive
                out.events.append(c.edited(author, thread, cid, body, mentions))
            else:
                out.races["delete_deleted"] += not alive
                live[lid].get(thread, set()).discard(cid)
                out.events.append(c.deleted(author, thread, cid))
        else:
            thread = rng.choice(threads[lid])
            out.races["status_gone_thread"] += not live[lid].get(thread)
            flag = c.resolved if rng.random() < 0.5 else c.reopened
            out.events.append(flag(user, thread))
    return out
