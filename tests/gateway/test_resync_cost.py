"""What a refused resync costs the gateway (gateway/live/resyncs.py): its own part is computed
on a copy of the whole letter, on the event loop (0.1-1 s for a 2 MB letter), so only when the
pre-parser shows it has something of its own, and at most at the letter's rate; the others are
refused with 1013 without it (stock providers come back later)."""

from typing import Any

import pytest
from pycrdt import Doc, Text

from gateway.errors import TRY_AGAIN_LATER
from gateway.live import resyncs, room
from gateway.outgoing import sync_step2
from tests.gateway.harness import Running, YClient
from tests.support import eventually

MALLORY_CLIENT = 777777


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many own parts the gateway computed (each a copy of the letter)."""
    calls: list[int] = []

    def counted(doc: Doc[Any], update: bytes, foreign: list[int]) -> bytes | None:
        calls.append(len(update))
        return resyncs.own_part(doc, update, foreign)

    monkeypatch.setattr(room, "own_part", counted)
    return calls


def _forged(letter: Doc[Any], victim: int, own_word: bool) -> bytes:
    """A resync with one character under the victim's id at its next clock; with `own_word`,
    a word under mallory's own id after it."""
    forger: Doc[Any] = Doc(client_id=victim)
    forger.apply_update(letter.get_update())
    forger.get("text", type=Text).insert(0, "x")
    mallory: Doc[Any] = Doc(client_id=MALLORY_CLIENT)
    mallory.apply_update(forger.get_update())
    if own_word:
        mallory.get("text", type=Text).insert(1, "evil")
    return mallory.get_update(letter.get_state())


async def _refused(gw: Running, letter: str, resync: bytes) -> int | None:
    mallory = await YClient.connect(gw.ws_url(letter, gw.token(user="mallory")), doc=Doc())
    await mallory.synced.wait()
    await mallory.ws.send(sync_step2(resync))
    await mallory.closed.wait()
    return mallory.close_code


async def _letter(gw: Running) -> tuple[str, YClient, YClient]:
    letter, alice, bob = await gw.two_editors()
    await alice.insert("alice ")  # her client id is hers from now on
    await eventually(lambda: str(bob.text) == "alice ")
    return letter, alice, bob


async def test_a_resync_with_nothing_of_its_own_is_refused_without_a_copy(
    gw: Running, computed: list[int]
) -> None:
    letter, alice, bob = await _letter(gw)
    for _ in range(3):
        resync = _forged(alice.doc, alice.doc.client_id, own_word=False)
        assert await _refused(gw, letter, resync) == TRY_AGAIN_LATER
    assert computed == []
    assert str(bob.text) == "alice "
    await alice.close()
    await bob.close()


async def test_own_parts_are_computed_at_the_letters_rate(
    gw: Running, computed: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resyncs, "TRIES_PER_S", 0.0)  # the burst, then none: no clock involved
    letter, alice, bob = await _letter(gw)
    attempts = resyncs.TRIES_BURST + 2
    for _ in range(attempts):
        resync = _forged(alice.doc, alice.doc.client_id, own_word=True)
        assert await _refused(gw, letter, resync) == TRY_AGAIN_LATER  # a retry, never final
    assert len(computed) == resyncs.TRIES_BURST
    metrics = await gw.metrics()
    assert metrics['gateway_refusals_total{reason="resync_rate_limited"}'] == 2
    assert metrics['gateway_refusals_total{reason="client_id_not_owned"}'] == resyncs.TRIES_BURST
    await alice.close()
    await bob.close()


async def test_the_gateways_letters_together_copy_at_a_rate(
    gw: Running, computed: list[int]
) -> None:
    """A user in many letters, each within its own rate, is bounded by the gateway's copying
    too: here a budget with room for one copy, and (at a byte a million seconds) none after."""
    ctx = gw.app.state.gateway.ctx
    ctx.held_resyncs = resyncs.HoldBudget(copies=(1e-6, 1.0))  # before any letter loads
    first, alice, bob = await _letter(gw)
    second, carol, dave = await _letter(gw)
    assert (
        await _refused(gw, first, _forged(alice.doc, alice.doc.client_id, True)) == TRY_AGAIN_LATER
    )
    assert (
        await _refused(gw, second, _forged(carol.doc, carol.doc.client_id, True)) == TRY_AGAIN_LATER
    )
    assert len(computed) == 1  # the second letter's was refused without a copy
    metrics = await gw.metrics()
    assert metrics['gateway_refusals_total{reason="resync_rate_limited"}'] == 1
    for client in (alice, bob, carol, dave):
        await client.close()
