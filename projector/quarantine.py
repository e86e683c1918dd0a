"""Poison records that crash the fold: found, retried a few times, then quarantined.

`fold` skips the bad input it understands (undecodable records, updates pycrdt refuses with an
error). Anything else a letter's batch raises, pyo3's PanicException (a BaseException) included,
would end the process and, on restart, crash on the same record again. Instead the letter is
folded again from its state before the batch, one record at a time on a copy, each record tried
`MAX_ATTEMPTS` times; a record that still fails is skipped and recorded in the Redis hash
`projector:quarantine` (field `topic/partition/offset` -> JSON; idempotent) and counted in
`projector_poison_records`, so the partition goes on.
"""

import copy
import logging
from collections.abc import Sequence

from projector.fold import Item, Outcome, fold_letter
from projector.state import LetterState
from schemas import Topic
from schemas.quarantine import MAX_ATTEMPTS, PASSTHROUGH, QUARANTINE_KEY, QuarantinedRecord

__all__ = ["MAX_ATTEMPTS", "PASSTHROUGH", "QUARANTINE_KEY", "isolate"]
logger = logging.getLogger(__name__)


def isolate(
    state: LetterState, items: Sequence[Item], doc_field: str, topic_of: dict[Topic, str],
    partition: int,
) -> tuple[LetterState, Outcome, list[QuarantinedRecord]]:  # fmt: skip
    """Fold `items` into `state` one at a time; the new state, outcome and quarantined ones."""
    outcome, quarantined = Outcome(), []
    for item in items:
        error = ""
        for _ in range(MAX_ATTEMPTS):
            trial = copy.deepcopy(state)
            try:
                one = fold_letter(trial, [item], doc_field)
            except PASSTHROUGH:
                raise
            except BaseException as exc:  # pycrdt panics derive from BaseException
                error = repr(exc)[:500]
                continue
            state = trial
            outcome.folded.update(one.folded)
            outcome.poison += one.poison
            break
        else:
            entry = QuarantinedRecord(
                topic_of[item.topic], partition, item.offset, state.letter_id,
                item.event.type, error, MAX_ATTEMPTS,
            )  # fmt: skip
            logger.error("quarantined record %s: %s", entry.position, error)
            quarantined.append(entry)
            _skip(state, item)
    return state, outcome, quarantined


def _skip(state: LetterState, item: Item) -> None:
    if item.topic is Topic.LETTERS:
        state.letters_offset = max(state.letters_offset, item.offset + 1)
    else:
        state.presence_offset = max(state.presence_offset, item.offset + 1)
