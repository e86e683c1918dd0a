"""A collab stack whose projector's live keys expire within seconds: a letter goes cold (its
comments and state leave Redis) and comes back."""

from contextlib import AbstractAsyncContextManager
from pathlib import Path

from tests.collab import stack
from tests.collab.conftest import Collab
from tests.projector.support import OPTIONS
from tests.support import eventually

TTL_S = 4  # the projector's live keys (s); each step of a setup refreshes them
TEXT = "Dear Sir,\nWe demand 5000 EUR within 14 days.\nRegards"


def cold_collab(
    tmp_path: Path, redis_db: str, dsn: str | None
) -> AbstractAsyncContextManager[Collab]:
    options = OPTIONS.model_copy(update={"ttl_s": TTL_S})
    return stack.services(tmp_path, redis_db, dsn, options, partitions=2, max_comments_per_letter=5)


async def until_expired(c: Collab, lid: str) -> None:
    """Until the letter's live keys are gone (a clock, not an event: polled)."""

    async def gone() -> bool:
        return not await c.redis.exists(f"comments:{lid}", f"ydoc:{lid}:offset", f"ydoc:{lid}")

    await eventually(gone, timeout=TTL_S + 10)
