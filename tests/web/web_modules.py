"""web/node_modules for the tests that run the web client's own tooling (Vite, its sources in
Node): `npm ci` once when it is missing, one test worker at a time."""

import fcntl
import shutil
import subprocess
from pathlib import Path

from tests.web.bundle import WEB

MODULES = WEB / "node_modules"


def web_node_modules() -> Path:
    assert shutil.which("node") and shutil.which("npm"), "Node >= 20.19 and npm are required"
    with open(WEB / "package-lock.json", "rb") as lock:  # its own lock: read-only, never written
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (MODULES / ".bin" / "vite").exists():
                subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return MODULES
