"""The tools run from another directory than `steno-collab dev --data-dir X`'s: the missing log's
message names the directory looked in (absolute) and how to name another (STENO_DATA_DIR, or
the tools' own `--data-dir`), and `--data-dir X` finds X's log. Before, it said "no embedded log
at .steno/log/log.sqlite3" and nothing of the variable: only `dev` and `backup` took the option."""

import asyncio
import sys
from pathlib import Path

import pytest

from eventlog import Log
from schemas.settings import Settings
from tests.tools.cli import cli_env
from tests.tools.scripted import LETTER, scripted

COMMANDS = [["history", LETTER], ["replay", LETTER], ["verify", "--all"], ["backfill", "projector"]]


@pytest.fixture
def log_kind() -> str:
    return "embedded"


async def run_in(cwd: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from steno_collab.cli import main; main()", *args, env=env,
        cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_tools_name_the_data_dir_and_take_one(
    settings: Settings, log: Log, tmp_path: Path
) -> None:
    await scripted(log, settings)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in cli_env(settings).items() if k != "STENO_DATA_DIR"}
    runs = await asyncio.gather(*(run_in(elsewhere, env, *command) for command in COMMANDS))
    looked = elsewhere / ".steno"
    for command, (code, out, err) in zip(COMMANDS, runs, strict=True):
        assert code == 2 and out == "", (command, err)
        assert err == (
            f"steno-collab {command[0]}: the log is not readable: no embedded log at"
            f" {looked}/log/log.sqlite3: the data dir is {looked} (STENO_DATA_DIR or --data-dir,"
            " default .steno in the current directory: give the one `steno-collab dev` runs on)\n"
        ), err
    data_dir = str(settings.data_dir.absolute())
    code, out, err = await run_in(elsewhere, env, "history", LETTER, "--data-dir", data_dir)
    assert code == 0 and "created the letter" in out, err
    code, out, err = await run_in(elsewhere, env, "backfill", "projector", "--data-dir", data_dir)
    assert code == 0 and out.startswith("backfill done:"), err
