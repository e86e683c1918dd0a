"""Edit rows stored before they named their session (2026-12-06): no `conn_id`, and a burst
per user, not per session. `verify` says so, once, with the command that rebuilds them, not a
mismatch per row; after that rebuild the letter verifies."""

import json

import pytest

from eventlog import Log
from schemas.events import Topic
from schemas.settings import Settings
from tests.snapshotter.scripts import LetterScript, append
from tests.tools.cli import cli_env, run_cli
from tests.tools.snapshots import run_to_end
from tools.sources import open_sources

LETTER = "L-legacy"
REBUILD = f"steno-collab backfill snapshotter --letters {LETTER}"


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the audit rows are under test, not the log


async def _two_tabs(log: Log, settings: Settings) -> None:
    """Alice types in two tabs at once, a REST write of Bob's outside a session."""
    s = LetterScript(LETTER)
    await append(log, settings.topic(Topic.LETTERS), [
        s.created("alice"), s.paragraph("alice", ""), s.paragraph("alice", ""),
        s.joined("alice", "tab-1"), s.joined("alice", "tab-2"),
        s.type_text("alice", 0, 0, "ab", "tab-1"), s.type_text("alice", 1, 0, "cd", "tab-2"),
        s.type_text("alice", 0, 2, "ef", "tab-1"), s.left("alice", "tab-1"),
        s.left("alice", "tab-2"), s.paragraph("bob", "by REST"),
    ])  # fmt: skip
    await run_to_end(log, settings)


async def _the_old_way(settings: Settings) -> None:
    """Alice's two sessions' rows as they were written then: one burst of hers, no conn_id."""
    async with open_sources(settings, pg=True) as src:
        rows = await src.pg.fetch(
            "SELECT id, change_data::text AS data FROM collaboration WHERE letter_id = $1"
            " AND change_type = 'edit' AND change_data ? 'conn_id' ORDER BY log_offset",
            LETTER,
        )
        assert len(rows) == 2  # one per tab
        first, second = (json.loads(r["data"]) for r in rows)
        merged = {k: v for k, v in first.items() if k != "conn_id"}
        merged |= {
            "inserted": first["inserted"] + second["inserted"],
            "updates": first["updates"] + second["updates"],
            "paragraphs": sorted({*first["paragraphs"], *second["paragraphs"]}),
            "last_offset": max(first["last_offset"], second["last_offset"]),
        }
        await src.pg.execute("DELETE FROM collaboration WHERE id = $1", rows[1]["id"])
        await src.pg.execute(
            "UPDATE collaboration SET change_data = $2::jsonb WHERE id = $1",
            rows[0]["id"],
            json.dumps(merged),
        )


async def test_verify_names_edit_rows_stored_before_sessions(settings: Settings, log: Log) -> None:
    await _two_tabs(log, settings)
    env = cli_env(settings)
    assert await _mismatches(env) == []  # Redis is not projected here: no exit status 0
    await _the_old_way(settings)
    assert await _mismatches(env) == [
        f"MISMATCH {LETTER} postgres: audit edit rows at 2 position(s) differ from the log's:"
        " stored before edit rows named their session (no conn_id; a burst was per user, not"
        f" per session); rebuild the letter's audit trail with `{REBUILD}` (every letter's:"
        " `--from-beginning --reset`)"
    ]
    code, out, err = await run_cli(env, *REBUILD.split()[1:])
    assert code == 0, out + err
    assert await _mismatches(env) == []


async def _mismatches(env: dict[str, str]) -> list[str]:
    code, out, err = await run_cli(env, "verify", LETTER)
    assert code in (0, 1) and "Traceback" not in err, out + err
    return [line for line in out.splitlines() if line.startswith("MISMATCH")]


async def test_other_edit_mismatches_stay_each_its_own(settings: Settings, log: Log) -> None:
    """A stored edit row tampered with otherwise (its session intact) is a mismatch of its own."""
    await _two_tabs(log, settings)
    async with open_sources(settings, pg=True) as src:
        await src.pg.execute(
            "UPDATE collaboration SET change_data = jsonb_set(change_data, '{inserted}', '99')"
            " WHERE letter_id = $1 AND change_type = 'edit' AND change_data ? 'conn_id'",
            LETTER,
        )
    mismatches = await _mismatches(cli_env(settings))
    assert len(mismatches) == 2 and not any("no conn_id" in line for line in mismatches)
    assert all(f"{LETTER} postgres: audit edit row at position" in m for m in mismatches)
