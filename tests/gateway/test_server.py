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


FREEZER = """
import asyncio, gc, weakref
from gateway.api.heap import HeapFreezer

class Node:
    pass

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a

async def main():
    gc.freeze()  # as tune_interpreter() leaves a process
    freezer = HeapFreezer(check_s=0.01, refresh_s=3600)
    freezer.start()
    await asyncio.sleep(0.05)  # it is watching
    kept = [[] for _ in range(5000)]  # long-lived: survives the next full collection
    before = gc.get_freeze_count()
    gc.collect()
    await asyncio.sleep(0.1)
    frozen_after_full = gc.get_freeze_count() - before

    garbage = cycle()  # frozen while alive, then cyclic garbage
    gc.collect()
    await asyncio.sleep(0.1)
    alive = weakref.ref(garbage)
    del garbage
    gc.collect()
    await asyncio.sleep(0.1)
    leaked_while_frozen = alive() is not None
    await freezer.stop()

    refresher = HeapFreezer(check_s=0.01, refresh_s=0.05)
    refresher.start()
    await asyncio.sleep(0.3)
    await refresher.stop()
    refrozen = gc.get_freeze_count() > 0
    print(frozen_after_full, leaked_while_frozen, alive() is None, refrozen, len(kept))

asyncio.run(main())
"""


def test_survivors_of_full_collections_are_frozen_and_the_heap_refreshed() -> None:
    """gateway/api/heap.py: what survives a full collection leaves the next ones; cyclic
    garbage frozen meanwhile is collected at the next refresh."""
    out = subprocess.run(
        [sys.executable, "-c", FREEZER], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    frozen, leaked, collected, refrozen, _ = out.stdout.split()
    assert int(frozen) >= 5_000
    assert leaked == "True"  # why the refresh exists
    assert collected == "True" and refrozen == "True"
