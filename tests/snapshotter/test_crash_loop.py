"""A snapshotter that dies before any save of its own (no orderly stop, no save by the policy
or by age) still moves a caught-up letter's saved state on: the next instance folds again only
what came after it, not everything since the letter's last save before the crash loop."""

from collections.abc import Callable

from eventlog.embedded import EmbeddedLog
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.store import Store
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.saved_states import RARELY, committed, feed, lagging, state_rows
from tests.snapshotter.scripts import LetterScript, append


async def test_each_restart_of_a_crash_loop_folds_again_only_the_records_since_the_last(
    elog: EmbeddedLog, make_settings: Callable[..., Settings], store: Store, db: str
) -> None:
    s = LetterScript("L-crash-loop")
    partition = elog.partition_for(LETTERS, s.letter_id.encode())
    events = [s.created(), s.joined("alice", "c1"), s.paragraph("alice", "Dear Sir,")]
    events += [s.type_text("alice", 0, 9, f" w{i}") for i in range(10)]
    await append(elog, LETTERS, events)
    await feed(Snapshotter(make_settings(**RARELY), elog, store), elog, limit=1000)
    assert (await state_rows(db))[s.letter_id][1]["covers"] == 1  # saved at creation only
    assert await lagging(db) == {s.letter_id: 1}
    folded_again = []
    for i in range(3):  # each instance folds one batch, then is killed
        end = (await committed(store))[partition]
        await append(elog, LETTERS, [s.type_text("alice", 0, 0, f"{i}")])
        restarted = Snapshotter(make_settings(**RARELY), elog, store)
        await feed(restarted, elog, limit=1000)
        folded_again.append(restarted.folder.stats["catch-up folded"])
        # Saved as caught up, with the commit of the batch that loaded it: lagging from the
        # batch's record only.
        assert (await state_rows(db))[s.letter_id][1]["covers"] == end
        assert await lagging(db) == {s.letter_id: end}
    assert folded_again == [12, 1, 1]
    content = restarted.folder.letters[s.letter_id].doc.snapshot().content
    assert content == "210Dear Sir," + "".join(f" w{i}" for i in reversed(range(10)))


async def test_a_letter_caught_up_for_a_record_it_skips_is_saved_current(
    elog: EmbeddedLog, make_settings: Callable[..., Settings], store: Store, db: str
) -> None:
    s = LetterScript("L-caught-up-duplicate")
    edit = s.paragraph("alice", "one")
    await append(elog, LETTERS, [s.created(), edit, s.type_text("alice", 0, 3, " two")])
    await feed(Snapshotter(make_settings(**RARELY), elog, store), elog, limit=1000)
    assert await lagging(db) == {s.letter_id: 1}
    await append(elog, LETTERS, [edit])  # an append retry: a duplicate, folds nothing
    restarted = Snapshotter(make_settings(**RARELY), elog, store)
    await feed(restarted, elog, limit=1000)
    assert restarted.folder.stats["duplicate"] == 1
    assert (await state_rows(db))[s.letter_id][1]["covers"] == 3
    assert await lagging(db) == {}
