"""A letter two editors wrote in, then a gateway crash's resyncs (tests of the client-id owners
read from the log: test_owners_from_log.py, test_owners_healed_from_log.py)."""

import asyncio
from typing import Any

from pycrdt import Doc, Text

from gateway.errors import TRY_AGAIN_LATER
from schemas.events import Topic
from tests.gateway.harness import Running, YClient
from tests.support import eventually


async def both_logged(gw: Running) -> tuple[str, YClient, YClient]:
    """A letter where alice and bob each wrote under their own client id, all of it logged."""
    letter, alice, bob = await gw.two_editors()
    await alice.insert("alice ")
    await eventually(lambda: str(bob.text) == "alice ")
    await bob.insert("bob ")
    await eventually(lambda: str(alice.text) == "alice bob ")
    await eventually(lambda: logged(gw, letter, "alice bob "))
    await alice.close()
    await bob.close()
    return letter, alice, bob


async def after_the_crash(gw: Running, letter: str, alice: YClient, bob: YClient) -> None:
    """Bob, holding alice's unlogged edit, resyncs first; then alice, who types on."""
    before = len(await gw.records(Topic.LETTERS, letter))
    bob2 = await YClient.connect(gw.ws_url(letter, gw.token(user="bob")), doc=bob.doc)
    async with asyncio.timeout(10):  # taken under his name, it would stay open
        await bob2.closed.wait()
    assert bob2.close_code == TRY_AGAIN_LATER  # alice's edit is not his to bring

    alice2 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
    await alice2.synced.wait()
    await alice2.insert("and on")
    await eventually(lambda: logged(gw, letter, "alice bob unlogged and on"))
    assert alice2.close_code is None  # not refused (4403) under her own client id
    added = (await gw.records(Topic.LETTERS, letter))[before:]
    users = {dict(r.headers)["user"] for r in added if dict(r.headers)["type"] == b"doc.update"}
    assert users == {b"alice"}  # her unlogged edit is in the log under her name
    await alice2.close()


async def logged(gw: Running, letter: str, text: str) -> bool:
    return await gw.logged_text(letter) == text


def posing_as(author: Doc[Any], poser: Doc[Any]) -> bytes:
    """An update writing new clocks under `author`'s client id, from `poser`'s state."""
    posing: Doc[Any] = Doc(client_id=author.client_id)
    posing.apply_update(poser.get_update())
    forged: list[bytes] = []
    sub = posing.observe(lambda event: forged.append(event.update))
    posing.get("text", type=Text).insert(0, "forged ")
    posing.unobserve(sub)
    return forged[0]
