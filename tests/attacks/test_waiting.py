"""Sockets that never finish a request (gateway/api/waiting.py): silent connections, requests
trickled a byte at a time, and a flood of connections meant to use up the process's sockets."""

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway
from tests.support import eventually

Socket = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def gateway_with(tmp_path: Path, **limits: Any) -> AsyncIterator[Running]:
    async with running_gateway(Settings(data_dir=tmp_path / "steno", partitions=1, **limits)) as gw:
        yield gw


@pytest_asyncio.fixture
async def prompt(tmp_path: Path) -> AsyncIterator[Running]:
    async with gateway_with(tmp_path, request_timeout_s=0.5) as gw:
        yield gw


@contextlib.asynccontextmanager
async def sockets(
    gw: Running, count: int, source: str = "127.0.0.1"
) -> AsyncIterator[list[Socket]]:
    opened: list[Socket] = []
    try:
        for _ in range(count):
            opened.append(
                await asyncio.open_connection("127.0.0.1", gw.port, local_addr=(source, 0))
            )
        yield opened
    finally:
        for _, writer in opened:
            writer.close()


async def answer(reader: asyncio.StreamReader) -> bytes:
    """Everything the server writes until it closes (bounded: the old code never closed)."""
    return await asyncio.wait_for(reader.read(), timeout=10)


def refusals(gw: Running, reason: str) -> float:
    metrics = gw.app.state.gateway.ctx.metrics
    return float(metrics.refusals.labels(reason)._value.get())


async def test_a_connection_that_sends_nothing_gets_408(prompt: Running) -> None:
    async with sockets(prompt, 1) as [(reader, _)]:
        assert (await answer(reader)).startswith(b"HTTP/1.1 408 Request Timeout")
    assert refusals(prompt, "request_timeout") == 1
    async with httpx.AsyncClient(base_url=prompt.http) as http:  # the service is unharmed
        assert (await http.get("/healthz")).status_code == 200


async def test_a_request_trickled_a_byte_at_a_time_still_has_its_deadline(prompt: Running) -> None:
    async with sockets(prompt, 1) as [(reader, writer)]:
        # A whole request first: the deadline applies to each request of a kept-alive socket.
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        assert (await reader.readuntil(b'{"status":"ok"}')).startswith(b"HTTP/1.1 200")

        async def trickle() -> None:  # a byte every 50 ms: never idle, never done
            for byte in b"GET /healthz HTTP/1.1\r\nx-slow: " + b"a" * 1000:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.05)

        sender = asyncio.create_task(trickle())
        try:
            assert (await answer(reader)).startswith(b"HTTP/1.1 408")
        finally:
            sender.cancel()
    assert refusals(prompt, "request_timeout") == 1


async def test_a_body_that_does_not_arrive_in_time_gets_408(prompt: Running) -> None:
    async with httpx.AsyncClient(base_url=prompt.http) as http:
        before = (await http.get("/v1/letters", headers=_auth(prompt))).json()
    head = (
        b"POST /v1/letters HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer " + prompt.token().encode() + b"\r\ncontent-length: 200\r\n\r\n"
    )
    async with sockets(prompt, 1) as [(reader, writer)]:
        writer.write(head + b'{"firm_id": "firm-a", "title": "never fin')
        assert (await answer(reader)).startswith(b"HTTP/1.1 408")
    async with httpx.AsyncClient(base_url=prompt.http) as http:
        assert (await http.get("/v1/letters", headers=_auth(prompt))).json() == before


async def test_a_request_head_over_64_kib_gets_431(prompt: Running) -> None:
    """uvicorn collected a header of any length (300 MB: +170 MB of RSS and a core for 30 s)."""
    async with sockets(prompt, 2) as [(header, writer), (url, url_writer)]:
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * (100 << 10))
        url_writer.write(b"GET /healthz?" + b"a" * (100 << 10))
        assert (await answer(header)).startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
        assert (await answer(url)).startswith(b"HTTP/1.1 431")
    assert refusals(prompt, "request_head_too_large") == 2
    async with httpx.AsyncClient(base_url=prompt.http) as http:  # a large, legitimate head
        big = await http.get("/healthz", headers={"cookie": "c" * (48 << 10)})
        assert big.status_code == 200


