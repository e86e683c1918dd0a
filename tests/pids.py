"""The processes a test started, found by their working directory (/proc): the servers chdir
into their data dir."""

import os
from pathlib import Path


def processes_in(directory: Path) -> list[int]:
    """Pids of processes whose working directory is inside `directory` (the servers chdir there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd.is_relative_to(directory.resolve()):
            found.append(int(entry.name))
    return found
