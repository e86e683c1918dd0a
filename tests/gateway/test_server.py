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
import gc, weakref
from gateway.api.heap import HeapFreezer

class Node:
    pass

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a

now = [0.0]
gc.freeze()  # as tune_interpreter() leaves a process
freezer = HeapFreezer(refresh_s=3600, clock=lambda: now[0])
freezer.check()
nothing_new = gc.get_freeze_count()
kept = [[] for _ in range(5000)]  # long-lived: survives the next full collection
freezer.check()  # no full collection since the last look: nothing frozen
unchanged = gc.get_freeze_count() == nothing_new
gc.collect()
freezer.check()
frozen_after_full = gc.get_freeze_count() - nothing_new

garbage = cycle()  # frozen while alive, then cyclic garbage
gc.collect()
freezer.check()
alive = weakref.ref(garbage)
del garbage
gc.collect()
freezer.check()
leaked_while_frozen = alive() is not None
now[0] = 3600.0  # the refresh period is over
freezer.check()
refrozen = gc.get_freeze_count() > 0
print(unchanged, frozen_after_full, leaked_while_frozen, alive() is None, refrozen, len(kept))
"""


def test_survivors_of_full_collections_are_frozen_and_the_heap_refreshed() -> None:
    """gateway/api/heap.py: what survives a full collection leaves the next ones; cyclic
    garbage frozen meanwhile is collected at the next refresh."""
    out = subprocess.run(
        [sys.executable, "-c", FREEZER], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    unchanged, frozen, leaked, collected, refrozen, _ = out.stdout.split()
    assert unchanged == "True"
    assert int(frozen) >= 5_000
    assert leaked == "True"  # why the refresh exists
    assert collected == "True" and refrozen == "True"
