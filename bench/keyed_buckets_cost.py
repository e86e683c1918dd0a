"""What a per-user bucket lookup costs the gateway per update: `KeyedBuckets.charge` (the
split-cost budget, charged by every update that cuts an item: each Y.Map set of the gateway
bench) against the same charge through the cachetools.TTLCache it used before 2026-12-07.

    .venv/bin/python bench/keyed_buckets_cost.py [--users 300] [--rounds 15]

Process CPU per charge, users taken in turn; the two ways alternate round by round (a shared
machine's load falls on both) and the median round of each is printed, in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from cachetools import TTLCache

from gateway.live.buckets import KeyedBuckets, TokenBucket, UserKey
from schemas.settings import Settings


class TTLKeyed:
    """KeyedBuckets.charge as it was: a take-out and a put-back through a TTLCache."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: TTLCache[UserKey, TokenBucket] = TTLCache(100_000, burst / rate + 1.0)

    def charge(self, key: UserKey, cost: float) -> float | None:
        bucket = self._buckets.pop(key, None) or TokenBucket(self.rate, self.burst)
        self._buckets[key] = bucket
        wait = bucket.wait_s(min(cost, bucket.burst))
        if wait > 0:
            return wait
        bucket.reserve(cost)
        return None


def _round(charge: Callable[[UserKey, float], float | None], keys: list[UserKey], n: int) -> float:
    t0 = time.process_time()
    for i in range(n):
        charge(keys[i % len(keys)], 2)
    return (time.process_time() - t0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=30_000)
    args = parser.parse_args()
    s = Settings()
    keys = [("bench-firm", f"u{i}") for i in range(args.users)]
    ways: dict[str, KeyedBuckets | TTLKeyed] = {
        "KeyedBuckets (OrderedDict)": KeyedBuckets(s.split_cost_per_s, s.split_cost_burst),
        "TTLCache take-out, put-back": TTLKeyed(s.split_cost_per_s, s.split_cost_burst),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, way in ways.items():
            times[name].append(_round(way.charge, keys, args.calls))
    for name, samples in times.items():
        print(f"{name}: {statistics.median(samples):.2f} us per charge (median of {args.rounds})")


if __name__ == "__main__":
    main()
