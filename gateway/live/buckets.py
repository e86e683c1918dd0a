"""Token buckets: per connection (frames, awareness, requests for state) and per user (bytes of
document updates, shared by all of a user's connections on this instance).

The per-user budget exists because the letters topic is kept forever. A letter takes at most
`max_document_bytes` of updates while it is loaded (deletions are not subtracted), but an
unloaded letter reloads compacted, and an editor may open up to 50 letters at once and create
more: by arithmetic ~8 MB/s of updates that cancel out (insert, then delete) from one editor,
until the disk is full. A budget per connection would not hold, as every reconnect would start
with a full one: a user's bucket outlives their last connection for as long as it takes to
refill.
"""

import time

from cachetools import TTLCache


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self, cost: float = 1.0) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


class UserBuckets:
    """A bucket per user with connections here, and those of users who left until refilled.

    Connections hold their user's bucket (`acquire` when they open, `release` when they close),
    so an update costs one `TokenBucket.take`, not a lookup."""

    def __init__(self, rate: float, burst: float, parked: int = 100_000) -> None:
        self.rate, self.burst = rate, burst
        self._live: dict[str, tuple[TokenBucket, int]] = {}  # user -> (bucket, connections)
        self._parked: TTLCache[str, TokenBucket] = TTLCache(parked, burst / rate + 1.0)

    def acquire(self, user: str) -> TokenBucket:
        bucket, holders = self._live.get(user) or (None, 0)
        if bucket is None:
            bucket = self._parked.pop(user, None) or TokenBucket(self.rate, self.burst)
        self._live[user] = (bucket, holders + 1)
        return bucket

    def release(self, user: str) -> None:
        bucket, holders = self._live[user]
        if holders > 1:
            self._live[user] = (bucket, holders - 1)
        else:
            del self._live[user]
            self._parked[user] = bucket
