"""The quarantined-record contract the projector writes as JSON and verify reads back."""

import json

from schemas.quarantine import QuarantinedRecord


def test_a_quarantined_record_round_trips_through_the_projectors_json() -> None:
    record = QuarantinedRecord("steno.letters", 3, 41, "L1", "doc.update", "Panic('x')", 3)
    stored = json.loads(record.to_json())
    assert stored["at"] > 0  # when it was quarantined, for operators
    assert QuarantinedRecord.from_mapping(stored) == record
    assert record.position == "steno.letters/3/41"  # the Redis hash field


def test_a_quarantine_table_row_reads_as_the_same_record() -> None:
    row = {"topic": "t", "partition": 0, "offset": 2, "letter_id": "L", "event_type": "e",
           "attempts": 3, "error": "boom"}  # fmt: skip
    assert QuarantinedRecord.from_mapping(row) == QuarantinedRecord("t", 0, 2, "L", "e", "boom", 3)
