"""The commands as processes on the embedded log while this test holds it open for writing
(as `steno-collab dev` would): replay, history, diff and verify, with their exit codes."""

import json
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc

from eventlog import Log
from gateway.content import plain_text
from schemas.settings import Settings
from tests.tools.cli import cli_env, run_cli
from tests.tools.scripted import LETTER, scripted
from tests.tools.snapshots import snapshot_all
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import open_sources
from tools.timefmt import iso

FINAL = "Sir,\nWe write about the claim\nRegards"


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the commands' code is log-agnostic; tools are tested on both logs


async def test_replay_history_diff(settings: Settings, log: Log, tmp_path: Path) -> None:
    _, (first, _second) = await scripted(log, settings)
    await snapshot_all(settings, log)
    env = cli_env(settings)
    code, out, _ = await run_cli(env, "replay", LETTER)
    assert (code, out) == (0, FINAL + "\n")
    code, out, _ = await run_cli(env, "replay", LETTER, "--at", iso(first), "--format", "json")
    data = json.loads(out)
    assert data["content"] == "Dear Sir,\nWe write about the claim"
    assert data["base_version"] == 1  # started from the "draft" version
    code, out, _ = await run_cli(env, "replay", LETTER, "--offset", "3", "--format", "html")
    assert out == "<p>Dear Sir,</p><p>We write about</p>\n"
    target = tmp_path / "state.yjs"
    code, _, _ = await run_cli(env, "replay", LETTER, "--format", "yjs", "--out", str(target))
    doc: Doc[Any] = Doc()
    doc.apply_update(target.read_bytes())
    assert code == 0 and plain_text(doc, "default") == FINAL
    code, out, _ = await run_cli(env, "history", LETTER, "--json")
    # The initial content, user-1's typing (closed by version 1), her deletion, user-2's line.
    assert code == 0 and [e["type"] for e in json.loads(out)].count("edit") == 4
    code, out, _ = await run_cli(env, "diff", LETTER, "--from", "1", "--to", "2")
    assert code == 0 and "@@ line 3 @@ by user-2\n+Regards" in out
    code, _, err = await run_cli(env, "replay", LETTER, "--at", "yesterday")
    assert code == 2 and "ISO-8601" in err
    code, _, err = await run_cli(env, "replay", "no-such-letter")
    assert code == 1 and "no letter" in err
    code, _, err = await run_cli(env, "diff", LETTER, "--from", "1", "--to", "9")
    assert code == 2 and "no version 9" in err


async def test_verify_exit_codes(settings: Settings, log: Log) -> None:
    await scripted(log, settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))
    env = cli_env(settings)
    code, out, _ = await run_cli(env, "verify", "--all")
    assert code == 0 and "0 mismatch(es)" in out
    async with open_sources(settings, redis=True) as src:
        assert src.redis is not None
        await src.redis.set(f"ydoc:{LETTER}", b"\x00\x00")
    code, out, _ = await run_cli(env, "verify", LETTER, "--quiet")
    assert code == 1 and f"MISMATCH {LETTER} redis" in out and "ok " not in out


@pytest.mark.parametrize(
    "command",
    [
        ["replay", LETTER],
        ["history", LETTER],
        ["diff", LETTER, "--from", "1", "--to", "2"],
        ["verify", "--all"],
        ["backfill", "projector"],
    ],
    ids=lambda c: c[0],
)
async def test_a_data_dir_without_a_log_is_a_clear_error(
    command: list[str], tmp_path: Path
) -> None:
    empty = Settings(data_dir=tmp_path / "nothing-here", redis_url="redis://127.0.0.1:1/0")
    code, out, err = await run_cli(cli_env(empty), *command)
    assert code == 2, err
    assert err.startswith(f"steno-collab {command[0]}: the log is not readable: no embedded log")
    assert "Traceback" not in err and err.count("\n") == 1 and out == ""
