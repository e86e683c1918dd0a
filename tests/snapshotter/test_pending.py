"""An update that reaches the log before the one it depends on (another producer, a restored or
hand-repaired log) is pending until that one arrives; a state saved in between (a batch's state
row, a restart, an eviction) must carry it, as yrs' `get_update()` leaves pending updates out."""

from collections.abc import Callable

import asyncpg

from eventlog.embedded import EmbeddedLog
from snapshotter.consumer import Snapshotter
from snapshotter.document import LetterDocument
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.pending_updates import out_of_order, payload
from tests.snapshotter.scripts import append


def test_a_state_saved_before_the_dependency_arrives_keeps_the_pending_update() -> None:
    _, (hello, bang, world) = out_of_order("L")
    doc = LetterDocument("default")
    doc.apply(payload(hello))
    doc.apply(payload(bang))
    saved = doc.state()
    assert LetterDocument("default", saved).snapshot().content == "hello"
    reloaded = LetterDocument("default", saved)
    reloaded.apply(payload(world))
    assert reloaded.snapshot().content == "hello world!!!"
    again = LetterDocument("default", reloaded.state())  # nothing pending any more
    assert again.snapshot().content == "hello world!!!"


def test_a_pending_delete_survives_a_saved_state() -> None:
    s, (hello, _, world) = out_of_order("L")
    unworld = s.delete("alice", 0, 5, 6)  # deletes " world": pending without it
    doc = LetterDocument("default")
    doc.apply(payload(hello))
    doc.apply(payload(unworld))
    reloaded = LetterDocument("default", doc.state())
    reloaded.apply(payload(world))
    assert reloaded.snapshot().content == "hello"


async def test_a_restart_between_an_update_and_its_dependency_keeps_both(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str
) -> None:
    s, (hello, bang, world) = out_of_order("L-ooo")
    await append(elog, LETTERS, [s.created(), hello, bang, world, s.save("alice", "v")])
    first = snap_factory()
    await first.resume()
    partition = elog.partition_for(LETTERS, b"L-ooo")
    records = await elog.read(LETTERS, partition, 0, 100)
    await first.handle(records[:3])  # up to "!!!", which is pending on " world"
    await first.flush()
    restarted = snap_factory()  # loads the letter's state from PostgreSQL
    await restarted.resume()
    await restarted.handle(records[3:])
    await restarted.flush()
    conn = await asyncpg.connect(db)
    try:
        content = await conn.fetchval(
            "SELECT content FROM letter_version WHERE letter_id = $1", "L-ooo"
        )
    finally:
        await conn.close()
    assert content == "hello world!!!"
