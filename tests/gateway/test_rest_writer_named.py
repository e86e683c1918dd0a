"""A REST write's Yjs client ids are named to the letter's opted-in peers (`doc.writer` app
message) before its update reaches them: the page's edit highlight reads the writer's name from
it, as no awareness state names a writer that never opened the letter (web/README.md). Peers of
the instance that took the write hear it from the room (Room.accept_update); those of another
instance from the named record in the log (Room.apply_remote). Peers without `events=1` never
get it. Two instances on Kafka (Tansu), as tests/collab/test_two_gateways.py."""

import json
from typing import Any

import httpx
from pycrdt import Decoder, Doc, XmlFragment, get_state

from gateway.live.presence import user_color
from tests.gateway.drafting import with_paragraph
from tests.gateway.harness import Running, YClient
from tests.support import eventually

WRITTEN = "From the intake form"
BOT = {"id": "intake", "name": "Intake Bot", "color": user_color("intake")}


def arrival(client: YClient) -> int | None:
    """The index in what `client` received of the update that brought WRITTEN, if it came."""
    doc: Doc[Any] = Doc()
    for index, message in enumerate(client.received):
        if message[0] == 0 and message[1] in (1, 2):  # a sync step 2 or an update
            doc.apply_update(_body(message))
            if WRITTEN in str(doc.get("default", type=XmlFragment)):
                return index
    return None


def _body(message: bytes) -> bytes:
    decoder = Decoder(message[2:])
    return decoder.read_message() or b""


def _clients(update: bytes) -> list[int]:
    """The client ids of an update's state vector (each of a new Doc's starts at clock 0)."""
    decoder = Decoder(get_state(update))
    found = []
    for _ in range(decoder.read_var_uint()):
        found.append(decoder.read_var_uint())
        decoder.read_var_uint()
    return sorted(found)


def writers(client: YClient) -> list[tuple[int, dict[str, Any]]]:
    found = []
    for index, message in enumerate(client.received):
        if message[0] == 100:
            decoder = Decoder(message)
            decoder.read_var_uint()
            body = json.loads(decoder.read_var_string())
            if body["type"] == "doc.writer":
                found.append((index, body))
    return found


async def test_peers_learn_who_wrote_over_rest_before_the_update(
    pair: tuple[Running, Running],
) -> None:
    a, b = pair
    letter = await a.create_letter("Dear Sir,")
    # The write goes to b: its peers hear of it from its room, a's from the log.
    local, remote = (
        await b.client(letter, user="alice", events=1),
        await a.client(letter, user="bob", events=1),
    )
    plain = [await b.client(letter, user="carol"), await a.client(letter, user="dave")]
    peers = [local, remote, *plain]
    for peer in peers:
        await peer.synced.wait()
    token = b.token("intake", role="service", name="Intake Bot")
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        state = (await http.get(f"{b.http}/v1/letters/{letter}/state")).content
        update = with_paragraph(state, WRITTEN)
        posted = await http.post(
            f"{b.http}/v1/letters/{letter}/updates",
            content=update,
            headers={"content-type": "application/octet-stream"},
        )
        assert posted.status_code == 200, posted.text
    client_ids = _clients(update)  # the writer's own: its update holds no one else's structs

    await eventually(lambda: all(arrival(peer) is not None for peer in peers), timeout=20)
    for peer in (local, remote):
        [(index, body)] = writers(peer)
        assert body == {"type": "doc.writer", "by": "intake", "user": BOT, "clients": client_ids}
        assert index < arrival(peer)  # type: ignore[operator]
    for peer in plain:
        assert writers(peer) == [] and all(m[0] != 100 for m in peer.received)
    for peer in peers:
        await peer.close()
