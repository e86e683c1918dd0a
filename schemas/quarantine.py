"""A log record a consumer skipped because its fold kept failing (issue 9: poison records).

The projector keeps them in the Redis hash `projector:quarantine` (field `topic/partition/offset`
-> `to_json()`), the snapshotter in its `quarantine` table; `steno-collab verify` lists both.
"""

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

QUARANTINE_KEY = "projector:quarantine"
MAX_ATTEMPTS = 3  # folds of one record before it is skipped
# Never caught while a record is folded: stopping the process or the task must still work.
PASSTHROUGH = (asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit)


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    topic: str
    partition: int
    offset: int
    letter_id: str
    event_type: str
    error: str
    attempts: int

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    def to_json(self) -> str:
        """The projector's hash value: the fields plus when it was quarantined (ms)."""
        data = {name: getattr(self, name) for name in self.__slots__}
        return json.dumps({**data, "at": int(time.time() * 1000)}, separators=(",", ":"))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "QuarantinedRecord":
        """From `to_json()`'s object or a `quarantine` row (extra keys are ignored)."""
        return cls(
            str(data["topic"]), int(data["partition"]), int(data["offset"]),
            str(data["letter_id"]), str(data["event_type"]), str(data["error"]),
            int(data["attempts"]),
        )  # fmt: skip
