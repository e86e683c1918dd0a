"""A short scripted session whose history and diff are known in advance.

user-0 creates "Dear Sir,\\nWe write about"; user-1 and user-2 join; user-1 types " the claim"
at the end of line 2; version 1 ("draft"); user-2 adds a paragraph "Regards"; user-1 deletes
"Dear "; user-2 comments; version 2 ("final"); both leave.
"""

import random
import time
from typing import cast

from pycrdt import XmlElement, XmlText

from eventlog import Log
from schemas import Anchor, CommentCreated, VersionSaved
from schemas.settings import Settings
from tests.support import eventually
from tests.tools.session import Client, Session

LETTER = "scripted"


def _text(client: Client, paragraph: int) -> XmlText:
    node = cast(XmlElement, list(client.root.children)[paragraph])
    return next(c for c in node.children if isinstance(c, XmlText))


async def scripted(log: Log, settings: Settings) -> tuple[Session, list[int]]:
    """The session and the record times of its two versions."""
    session = Session(log, settings, LETTER, random.Random(0))
    await session.create()
    _, one, two = session.clients
    await session.join(one)
    await session.join(two)
    text = _text(one, 1)
    text.insert(len(str(text)), " the claim")
    await session.quiesce()
    first = await _version(session, "draft")
    two.root.children.append(XmlElement("paragraph", {}, [XmlText("Regards")]))
    await session.quiesce()
    del _text(one, 0)[0:5]
    await session.quiesce()
    anchor = Anchor(start="AA==", end="AA==", quote="Sir")
    await session.append(
        CommentCreated(thread_id="t1", comment_id="c1", anchor=anchor, body="Which sir?"), two.user
    )
    second = await _version(session, "final")
    await session.leave(one)
    await session.leave(two)
    return session, [first, second]


async def _version(session: Session, label: str) -> int:
    """Append a version.saved alone in its millisecond, so an instant names exactly it."""
    await _next_ms()
    offset = await session.append(VersionSaved(label=label), "user-1")
    records = await session.log.read(session.topic, 0, offset, 1)
    await _next_ms(records[0].timestamp)
    return records[0].timestamp


async def _next_ms(after: int | None = None) -> None:
    start = time.time_ns() // 1_000_000 if after is None else after
    await eventually(lambda: time.time_ns() // 1_000_000 > start + 1, interval=0.001)
