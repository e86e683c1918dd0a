"""`snapshotter_letters_pending`: cached letters whose document holds pending parts (an update
logged before the one it builds on), each update of which costs the snapshotter a save and a
load of the letter (snapshotter/document.py); 0 again once the missing update arrives. A state
loaded from PostgreSQL is looked at by its first update or save, and the document after each
reload (while parts are pending) is the one looked at."""

from collections.abc import Callable

from eventlog.embedded import EmbeddedLog
from snapshotter.consumer import Snapshotter
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.metrics_scrape import scrape
from tests.snapshotter.pending_updates import out_of_order
from tests.snapshotter.scripts import LetterScript, append, drain

PENDING = "snapshotter_letters_pending"


def pending(snap: Snapshotter) -> float | None:
    return snap.metrics.registry.get_sample_value(PENDING)


async def fold_new(snap: Snapshotter, elog: EmbeddedLog) -> None:
    """Fold what was logged since, the letters cached staying cached (`drain` resumes)."""
    for partition, position in snap.positions.items():
        if batch := await elog.read(LETTERS, partition, position, 100):
            await snap.handle(batch)
            await snap.flush()


async def test_a_letter_counts_while_its_gap_is_open(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter]
) -> None:
    s, (hello, bang, world) = out_of_order("L-gap")
    clean = LetterScript("L-clean")  # cached, nothing pending
    await append(elog, LETTERS, [clean.created(), clean.paragraph("bob", "Dear Sir,")])
    snap = snap_factory()
    await drain(snap, elog)
    assert pending(snap) == 0.0  # listed from start
    await append(elog, LETTERS, [s.created(), hello, bang])  # "!!!" waits for " world"
    await fold_new(snap, elog)
    assert snap.metrics.registry.get_sample_value("snapshotter_cached_letters") == 2.0
    assert pending(snap) == 1.0
    port = snap.metrics.serve("127.0.0.1", 0)  # as scraped: read in the metrics thread
    try:
        assert (await scrape(port))[(PENDING, ())] == 1.0
    finally:
        snap.metrics.close()
    await append(elog, LETTERS, [world])  # what it waited for
    await fold_new(snap, elog)
    assert pending(snap) == 0.0
    assert snap.folder.letters["L-gap"].doc.snapshot().content == "hello world!!!"


async def test_a_state_loaded_with_pending_parts_counts_once_saved_or_updated(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter]
) -> None:
    s, (hello, bang, world) = out_of_order("L-saved")
    # A version saves the letter's state (nothing for a restart to fold again), with "!!!".
    await append(elog, LETTERS, [s.created(), hello, bang, s.save("alice", "v1")])
    await drain(snap_factory(), elog)
    restarted = snap_factory()
    await restarted.resume()
    assert not restarted.folder.letters  # nothing cached
    assert pending(restarted) == 0.0
    # A second version loads the state and saves it again, no update: the save looks at it.
    await append(elog, LETTERS, [s.save("alice", "v2")])
    await fold_new(restarted, elog)
    assert pending(restarted) == 1.0
    await append(elog, LETTERS, [s.type_text("alice", 0, 14, "?")])  # waits for it too
    await fold_new(restarted, elog)
    assert pending(restarted) == 1.0
    await append(elog, LETTERS, [world])
    await fold_new(restarted, elog)
    assert pending(restarted) == 0.0
    assert restarted.folder.letters["L-saved"].doc.snapshot().content == "hello world!!!?"
