"""A gateway's vouches for its connections (gateway/live/attendance.py), which the lock sweep
reads: renewed with each beat past their first lapse, held while any of the user's connections
to the letter is open here, dropped at the last one's close; a lapsed member (a dead gateway's)
goes at the next write to its key. Real Redis, a short beat."""

import json

import redis.asyncio as aioredis

from gateway.live.attendance import Attendance, member
from schemas.keys import attending_key
from tests.support import eventually

TTL_S, EVERY_S = 0.4, 0.1


async def test_vouches_follow_the_connections_and_the_beat(redis_db: str) -> None:
    redis = aioredis.Redis.from_url(redis_db)
    attendance = Attendance(redis, "gw-live", TTL_S, EVERY_S)
    key, mine = attending_key("letter-1"), member("carol", "gw-live")
    dead = member("carol", "gw-dead")
    await redis.zadd(key, {dead: 1})  # lapsed long ago
    attendance.start()
    try:
        attendance.joined("letter-1", "carol")
        attendance.joined("letter-1", "carol")  # a second tab
        first = await eventually(lambda: redis.zscore(key, mine))
        assert json.loads(mine) == ["carol", "gw-live"]
        assert await redis.zscore(key, dead) is None  # dropped by the write

        async def renewed_past(score: float) -> bool:
            now = await redis.zscore(key, mine)
            return now is not None and now > score

        await eventually(lambda: renewed_past(first + TTL_S * 1000))  # past its first lapse
        attendance.left("letter-1", "carol")  # one tab left: still vouched for, still renewed
        second = await redis.zscore(key, mine)
        assert second is not None
        await eventually(lambda: renewed_past(second + TTL_S * 1000))
        attendance.left("letter-1", "carol")

        async def dropped() -> bool:
            return await redis.zscore(key, mine) is None

        await eventually(dropped)
    finally:
        await attendance.close()
        await redis.delete(key)
        await redis.aclose()


async def test_without_redis_nothing_is_kept_to_write() -> None:
    attendance = Attendance(None, "gw", TTL_S, EVERY_S)
    attendance.joined("letter-1", "carol")
    attendance.left("letter-1", "carol")
    assert not attendance._dirty and not attendance._counts
