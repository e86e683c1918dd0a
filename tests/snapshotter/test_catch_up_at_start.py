"""Letters a crash left lagging are caught up and saved when the snapshotter takes their
partition, in one read per cacheful of them: not each when next touched, reading the partition
as far as it has grown by then, inside the commit loop."""

from collections.abc import Callable

from eventlog.embedded import EmbeddedLog
from eventlog.records import Entry
from schemas.envelope import encode_event
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.store import Store
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.saved_states import RARELY, committed, feed, lagging, state_rows
from tests.snapshotter.scripts import LetterScript, append


def same_partition(elog: EmbeddedLog, prefix: str, partition: int, count: int) -> list[str]:
    """`count` letter ids whose records go to `partition`."""
    ids = (f"{prefix}-{i}" for i in range(10_000))
    found = [lid for lid in ids if elog.partition_for(LETTERS, lid.encode()) == partition]
    return found[:count]


async def test_a_lagging_letter_is_caught_up_at_start_not_after_the_partition_grew(
    elog: EmbeddedLog, make_settings: Callable[..., Settings], store: Store, db: str
) -> None:
    quiet = LetterScript("L-quiet")
    partition = elog.partition_for(LETTERS, quiet.letter_id.encode())
    busy = LetterScript(same_partition(elog, "L-busy", partition, 1)[0])
    await append(elog, LETTERS, [quiet.created(), quiet.paragraph("alice", "Dear Sir,")])
    await feed(Snapshotter(make_settings(**RARELY), elog, store), elog, limit=1000)
    assert await lagging(db) == {quiet.letter_id: 1}  # saved at creation only
    at_crash = (await committed(store))[partition]

    restarted = Snapshotter(make_settings(**RARELY), elog, store)  # no checkpoint: kill -9
    await restarted.resume()
    assert await lagging(db) == {}  # caught up and saved before any record is folded
    assert (await state_rows(db))[quiet.letter_id][1]["covers"] == at_crash
    # Another letter of the partition is busy for a long while, then the quiet one is typed in.
    events = [busy.created()] + [busy.paragraph("bob", f"p{i}") for i in range(5_000)]
    for first in range(0, len(events), 1000):
        encoded = [encode_event(e) for e in events[first : first + 1000]]
        await elog.append(LETTERS, busy.letter_id.encode(), [Entry(v, h) for _, v, h in encoded])
    await feed(restarted, elog, limit=1000)
    await append(elog, LETTERS, [quiet.type_text("alice", 0, 0, ">")])
    await feed(restarted, elog, limit=1000)

    stats = restarted.folder.stats
    assert stats["catch-up read"] <= at_crash  # not the 5,000 records that came after
    assert stats["catch-up folded"] == 1
    assert restarted.folder.letters[quiet.letter_id].doc.snapshot().content == ">Dear Sir,"


async def test_more_lagging_letters_than_the_cache_holds_are_caught_up_a_cacheful_at_a_time(
    elog: EmbeddedLog, make_settings: Callable[..., Settings], store: Store, db: str
) -> None:
    ids = same_partition(elog, "L-many", 0, 5)
    scripts = [LetterScript(lid) for lid in ids]
    await append(elog, LETTERS, [s.created() for s in scripts])
    await append(elog, LETTERS, [s.paragraph("alice", s.letter_id) for s in scripts])
    await feed(Snapshotter(make_settings(**RARELY), elog, store), elog, limit=1000)
    assert await lagging(db) == {lid: 5 + i for i, lid in enumerate(ids)}

    restarted = Snapshotter(make_settings(**RARELY), elog, store)
    restarted.folder.max_cached = 2
    await restarted.resume()
    assert await lagging(db) == {}
    assert len(restarted.folder.letters) <= 2
    # Groups of two, lagging from the earliest first: reads from 5, 7 and 9 up to 10.
    assert restarted.folder.stats["catch-up read"] == 5 + 3 + 1
    saved = await state_rows(db)
    assert [saved[lid][1]["covers"] for lid in ids] == [6, 7, 8, 9, 10]
    # Loaded again as saved, they hold their paragraph without reading the log.
    again = Snapshotter(make_settings(**RARELY), elog, store)
    await again.resume()
    await append(elog, LETTERS, [s.type_text("bob", 0, 0, ">") for s in scripts])
    await feed(again, elog, limit=1000)
    assert again.folder.stats["catch-up read"] == 0
    contents = [again.folder.letters[lid].doc.snapshot().content for lid in ids]
    assert contents == [f">{lid}" for lid in ids]
