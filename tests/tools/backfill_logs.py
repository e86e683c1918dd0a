"""Logs the backfill tests rebuild from: two letters co-edited by scripted sessions (`fill`),
and a letter typed a character an update (`typing`, cheap in bulk)."""

import random
from typing import cast

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog import Entry, Log
from schemas import encode_event, new_event
from schemas.events import Topic
from schemas.settings import Settings
from tests.tools.conftest import recorded
from tests.tools.session import FIRM, Session
from tools.sources import Sources
from tools.verify import verify_letter

LETTERS = ("letter-a", "letter-b", "letter-c")


async def fill(log: Log, settings: Settings, steps: int = 60) -> None:
    for seed, letter_id in enumerate(LETTERS[:2]):
        await recorded(log, settings, letter_id, seed=seed + 10, steps=steps)


async def typing(log: Log, settings: Settings, letter_id: str, n: int) -> None:
    """A letter typed one character per update, appended 500 updates at a time (cheap bulk)."""
    session = Session(log, settings, letter_id, random.Random(0))
    await session.create()
    doc: Doc[XmlFragment] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    root = doc.get("default", type=XmlFragment)
    root.children.append(XmlElement("paragraph", {}, [XmlText("")]))
    text = cast(XmlText, cast(XmlElement, root.children[0]).children[0])
    for i in range(n):
        text.insert(i, "abcdefghij"[i % 10])
    topic = settings.topic(Topic.LETTERS)
    for start in range(0, len(updates), 500):
        entries = []
        for update in updates[start : start + 500]:
            event = new_event(letter_id, update, firm=FIRM, user="typist", type="doc.update")
            _, value, headers = encode_event(event)
            entries.append(Entry(value, headers))
        await log.append(topic, letter_id.encode(), entries)


async def all_agree(src: Sources) -> None:
    """The letters `fill` writes agree with the log in every store (`verify`)."""
    for lid in LETTERS[:2]:
        findings = await verify_letter(src, lid)
        assert len(findings) == 2 and all(f.ok for f in findings), findings
