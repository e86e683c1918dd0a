"""After a Redis wipe, every letter reopening at once reads its client-id owners from its log
(gateway/live/ownership.py): at most MAX_SCANS of those reads run at once in a gateway, the
others wait their turn, and each letter still gets its owners. A claim waits for its read no
longer than REDIS_TIMEOUT_S, queued or not (then it is refused). On the real embedded log and
Redis."""

import asyncio
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text

from eventlog import Entry
from eventlog.factory import open_log
from gateway.errors import Refused
from gateway.live import loader, ownership
from gateway.live.loader import Loaded
from gateway.live.ownership import MAX_SCANS, REDIS_TIMEOUT_S, Ownership
from schemas.envelope import encode_event, new_event
from schemas.events import Topic
from schemas.settings import Settings
from tests.support import eventually

LETTERS = 3 * MAX_SCANS
EDITS = 150  # per letter: each read goes through its partition, pages of the log at a time
NEVER_LOGGED = 4_000_000_007  # an id whose first edit is not in the log: every read reads it all


async def _written(log: Any, topic: str, letter: str, user: str) -> int:
    """`user` types EDITS edits into `letter`; their client id."""
    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("text", type=Text)
    for i in range(EDITS):
        text.insert(len(text), f"{i} ")
    entries = []
    for update in updates:
        _, value, headers = encode_event(
            new_event(letter, update, firm="f", user=user, conn="c", type="doc.update")
        )
        entries.append(Entry(value, headers))
    await log.append(topic, letter.encode(), entries)
    return int(doc.client_id)


async def test_at_most_max_scans_read_at_once(tmp_path: Path, redis: Any) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=2)
    topic = settings.topic(Topic.LETTERS)
    log = open_log(settings)
    await log.start()
    letters = [f"L{i}" for i in range(LETTERS)]
    counted = ownership.Scans()  # one gateway's (its Context's)
    owners = [Ownership(letter, redis, counted) for letter in letters]
    try:
        ids = [await _written(log, topic, letter, f"user-{letter}") for letter in letters]
        ends = await log.end_offsets(topic)
        for letter, owned, client in zip(letters, owners, ids, strict=True):
            loaded = Loaded(b"", ends[log.partition_for(topic, letter.encode())])

            def writes(letter: str = letter, loaded: Loaded = loaded) -> Any:
                return loader.writes(settings, log, letter, loaded)

            owned.rebuild(writes, [client, NEVER_LOGGED])
        started = asyncio.get_running_loop().time()
        # Redis has no owners (wiped): each claim of a logged id needs its letter's log read.
        # One whose read was queued past the bound is refused (4503), never claimed.
        claims = await asyncio.gather(
            *(
                owned.resolve([client], "mallory")
                for owned, client in zip(owners, ids, strict=True)
            ),
            return_exceptions=True,
        )
        for claim in claims:
            assert claim is None or (
                isinstance(claim, Refused) and claim.reason == "client_id_owner_unknown"
            ), claim
        # None waited past the bound, however long its read was queued.
        assert asyncio.get_running_loop().time() - started < REDIS_TIMEOUT_S + 1.5

        # Each letter's read ends, queued or not: the log's owner, not the claimant.
        def all_read() -> bool:
            return all(o.foreign("mallory", [c]) == [c] for o, c in zip(owners, ids, strict=True))

        await eventually(all_read, 30)
        for letter, owned, client in zip(letters, owners, ids, strict=True):
            assert owned.foreign(f"user-{letter}", [client]) == []
        await eventually(lambda: counted.running == 0)
        assert counted.most == MAX_SCANS  # the cap was reached, never passed
        found = await redis.hget(f"clientid:{letters[-1]}", str(ids[-1]))
        assert found == f"user-{letters[-1]}".encode()  # written back, the last one's too
    finally:
        for owned in owners:
            await owned.close()
        await log.close()
