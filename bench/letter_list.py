"""Event-loop time of one page of `GET /v1/letters` for a firm whose letters the gateway
remembers in great number (it remembers every letter it created, looked up or tailed, up to
100,000): the remembered letters' part of the page (`gateway.listing.page` without PostgreSQL,
so only that part is timed), against the former way, which parsed every remembered id's time
on each request.

    .venv/bin/python bench/letter_list.py [--letters 100000] [--rounds 7]

Medians of the rounds, the two ways alternating (docs/performance.md, the letter list line).
"""

import argparse
import asyncio
import statistics
import time

from gateway.listing import Cursor, Remembered, id_ms, page
from schemas.ids import uuid7


def former(known: list[tuple[str, str]], limit: int) -> list[tuple[Cursor, str, str]]:
    """What a page did before: every remembered letter's key worked out, then sorted."""
    keyed = [(Cursor(id_ms(letter_id), letter_id), letter_id, title) for letter_id, title in known]
    return sorted(keyed, reverse=True)[:limit]


async def rounds(
    remembered: Remembered, known: list[tuple[str, str]], count: int
) -> tuple[list[float], list[float]]:
    now_s, before_s = [], []
    for _ in range(count):
        t = time.perf_counter()
        found, _ = await page(None, "firm", remembered, 100, None)
        now_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        old = former(known, 100)
        before_s.append(time.perf_counter() - t)
        assert [row[1] for row in found] == [row[1] for row in old]  # the same page
    return now_s, before_s


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--letters", type=int, default=100_000)
    args.add_argument("--rounds", type=int, default=7)
    opts = args.parse_args()
    known = [(str(uuid7()), f"Letter {n}") for n in range(opts.letters)]
    began = time.perf_counter()
    remembered = Remembered(known)
    per_add_us = (time.perf_counter() - began) / opts.letters * 1e6
    now_s, before_s = asyncio.run(rounds(remembered, known, opts.rounds))
    now, before = statistics.median(now_s), statistics.median(before_s)
    print(
        f"{opts.letters:,} remembered letters, a page of 100: before {before * 1e3:.1f} ms,"
        f" now {now * 1e3:.3f} ms ({before / now:.0f}x); remembering one {per_add_us:.1f} us"
    )


if __name__ == "__main__":
    main()
