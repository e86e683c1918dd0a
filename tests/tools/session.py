"""A randomized multi-client editing session, written to the log as the gateway would write it.

Clients are pycrdt Docs editing TipTap's shape (paragraph XmlElements holding XmlText). Their
updates travel to one gateway with random delays; the gateway appends each in the order it
receives it (one record per update, so every record has its own offset) and relays it to the
other clients, who also receive it after random delays. An observer client, connected through
the gateway, receives every update once it is durable, in log order: its state after each
append is what a client connected at that instant held. Session, comment and version events are
interleaved, and a second letter shares the partition.
"""

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog import Entry, Log
from gateway.content import initial_update, plain_text
from schemas import (
    Anchor,
    CommentCreated,
    LetterCreated,
    SessionJoined,
    SessionLeft,
    UserRef,
    VersionSaved,
    encode_event,
    new_event,
)
from schemas.events import Payload, Topic
from schemas.settings import Settings

FIRM = "firm-a"
FIELD = "default"


@dataclass(frozen=True)
class Seen:
    """The observer's view right after the record at `offset` was appended."""

    position: int  # offset + 1
    at_ms: int
    text: str
    state_vector: bytes


@dataclass
class Client:
    user: str
    doc: Doc[Any] = field(default_factory=Doc)
    inbox: deque[bytes] = field(default_factory=deque)
    outbox: deque[bytes] = field(default_factory=deque)
    applying: bool = False

    def __post_init__(self) -> None:
        self.doc.observe(self._local)

    def _local(self, event: Any) -> None:
        if not self.applying:
            self.outbox.append(event.update)

    def receive(self, update: bytes) -> None:
        self.applying = True
        try:
            self.doc.apply_update(update)
        finally:
            self.applying = False

    @property
    def root(self) -> XmlFragment:
        return cast(XmlFragment, self.doc.get(FIELD, type=XmlFragment))

    def edit(self, rng: random.Random) -> None:
        paragraphs = list(self.root.children)
        roll = rng.random()
        if not paragraphs or roll < 0.1:
            at = rng.randint(0, len(paragraphs))
            self.root.children.insert(at, XmlElement("paragraph", {}, [XmlText(_word(rng))]))
            return
        paragraph = cast(XmlElement, paragraphs[rng.randrange(len(paragraphs))])
        texts = [c for c in paragraph.children if isinstance(c, XmlText)]
        if not texts:
            paragraph.children.append(XmlText(_word(rng)))
            return
        text = texts[0]
        size = len(str(text))
        if roll < 0.75 or size == 0:
            text.insert(rng.randint(0, size), _word(rng))
        elif roll < 0.97:
            start = rng.randrange(size)
            del text[start : min(size, start + rng.randint(1, 4))]
        elif len(paragraphs) > 1:
            del self.root.children[rng.randrange(len(paragraphs))]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefgh ") for _ in range(rng.randint(1, 5)))


class Session:
    def __init__(self, log: Log, settings: Settings, letter_id: str, rng: random.Random) -> None:
        self.log, self.settings, self.letter_id, self.rng = log, settings, letter_id, rng
        self.topic = settings.topic(Topic.LETTERS)
        self.clients = [Client(f"user-{i}") for i in range(3)]
        self.observer = Client("observer")
        self.seen: list[Seen] = []

    async def append(self, payload: Payload | bytes, user: str, type: str | None = None) -> int:
        event = new_event(
            self.letter_id, payload, firm=FIRM, user=user, conn=f"c-{user}", type=type
        )
        _, value, headers = encode_event(event)
        [offset] = await self.log.append(
            self.topic, self.letter_id.encode(), [Entry(value, headers)]
        )
        return offset

    async def create(self, content: str = "Dear Sir,\nWe write about") -> None:
        created = LetterCreated(
            letter_id=self.letter_id, firm_id=FIRM, title="t", created_by="user-0"
        )
        await self.append(created, "user-0")
        initial = initial_update(content, FIELD)
        await self._durable(initial, "user-0")
        for client in self.clients:
            client.receive(initial)

    async def join(self, client: Client) -> None:
        user = UserRef(id=client.user, name=client.user.title())
        await self.append(
            SessionJoined(conn_id=f"c-{client.user}", user=user, role="editor"), client.user
        )

    async def leave(self, client: Client) -> None:
        user = UserRef(id=client.user, name=client.user.title())
        await self.append(
            SessionLeft(conn_id=f"c-{client.user}", user=user, role="editor"), client.user
        )

    async def run(self, steps: int) -> None:
        for client in self.clients:
            await self.join(client)
        for step in range(steps):
            await self._tick()
            if step % 40 == 39:
                await self.append(VersionSaved(label=f"step {step}"), "user-1")
            if step == steps // 2:
                anchor = Anchor(start="AA==", end="AA==", quote="Dear")
                comment = CommentCreated(thread_id="t1", comment_id="c1", anchor=anchor, body="ok?")
                await self.append(comment, "user-2")
        await self.quiesce()
        for client in self.clients:
            await self.leave(client)

    async def _tick(self) -> None:
        rng = self.rng
        client = rng.choice(self.clients)
        roll = rng.random()
        if roll < 0.5:
            client.edit(rng)
        elif roll < 0.8:
            await self._gateway_receive(rng.choice(self.clients))
        elif client.inbox:
            client.receive(client.inbox.popleft())

    async def _gateway_receive(self, sender: Client) -> None:
        """The gateway takes the sender's oldest update, relays it and appends it."""
        if not sender.outbox:
            return
        update = sender.outbox.popleft()
        for peer in self.clients:
            if peer is not sender:
                peer.inbox.append(update)  # peers may get it before the append completes
        await self._durable(update, sender.user)

    async def _durable(self, update: bytes, user: str) -> None:
        offset = await self.append(update, user, type="doc.update")
        record = (await self.log.read(self.topic, offset_partition(self), offset, 1))[0]
        self.observer.receive(update)
        doc = self.observer.doc
        self.seen.append(
            Seen(offset + 1, record.timestamp, plain_text(doc, FIELD), doc.get_state())
        )

    async def quiesce(self) -> None:
        """Deliver everything: every client ends with every update."""
        while any(c.outbox or c.inbox for c in self.clients):
            for client in self.clients:
                await self._gateway_receive(client)
            for client in self.clients:
                while client.inbox:
                    client.receive(client.inbox.popleft())


def offset_partition(session: Session) -> int:
    return session.log.partition_for(session.topic, session.letter_id.encode())
