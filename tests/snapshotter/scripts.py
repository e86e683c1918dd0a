"""Producing realistic letter events for the snapshotter tests: one shared Yjs document per
letter (TipTap's XmlFragment of paragraphs), edits attributed to whichever user makes them."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog.records import Entry, Log
from schemas import events as ev
from schemas.envelope import Event, encode_event, new_event
from snapshotter.consumer import Snapshotter


class Clock:
    """A log clock the test moves by hand, so record timestamps are exact."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


class LetterScript:
    def __init__(self, letter_id: str, firm: str = "firm-1", field: str = "default") -> None:
        self.letter_id, self.firm = letter_id, firm
        self.doc: Doc[Any] = Doc()
        self.body = self.doc.get(field, type=XmlFragment)

    def _event(
        self,
        user: str,
        payload: ev.Payload | bytes,
        type: str | None = None,
        gw: str = "",
        conn: str = "",
    ) -> Event:
        return new_event(
            self.letter_id, payload, firm=self.firm, user=user, conn=conn, gw=gw, type=type
        )

    def _update(self, user: str, change: Callable[[], None], conn: str = "") -> Event:
        """A `doc.update` of `user`, through connection `conn` (none: outside a session)."""
        before = self.doc.get_state()
        with self.doc.transaction():
            change()
        return self._event(user, self.doc.get_update(before), type="doc.update", conn=conn)

    def created(self, user: str = "u-author", title: str = "Demand letter") -> Event:
        payload = ev.LetterCreated(
            letter_id=self.letter_id, firm_id=self.firm, title=title, created_by=user
        )
        return self._event(user, payload)

    def paragraph(self, user: str, text: str, conn: str = "") -> Event:
        def change() -> None:
            self.body.children.append(XmlElement("paragraph", None, [XmlText(text)]))

        return self._update(user, change, conn)

    def type_text(self, user: str, paragraph: int, pos: int, text: str, conn: str = "") -> Event:
        return self._update(user, lambda: self._text(paragraph).insert(pos, text), conn)

    def delete(self, user: str, paragraph: int, pos: int, count: int) -> Event:
        def change() -> None:
            del self._text(paragraph)[pos : pos + count]

        return self._update(user, change)

    def _text(self, paragraph: int) -> XmlText:
        element = self.body.children[paragraph]
        assert isinstance(element, XmlElement)
        text = element.children[0]
        assert isinstance(text, XmlText)
        return text

    def joined(self, user: str, conn: str, gw: str = "") -> Event:
        ref = ev.UserRef(id=user, name=user.title())
        payload = ev.SessionJoined(conn_id=conn, user=ref, role="editor")
        return self._event(user, payload, gw=gw, conn=conn)

    def left(self, user: str, conn: str, reason: str = "closed") -> Event:
        ref = ev.UserRef(id=user, name=user.title())
        payload = ev.SessionLeft(conn_id=conn, user=ref, role="editor", reason=reason)
        return self._event(user, payload, conn=conn)

    def comment(self, user: str, thread: str, comment: str, body: str) -> Event:
        anchor = ev.Anchor(start="AA==", end="AQ==", quote="quoted")
        payload = ev.CommentCreated(thread_id=thread, comment_id=comment, anchor=anchor, body=body)
        return self._event(user, payload)

    def reply(self, user: str, thread: str, comment: str, body: str) -> Event:
        return self._event(user, ev.CommentReplied(thread_id=thread, comment_id=comment, body=body))

    def delete_comment(self, user: str, thread: str, comment: str) -> Event:
        return self._event(user, ev.CommentDeleted(thread_id=thread, comment_id=comment))

    def resolve(self, user: str, thread: str) -> Event:
        return self._event(user, ev.CommentResolved(thread_id=thread))

    def lock(self, user: str, section: str) -> Event:
        holder = ev.UserRef(id=user, name=user.title())
        return self._event(user, ev.LockAcquired(section=section, holder=holder, ttl_s=300))

    def save(self, user: str, label: str) -> Event:
        return self._event(user, ev.VersionSaved(label=label))


async def append(log: Log, topic: str, events: Iterable[Event]) -> list[int]:
    """Append events in the given order (one append per event keeps interleaving exact);
    their offsets."""
    offsets = []
    for event in events:
        key, value, headers = encode_event(event)
        offsets += await log.append(topic, key, [Entry(value, headers)])
    return offsets


async def drain(snapshotter: Snapshotter, log: Log, partitions: Sequence[int] = ()) -> None:
    """Fold everything in the log now, batch by batch, through the real commit path."""
    await snapshotter.resume()
    for partition in partitions or list(snapshotter.positions):
        while batch := await log.read(
            snapshotter.topic, partition, snapshotter.positions[partition], 100
        ):
            await snapshotter.handle(batch)
            await snapshotter.flush()  # positions are read back for the next read