def _auth(gw: Running) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.token()}"}


@pytest_asyncio.fixture
async def capped(tmp_path: Path) -> AsyncIterator[Running]:
    async with gateway_with(tmp_path, max_open_connections=40) as gw:
        yield gw


async def test_a_flood_of_silent_connections_displaces_only_itself(capped: Running) -> None:
    letter, alice, bob = await capped.two_editors()
    async with sockets(capped, 100) as flood:
        ends = [asyncio.create_task(answer(reader)) for reader, _ in flood]
        # Every newcomer took the place of the oldest silent socket: of the 40 sockets, two are
        # the editors', so at most 38 of the flood are open.
        await eventually(lambda: sum(end.done() for end in ends) >= 100 - 38)
        assert all(end.result().startswith(b"HTTP/1.1 503") for end in ends if end.done())
        # Users still get in, and the editors' sockets were never displaced.
        async with httpx.AsyncClient(base_url=capped.http) as http:
            assert (await http.get("/healthz")).status_code == 200
        carol = await capped.client(letter, user="carol")
        await carol.synced.wait()
        await alice.insert("still here")
        await eventually(lambda: str(bob.text) == "still here")
        await eventually(lambda: str(carol.text) == "still here")
        for end in ends:
            end.cancel()
    assert refusals(capped, "connection_displaced") >= 100 - 40
    for client in (alice, bob, carol):
        await client.close()


async def test_a_flood_from_one_address_leaves_another_addresss_arriving_request(
    capped: Running,
) -> None:
    """At the cap a newcomer displaces its own address's longest-waiting socket first: the
    user's request, still arriving when the flood comes, is not the one to go."""
    async with sockets(capped, 1) as [(reader, writer)]:
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: steno\r\n")  # the head's end to come
        async with sockets(capped, 100, source="127.0.0.2") as flood:
            ends = [asyncio.create_task(answer(reader)) for reader, _ in flood]
            await eventually(lambda: sum(end.done() for end in ends) >= 100 - 39)
            writer.write(b"\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            for end in ends:
                end.cancel()
    assert head.startswith(b"HTTP/1.1 200 OK"), head
    assert refusals(capped, "connection_displaced") >= 100 - 39


@pytest_asyncio.fixture
async def tiny(tmp_path: Path) -> AsyncIterator[Running]:
    async with gateway_with(tmp_path, max_open_connections=2) as gw:
        yield gw


async def test_when_every_socket_is_a_websocket_a_newcomer_gets_503(tiny: Running) -> None:
    letter = await tiny.create_letter()
    alice, bob = [await tiny.client(letter, user=user) for user in ("alice", "bob")]
    await alice.synced.wait()
    await bob.synced.wait()
    async with sockets(tiny, 1) as [(reader, _)]:
        assert (await answer(reader)).startswith(b"HTTP/1.1 503 Service Unavailable")
    assert refusals(tiny, "too_many_connections") == 1
    await alice.insert("unharmed")
    await eventually(lambda: str(bob.text) == "unharmed")
    await alice.close()
    await bob.close()


def test_a_low_open_files_limit_is_said_at_start() -> None:
    """The cap comes from the open-files limit: a container's 1,024 leaves 512 sockets."""
    code = "import logging; logging.basicConfig(); from gateway.api.waiting import *; " + (
        "raise_descriptor_limit(); print(default_max_open())"
    )
    # The shell sets both limits (no preexec_fn: this process has threads).
    command = f'ulimit -n 1024 && exec "{sys.executable}" -c "{code}"'
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "512", done.stderr
    assert "open-files limit (1024) leaves 512 sockets" in done.stderr
