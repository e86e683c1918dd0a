"""Token buckets: per connection (frames, awareness, requests for state) and per user (bytes of
document updates and their item splits' cost, shared by all of a user's connections on this
instance; REST requests).

The per-user budget exists because the letters topic is kept forever. A letter takes at most
`max_document_bytes` of updates while it is loaded (deletions are not subtracted), but an
unloaded letter reloads compacted, and an editor may open up to 50 letters at once and create
more: by arithmetic ~8 MB/s of updates that cancel out (insert, then delete) from one editor,
until the disk is full. A budget per connection would not hold, as every reconnect would start
with a full one: a user's bucket outlives their last connection for as long as it takes to
refill. The split-cost budget is kept the same way, for the event loop's sake: each update may
cost pycrdt up to `Limits.max_split_cost` of splits (tens of ms), and one user could send such
updates at the frame rate (docs/security.md, "Item splits").

A user is a firm's user (`user_key`): a token's `sub` is unique only within its firm's identity
provider, so two firms' users may share one, and must not share a budget or a connection cap.
"""

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gateway.auth import Claims

UserKey = tuple[str, str]  # (firm_id, sub)
Clock = Callable[[], float]  # seconds; time.monotonic but in tests


def user_key(claims: Claims) -> UserKey:
    """Who the caller is for per-user budgets and caps: the firm's user, not the `sub` alone."""
    return claims.firm_id, claims.sub


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, float(burst), clock
        self.tokens, self.at = float(burst), clock()

    def take(self, cost: float = 1.0) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def reserve(self, cost: float = 1.0) -> float:
        """Take `cost` now, into debt if need be: the seconds until the debt is paid (0: none)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate) - cost
        self.at = now
        return max(0.0, -self.tokens / self.rate)

    def refund(self, cost: float) -> None:
        """Give back `cost` taken for what was refused after all (never above the burst)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate + cost)
        self.at = now

    def wait_s(self, cost: float = 1.0) -> float:
        """Seconds until `cost` could be taken (0 if it could be now)."""
        tokens = min(self.burst, self.tokens + (self.clock() - self.at) * self.rate)
        return max(0.0, (cost - tokens) / self.rate)


class KeyedBuckets:
    """A bucket per user, forgotten once it would be full again (a user who comes back later
    starts with the burst it would have had anyway).

    What a `cachetools.TTLCache(keys, ttl)` did with a take-out and a put-back per use, at a
    third of a charge's cost (the split-cost charge of every Y.Map set: 3.6-5.4 % of the
    gateway's samples at 300 connections): every put re-arms the same ttl, so the order of the
    puts is that of the expiries, and one OrderedDict holds both
    (tests/gateway/test_keyed_buckets.py holds it to the TTLCache)."""

    def __init__(
        self, rate: float, burst: float, keys: int = 100_000, clock: Clock = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._ttl = burst / rate + 1.0
        self._keys = keys
        # key -> (expiry, bucket), oldest put first
        self._buckets: OrderedDict[UserKey, tuple[float, TokenBucket]] = OrderedDict()

    def take_out(self, key: UserKey) -> TokenBucket:
        """The key's bucket (a full one if it has none), no longer kept here."""
        kept = self._buckets.pop(key, None)
        if kept is not None and self.clock() < kept[0]:
            return kept[1]
        return TokenBucket(self.rate, self.burst, self.clock)

    def put_back(self, key: UserKey, bucket: TokenBucket) -> None:
        """Kept until it would have refilled."""
        self._buckets.pop(key, None)
        self._put(key, bucket, self.clock())

    def _put(self, key: UserKey, bucket: TokenBucket, now: float) -> None:
        buckets = self._buckets  # without `key`
        while buckets:  # the expired first (the oldest puts), then the oldest over the count
            oldest, (expires, _bucket) = next(iter(buckets.items()))
            if now < expires and len(buckets) < self._keys:
                break
            del buckets[oldest]
        buckets[key] = (now + self._ttl, bucket)

    def _rearmed(self, key: UserKey) -> TokenBucket:
        """`take_out` then `put_back` (re-armed: it expires only once it has refilled), in one."""
        now = self.clock()
        kept = self._buckets.pop(key, None)
        if kept is not None and now < kept[0]:
            bucket = kept[1]
        else:
            bucket = TokenBucket(self.rate, self.burst, self.clock)
        self._put(key, bucket, now)
        return bucket

    def admit(self, key: UserKey, cost: float = 1.0) -> float | None:
        """None if `key` may go on (its cost taken), else the seconds until it may."""
        bucket = self._rearmed(key)
        if bucket.take(cost):
            return None
        return (cost - bucket.tokens) / self.rate

    def charge(self, key: UserKey, cost: float) -> float | None:
        """As `admit`, but a full bucket takes a cost above the burst, into debt, rather than
        refusing it for ever. (A bucket in debt may be forgotten before it is paid: only with a
        burst below the largest cost, which the defaults never have.)"""
        bucket = self._rearmed(key)
        wait = bucket.wait_s(min(cost, bucket.burst))
        if wait > 0:
            return wait
        bucket.reserve(cost)
        return None

    def refund(self, key: UserKey, cost: float) -> None:
        """Give back `cost` charged for what was refused after all."""
        self._rearmed(key).refund(cost)


class UserBuckets:
    """A bucket per user with connections here, and those of users who left until refilled.

    A connection holds its user's bucket while it is open (`held`), so an update costs one
    `TokenBucket.take`, not a lookup."""

    def __init__(self, rate: float, burst: float, parked: int = 100_000) -> None:
        self._live: dict[UserKey, tuple[TokenBucket, int]] = {}  # user -> (bucket, connections)
        self._parked = KeyedBuckets(rate, burst, parked)

    @contextmanager
    def held(self, user: UserKey) -> Iterator[TokenBucket]:
        bucket, holders = self._live.get(user) or (None, 0)
        if bucket is None:
            bucket = self._parked.take_out(user)
        self._live[user] = (bucket, holders + 1)
        try:
            yield bucket
        finally:
            bucket, holders = self._live[user]
            if holders > 1:
                self._live[user] = (bucket, holders - 1)
            else:
                del self._live[user]
                self._parked.put_back(user, bucket)
