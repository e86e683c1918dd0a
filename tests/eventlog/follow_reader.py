"""Child process: follows an embedded log read-only and prints each record's value, flushed.

Usage: python -m tests.eventlog.follow_reader DIR TOPIC PARTITIONS
"""

import asyncio
import sys
from pathlib import Path

from eventlog.embedded import EmbeddedLog


async def main(path: Path, topic: str, partitions: int) -> None:
    log = EmbeddedLog(path, partitions, readonly=True)
    await log.start()
    print("ready", flush=True)
    async for batch in log.follow(topic, dict.fromkeys(range(partitions), 0)):
        for record in batch:
            print(record.value.decode(), flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
