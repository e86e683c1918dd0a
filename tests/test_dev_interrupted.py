"""Ctrl-C while `steno-collab dev` starts: the terminal sends SIGINT to the whole process group,
so initdb (or redis-server) fails at the same moment. That is the interrupt, not a fault: one
line that says so, the status of an interrupt (130), nothing left running, not a hint about
directory permissions."""

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.pids import processes_in
from tests.support import eventually, free_port

DEV = [sys.executable, "-c", "from steno_collab.cli import main; main()", "dev"]


def _initdb_running(data_dir: Path) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"initdb") and str(data_dir).encode() in b" ".join(argv):
            return True
    return False


async def test_ctrl_c_during_initdb_says_interrupted_and_leaves_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "steno"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    proc = await asyncio.create_subprocess_exec(
        *DEV,
        "--data-dir",
        str(data_dir),
        "--port",
        str(free_port()),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        await eventually(lambda: _initdb_running(data_dir), timeout=60)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: every process of the group
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = err.decode()
    assert proc.returncode == 130, (proc.returncode, text, out.decode())
    assert "interrupted" in text, text
    assert "initdb failed" not in text and "o+x" not in text, text
    assert "Traceback" not in text, text
    assert processes_in(data_dir) == []
