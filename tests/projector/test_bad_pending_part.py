"""A record pycrdt decodes but yrs cannot integrate (past the gateway: a restored log,
corruption) is poison, skipped as an undecodable one is: alone, refused; pending in the state
(its parent not there yet), dropped from it once it makes a batch fail. It used to raise out of
the fold: the projector's quarantine then took the batch apart and quarantined the update that
let the bad part in (a good one), the letter's later updates of that client pending for good."""

import json

import redis.asyncio as aioredis

from eventlog import Log
from projector.fold import Item, fold_letter
from projector.state import LetterState
from schemas import Topic
from schemas.settings import Settings
from tests.projector.support import Editor, append, caught_up, created, doc_text, projector
from tests.snapshotter.forged import AUTHOR, FIELD, forged, typed

WANT = "<paragraph>Dear Sir" + "ab" * 28 + "</paragraph>"


def _items(ed: Editor, start: int, updates: list[bytes]) -> list[Item]:
    return [Item(Topic.LETTERS, start + i, ed.event(u)) for i, u in enumerate(updates)]


def test_a_pending_part_that_cannot_apply_is_dropped_not_the_update_it_fails() -> None:
    hello, later = typed()
    ed = Editor("L")
    for batches in ([[u] for u in later], [later]):  # one fold per update, or one for all
        state = LetterState("L")
        fold_letter(state, _items(ed, 0, [hello, forged(AUTHOR, 20)]), FIELD)  # pending
        poison, offset = [], 2
        for updates in batches:
            poison += fold_letter(state, _items(ed, offset, updates), FIELD).poison
            offset += len(updates)
        assert (doc_text(state.doc), poison, state.doc_clean) == (WANT, [], True)


def test_an_update_yrs_cannot_integrate_is_poison_and_the_rest_folds() -> None:
    hello, later = typed(2)
    ed = Editor("L")
    state = LetterState("L")
    outcome = fold_letter(state, _items(ed, 0, [hello, forged(AUTHOR, 3), *later]), FIELD)
    assert [(topic, offset) for topic, offset, _ in outcome.poison] == [(Topic.LETTERS, 1)]
    assert "block parent" in outcome.poison[0][2]
    assert doc_text(state.doc) == "<paragraph>Dear Sirabab</paragraph>"


async def test_the_projector_skips_both_and_quarantines_nothing(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    hello, later = typed()
    ed = Editor("L-forged")
    bad = [ed.event(forged(AUTHOR, 3)), ed.event(forged(AUTHOR, 20))]
    async with projector(settings, log):
        await append(log, settings, [created("L-forged"), ed.event(hello), *bad])
        await caught_up(log, settings, client)  # a batch ends with the part pending
        await append(log, settings, [ed.event(u) for u in later])
        await caught_up(log, settings, client)
    assert doc_text(await client.get("ydoc:L-forged")) == WANT
    assert {
        k: json.loads(v) for k, v in (await client.hgetall("projector:quarantine")).items()
    } == {}
