"""One update cutting a long item at many places (the reviewer's split_stall.py, scaled down) is
refused before the room applies it, over REST (413) and the WebSocket (4413), nothing logged;
an editor's ordinary edit in the same long text goes through (gateway/wire/splits.py)."""

from typing import Any

import httpx
from pycrdt import Doc, Text, write_var_uint

from gateway.errors import TOO_LARGE
from schemas.events import Topic
from tests.gateway.harness import Running, YClient
from tests.support import eventually

LONG = 100_000  # one item: a cut in it weighs 10^5 clocks


def _cut_everywhere(doc: Doc[Any], places: int) -> bytes:
    """One update inserting a character at `places` places, in descending order."""
    before = doc.get_state()
    text = doc.get("text", type=Text)
    with doc.transaction():
        for i in range(places - 1, -1, -1):
            text.insert(i * (LONG // places) + 1, "y")
    return doc.get_update(before)


async def test_an_update_splitting_a_long_item_everywhere_is_refused(gw: Running) -> None:
    letter = await gw.create_letter()
    alice = await gw.client(letter, user="alice")
    await alice.synced.wait()
    heard = len(alice.updates)
    await alice.insert("x" * LONG)
    await eventually(lambda: len(alice.updates) > heard)  # her echo: logged
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
