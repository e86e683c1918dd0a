"""KeyedBuckets keeps, forgets and evicts users' buckets as the cachetools.TTLCache it replaced
did (gateway/live/buckets.py; the OrderedDict is ~3 times cheaper per charge): the same
answers to every call, the same buckets kept (and no expired one left behind a put), under
random calls, clock steps onto and past each expiry (exactly onto it: the examples), and a key
count small enough to evict."""

from __future__ import annotations

from typing import Any

from cachetools import Cache, TTLCache
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.live.buckets import Clock, KeyedBuckets, TokenBucket, UserKey

RATE, BURST = 2.0, 4.0  # ttl 3 s
KEYS = [("f", "a"), ("f", "b"), ("g", "a"), ("f", "c"), ("f", "d")]


class TTLKeyed:
    """KeyedBuckets as it was (HEAD 031ded0): a TTLCache, a take-out and a put-back per use."""

    def __init__(self, rate: float, burst: float, keys: int, clock: Clock) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: TTLCache[UserKey, TokenBucket] = TTLCache(
            keys, burst / rate + 1.0, timer=clock
        )

    def take_out(self, key: UserKey) -> TokenBucket:
        return self._buckets.pop(key, None) or TokenBucket(self.rate, self.burst, self.clock)

    def put_back(self, key: UserKey, bucket: TokenBucket) -> None:
        self._buckets[key] = bucket

    def admit(self, key: UserKey, cost: float = 1.0) -> float | None:
        bucket = self.take_out(key)
        self.put_back(key, bucket)
        if bucket.take(cost):
            return None
        return (cost - bucket.tokens) / self.rate

    def charge(self, key: UserKey, cost: float) -> float | None:
        bucket = self.take_out(key)
        self.put_back(key, bucket)
        wait = bucket.wait_s(min(cost, bucket.burst))
        if wait > 0:
            return wait
        bucket.reserve(cost)
        return None

    def kept(self) -> dict[UserKey, tuple[float, float]]:
        kept = self._buckets  # read without the LRU touch of TTLCache.__getitem__
        return {k: (b.tokens, b.at) for k in kept for b in [Cache.__getitem__(kept, k)]}


class Clock_:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _kept(buckets: KeyedBuckets) -> dict[UserKey, tuple[float, float]]:
    now = buckets.clock()
    return {k: (b.tokens, b.at) for k, (expires, b) in buckets._buckets.items() if now < expires}


KEY = st.sampled_from(KEYS)
COST = st.sampled_from([0.5, 1.0, 3.0, 4.0, 9.0])
STEP = st.sampled_from([0.0, 0.25, 1.0, 2.0, 3.0, 3.0 + 1e-9, 2.999999, 7.0])
CALL = st.one_of(
    st.tuples(st.just("admit"), KEY, COST),
    st.tuples(st.just("charge"), KEY, COST),
    st.tuples(st.just("take_out"), KEY, st.none()),
    st.tuples(st.just("put_back"), KEY, st.none()),
    st.tuples(st.just("tick"), st.none(), STEP),
)


def _bucket_state(bucket: TokenBucket | None) -> tuple[float, float] | None:
    return None if bucket is None else (bucket.tokens, bucket.at)


ONTO_EXPIRY = [("tick", None, 3.0)]  # the ttl after a put: burst / rate + 1


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 4), st.lists(CALL, max_size=60))
@example(1, [("admit", KEYS[0], 3.0), *ONTO_EXPIRY, ("take_out", KEYS[0], None)])
@example(1, [("charge", KEYS[0], 9.0), *ONTO_EXPIRY, ("charge", KEYS[0], 1.0)])
def test_as_the_ttl_cache(keys: int, calls: list[tuple[str, Any, Any]]) -> None:
    clock = Clock_()
    new = KeyedBuckets(RATE, BURST, keys, clock=clock)
    old = TTLKeyed(RATE, BURST, keys, clock)
    out_new: dict[UserKey, TokenBucket] = {}  # taken out, to be put back
    out_old: dict[UserKey, TokenBucket] = {}
    for name, key, arg in calls:
        if name == "tick":
            clock.now += arg
            continue
        if name == "take_out":
            out_new[key], out_old[key] = new.take_out(key), old.take_out(key)
            got: Any = _bucket_state(out_new[key])
            want: Any = _bucket_state(out_old[key])
        elif name == "put_back":  # what was taken out, else a fresh bucket (a new user's)
            b_new = out_new.pop(key, None) or TokenBucket(RATE, BURST, clock)
            b_old = out_old.pop(key, None) or TokenBucket(RATE, BURST, clock)
            new.put_back(key, b_new)
            old.put_back(key, b_old)
            got = want = None
        else:
            got, want = getattr(new, name)(key, arg), getattr(old, name)(key, arg)
        assert got == want, (name, key, arg)
        assert _kept(new) == old.kept()
        if name != "take_out":  # each put sweeps what has expired
            assert len(new._buckets) == len(_kept(new))
