"""A PostgreSQL that hangs (every process of it SIGSTOPped: a frozen host, not a refused
connection) is an outage to the gateway, not a stall: readiness says so within its bound, a
letter nobody holds loads from the log, the list and the auditor routes answer 503, and all
works again once it resumes. On a server of its own: the session's serves the other tests."""

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar, cast

import asyncpg
import httpx
import pytest_asyncio
from fastapi import FastAPI
from pycrdt import XmlFragment

from eventlog.factory import open_log
from eventlog.records import Log
from gateway import listing
from gateway.api.health import READY_TIMEOUT_S, Readiness
from gateway.api.server import server_for
from gateway.auth import mint_token
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.migrate import migrate
from steno_collab import services
from tests.gateway.harness import YClient
from tests.snapshotter.scripts import LetterScript, append
from tests.support import bound_socket, eventually, own_postgres

T = TypeVar("T")
BOUND_S = 10.0  # each ~3.3 s here (the pool gives up after 3 s); the hang was 20 s and more
FIRM = "firm-1"


@contextlib.contextmanager
def frozen(pgdata: Path) -> Iterator[None]:
    """The postmaster and its children stopped, as a hung host's; continued on the way out."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    try:
        os.kill(postmaster, signal.SIGSTOP)  # first: it forks no backend while we list them
        listed = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True)
        pids += map(int, listed.stdout.split())
        for pid in pids[1:]:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@dataclass
class Gateway:
    app: FastAPI
    settings: Settings
    log: Log
    port: int
    pgdata: Path

    async def get(self, path: str, role: str = "editor") -> httpx.Response:
        token = mint_token(self.settings, f"u-{role}", FIRM, role)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=25) as h:
            return await h.get(path, headers={"Authorization": f"Bearer {token}"})

    async def synced_text(self, letter: str) -> str:
        token = mint_token(self.settings, "u-ws", FIRM, "editor")
        url = f"ws://127.0.0.1:{self.port}/v1/letter-{letter}?token={token}"
        client = await YClient.connect(url)
        try:
            await asyncio.wait_for(client.synced.wait(), 25)
            return str(client.doc.get("default", type=XmlFragment))
        finally:
            await client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def gateway(service_tmp: Path, redis_db: str) -> AsyncIterator[Gateway]:
    """`steno-collab gateway`'s wiring (its pool, the auditor routes) on its own PostgreSQL."""
    pg = await own_postgres(service_tmp / "pg")
    dsn = pg.dsn()
    settings = Settings(data_dir=service_tmp / "steno", partitions=1, redis_url=redis_db,
                        database_url=dsn)  # fmt: skip
    await migrate(dsn)
    log = open_log(settings)
    await log.start()
    redis, pool = await services.connect_stores(settings)
    sock = bound_socket()
    port = int(sock.getsockname()[1])
    app = services.gateway_app(settings, log, redis, pool)
    server = server_for(app, settings, "127.0.0.1", port)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started or task.done(), timeout=20)
        assert server.started, "gateway did not start"
        yield Gateway(app, settings, log, port, service_tmp / "pg")
    finally:
        server.should_exit = True
        await task
        sock.close()  # the server closed it, unless it never started
        if redis is not None:
            await redis.aclose()
        await pool.close()
        await log.close()
        await pg.stop()


async def timed(answer: Awaitable[T]) -> tuple[T, float]:
    began = time.monotonic()
    return await answer, time.monotonic() - began


