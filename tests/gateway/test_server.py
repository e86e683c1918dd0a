"""What `tune_interpreter` does to a gateway process (in a subprocess: it is process-wide)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import asyncio, gc, sys
import uvicorn
from gateway.api.server import GatewayServer, tune_interpreter

tune_interpreter()
at_tune = gc.get_freeze_count()
made_after = [[] for _ in range(5000)]  # objects that exist only once the app is built

async def app(scope, receive, send):
    pass

async def main():
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="error")
    config.load()
    server = GatewayServer(config, gateway=None)
    server.lifespan = config.lifespan_class(config)  # as uvicorn.Server.serve does
    await server.startup()
    print(at_tune, gc.get_freeze_count(), sys.getswitchinterval())
    for listener in server.servers:
        listener.close()

asyncio.run(main())
"""


def test_a_tuned_process_freezes_its_heap_at_start_up_and_switches_the_gil_often() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    at_tune, at_startup, interval = out.stdout.split()
    assert int(at_tune) > 10_000  # the imported libraries: never walked by a full collection
    assert int(at_startup) >= int(at_tune) + 5_000  # what was built before serving, too
    assert float(interval) == 0.0005
