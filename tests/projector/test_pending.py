"""An update that reaches the log before the one it depends on (another producer, a restored or
hand-repaired log) is pending until that one arrives; a batch boundary in between must not lose
it (yrs' `get_update()` leaves pending updates out of the saved state)."""

import redis.asyncio as aioredis

from eventlog import Log
from projector.fold import Item, fold_letter
from projector.state import LetterState
from schemas import Topic
from schemas.settings import Settings
from tests.projector.pending_updates import FULL, out_of_order, stored_text
from tests.projector.support import Editor, append, caught_up, created, doc_text, projector


def batch(ed: Editor, start: int, *updates: bytes) -> list[Item]:
    return [Item(Topic.LETTERS, start + i, ed.event(u)) for i, u in enumerate(updates)]


def test_a_batch_boundary_between_an_update_and_its_dependency_keeps_both() -> None:
    ed, (hello, bang, world) = out_of_order("L")
    state = LetterState("L")
    fold_letter(state, batch(ed, 0, hello, bang), "default")
    assert doc_text(state.doc) == "<paragraph>hello</paragraph>"  # "!!!" is pending
    fold_letter(state, batch(ed, 2, world), "default")
    assert doc_text(state.doc) == FULL


def test_a_pending_update_survives_more_batches_before_its_dependency() -> None:
    ed, (hello, bang, world) = out_of_order("L")
    state = LetterState("L")
    fold_letter(state, batch(ed, 0, hello), "default")
    fold_letter(state, batch(ed, 1, bang), "default")
    fold_letter(state, batch(ed, 2, ed.paragraph("p2")), "default")
    fold_letter(state, batch(ed, 3, world), "default")
    assert doc_text(state.doc) == FULL + "<paragraph>p2</paragraph>"


async def test_the_projector_keeps_an_update_logged_before_its_dependency(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    ed, (hello, bang, world) = out_of_order("L-ooo")
    async with projector(settings, log):
        await append(log, settings, [created("L-ooo"), ed.event(hello), ed.event(bang)])
        await caught_up(log, settings, client)  # a batch ends between "!!!" and " world"
        assert await stored_text(client, "L-ooo") == "<paragraph>hello</paragraph>"
        await append(log, settings, [ed.event(world)])
        await caught_up(log, settings, client)
    assert await stored_text(client, "L-ooo") == FULL


def test_a_fold_says_whether_its_state_carries_a_pending_update() -> None:
    """Known clean, the next fold does not re-encode the state to look for pending parts."""
    ed, (hello, bang, world) = out_of_order("L")
    state = LetterState("L")
    fold_letter(state, batch(ed, 0, hello), "default")
    assert state.doc_clean
    fold_letter(state, batch(ed, 1, bang), "default")
    assert not state.doc_clean  # "!!!" waits for " world"
    stored = LetterState.from_stored(state.doc, state.rest_json())
    fold_letter(stored, batch(ed, 2, world), "default")
    assert stored.doc_clean and doc_text(stored.doc) == FULL
