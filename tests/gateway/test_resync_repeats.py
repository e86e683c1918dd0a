"""A resync repeating edits the letter already has logs none of them again: each `doc.update`
record carries only structs under its own user's client ids, and none another record logged
before it. Auditors read who wrote what from these records.

A y-websocket client computes its step 2 against our step 1, sent as it joins; edits the letter
takes after that (another user's own resync bringing what a dead gateway relayed and never
logged, a held part taken with someone else's) are in that step 2 still when it arrives. And a
refused resync's own part, held (gateway/live/resyncs.py), may since have reached the letter
through its author's next resync."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from pycrdt import Decoder, Doc, Text, create_update_message, write_var_uint

from eventlog.records import Record
from gateway.errors import TRY_AGAIN_LATER
from gateway.live.resyncs import lacking, still_adds
from gateway.wire import hocuspocus as hp
from gateway.wire.limits import Limits
from gateway.wire.shape import DocShape
from gateway.wire.update import scan_update
from schemas.events import Topic
from tests.gateway.crash_owners import both_logged, logged
from tests.gateway.harness import Running, YClient, type_relayed, varbytes
from tests.gateway.hocuspocus_client import HpClient, edit
from tests.support import eventually


@dataclass
class LateClient(YClient):
    """A y-websocket client whose step 2, computed as our step 1 arrives (as a stock client's
    is), reaches the gateway only when the test says: the network held it that long."""

    asked: asyncio.Event = field(default_factory=asyncio.Event)
    answer: bytes = b""

    async def _handle(self, message: bytes) -> None:
        decoder = Decoder(message)
        if decoder.read_var_uint() == 0 and decoder.read_var_uint() == 0:
            self.answer = bytes([0, 1]) + varbytes(self.doc.get_update(decoder.read_message()))
            self.asked.set()
            return
        await super()._handle(message)

    async def send_answer(self) -> None:
        await self.ws.send(self.answer)


async def late_client(gw: Running, letter: str, user: str, doc: Doc[Any]) -> LateClient:
    client = await LateClient.connect(gw.ws_url(letter, gw.token(user=user)), doc=doc)
    assert isinstance(client, LateClient)
    return client


def misattributed(records: list[Record]) -> list[str]:
    """Structs a `doc.update` record carries under another user's client id (its owner: whoever
    logged its first struct), or that an earlier record carried already."""
    owners: dict[int, str] = {}
    known: dict[int, int] = {}  # client id -> clock logged up to
    found = []
    for record in records:
        headers = dict(record.headers)
        if headers["type"] != b"doc.update":
            continue
        user = headers["user"].decode()
        for client, first, end, _, _ in scan_update(record.value, Limits()).blocks:
            owner = owners.setdefault(client, user)
            if owner != user:
                found.append(f"{user}'s record carries {owner}'s {client} {first}..{end}")
            if first < known.get(client, 0):
                found.append(f"{user}'s record repeats {client} {first}..{known[client]}")
            known[client] = max(known.get(client, 0), end)
    return found


def test_a_held_part_is_cut_to_what_the_letter_lacks_its_deletions_too() -> None:
    author: Doc[Any] = Doc()
    text = author.get("text", type=Text)
    text.insert(0, "hello")
    letter: Doc[Any] = Doc()
    shape = DocShape()  # the room's: it records the deletions the letter has made

    def apply(update: bytes) -> None:
        letter.apply_update(update)
        shape.absorb(update)

    apply(author.get_update())
    text.insert(5, " world")  # one struct with "hello" in a whole update: the letter has half
    part = author.get_update()
    assert [b[:3] for b in scan_update(lacking(letter, part), Limits()).blocks] == [
        (author.client_id, 5, 11)
    ]
    apply(part)
    assert still_adds(letter, part, shape.has_deleted) is None  # it has it all

    del text[0:6]  # a deletion alone: the letter has every struct of it, not the deletion
    part = author.get_update()
    assert still_adds(letter, part, shape.has_deleted) is not None
    apply(part)
    assert still_adds(letter, part, shape.has_deleted) is None


@pytest.mark.parametrize("offline", ["", "B1 "])
async def test_a_resync_repeating_edits_their_author_brought_meanwhile_logs_none_of_them(
    gw: Running, offline: str
) -> None:
    letter, alice, bob = await both_logged(gw)
    type_relayed(alice.doc, "A1 ", bob.doc)  # the dead gateway relayed it, never logged it
    if offline:
        type_relayed(bob.doc, offline)  # his own, that the letter lacks: his step 2 brings it

    bob2 = await late_client(gw, letter, "bob", bob.doc)
    await bob2.asked.wait()  # his step 2 holds A1: the letter lacked it when we asked
    alice2 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
    await alice2.synced.wait()
    await eventually(lambda: logged(gw, letter, "alice bob A1 "))  # her resync brought it

    await bob2.send_answer()
    await bob2.insert("B2")  # after his step 2: once it is in, so is what came of the step 2
    await eventually(lambda: logged(gw, letter, f"alice bob A1 {offline}B2"))
    assert bob2.close_code is None and alice2.close_code is None
    assert misattributed(await gw.records(Topic.LETTERS, letter)) == []
    await alice2.close()
    await bob2.close()


async def test_a_held_part_its_author_brought_meanwhile_is_not_logged_again(
    gw: Running,
) -> None:
    letter, alice, bob = await both_logged(gw)
    carol_doc: Doc[Any] = Doc()
    carol_doc.apply_update(alice.doc.get_update())
    type_relayed(bob.doc, "B1 ", alice.doc)
    type_relayed(alice.doc, "A1 ")  # after B1, and relayed to nobody

    alice2 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
    await alice2.closed.wait()
    assert alice2.close_code == TRY_AGAIN_LATER  # B1 is bob's to bring; her A1 is held
    bob2 = await YClient.connect(gw.ws_url(letter, gw.token(user="bob")), doc=bob.doc)
    await bob2.synced.wait()  # B1, alone: his resync is his own
    await eventually(lambda: logged(gw, letter, "alice bob B1 "))
    alice3 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
    await alice3.synced.wait()  # A1 again, taken now (her held part still waits)
    await eventually(lambda: logged(gw, letter, "alice bob B1 A1 "))
    await alice3.close()

    # Carol holds an edit of alice's the letter lacks: refused, tried with the held parts.
    carol_doc.apply_update(alice.doc.get_update())
    type_relayed(alice.doc, "A2", carol_doc)
    carol = await YClient.connect(gw.ws_url(letter, gw.token(user="carol")), doc=carol_doc)
    await carol.closed.wait()
    assert carol.close_code == TRY_AGAIN_LATER
    await bob2.insert(" B3")  # after carol's resync was dealt with
    await eventually(lambda: logged(gw, letter, "alice bob B1 A1  B3"))
    assert misattributed(await gw.records(Topic.LETTERS, letter)) == []
    await bob2.close()


@pytest.mark.parametrize("offline", ["", "C1 "])
async def test_a_hocuspocus_step_2_repeating_edits_is_acknowledged_with_what_it_carried(
    gw: Running, offline: str
) -> None:
    """Its sync status comes once what it adds is logged, or at once when it adds nothing; and
    it settles the edits dropped before it (Connection._before_sync), which it carries."""
    letter, alice, _ = await both_logged(gw)
    carol_doc: Doc[Any] = Doc()
    carol_doc.apply_update(alice.doc.get_update())
    type_relayed(alice.doc, "A1 ", carol_doc)
    address = f"letter-{letter}"
    carol = await HpClient.connect(gw)
    await carol.auth(address, gw.token(user="carol"))
    assert (await carol.next(address, hp.AUTH)).body[0] == hp.AUTH_OK
    if offline:
        edit(carol_doc, offline)  # not sent
        typed = edit(carol_doc, "C2")  # builds on it: dropped until her step 2 brings both
        await carol.send(address, create_update_message(typed))
    mark = len(carol.received)
    await carol.send(address, bytes([0, 0, 1, 0]))  # her step 1: our step 2, then our step 1
    ours = await carol.next(address, hp.SYNC, mark)
    while ours.body[0] != 0:
        ours = await carol.next(address, hp.SYNC, carol.received.index(ours) + 1)
    step2 = carol_doc.get_update(Decoder(ours.body[1:]).read_message() or b"")

    alice2 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
    await alice2.synced.wait()
    await eventually(lambda: logged(gw, letter, "alice bob A1 "))
    await carol.send(address, bytes([0, 1]) + write_var_uint(len(step2)) + step2)
    statuses = [1, 1] if offline else [1]  # her step 2's, and the dropped edit's
    await eventually(lambda: _statuses(carol, address) == statuses)
    assert await gw.logged_text(letter) == "alice bob A1 " + (f"{offline}C2" if offline else "")
    assert misattributed(await gw.records(Topic.LETTERS, letter)) == []
    await alice2.close()
    await carol.close()


def _statuses(client: HpClient, address: str) -> list[int]:
    return [r.body[0] for r in client.received if r.address == address and r.type == hp.SYNC_STATUS]


async def test_an_update_repeating_what_the_letter_has_logs_only_what_is_new(gw: Running) -> None:
    """A client sending again what it sent or loaded (a web client's resend of the letter it
    has just been sent) adds no record, and one carrying something new besides logs only
    that: the log, the audit and the letter's size budget count each edit once."""
    letter, alice, bob = await gw.two_editors()
    await alice.insert("hello world")
    await eventually(lambda: str(bob.text) == "hello world")
    await bob.edit(lambda doc: doc.get("text", type=Text).__delitem__(slice(0, 6)))  # a delete set
    await eventually(lambda: logged(gw, letter, "world"))
    before = await gw.records(Topic.LETTERS, letter)

    echoes = len(alice.updates)
    await alice.ws.send(create_update_message(alice.doc.get_update()))  # the whole letter
    await eventually(lambda: len(alice.updates) > echoes)  # acknowledged all the same
    # The whole letter again with one new word, under a second client id of alice's.
    tab: Doc[Any] = Doc()
    tab.apply_update(alice.doc.get_update())
    tab.get("text", type=Text).insert(0, "new ")
    await alice.ws.send(create_update_message(tab.get_update()))
    await eventually(lambda: logged(gw, letter, "new world"))

    added = (await gw.records(Topic.LETTERS, letter))[len(before) :]
    updates = [r for r in added if dict(r.headers)["type"] == b"doc.update"]
    assert len(updates) == 1
    blocks = scan_update(updates[0].value, Limits()).blocks
    assert [(client, first) for client, first, *_ in blocks] == [(tab.client_id, 0)]
    assert misattributed(await gw.records(Topic.LETTERS, letter)) == []
    assert str(bob.text) == "new world"
