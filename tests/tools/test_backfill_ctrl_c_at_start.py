"""A Ctrl-C in the first moments of `steno-collab backfill` (the entry point's module importing
pydantic and the settings, before `main`) exits 130 without a traceback, as one later does."""

import asyncio
import signal
import sys

# The console script's own steps (its entry point loaded, then called), with an import hook
# that says "ready" when pydantic is first imported and holds that import until the signal.
PROGRAM = """
import sys
from importlib.metadata import entry_points


class Gate:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "pydantic":
            sys.meta_path.remove(Gate)
            print("ready", flush=True)
            sys.stdin.readline()  # until the SIGINT (or the test's end closes it)
        return None


sys.meta_path.insert(0, Gate)
[script] = entry_points(group="console_scripts", name="steno-collab")
sys.argv[1:] = ["backfill", "projector"]
sys.exit(script.load()())
"""


async def test_a_ctrl_c_while_pydantic_is_imported_is_exit_130_quietly() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROGRAM, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"ready\n"
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    assert proc.returncode == 130, err.decode()
    assert err.decode() == ""
