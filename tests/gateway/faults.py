"""Fault injection around the REAL log: reads or appends held at a gate; reads or appends that
fail.

Everything else is delegated to the wrapped log unchanged (no fake storage anywhere).
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from eventlog.errors import LogUnavailableError
from eventlog.factory import open_log
from eventlog.records import Entry, Log
from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway


class FaultyLog:
    def __init__(self, inner: Log) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.gate.set()
        self.broken = False
        self.waiting = 0  # appends held at the gate
        self.read_gate = asyncio.Event()
        self.read_gate.set()
        self.reads_waiting = 0
        self.reads_broken = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def read(self, topic: str, partition: int, offset: int, limit: int = 1000) -> Any:
        if not self.read_gate.is_set():
            self.reads_waiting += 1
            try:
                await self.read_gate.wait()
            finally:
                self.reads_waiting -= 1
        if self.reads_broken:
            raise LogUnavailableError("injected: the log cannot be read")
        return await self.inner.read(topic, partition, offset, limit)

    async def _gated(self) -> None:
        if not self.gate.is_set():
            self.waiting += 1
            try:
                await self.gate.wait()
            finally:
                self.waiting -= 1
        if self.broken:
            raise LogUnavailableError("injected: the log is down")

    async def append(self, topic: str, key: bytes, entries: Sequence[Entry]) -> list[int]:
        await self._gated()
        return await self.inner.append(topic, key, entries)

    async def append_batch(
        self, topic: str, batches: Sequence[tuple[bytes, Sequence[Entry]]]
    ) -> list[list[int] | Exception]:
        await self._gated()
        return await self.inner.append_batch(topic, batches)


@asynccontextmanager
async def faulty_log(settings: Settings) -> AsyncIterator[FaultyLog]:
    """The real log of `settings`, started, behind a FaultyLog (`.inner`). At the end its held
    appends are let through and fail no more (a test that failed holding them), then the log is
    closed: open it before what appends to it."""
    real = open_log(settings)
    await real.start()
    log = FaultyLog(real)
    try:
        yield log
    finally:
        log.gate.set()
        log.broken = False
        await real.close()


@asynccontextmanager
async def faulty_gateway(settings: Settings) -> AsyncIterator[tuple[Running, FaultyLog]]:
    """A running gateway whose log is a FaultyLog around a real one (closed after the gateway)."""
    async with faulty_log(settings) as log, running_gateway(settings, log=log) as running:
        yield running, log
