"""A real embedded log that counts the records its reads return."""

from eventlog.embedded import EmbeddedLog
from eventlog.records import Record


class CountingLog(EmbeddedLog):
    """The embedded log, counting the records its reads return."""

    records = 0

    async def read(
        self, topic: str, partition: int, offset: int, limit: int = 1000
    ) -> list[Record]:
        batch = await super().read(topic, partition, offset, limit)
        self.records += len(batch)
        return batch
