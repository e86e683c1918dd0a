"""The environment of a `steno-collab` command run by a test."""

import os
import secrets
from pathlib import Path


def steno_env(tmp_path: Path, **steno: str) -> dict[str, str]:
    """This process's environment without its STENO_* settings, a data directory under
    `tmp_path`, one partition, and `steno`'s as STENO_<KEY>."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {"STENO_DATA_DIR": str(tmp_path / "steno"), "STENO_PARTITIONS": "1"}
    env["STENO_JWT_SECRET"] = secrets.token_hex(32)  # the gateway refuses the public default
    return env | {f"STENO_{key.upper()}": value for key, value in steno.items()}
