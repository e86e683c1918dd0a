"""The snapshotter's Folder without a log: records numbered per partition as a log numbers
them, and a saved state loaded back as a restart loads it."""

import json
from collections.abc import Sequence

from eventlog.records import Record
from schemas.envelope import Event, encode_event
from snapshotter.fold import Folder, StateRow
from snapshotter.state import LetterState
from tests.snapshotter.conftest import LETTERS


def restored(folder: Folder, row: StateRow, unsaved_from: int | None = None) -> LetterState:
    """The state `folder` saved (`row`), loaded as a restart loads it."""
    return LetterState.restore(
        row.letter_id,
        row.topic,
        row.partition,
        row.ydoc_state,
        json.loads(row.state_json),
        field_name=folder.field,
        window_ms=folder.window_ms,
        unsaved_from=unsaved_from,
    )


class Log:
    """Numbers records per partition, as a log would."""

    def __init__(self) -> None:
        self.ends: dict[int, int] = {}

    def records(self, events: Sequence[Event], partition: int = 0) -> list[Record]:
        out = []
        for event in events:
            key, value, headers = encode_event(event)
            offset = self.ends.get(partition, 0)
            self.ends[partition] = offset + 1
            out.append(Record(LETTERS, partition, offset, 1_700_000_000_000, key, value, headers))
        return out
