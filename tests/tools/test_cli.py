"""The commands as processes on the embedded log while this test holds it open for writing
(as `steno-collab dev` would): replay, history, diff and verify, with their exit codes."""

import asyncio
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
from tools.render import RULE
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
    target = tmp_path / "state.yjs"
    # Side by side (each reads; none waits for another): seconds of interpreter start-up each.
    text, as_json, html, yjs, history, diff, not_iso, unknown, no_version = await asyncio.gather(
        run_cli(env, "replay", LETTER),
        run_cli(env, "replay", LETTER, "--at", iso(first), "--format", "json"),
        run_cli(env, "replay", LETTER, "--offset", "3", "--format", "html"),
        run_cli(env, "replay", LETTER, "--format", "yjs", "--out", str(target)),
        run_cli(env, "history", LETTER, "--json"),
        run_cli(env, "diff", LETTER, "--from", "1", "--to", "2"),
        run_cli(env, "replay", LETTER, "--at", "yesterday"),
        run_cli(env, "replay", "no-such-letter"),
        run_cli(env, "diff", LETTER, "--from", "1", "--to", "9"),
    )
    # Under a header naming the letter and the cut (tests/tools/test_replay_header.py).
    assert text[0] == 0 and text[1].startswith(f"letter: {LETTER}\n")
    assert text[1].endswith(f"{RULE}\n{FINAL}\n")
    data = json.loads(as_json[1])
    assert data["content"] == "Dear Sir,\nWe write about the claim"
    assert data["base_version"] == 1  # started from the "draft" version
    assert html[1].startswith("<header data-steno-provenance")
    assert html[1].endswith("</header>\n<p>Dear Sir,</p><p>We write about</p>\n")
    doc: Doc[Any] = Doc()
    doc.apply_update(target.read_bytes())
    assert yjs[0] == 0 and plain_text(doc, "default") == FINAL
    # The initial content, user-1's typing (closed by version 1), her deletion, user-2's line.
    assert history[0] == 0 and [e["type"] for e in json.loads(history[1])].count("edit") == 4
    assert diff[0] == 0 and "@@ line 3 @@ by user-2\n+Regards" in diff[1]
    assert not_iso[0] == 2 and "ISO-8601" in not_iso[2]
    assert unknown[0] == 1 and "no letter" in unknown[2]
    assert no_version[0] == 2 and "no version 9" in no_version[2]


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


WITHOUT_A_LOG = [
    ["replay", LETTER],
    ["history", LETTER],
    ["diff", LETTER, "--from", "1", "--to", "2"],
    ["verify", "--all"],
    ["backfill", "projector"],
]


async def test_a_data_dir_without_a_log_is_a_clear_error(tmp_path: Path) -> None:
    """A mistyped data dir: every command says so, all at once, and none makes or locks it (one
    that did answered another "in use by another steno-collab process")."""
    mistyped = tmp_path / "nothing"
    env = cli_env(Settings(data_dir=mistyped, redis_url="redis://127.0.0.1:1/0"))
    runs = await asyncio.gather(*(run_cli(env, *command) for command in WITHOUT_A_LOG))
    assert not mistyped.exists()
    for command, (code, out, err) in zip(WITHOUT_A_LOG, runs, strict=True):
        assert code == 2, (command, err)
        prefix = f"steno-collab {command[0]}: the log is not readable: no embedded log"
        assert err.startswith(prefix), err
        assert "Traceback" not in err and err.count("\n") == 1 and out == "", (command, err)
