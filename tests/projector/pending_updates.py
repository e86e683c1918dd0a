"""An update logged before the one it depends on ("!!!" before " world"), and the text the
projector stored."""

import redis.asyncio as aioredis

from tests.projector.support import Editor, doc_text

FULL = "<paragraph>hello world!!!</paragraph>"


def out_of_order(letter_id: str) -> tuple[Editor, list[bytes]]:
    """hello, then " world", then "!!!" (which depends on " world"): logged as 0, 2, 1."""
    ed = Editor(letter_id)
    hello, world, bang = ed.paragraph("hello"), ed.type(0, " world"), ed.type(0, "!!!")
    return ed, [hello, bang, world]


async def stored_text(client: aioredis.Redis, letter_id: str) -> str:
    state = await client.get(f"ydoc:{letter_id}")
    assert isinstance(state, bytes)
    return doc_text(state)
