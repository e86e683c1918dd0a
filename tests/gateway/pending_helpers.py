"""Updates that wait on one another, and logging one as another writer would (bypassing the
gateway's checks): tests of what a letter holds pending."""

from typing import Any

from pycrdt import Doc, Text

from eventlog.records import Entry
from schemas.events import Topic
from tests.gateway.harness import Running


def chained_edits(*texts: str) -> list[bytes]:
    """One update per text, each appended by the same Yjs client: each builds on the last."""
    doc: Doc[Any] = Doc()
    text = doc.get("text", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for value in texts:
        text += value
    return updates


async def log_update(gw: Running, letter: str, update: bytes) -> None:
    """`update` appended to the letter's log directly, as a service writer's."""
    ctx = gw.app.state.gateway.ctx
    entry: Entry = ctx.entry(letter, update, firm="firm-a", user="svc", type="doc.update")
    await gw.log.append(gw.settings.topic(Topic.LETTERS), letter.encode(), [entry])
