"""`snapshotter_letters_pending`: cached letters whose document holds pending parts (an update
logged before the one it builds on), each update of which costs the snapshotter a save and a
load of the letter (snapshotter/document.py); 0 again once the missing update arrives."""

from collections.abc import Callable

from eventlog.embedded import EmbeddedLog
from snapshotter.consumer import Snapshotter
from snapshotter.document import LetterDocument
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.scripts import LetterScript, append, drain
from tests.snapshotter.test_metrics import scrape
from tests.snapshotter.test_pending import out_of_order, payload

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


async def test_a_state_loaded_with_pending_parts_counts_from_its_next_update(
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
    await append(elog, LETTERS, [s.type_text("alice", 0, 14, "?")])  # waits for it too
    await fold_new(restarted, elog)
    assert pending(restarted) == 1.0
    await append(elog, LETTERS, [world])
    await fold_new(restarted, elog)
    assert pending(restarted) == 0.0
    assert restarted.folder.letters["L-saved"].doc.snapshot().content == "hello world!!!?"


def test_what_it_counts_holds_through_each_reload_of_a_gapped_document() -> None:
    """While parts are pending each update reloads the document from its saved state: the
    document's `pending` (the gauge's source) says after it what a restart from that state
    finds, whether the update left the gap open or closed it."""
    s, (hello, bang, world) = out_of_order("L")
    query = s.type_text("alice", 0, 14, "?")  # after "!!!": waits for " world" too
    after = s.type_text("alice", 0, 15, ".")
    doc = LetterDocument("default")
    expected = [(hello, False), (bang, True), (query, True), (world, False), (after, False)]
    for update, held in expected:
        doc.apply(payload(update))
        assert doc.pending is held, update
        restarted = LetterDocument("default", doc.state())
        assert restarted.pending is False  # not looked at yet
        restarted.state()  # a save looks
        assert restarted.pending is held, update
        assert doc.pending is held, update  # a save changes nothing
    assert doc.snapshot().content == "hello world!!!?."
