"""A process's life as /proc shows it (tests of commands that start workers)."""

from pathlib import Path


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()  # reaped by the parent: gone


def process_state(pid: int) -> str:
    """The process's state letter ("T": stopped), "" once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""
