"""Opening a long letter does not stop the instance's other letters: the pre-parser's shape of
the loaded state (pure Python, 0.5 s to 2 s for 10,000 paragraphs) is built in a thread, and a
letter already open round-trips an edit through the log meanwhile. The build is held until that
round trip is done: built on the loop, it would hold the loop too (the test then fails at once,
as it finds the build on the loop's thread)."""

import asyncio
import threading

import pytest
from pycrdt import XmlFragment

from gateway.preparse import STATE_LIMITS, DocShape
from gateway.wire.limits import Limits
from tests.gateway.harness import Running
from tests.support import eventually

LINES = 10_000
BIG = 100_000  # bytes: the long letter's state (~500 KB), not the bystander's
PARAGRAPHS = LINES + 1  # the empty line after the last newline


async def test_a_bystander_round_trips_while_a_long_letter_loads(
    gw: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    bystander_letter = await gw.create_letter("Dear Sir,")
    bystander = await gw.client(bystander_letter, user="alice")
    await bystander.synced.wait()
    long_letter = await gw.create_letter("a\n" * LINES)

    loop, loop_thread = asyncio.get_running_loop(), threading.get_ident()
    building, built_on = asyncio.Event(), []
    round_trip_done = threading.Event()
    build = DocShape.from_update.__func__  # type: ignore[attr-defined]

    def held(
        cls: type[DocShape], state: bytes, limits: Limits = STATE_LIMITS, doc_field: str = "default"
    ) -> DocShape:
        if len(state) > BIG:
            built_on.append(threading.get_ident())
            loop.call_soon_threadsafe(building.set)
            if threading.get_ident() != loop_thread:  # on the loop it would never be released
                round_trip_done.wait(timeout=120)
        shape: DocShape = build(cls, state, limits, doc_field)
        return shape

    monkeypatch.setattr(DocShape, "from_update", classmethod(held))
    try:
        reader = await gw.client(long_letter, user="bob")
        await building.wait()
        assert built_on != [loop_thread], "the long letter's shape was built on the event loop"
        acknowledged = len(bystander.updates)
        await bystander.insert("Pay up.")
        await eventually(lambda: len(bystander.updates) > acknowledged)  # logged, acknowledged
        assert not reader.synced.is_set()  # the long letter was loading all along
    finally:
        round_trip_done.set()
    await reader.synced.wait()
    body: XmlFragment = reader.doc.get(gw.settings.doc_field, type=XmlFragment)
    assert len(body.children) == PARAGRAPHS
    await reader.close()
    await bystander.close()
