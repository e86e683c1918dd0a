"""Child process for the crash tests: appends forever and prints every offset it got back.

Usage: python -m tests.eventlog.crash_writer DIR ROUND [CHECKPOINT_INTERVAL_S]
Each acknowledged append prints `partition offset value` (one line, flushed) only after
`append` returned, so every printed line is a durability promise the parent checks after kill -9.
"""

import asyncio
import sys
from pathlib import Path

from eventlog import Entry
from eventlog.embedded import EmbeddedLog

TOPIC = "letters"
PARTITIONS = 4
WRITERS = 8


async def writer(log: EmbeddedLog, round_: str, task: int) -> None:
    key = f"letter-{task}".encode()
    partition = log.partition_for(TOPIC, key)
    for i in range(10**9):
        values = [f"{round_}-{task}-{i}-{j}".encode() for j in range(1 + i % 3)]
        offsets = await log.append(TOPIC, key, [Entry(v, [("n", b"%d" % i)]) for v in values])
        lines = (f"{partition} {o} {v.decode()}" for o, v in zip(offsets, values, strict=True))
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


async def main(path: Path, round_: str, checkpoint_s: float) -> None:
    log = EmbeddedLog(path, PARTITIONS, {TOPIC: None}, checkpoint_interval_s=checkpoint_s)
    await log.start()
    print("ready", flush=True)
    await asyncio.gather(*(writer(log, round_, t) for t in range(WRITERS)))


if __name__ == "__main__":
    checkpoint = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], checkpoint))
