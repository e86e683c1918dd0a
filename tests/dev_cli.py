"""`steno-collab dev` run as the user runs it: its command line and the banner it prints."""

import asyncio
import re
import sys

DEV = [sys.executable, "-c", "from steno_collab.cli import main; main()", "dev"]


async def read_banner(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or "Press Ctrl-C" not in lines[-1]:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            assert proc.stderr is not None
            err = (await proc.stderr.read()).decode()
            raise AssertionError(f"dev exited early: {lines} {err}")
        lines.append(line.decode())
    return "".join(lines)


def banner_url(banner: str, store: str) -> str:
    found = re.search(rf"{store} +(\S+)", banner)
    assert found is not None, banner
    return found.group(1)
