"""Settings that contradict each other are refused at start, naming both."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.settings import Settings


def test_an_update_budget_smaller_than_a_message_is_refused(tmp_path: Path) -> None:
    refused = r"STENO_UPDATE_BYTES_BURST \(\d+\) must be at least STENO_MAX_MESSAGE_BYTES"
    with pytest.raises(ValidationError, match=refused):
        Settings(data_dir=tmp_path, max_message_bytes=4 << 20, update_bytes_burst=2 << 20)
    ok = Settings(data_dir=tmp_path, max_message_bytes=4 << 20, update_bytes_burst=4 << 20)
    assert ok.update_bytes_burst == ok.max_message_bytes


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"STENO_UPDATE_BYTES_BURST": "2000000", "STENO_MAX_MESSAGE_BYTES": "4000000"},
            "invalid settings: STENO_UPDATE_BYTES_BURST (2000000) must be",
        ),
        ({"STENO_PARTITIONS": "zero"}, "invalid setting STENO_PARTITIONS: Input should be a valid"),
    ],
)
def test_a_command_with_invalid_settings_says_so_in_a_line(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    """It was a pydantic traceback, exit 1 (a supervisor restarted it for ever)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    done = subprocess.run(
        [sys.executable, "-c", "from steno_collab.cli import main; main()", "projector"],
        env=clean | {"STENO_DATA_DIR": str(tmp_path)} | env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"steno-collab projector: {says}"), line
