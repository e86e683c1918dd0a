"""`steno-collab dev` notices an embedded server dying: one ERROR naming it, its exit status and
its log's tail, everything stopped, exit status 1 (a supervisor restarts it), nothing left."""

import asyncio
import os
import signal
from pathlib import Path

from tests.support import eventually, free_port, gateway_ready
from tests.test_dev import DEV, read_banner
from tests.test_embedded import processes_in


async def test_dev_exits_1_when_its_embedded_redis_is_killed(service_tmp: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {"STENO_LOG_LEVEL": "INFO"}  # the projector says when it has its partitions
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *DEV, "--data-dir", str(service_tmp), "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    err = b""
    try:
        await read_banner(proc)
        # Running, not starting: a service that cannot connect at its start stops dev anyway.
        while b"projector.consumer assigned" not in err:
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert line, err.decode()
            err += line
        await eventually(lambda: gateway_ready(port), timeout=30)
        redis_pid = int((service_tmp / "redis" / "redis.pid").read_text())
        os.kill(redis_pid, signal.SIGKILL)
        _, rest = await asyncio.wait_for(proc.communicate(), 30)
        err += rest
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    errors = [line for line in text.splitlines() if " ERROR " in line]
    assert len(errors) == 1, text
    assert f"embedded redis (pid {redis_pid}) exited unexpectedly: killed by SIGKILL" in errors[0]
    assert "Ready to accept connections" in text  # the tail of redis.log, after that line
    assert proc.returncode == 1
    assert processes_in(service_tmp) == []