async def test_a_hung_postgresql_is_an_outage_not_a_stall(gateway: Gateway) -> None:
    gw = gateway
    script = LetterScript("L-cold", firm=FIRM)
    # Straight into the log: no instance holds it, Redis and PostgreSQL know nothing of it.
    topic = gw.settings.topic(Topic.LETTERS)
    await append(gw.log, topic, [script.created(), script.paragraph("u", "from the log")])
    assert (await gw.get("/v1/letters")).status_code == 200  # its pooled connection is open

    with frozen(gw.pgdata):
        answers = await asyncio.gather(
            timed(gw.get("/readyz")),
            timed(gw.get("/v1/letters/L-cold")),
            timed(gw.get("/v1/letters")),
            timed(gw.get("/v1/letters/L-cold/versions", role="auditor")),
            timed(gw.synced_text("L-cold")),
        )
        (ready, _), (letter, _), (listed, _), (versions, _), (text, _) = answers
        assert max(took for _, took in answers) < BOUND_S, [took for _, took in answers]
        assert ready.status_code == 503
        assert ready.json()["postgres"].startswith("error: ")
        assert {k: v for k, v in ready.json().items() if k != "postgres"} == {
            "log": "ok",
            "redis": "ok",
        }
        assert letter.status_code == 200, letter.text
        assert "from the log" in text
        assert listed.status_code == 503, listed.text
        assert versions.status_code == 503, versions.text
        assert "PostgreSQL" in versions.json()["detail"]

    async def resumed() -> bool:
        return (await gw.get("/readyz")).status_code == 200

    await eventually(resumed, timeout=20, interval=0.5)
    assert (await gw.get("/v1/letters")).status_code == 200
    # Answering again, and saying the letter is not folded yet (never an empty history).
    late = await gw.get("/v1/letters/L-cold/versions", role="auditor")
    assert late.status_code == 503 and "has not reached this letter" in late.json()["detail"]


async def test_readiness_answers_when_a_clients_cancellation_hangs_too(gateway: Gateway) -> None:
    """A plain asyncpg pool cleans up a cancelled query by asking the frozen server: the
    round answers without waiting for that, and reports the other stores meanwhile."""
    ctx = gateway.app.state.gateway.ctx
    plain = await asyncpg.create_pool(ctx.settings.database_url, min_size=1, max_size=1)
    stores = SimpleNamespace(settings=ctx.settings, log=ctx.log, redis=ctx.redis, pg=plain,
                             verifier=ctx.verifier)  # fmt: skip
    round_: asyncio.Future[dict[str, str]] | None = None
    try:
        with frozen(gateway.pgdata):
            # Waited for without cancelling it: a round stuck in that clean-up would hang here.
            round_ = asyncio.ensure_future(Readiness(cast(Any, stores)).checks())
            await asyncio.wait({round_}, timeout=READY_TIMEOUT_S + 1)
            assert round_.done(), "the round waits on the frozen server"
        assert round_.result() == {"log": "ok", "redis": "ok", "postgres": "error: TimeoutError"}
    finally:
        if round_ is not None:  # resumed: its clean-up ends
            await asyncio.gather(round_, return_exceptions=True)
        await plain.close()


async def test_a_list_whose_server_freezes_as_its_page_goes_out_is_an_outage(
    gateway: Gateway, monkeypatch: Any
) -> None:
    """Frozen after the connection is taken, as the page's statement goes out: 503 within the
    pool's bound, as a server frozen before (a transaction's ROLLBACK would wait a second bound,
    and the terminated connection made a 500)."""
    gw = gateway
    assert (await gw.get("/v1/letters")).status_code == 200
    freezing = contextlib.ExitStack()
    real = listing.page

    class Freezing:  # the gateway's pool; PostgreSQL frozen as the page's statement goes out
        def __init__(self, pg: Any) -> None:
            self.pg = pg

        async def fetch(self, *args: Any) -> Any:
            freezing.enter_context(frozen(gw.pgdata))
            return await self.pg.fetch(*args)

    async def page(pg: Any, *args: Any) -> Any:
        return await real(Freezing(pg), *args)

    monkeypatch.setattr(listing, "page", page)
    with freezing:
        listed, took = await timed(gw.get("/v1/letters"))
    assert (listed.status_code, took < BOUND_S) == (503, True), (listed.text, took)
