"""One update cutting a long item at many places (the reviewer's split_stall.py, scaled down) is
refused before the room applies it, over REST (413) and the WebSocket (4413), nothing logged;
an editor's ordinary edit in the same long text goes through (gateway/wire/splits.py)."""

from typing import Any

import httpx
from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText, write_var_uint

from gateway.errors import TOO_LARGE
from schemas.events import Topic
from tests.gateway.harness import Running, YClient
from tests.gateway.long_items import LONG, long_letter
from tests.support import eventually


def _cut_everywhere(doc: Doc[Any], places: int) -> bytes:
    """One update inserting a character at `places` places, in descending order."""
    before = doc.get_state()
    text = doc.get("text", type=Text)
    with doc.transaction():
        for i in range(places - 1, -1, -1):
            text.insert(i * (LONG // places) + 1, "y")
    return doc.get_update(before)


async def test_an_update_splitting_a_long_item_everywhere_is_refused(gw: Running) -> None:
    letter, alice = await long_letter(gw)
    drafted: Doc[Any] = Doc()
    drafted.apply_update(alice.doc.get_update())
    attack = _cut_everywhere(drafted, 2_000)  # 2e8 clocks of splits, over 1e8
    async with httpx.AsyncClient(base_url=gw.http) as http:
        r = await http.post(
            f"/v1/letters/{letter}/updates",
            content=attack,
            headers={
                "Authorization": f"Bearer {gw.token(user='mallory')}",
                "content-type": "application/octet-stream",
            },
        )
    assert (r.status_code, r.json()) == (413, {"detail": "split cost exceeded"})
    mallory: Doc[Any] = Doc()  # the letter as it is: her step 2 carries nothing
    mallory.apply_update(alice.doc.get_update())
    socket = await YClient.connect(gw.ws_url(letter, gw.token(user="mallory")), doc=mallory)
    await socket.synced.wait()
    await socket.ws.send(b"\x00\x02" + write_var_uint(len(attack)) + attack)
    await socket.closed.wait()
    assert socket.close_code == TOO_LARGE
    metrics = await gw.metrics()
    assert metrics['gateway_refusals_total{reason="split_cost_exceeded"}'] == 2
    # An edit in the middle of the long text is one cut: taken, relayed, logged.
    bob = await gw.client(letter, user="bob")
    await bob.synced.wait()
    await bob.insert("!", index=LONG // 2)
    await eventually(lambda: str(alice.text).count("!") == 1)
    assert str(alice.text).count("y") == 0
    assert attack not in [record.value for record in await gw.records(Topic.LETTERS, letter)]
    await alice.close()
    await bob.close()


def _varuint(n: int) -> bytes:
    return bytes(write_var_uint(n))


async def test_skips_cannot_put_free_edges_at_the_cuts(gw: Running) -> None:
    """A cut at an edge of the update's own structs is free, but only of its NEW clocks: Skip
    structs over the letter's text (clocks it already has) put edges at every cut, and an
    update weighed 0 held the loop 6.5 s over REST (a final review)."""
    mallory_id, length, places = 987_654_321, 100_000, 2_000
    letter = await gw.create_letter()
    own: Doc[Any] = Doc(client_id=mallory_id)
    own.get("text", type=Text).insert(0, "x" * length)
    headers = {
        "Authorization": f"Bearer {gw.token(user='mallory')}",
        "content-type": "application/octet-stream",
    }
    step = length // (places + 1)
    edges = [step * (i + 1) for i in range(places)]
    structs, at = [], 0
    for edge in edges:  # Skips up to each cut: its clocks' edges
        structs.append(b"\x0a" + _varuint(edge - at))
        at = edge
    structs.append(b"\x0a" + _varuint(length - at))
    for edge in reversed(edges):  # a "y" after each, its origin the clock before the cut
        origin = _varuint(mallory_id) + _varuint(edge - 1)
        structs.append(bytes([0x80 | 4]) + origin + _varuint(1) + b"y")
    attack = (
        _varuint(1) + _varuint(len(structs)) + _varuint(mallory_id) + _varuint(0)
        + b"".join(structs) + _varuint(0)
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=gw.http) as http:
        url = f"/v1/letters/{letter}/updates"
        pasted = await http.post(url, content=own.get_update(), headers=headers)
        assert pasted.status_code == 200, pasted.text
        r = await http.post(url, content=attack, headers=headers)
    assert (r.status_code, r.json()) == (413, {"detail": "split cost exceeded"})


def _typed_with_fixes(paragraphs: int, chars: int) -> Doc[Any]:
    """A TipTap letter typed with a typo fixed every 40 characters: many small deletions."""
    doc: Doc[Any] = Doc(client_id=42)
    fragment = doc.get("default", type=XmlFragment)
    for _ in range(paragraphs):
        paragraph = fragment.children.append(XmlElement("paragraph", {}, [XmlText("")]))
        text = paragraph.children[0]
        for n in range(5, chars + 1, 5):
            text.insert(len(text), "word ")
            if n % 40 == 0:
                del text[len(text) - 1 : len(text)]
                text.insert(len(text), " ")
    return doc


async def test_a_reconnect_repeating_the_letters_deletions_is_taken(gw: Running) -> None:
    """Every sync step 2 carries the letter's whole delete set: ranges the letter has deleted
    already cut nothing (their items were split when deleted) and weigh 0. Weighed as new, a
    reconnect of a letter with 1,500 typo fixes was refused 4413, final for y-websocket."""
    letter = await gw.create_letter()
    doc = _typed_with_fixes(40, 1_500)
    url = gw.ws_url(letter, gw.token(user="alice"))
    first = await YClient.connect(url, doc=doc)  # offline edits brought in
    await first.synced.wait()
    await first.close()
    again = await YClient.connect(url, doc=doc)  # a network blip: the same document
    await again.synced.wait()
    heard = len(again.updates)
    await again.insert("!")  # answered only if the step 2 before it was taken
    await eventually(lambda: len(again.updates) > heard or again.closed.is_set())
    assert not again.closed.is_set(), again.close_code
    await again.close()


MALLORY = 987_654_321


def _pending_deletes(places: int, length: int) -> bytes:
    """A delete set only: one clock at each of `places` places of MALLORY's clocks under
    `length`, none of which the letter has (the reviewer's first update, scaled down)."""
    step = length // (places + 1)
    ranges = b"".join(_varuint(step * (i + 1)) + _varuint(1) for i in range(places))
    return _varuint(0) + _varuint(1) + _varuint(MALLORY) + _varuint(places) + ranges


def _pasted(length: int) -> bytes:
    own: Doc[Any] = Doc(client_id=MALLORY)
    own.get("text", type=Text).insert(0, "x" * length)
    return own.get_update()


async def test_deletions_of_clocks_the_letter_lacks_are_left_out_over_rest(gw: Running) -> None:
    """They weighed 0 (past the client's end) and Yrs kept them pending: the paste bringing
    those clocks (weighing 0 too) was split at each, 6.8 s of the loop at 200,000 deletions and
    1,000,000 characters (a final review). Left out, nothing logged (nothing else in it: 200,
    as a backend posting back a Y.Doc loaded from `state` with nothing drafted gets)."""
    letter = await gw.create_letter()
    headers = {
        "Authorization": f"Bearer {gw.token(user='mallory')}",
        "content-type": "application/octet-stream",
    }
    pending = _pending_deletes(2_000, 100_000)
    async with httpx.AsyncClient(base_url=gw.http) as http:
        url = f"/v1/letters/{letter}/updates"
        r = await http.post(url, content=pending, headers=headers)
        assert (r.status_code, r.json()) == (200, {"letter_id": letter, "bytes": len(pending)})
        pasted = await http.post(url, content=_pasted(100_000), headers=headers)
        assert pasted.status_code == 200, pasted.text
    values = [record.value for record in await gw.records(Topic.LETTERS, letter)]
    assert pending not in values
    assert await gw.replayed_text(letter) == "x" * 100_000


async def test_deletions_of_clocks_the_letter_lacks_are_dropped_over_websocket(
    gw: Running,
) -> None:
    """Dropped as an update past a hole is: the connection stays open and gets our step 1."""
    letter = await gw.create_letter()
    bob = await gw.client(letter, user="bob")
    await bob.synced.wait()
    mallory = await YClient.connect(
        gw.ws_url(letter, gw.token(user="mallory")), doc=Doc(client_id=MALLORY)
    )
    await mallory.synced.wait()

    def step1s() -> int:
        return sum(message[:2] == b"\x00\x00" for message in mallory.received)

    greeted = step1s()
    pending = _pending_deletes(2_000, 100_000)
    await mallory.ws.send(b"\x00\x02" + _varuint(len(pending)) + pending)
    await eventually(lambda: step1s() > greeted)  # ours: what does it lack?
    metrics = await gw.metrics()
    assert metrics['gateway_refusals_total{reason="clock_gap"}'] == 1
    await mallory.insert("x" * 100_000)  # the paste: taken, relayed
    await eventually(lambda: len(str(bob.text)) == 100_000)
    assert not mallory.closed.is_set()
    values = [record.value for record in await gw.records(Topic.LETTERS, letter)]
    assert pending not in values
    await mallory.close()
    await bob.close()


async def _connect_and_type(url: str, doc: Doc[Any]) -> None:
    client = await YClient.connect(url, doc=doc)
    await client.synced.wait()
    heard = len(client.updates)
    await client.insert("!")  # answered once the step 2 before it was taken
    await eventually(lambda: len(client.updates) > heard or client.closed.is_set())
    assert not client.closed.is_set(), client.close_code
    await client.close()


async def test_a_reconnect_repeating_only_the_letters_deletions_logs_nothing(gw: Running) -> None:
    """A step 2 bringing no structs repeats the letter's delete set on every reconnect: logged
    each time, and added to the letter's size until typing was refused 4413 (a final review)."""
    letter = await gw.create_letter()
    doc = _typed_with_fixes(4, 400)
    url = gw.ws_url(letter, gw.token(user="alice"))
    for _ in range(3):  # the first brings the offline edits; then two network blips
        await _connect_and_type(url, doc)
    records = await gw.records(Topic.LETTERS, letter)
    updates = [r for r in records if dict(r.headers)["type"] == b"doc.update"]
    assert len(updates) == 1 + 3  # the offline edits, then one "!" a connection
    assert await gw.replayed_text(letter) == "!!!"
