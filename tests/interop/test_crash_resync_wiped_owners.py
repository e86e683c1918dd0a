"""tests/interop/test_crash_resync.py's kill -9 with Redis wiped before it (FLUSHALL: the operator
rebuilds Redis from the log): the Yjs client-id owners it held are read back from the log
(gateway/live/ownership.py), so Bob's resync of Alice's unlogged edit still gets 1013 instead of
being logged under his name, and Alice is not locked out with 4403."""

import pytest
import redis.asyncio as aioredis

from gateway.errors import TRY_AGAIN_LATER
from tests.interop.crash_rig import (
    Rig,
    check_log,
    first_refusal,
    never_locked_out,
    two_editors,
    until_logged,
    until_synced,
)

pytestmark = pytest.mark.slow


async def test_owners_wiped_from_redis_before_the_crash_come_from_the_log(
    rig: Rig, redis_db: str
) -> None:
    letter = await rig.create_letter()
    alice, bob = await two_editors(rig, letter)
    redis = aioredis.Redis.from_url(redis_db)
    try:
        await redis.flushdb()  # Redis lost the owners
        rig.kafka.swallow()  # appends hang from now on
        await alice.call("insert", index=10, value="unlogged ")
        await bob.call("waitText", equals="alice bob unlogged ")
        await rig.kill_gateway()
        await alice.call("disconnect")  # so that Bob's resync comes first
        rig.kafka.restore()
        await rig.start_gateway()

        assert await first_refusal(bob) == TRY_AGAIN_LATER  # not taken under his name
        assert await rig.logged_text(letter) == "alice bob "
        await alice.call("reconnect")
        await until_logged(rig, letter, "alice bob unlogged ")
        await until_synced(bob)
        await alice.call("insert", index=19, value="and on")
        await bob.call("waitText", equals="alice bob unlogged and on")
        await until_logged(rig, letter, "alice bob unlogged and on")

        never_locked_out(alice)
        never_locked_out(bob)
        await check_log(rig, letter, {alice.client_id: "alice", bob.client_id: "bob"})
        owners = await redis.hgetall(f"clientid:{letter}")
        assert owners == {
            str(alice.client_id).encode(): b"alice",
            str(bob.client_id).encode(): b"bob",
        }
    finally:
        await redis.aclose()
        await alice.quit()
        await bob.quit()
