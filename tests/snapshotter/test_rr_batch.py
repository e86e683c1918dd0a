"""A forged struct inside bob's 'X', logged just before it: in one batch the projector applied
it (pending), then refused bob's good update, which made it integrate and fail ('Dear Sir'; in
two batches 'Dear SirX'), and verify reported the snapshotter's versions as differing. Now the
forged record is what is left out, wherever batches end."""

from collections.abc import Callable
from typing import Any

import asyncpg
from pycrdt import Doc

from eventlog.embedded import EmbeddedLog
from projector.document import DocUpdate, fold_document
from snapshotter.consumer import Snapshotter
from snapshotter.document import LetterDocument
from tests.snapshotter.forged import FIELD, forged, saved_version, typed, typing
from tools import verify
from tools.sources import Sources


def test_the_projector_refuses_the_forged_update_not_the_good_one_after_it() -> None:
    hello, _ = typed(0)
    (bob,) = typing(2, [hello], "X")
    start = fold_document(Doc().get_update(), [DocUpdate(0, "alice", 0, hello)], FIELD).state
    for batches in ([[1, 2]], [[1], [2]]):
        state, refused = start, list[int]()
        for batch in batches:
            data = {1: forged(2, 0), 2: bob}
            result = fold_document(state, [DocUpdate(i, "u", 0, data[i]) for i in batch], FIELD)
            state, refused = result.state, refused + [offset for offset, _ in result.refused]
        content = LetterDocument(FIELD, state).snapshot().content
        assert (content, refused) == ("Dear SirX", [1] if len(batches) == 1 else []), batches


async def test_forged_then_good_in_one_batch(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], make_settings: Any, db: str
) -> None:
    letter = "L-rr2"
    hello, _ = typed(0)
    (bob,) = typing(2, [hello], "X")
    edits = [(hello, "alice"), (forged(2, 0), "mallory"), (bob, "bob")]
    content = await saved_version(elog, snap_factory(), db, letter, edits)
    pool = await asyncpg.create_pool(db, min_size=1, max_size=2)
    try:
        findings = await verify.verify_letter(Sources(make_settings(), elog, pg=pool), letter)
    finally:
        await pool.close()
    assert content == "Dear SirX"
    assert [f.what for f in findings if not f.ok] == []
